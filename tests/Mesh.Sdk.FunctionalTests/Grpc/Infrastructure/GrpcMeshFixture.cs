using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Grpc.Net.Client;
using Mesh.ControlPlane;
using Mesh.Sdk.Grpc;
using Mesh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.FunctionalTests.Grpc.Infrastructure;

/// <summary>
/// The gRPC functional test world, shared by the tests of a class: real Kestrel Greeter workloads
/// (<c>greeter</c> v1 ×2 and v2 ×1; <c>outlier</c> good and bad; <c>recovering</c> good and bad; <c>ring</c> ×5, four of them
/// registered at start; <c>shadow</c>, a mirror target failing every call; <c>blackhole</c>, an endpoint no connection to completes), the real <see cref="MeshControlPlane"/> on
/// 127.0.0.1 serving Istio YAML from a temporary folder, and a client <see cref="IServiceProvider"/> from
/// <c>AddMesh()</c> bootstrapped to that control plane. Every test has its own service (ServiceEntry, DestinationRule,
/// VirtualService), all written before the control plane starts, so no test sees another's routes.
/// </summary>
public sealed class GrpcMeshFixture : IAsyncLifetime
{
    public const int ServicePort = 9080;

    private readonly List<GreeterWorkload> _workloads = [];

    // Started but without a WorkloadEntry: no cluster has them as endpoints until SetEndpointsAsync registers them.
    private readonly HashSet<GreeterWorkload> _unregistered = [];
    private MeshControlPlane? _controlPlane;
    private ILoggerFactory? _controlPlaneLogs;
    private ServiceProvider? _client;

    // An endpoint whose connections never complete: a listening socket with a backlog of one, filled by one
    // connection and never accepted, so the kernel drops further connection attempts and they stay connecting.
    private Socket? _blackhole;
    private Socket? _blackholeFiller;

    public string ConfigDirectory { get; } = Directory.CreateTempSubdirectory("mesh-grpc-ft-").FullName;

    internal GreeterWorkload V1A { get; private set; } = null!;

    internal GreeterWorkload V1B { get; private set; } = null!;

    internal GreeterWorkload V2 { get; private set; } = null!;

    internal GreeterWorkload OutlierGood { get; private set; } = null!;

    internal GreeterWorkload OutlierBad { get; private set; } = null!;

    /// <summary>The workloads of <c>grpc-outlier-return</c> (app <c>recovering</c>): both answer every call at start.</summary>
    internal GreeterWorkload RecoveringGood { get; private set; } = null!;

    internal GreeterWorkload RecoveringBad { get; private set; } = null!;

    /// <summary>The five workloads of <c>grpc-ring</c> (app <c>ring</c>); the first four are its endpoints at start.</summary>
    internal IReadOnlyList<GreeterWorkload> Ring { get; private set; } = [];

    /// <summary>The only workload of <c>grpc-shadow</c>, the mirror target; it fails every call with INTERNAL.</summary>
    internal GreeterWorkload Shadow { get; private set; } = null!;

    /// <summary>The client's services: <c>AddMesh()</c> bootstrapped to the control plane, plus the test's gRPC clients.</summary>
    public IServiceProvider Services => _client ?? throw new InvalidOperationException("Fixture not started.");

    /// <summary>The client's mesh runtime: the clusters and routes its channels pick from.</summary>
    internal MeshRuntime Runtime => Services.GetRequiredService<MeshRuntime>();

    public MeshControlPlane ControlPlane => _controlPlane ?? throw new InvalidOperationException("Fixture not started.");

    public async Task InitializeAsync()
    {
        V1A = await Add("greeter-v1-a", "greeter", "v1");
        V1B = await Add("greeter-v1-b", "greeter", "v1");
        V2 = await Add("greeter-v2", "greeter", "v2");
        OutlierGood = await Add("outlier-good", "outlier", "v1");
        OutlierBad = await Add("outlier-bad", "outlier", "v1");
        OutlierBad.FailAllWith = global::Grpc.Core.StatusCode.Unavailable;
        Shadow = await Add("shadow", "shadow", "v1");
        Shadow.FailAllWith = global::Grpc.Core.StatusCode.Internal;
        RecoveringGood = await Add("recovering-good", "recovering", "v1");
        RecoveringBad = await Add("recovering-bad", "recovering", "v1");
        var ring = new List<GreeterWorkload>();
        for (var i = 1; i <= 5; i++)
        {
            ring.Add(await Add(string.Create(CultureInfo.InvariantCulture, $"ring-{i}"), "ring", "v1"));
        }

        Ring = ring;
        _unregistered.Add(ring[4]);

        _blackhole = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _blackhole.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _blackhole.Listen(0);
        _blackholeFiller = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await _blackholeFiller.ConnectAsync(_blackhole.LocalEndPoint!);
        WriteWorkloads();
        foreach (var (name, app, trafficPolicy, http) in GrpcTestServices.All)
        {
            WriteService(name, app, trafficPolicy);
            if (http is not null)
            {
                WriteVirtualService(name, http);
            }
        }

        _controlPlaneLogs = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Warning));
        _controlPlane = new MeshControlPlane(new MeshControlPlaneOptions
        {
            ConfigDirectory = ConfigDirectory,
            XdsAddress = "127.0.0.1",
            XdsPort = 0,
            LoggerFactory = _controlPlaneLogs,
        });
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            await _controlPlane.StartAsync(cts.Token);
        }

        if (_controlPlane.ConfigErrors.Count > 0)
        {
            throw new InvalidOperationException("The control plane rejected the gRPC test configuration:\n" + string.Join("\n", _controlPlane.ConfigErrors) + "\n" + Dump());
        }

        var services = new ServiceCollection();
        services.AddLogging(b => b.SetMinimumLevel(LogLevel.Warning));
        services.AddMesh(o => o.BootstrapConfig = Bootstrap(_controlPlane.XdsPort));
        services.AddGrpcClient<Greeter.Greeter.GreeterClient>(o => o.Address = new Uri(Target(GrpcTestServices.Factory)));
        _client = services.BuildServiceProvider();
    }

    /// <summary>The xds target of a test service: <c>xds:///name:9080</c> (a short name: the listener is named as written, and the control plane answers it for the service in namespace default).</summary>
    public static string Target(string service) => string.Create(CultureInfo.InvariantCulture, $"xds:///{service}:{ServicePort}");

    public static string Host(string service) => service + ".default.svc.cluster.local";

    /// <summary>istiod's name of a test service's cluster: <c>outbound|9080|subset|host</c> (no subset: the whole service).</summary>
    public static string Cluster(string service, string subset = "") => string.Create(CultureInfo.InvariantCulture, $"outbound|{ServicePort}|{subset}|{Host(service)}");

    /// <summary>
    /// Makes <paramref name="endpoints"/> the only registered workloads labelled <c>app: </c><paramref name="app"/> (the
    /// others lose their WorkloadEntry), then waits until the client's <paramref name="cluster"/> lists exactly their
    /// ports. The client must already watch the cluster (a channel to its service has made a call).
    /// </summary>
    internal async Task SetEndpointsAsync(string app, string cluster, IReadOnlyCollection<GreeterWorkload> endpoints)
    {
        foreach (var workload in _workloads.Where(w => w.App == app))
        {
            if (endpoints.Contains(workload))
            {
                _unregistered.Remove(workload);
            }
            else
            {
                _unregistered.Add(workload);
            }
        }

        WriteWorkloads();
        var expected = endpoints.Select(w => w.Port).Order().ToArray();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!(Runtime.Clusters.TryGetCluster(cluster, out var c) && c.LoadBalancer.Endpoints.All.Select(e => e.Port).Order().SequenceEqual(expected)))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Cluster '{cluster}' did not reach the client with ports {string.Join(", ", expected)} within 10 s.\n{Dump()}");
            }

            await Task.Delay(10);
        }
    }

    /// <summary>A channel to a test service configured with <see cref="MeshGrpcChannelOptionsExtensions.UseMesh"/>.</summary>
    public GrpcChannel CreateChannel(string service) => GrpcChannel.ForAddress(Target(service), new GrpcChannelOptions().UseMesh(Services));

    /// <summary>Replaces a test service's VirtualService (<paramref name="http"/> is the <c>http:</c> list, indented by two).</summary>
    public void WriteVirtualService(string service, string http) => WriteAtomically(service + "-vs.yaml", $"""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: {service}
          namespace: default
        spec:
          hosts:
          - {Host(service)}
          http:
        {http}
        """);

    public string Dump()
    {
        var sb = new StringBuilder();
        foreach (var file in Directory.GetFiles(ConfigDirectory, "*.yaml").Order(StringComparer.Ordinal))
        {
            sb.Append("--- ").AppendLine(Path.GetFileName(file)).AppendLine(File.ReadAllText(file));
        }

        return sb.ToString();
    }

    public async Task DisposeAsync()
    {
        if (_client is not null)
        {
            await _client.DisposeAsync();
        }

        if (_controlPlane is not null)
        {
            await _controlPlane.DisposeAsync();
        }

        _controlPlaneLogs?.Dispose();
        _blackholeFiller?.Dispose();
        _blackhole?.Dispose();
        foreach (var workload in _workloads)
        {
            await workload.DisposeAsync();
        }

        try
        {
            Directory.Delete(ConfigDirectory, recursive: true);
        }
        catch (IOException)
        {
            // A temp folder left behind is harmless.
        }
    }

    private async Task<GreeterWorkload> Add(string name, string app, string version)
    {
        var workload = await GreeterWorkload.StartAsync(name, app, version);
        _workloads.Add(workload);
        return workload;
    }

    private void WriteWorkloads()
    {
        var sb = new StringBuilder();
        foreach (var w in _workloads.Where(w => !_unregistered.Contains(w)))
        {
            sb.Append(IstioYaml.WorkloadEntry(w.Name, w.App, w.Version, "grpc", w.Port));
        }

        sb.Append(IstioYaml.WorkloadEntry("blackhole", "blackhole", "v1", "grpc", ((IPEndPoint)_blackhole!.LocalEndPoint!).Port));

        WriteAtomically("workloads.yaml", sb.ToString());
    }

    private void WriteService(string service, string app, string? trafficPolicy) => WriteAtomically(service + ".yaml", $"""
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata:
          name: {service}
          namespace: default
        spec:
          hosts:
          - {Host(service)}
          location: MESH_INTERNAL
          ports:
          - number: {ServicePort}
            name: grpc
            protocol: GRPC
          resolution: STATIC
          workloadSelector:
            labels:
              app: {app}
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: {service}
          namespace: default
        spec:
          host: {Host(service)}
        {trafficPolicy ?? string.Empty}
          subsets:
          - name: v1
            labels:
              version: v1
          - name: v2
            labels:
              version: v2

        """);

    private static string Bootstrap(int xdsPort) =>
        "{\"xds_servers\":[{\"server_uri\":\"127.0.0.1:" + xdsPort.ToString(CultureInfo.InvariantCulture)
        + "\",\"channel_creds\":[{\"type\":\"insecure\"}],\"server_features\":[\"xds_v3\"]}],"
        + "\"node\":{\"id\":\"sidecar~127.0.0.1~grpc-client.default~default.svc.cluster.local\","
        + "\"locality\":{\"region\":\"r1\",\"zone\":\"z1\"},"
        + "\"metadata\":{\"GENERATOR\":\"grpc\",\"NAMESPACE\":\"default\"}}}";

    private void WriteAtomically(string name, string content) => IstioYaml.WriteAtomically(ConfigDirectory, name, content);
}

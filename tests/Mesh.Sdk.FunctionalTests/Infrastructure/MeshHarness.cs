using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using Mesh.ControlPlane;
using Mesh.Sdk.Routing;
using Mesh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.FunctionalTests.Infrastructure;

/// <summary>
/// A small mesh in the test process: the real <see cref="MeshControlPlane"/> on 127.0.0.1 with an ephemeral port
/// watching a temporary config folder, real Kestrel backends of the service <c>reviews</c> (port 9080) per version,
/// Istio YAML written atomically, and a client <see cref="IServiceProvider"/> with <c>AddMesh()</c> pointed at the
/// control plane by an inline bootstrap (options, not environment variables, so test classes run in parallel).
/// </summary>
internal sealed class MeshHarness : IAsyncDisposable
{
    public const string Service = "reviews";
    public const int ServicePort = 9080;
    public const string Fqdn = "reviews.default.svc.cluster.local";
    public const string Listener = "reviews.default.svc.cluster.local:9080";
    public static readonly TimeSpan ApplyTimeout = TimeSpan.FromSeconds(15);

    private readonly CapturingLoggerProvider _logs = new();
    private readonly ILoggerFactory _controlPlaneLogs;
    private readonly List<Backend> _backends = [];
    private int _generation;

    private MeshHarness(string directory)
    {
        ConfigDirectory = directory;
        _controlPlaneLogs = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug)
            .AddFilter((category, level) => category?.StartsWith("Mesh.", StringComparison.Ordinal) == true ? level >= LogLevel.Debug : level >= LogLevel.Warning)
            .AddProvider(_logs));
    }

    public string ConfigDirectory { get; }

    public MeshControlPlane ControlPlane { get; private set; } = null!;

    public ServiceProvider Client { get; private set; } = null!;

    public MeshRuntime Runtime { get; private set; } = null!;

    public HttpClient Http { get; private set; } = null!;

    public IReadOnlyList<Backend> Backends => _backends;

    public static string BaseUrl => $"http://{Service}:{ServicePort}";

    /// <summary>Starts the control plane, one backend per (workload, version) and the client.</summary>
    public static async Task<MeshHarness> StartAsync(params (string Workload, string Version)[] backends)
    {
        var harness = new MeshHarness(Directory.CreateTempSubdirectory("mesh-functional-").FullName);
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            harness.ControlPlane = new MeshControlPlane(new MeshControlPlaneOptions
            {
                ConfigDirectory = harness.ConfigDirectory,
                XdsAddress = "127.0.0.1",
                XdsPort = 0,
                PushDebounce = TimeSpan.FromMilliseconds(20),
                ConfigDebounce = TimeSpan.FromMilliseconds(50),
                LoggerFactory = harness._controlPlaneLogs,
            });
            await harness.ControlPlane.StartAsync(cts.Token);
            foreach (var (workload, version) in backends)
            {
                harness._backends.Add(await Infrastructure.Backend.StartAsync(Service, workload, version, cts.Token));
            }

            harness.Client = CreateClient(harness.ControlPlane.XdsPort, harness._logs);
            harness.Runtime = harness.Client.GetRequiredService<MeshRuntime>();
            harness.Http = harness.Client.GetRequiredService<IHttpClientFactory>().CreateClient("functional");
            harness.Http.Timeout = TimeSpan.FromSeconds(20);
            return harness;
        }
        catch
        {
            await harness.DisposeAsync();
            throw;
        }
    }

    /// <summary>A client container with the mesh pointed at the control plane on <paramref name="xdsPort"/>.</summary>
    public static ServiceProvider CreateClient(int xdsPort, ILoggerProvider? logs = null, Action<MeshOptions>? configure = null)
    {
        var services = new ServiceCollection();
        services.AddLogging(b =>
        {
            b.SetMinimumLevel(LogLevel.Debug);
            if (logs is not null)
            {
                b.AddProvider(logs);
            }
        });
        services.AddMesh(o =>
        {
            o.BootstrapConfig = Bootstrap(xdsPort);
            o.ResolveTimeout = TimeSpan.FromSeconds(3);
            configure?.Invoke(o);
        });
        services.AddHttpClient("functional");
        return services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });
    }

    public static string Bootstrap(int xdsPort) =>
        "{\"xds_servers\":[{\"server_uri\":\"127.0.0.1:" + xdsPort.ToString(CultureInfo.InvariantCulture)
        + "\",\"channel_creds\":[{\"type\":\"insecure\"}],\"server_features\":[\"xds_v3\"]}],"
        + "\"node\":{\"locality\":{\"region\":\"r1\",\"zone\":\"z1\"},\"metadata\":{\"GENERATOR\":\"grpc\"}}}";

    public Backend Backend(string workload) => _backends.Single(b => b.Workload == workload);

    public IEnumerable<Backend> Version(string version) => _backends.Where(b => b.Version == version);

    public void ResetBackends()
    {
        foreach (var backend in _backends)
        {
            backend.Reset();
        }
    }

    /// <summary>
    /// Writes <c>reviews.yaml</c> (ServiceEntry, one WorkloadEntry per endpoint, a DestinationRule with subsets
    /// v1/v2/v3 and <paramref name="trafficPolicy"/>, a VirtualService with <paramref name="http"/>) in one atomic
    /// rename, then waits until the client's route table holds this generation. YAML blocks are given at column 0.
    /// </summary>
    public async Task ApplyAsync(string http, string? trafficPolicy = null, IEnumerable<Backend>? endpoints = null, string? subsetPolicyV1 = null, bool waitForClient = true)
    {
        ResetBackends();
        var generation = Interlocked.Increment(ref _generation);
        var sentinel = "sentinel-" + generation.ToString(CultureInfo.InvariantCulture);
        var yaml = new StringBuilder();
        yaml.Append(CultureInfo.InvariantCulture, $"""
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata:
              name: reviews
              namespace: default
            spec:
              hosts:
              - {Fqdn}
              location: MESH_INTERNAL
              ports:
              - number: {ServicePort}
                name: http
                protocol: HTTP
              resolution: STATIC
              workloadSelector:
                labels:
                  app: reviews

            """);
        foreach (var backend in endpoints ?? _backends)
        {
            yaml.Append(CultureInfo.InvariantCulture, $"""
                ---
                apiVersion: networking.istio.io/v1
                kind: WorkloadEntry
                metadata:
                  name: {backend.Workload}
                  namespace: default
                spec:
                  address: 127.0.0.1
                  ports:
                    http: {backend.Port}
                  labels:
                    app: reviews
                    version: {backend.Version}

                """);
        }

        yaml.Append(CultureInfo.InvariantCulture, $"""
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata:
              name: reviews
              namespace: default
            spec:
              host: {Fqdn}

            """);
        if (trafficPolicy is not null)
        {
            yaml.Append("  trafficPolicy:\n").Append(Indent(trafficPolicy, 4));
        }

        yaml.Append("  subsets:\n  - name: v1\n    labels:\n      version: v1\n");
        if (subsetPolicyV1 is not null)
        {
            yaml.Append("    trafficPolicy:\n").Append(Indent(subsetPolicyV1, 6));
        }

        yaml.Append("  - name: v2\n    labels:\n      version: v2\n  - name: v3\n    labels:\n      version: v3\n");
        yaml.Append(CultureInfo.InvariantCulture, $"""
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: reviews
              namespace: default
            spec:
              hosts:
              - {Fqdn}
              http:
              - name: {sentinel}
                match:
                - headers:
                    x-harness-sentinel:
                      exact: "{generation}"
                route:
                - destination:
                    host: {Fqdn}
                    subset: v1

            """);
        yaml.Append(Indent(http, 2));
        WriteAtomically("reviews.yaml", yaml.ToString());
        if (waitForClient)
        {
            await WaitForRouteAsync(sentinel);
        }
    }

    /// <summary>Writes a file into the config folder by temp file + rename.</summary>
    public void WriteAtomically(string name, string content) => IstioYaml.WriteAtomically(ConfigDirectory, name, content);

    /// <summary>Waits until the client's table for the listener has a route named <paramref name="routeName"/> and every cluster it needs.</summary>
    public async Task WaitForRouteAsync(string routeName)
    {
        using var cts = new CancellationTokenSource(ApplyTimeout);
        try
        {
            // Registers interest in the listener (the first call waits for it).
            try
            {
                await Runtime.ResolveListenerAsync(Service, ServicePort, cts.Token);
            }
            catch (TimeoutException)
            {
            }

            while (!HasRoute(routeName))
            {
                await Task.Delay(10, cts.Token);
            }
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"Route '{routeName}' did not reach the client within {ApplyTimeout}.\n{Dump()}");
        }
    }

    /// <summary>Polls <paramref name="condition"/> every 10 ms until it holds; fails after <see cref="ApplyTimeout"/>.</summary>
    public async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + ApplyTimeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{what} did not happen within {ApplyTimeout}.\n{Dump()}");
            }

            await Task.Delay(10);
        }
    }

    private bool HasRoute(string routeName)
    {
        if (!Runtime.Routes.TryGetTable(Listener, out var table) || !Runtime.Snapshots.Current.IsComplete(Listener))
        {
            return false;
        }

        foreach (var host in table.VirtualHosts)
        {
            foreach (var route in host.Routes)
            {
                if (route.Name == routeName)
                {
                    return true;
                }
            }
        }

        return false;
    }

    public async Task<(HttpResponseMessage Response, BackendReply? Reply)> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken = default)
    {
        var response = await Http.SendAsync(request, cancellationToken);
        BackendReply? reply = null;
        if (response.Content.Headers.ContentType?.MediaType == "application/json")
        {
            reply = await response.Content.ReadFromJsonAsync<BackendReply>(Infrastructure.Backend.JsonOptions, cancellationToken);
        }

        return (response, reply);
    }

    public Task<(HttpResponseMessage Response, BackendReply? Reply)> GetAsync(string pathAndQuery, params (string Name, string Value)[] headers)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, BaseUrl + pathAndQuery);
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return SendAsync(request);
    }

    /// <summary>Control plane and client logs plus the YAML in force, for assertion messages.</summary>
    public string Dump()
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"control plane snapshot {ControlPlane?.SnapshotVersion}, config errors: {string.Join("; ", ControlPlane?.ConfigErrors ?? [])}");
        foreach (var file in Directory.GetFiles(ConfigDirectory, "*.yaml"))
        {
            sb.Append("--- ").AppendLine(Path.GetFileName(file)).AppendLine(File.ReadAllText(file));
        }

        sb.AppendLine(_logs.Dump());
        return sb.ToString();
    }

    private static string Indent(string block, int spaces)
    {
        var pad = new string(' ', spaces);
        var sb = new StringBuilder();
        foreach (var line in block.ReplaceLineEndings("\n").Split('\n'))
        {
            if (line.Length > 0)
            {
                sb.Append(pad).Append(line);
            }

            sb.Append('\n');
        }

        return sb.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        Http?.Dispose();
        if (Client is not null)
        {
            await Client.DisposeAsync();
        }

        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }

        if (ControlPlane is not null)
        {
            await ControlPlane.DisposeAsync();
        }

        _controlPlaneLogs.Dispose();
        try
        {
            Directory.Delete(ConfigDirectory, recursive: true);
        }
        catch (IOException)
        {
            // A temp folder left behind is harmless.
        }
    }
}

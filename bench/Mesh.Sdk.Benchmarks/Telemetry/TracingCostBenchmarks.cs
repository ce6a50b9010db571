using System.Collections.Frozen;
using System.Net;
using BenchmarkDotNet.Attributes;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Mesh.Sdk.Http;
using Mesh.Sdk.Resources;
using Mesh.Sdk.Telemetry.Tracing;
using Mesh.Sdk.Xds;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.Benchmarks.Telemetry;

/// <summary>
/// The per-request cost of the mesh's client spans: the same meshed <c>GET http://web:9080/</c> sent through
/// <see cref="MeshHttpHandler"/> to a real loopback Kestrel backend (a 2-byte answer, read), with tracing off and with
/// a Zipkin tracing policy at <c>random_sampling</c> 0 %, 1 % and 100 % (every span exported in batches to the same
/// Kestrel's <c>POST /api/v2/spans</c>). With tracing on, each attempt starts a span, writes <c>traceparent</c> and
/// B3 onto the request, and (when sampled) tags it and queues it for export.
/// </summary>
[MemoryDiagnoser]
public class TracingCostBenchmarks
{
    private const string Fqdn = "web.default.svc.cluster.local";
    private const string ListenerName = Fqdn + ":9080";
    private const string ClusterName = "outbound|9080||" + Fqdn;
    private static readonly Uri Target = new("http://web:9080/");

    private readonly MeshSnapshotSource _snapshots = new();
    private WebApplication _backend = null!;
    private MeshRuntime _runtime = null!;
    private MeshTransports _transports = null!;
    private MeshTracer _tracer = null!;
    private HttpMessageInvoker _meshed = null!;
    private int _port;

    /// <summary><c>random_sampling</c> in percent; -1 is tracing off (no tracing in the HCM).</summary>
    [Params(-1, 0, 1, 100)]
    public double Sampling { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _backend = builder.Build();
        _backend.MapGet("/", () => "ok");
        _backend.MapPost("/api/v2/spans", () => Results.Accepted());
        _backend.StartAsync().GetAwaiter().GetResult();
        _port = new Uri(_backend.Urls.First()).Port;

        var options = new MeshOptions { Namespace = "default", InstanceIp = "10.1.0.9", ResolveTimeout = TimeSpan.FromSeconds(2) };
        var bootstrap = new XdsBootstrap([new XdsServerConfig("127.0.0.1:15010", "insecure", [])], new XdsNodeConfig { Id = "bench" }, "benchmark");
        _runtime = new MeshRuntime(options, bootstrap, TimeProvider.System, loggerFactory: null, _snapshots);
        _snapshots.Publish(Snapshot(_port));
        _transports = new MeshTransports(_runtime);
        _tracer = new MeshTracer(
            new TracerIdentity("front.default.svc.cluster.local:9080/*", "front.default", "bench", "front", "v1", "default", "cluster.local", "Kubernetes"),
            policy => new SpanExport(policy, "front.default", static () => new HttpClient()));
        if (Sampling >= 0)
        {
            _tracer.Apply(new TracingPolicy
            {
                Provider = TraceProviderKind.Zipkin,
                CollectorHost = "127.0.0.1",
                CollectorPort = _port,
                CollectorPath = "/api/v2/spans",
                RandomSampling = Sampling,
            });
        }

        _meshed = new HttpMessageInvoker(new MeshHttpHandler(_runtime, _transports, tracer: _tracer) { InnerHandler = new SocketsHttpHandler() }, disposeHandler: true);
        for (var i = 0; i < 200; i++)
        {
            if (Get() != HttpStatusCode.OK)
            {
                throw new InvalidOperationException($"Benchmark setup: request {i} to {Target} through the mesh did not get a 200.");
            }
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _meshed.Dispose();
        _tracer.Dispose();
        _transports.Dispose();
        _runtime.Dispose();
        _backend.StopAsync().GetAwaiter().GetResult();
        _backend.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    /// <summary>One meshed GET, its 2-byte body read, the response disposed.</summary>
    [Benchmark]
    public HttpStatusCode Get()
    {
        using var response = _meshed.SendAsync(new HttpRequestMessage(HttpMethod.Get, Target), CancellationToken.None).GetAwaiter().GetResult();
        response.Content.ReadAsStream().CopyTo(Stream.Null);
        return response.StatusCode;
    }

    private static MeshSnapshot Snapshot(int port)
    {
        var listener = new Listener { Name = ListenerName, ApiListener = new ApiListener() };
        var listenerResource = new ListenerResource(ListenerName, listener, new HttpConnectionManager(), "9080", null);
        var cluster = new Cluster
        {
            Name = ClusterName,
            Type = Cluster.Types.DiscoveryType.Eds,
            EdsClusterConfig = new Cluster.Types.EdsClusterConfig { ServiceName = ClusterName, EdsConfig = new ConfigSource { Ads = new AggregatedConfigSource() } },
            LbPolicy = Cluster.Types.LbPolicy.RoundRobin,
        };
        var endpoints = new ClusterLoadAssignment
        {
            ClusterName = ClusterName,
            Endpoints =
            {
                new LocalityLbEndpoints
                {
                    LbEndpoints =
                    {
                        new LbEndpoint
                        {
                            HealthStatus = HealthStatus.Healthy,
                            Endpoint = new Envoy.Config.Endpoint.V3.Endpoint { Address = new Address { SocketAddress = new Envoy.Config.Core.V3.SocketAddress { Address = "127.0.0.1", PortValue = (uint)port } } },
                        },
                    },
                },
            },
        };
        var host = new VirtualHost { Name = ListenerName, Domains = { Fqdn, ListenerName, "web", "web:9080" } };
        host.Routes.Add(new Route { Name = "default", Match = new RouteMatch { Prefix = "/" }, Route_ = new RouteAction { Cluster = ClusterName } });
        var routes = new RouteConfiguration { Name = "9080", VirtualHosts = { host } };
        return new MeshSnapshot(
            1,
            new Dictionary<string, ListenerResource> { [ListenerName] = listenerResource }.ToFrozenDictionary(),
            new Dictionary<string, RouteConfiguration> { ["9080"] = routes }.ToFrozenDictionary(),
            new Dictionary<string, ClusterResource> { [ClusterName] = new ClusterResource(ClusterName, cluster, ClusterName) }.ToFrozenDictionary(),
            new Dictionary<string, ClusterLoadAssignment> { [ClusterName] = endpoints }.ToFrozenDictionary());
    }
}

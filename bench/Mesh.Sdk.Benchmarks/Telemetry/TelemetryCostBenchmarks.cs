using System.Collections.Frozen;
using System.Net;
using BenchmarkDotNet.Attributes;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.Http;
using Mesh.Sdk.Resources;
using Mesh.Sdk.Telemetry;
using Mesh.Sdk.Xds;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.Benchmarks.Telemetry;

/// <summary>
/// The per-request cost of the mesh's telemetry on the caller: the same meshed GET (<c>http://reviews:9080/reviews/1</c>,
/// one route to one cluster whose endpoint is a real Kestrel on 127.0.0.1, HTTP/1.1 kept alive, a 2-byte answer read to
/// its end) through <see cref="MeshHttpHandler"/> with <c>Mesh:Telemetry:Metrics</c> off and on (Istio's standard
/// metrics: peer metadata headers, series lookup, the counter and three histograms in prometheus-net and the meter).
/// Named to grow: tracing rows belong here too.
/// </summary>
[MemoryDiagnoser]
public class TelemetryCostBenchmarks
{
    private const string Fqdn = "reviews.default.svc.cluster.local";
    private const string ListenerName = Fqdn + ":9080";
    private const string RouteConfigName = "9080";
    private const string ClusterName = "outbound|9080||" + Fqdn;

    private static readonly Uri MeshedUri = new("http://reviews:9080/reviews/1");

    private WebApplication _server = null!;
    private MeshRuntime _runtime = null!;
    private MeshTransports _transports = null!;
    private MeshMetrics _metrics = null!;
    private HttpMessageInvoker _off = null!;
    private HttpMessageInvoker _on = null!;

    [GlobalSetup]
    public void Setup()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http1));
        _server = builder.Build();
        _server.MapGet("/reviews/1", () => "ok");
        _server.StartAsync().GetAwaiter().GetResult();
        var port = new Uri(_server.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First()).Port;

        var options = new MeshOptions { Namespace = "default", InstanceIp = "127.0.0.1", ResolveTimeout = TimeSpan.FromSeconds(2) };
        var bootstrap = new XdsBootstrap([new XdsServerConfig("127.0.0.1:15010", "insecure", [])], new XdsNodeConfig { Id = "bench" }, "benchmark");
        var snapshots = new MeshSnapshotSource();
        _runtime = new MeshRuntime(options, bootstrap, TimeProvider.System, loggerFactory: null, snapshots);
        snapshots.Publish(Snapshot(port));
        _transports = new MeshTransports(_runtime);
        _metrics = new MeshMetrics(
            new WorkloadLabels("productpage-v1", "default", "unknown", "productpage", "v1", "Kubernetes"),
            ServiceLabels.FromHost("productpage.default.svc.cluster.local"), nodeId: "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local", meterFactory: null);
        _off = new HttpMessageInvoker(new MeshHttpHandler(_runtime, _transports) { InnerHandler = new SocketsHttpHandler() }, disposeHandler: true);
        _on = new HttpMessageInvoker(new MeshHttpHandler(_runtime, _transports, logger: null, _metrics) { InnerHandler = new SocketsHttpHandler() }, disposeHandler: true);

        for (var i = 0; i < 200; i++)
        {
            if (MetricsOff().GetAwaiter().GetResult() != 2 || MetricsOn().GetAwaiter().GetResult() != 2)
            {
                throw new InvalidOperationException("Benchmark setup: the meshed request did not reach the loopback server.");
            }
        }

        if (_metrics.Snapshot() is not [{ Requests: 200 }])
        {
            throw new InvalidOperationException("Benchmark setup: the metrics did not count the 200 warm-up requests in one series.");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _off.Dispose();
        _on.Dispose();
        _transports.Dispose();
        _runtime.Dispose();
        _metrics.Dispose();
        _server.StopAsync().GetAwaiter().GetResult();
    }

    /// <summary>The meshed request with <c>Mesh:Telemetry:Metrics</c> off.</summary>
    [Benchmark(Baseline = true)]
    public Task<int> MetricsOff() => Send(_off);

    /// <summary>The same request reported as Istio's caller reports it.</summary>
    [Benchmark]
    public Task<int> MetricsOn() => Send(_on);

    private static async Task<int> Send(HttpMessageInvoker invoker)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, MeshedUri);
        using var response = await invoker.SendAsync(request, CancellationToken.None);
        var body = await response.Content.ReadAsByteArrayAsync();
        return body.Length;
    }

    private static MeshSnapshot Snapshot(int port)
    {
        var listener = new Listener { Name = ListenerName, ApiListener = new ApiListener() };
        var listenerResource = new ListenerResource(ListenerName, listener, new HttpConnectionManager(), RouteConfigName, null);
        var cluster = new Cluster
        {
            Name = ClusterName,
            Type = Cluster.Types.DiscoveryType.Eds,
            EdsClusterConfig = new Cluster.Types.EdsClusterConfig { ServiceName = ClusterName, EdsConfig = new ConfigSource { Ads = new AggregatedConfigSource() } },
            LbPolicy = Cluster.Types.LbPolicy.RoundRobin,
        };
        var endpoint = new LbEndpoint
        {
            HealthStatus = HealthStatus.Healthy,
            Endpoint = new Endpoint { Address = new Address { SocketAddress = new Envoy.Config.Core.V3.SocketAddress { Address = "127.0.0.1", PortValue = (uint)port } } },
            Metadata = new Metadata
            {
                FilterMetadata = { ["istio"] = new Struct { Fields = { ["workload"] = Value.ForString("reviews-v1;default;reviews;v1;Kubernetes") } } },
            },
        };
        var assignment = new ClusterLoadAssignment
        {
            ClusterName = ClusterName,
            Endpoints = { new LocalityLbEndpoints { Locality = new Locality { Region = "r1", Zone = "z1" }, LbEndpoints = { endpoint } } },
        };

        var host = new VirtualHost { Name = ListenerName, Domains = { Fqdn, ListenerName, "reviews", "reviews:9080" } };
        host.Routes.Add(new Route
        {
            Name = "default",
            Match = new RouteMatch { Prefix = "/" },
            Route_ = new RouteAction { Cluster = ClusterName, Timeout = Duration.FromTimeSpan(TimeSpan.Zero) },
        });
        var routes = new RouteConfiguration { Name = RouteConfigName, ValidateClusters = false, VirtualHosts = { host } };

        return new MeshSnapshot(
            1,
            new Dictionary<string, ListenerResource> { [ListenerName] = listenerResource }.ToFrozenDictionary(),
            new Dictionary<string, RouteConfiguration> { [RouteConfigName] = routes }.ToFrozenDictionary(),
            new Dictionary<string, ClusterResource> { [ClusterName] = new ClusterResource(ClusterName, cluster, ClusterName) }.ToFrozenDictionary(),
            new Dictionary<string, ClusterLoadAssignment> { [ClusterName] = assignment }.ToFrozenDictionary());
    }
}

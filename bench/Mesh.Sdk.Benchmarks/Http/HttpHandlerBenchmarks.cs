using System.Collections.Frozen;
using System.Net;
using BenchmarkDotNet.Attributes;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Type.Matcher.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.Http;
using Mesh.Sdk.Resources;
using Mesh.Sdk.Xds;

namespace Mesh.Sdk.Benchmarks.Http;

/// <summary>
/// The per-request overhead of <see cref="MeshHttpHandler"/>: the same GET sent by a plain
/// <see cref="HttpMessageInvoker"/> over an in-memory terminal handler (a new 200 response with a 64-byte body, disposed by the caller), through the mesh
/// handler for <c>http://reviews:9080/reviews/1</c> (listener <c>reviews.default.svc.cluster.local:9080</c>, ten
/// Istio-style routes, the request falling through nine header routes to a weighted v1/v2/v3 split with istiod's
/// default retry policy, round robin over three endpoints per cluster), to a route with a 5 s timeout, and to a
/// host the control plane says is not in the mesh (pass-through); with a small byte-array body and a small stream body
/// (the terminal reads request bodies). The snapshot is built in memory: no network.
/// </summary>
[MemoryDiagnoser]
public class HttpHandlerBenchmarks
{
    private const string Fqdn = "reviews.default.svc.cluster.local";
    private const string ListenerName = Fqdn + ":9080";
    private const string RouteConfigName = "9080";

    private const string MeshedUrl = "http://reviews:9080/reviews/1";

    private static readonly Uri MeshedUri = new(MeshedUrl);
    private static readonly Uri TimeoutUri = new("http://reviews:9080/timed/1");
    private static readonly Uri PassThroughUri = new("http://api.example.com:8080/reviews/1");
    private static readonly byte[] SmallBody = new byte[256];

    private readonly MeshSnapshotSource _snapshots = new();
    private MeshRuntime _runtime = null!;
    private MeshTransports _transports = null!;
    private HttpMessageInvoker _plain = null!;
    private HttpMessageInvoker _meshed = null!;

    [GlobalSetup]
    public void Setup()
    {
        var options = new MeshOptions { Namespace = "default", InstanceIp = "10.1.0.9", ResolveTimeout = TimeSpan.FromSeconds(2) };
        var bootstrap = new XdsBootstrap([new XdsServerConfig("127.0.0.1:15010", "insecure", [])], new XdsNodeConfig { Id = "bench" }, "benchmark");
        _runtime = new MeshRuntime(options, bootstrap, TimeProvider.System, loggerFactory: null, _snapshots);
        var passThroughListener = _runtime.ListenerNameFor(PassThroughUri.IdnHost, PassThroughUri.Port)!;
        _snapshots.Publish(Snapshot(passThroughListener));

        _plain = new HttpMessageInvoker(new TerminalHandler(), disposeHandler: true);
        _transports = new MeshTransports(_runtime, static (_, _) => new TerminalHandler());
        _meshed = new HttpMessageInvoker(new MeshHttpHandler(_runtime, _transports) { InnerHandler = new TerminalHandler() }, disposeHandler: true);

        // Warm: resolve both hosts (the first request of a host waits for its listener) and check where they go.
        // More requests than the default max_requests (1024), so a slot that is never given back shows.
        Check(Meshed, "the meshed request");
        Check(MeshedNewUri, "the meshed request with a new URI");
        Check(MeshedRouteTimeout, "the meshed request with a route timeout");
        Check(PassThrough, "the pass-through request");
        Check(MeshedSmallBody, "the meshed request with a byte-array body");
        Check(MeshedStreamedBody, "the meshed request with a stream body");
        if (_runtime.ResolveListenerAsync(MeshedUri.IdnHost, MeshedUri.Port, default) is not { IsCompletedSuccessfully: true, Result: ListenerName }
            || _runtime.ResolveListenerAsync(PassThroughUri.IdnHost, PassThroughUri.Port, default) is not { IsCompletedSuccessfully: true, Result: null })
        {
            throw new InvalidOperationException("The benchmark hosts do not resolve synchronously to the mesh listener and to pass-through.");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _meshed.Dispose();
        _plain.Dispose();
        _transports.Dispose();
        _runtime.Dispose();
    }

    /// <summary>The baseline: a plain invoker straight over the terminal handler.</summary>
    [Benchmark(Baseline = true)]
    public HttpStatusCode Plain() => Send(_plain, new HttpRequestMessage(HttpMethod.Get, MeshedUri));

    /// <summary>Through the mesh: resolve, match (nine misses, then the weighted split), pick, rewrite, send.</summary>
    [Benchmark]
    public HttpStatusCode Meshed() => Send(_meshed, new HttpRequestMessage(HttpMethod.Get, MeshedUri));

    /// <summary>The baseline with a URI parsed per request, as <c>HttpClient.GetAsync(string)</c> or a base address does.</summary>
    [Benchmark]
    public HttpStatusCode PlainNewUri() => Send(_plain, new HttpRequestMessage(HttpMethod.Get, MeshedUrl));

    /// <summary>Through the mesh with a URI parsed per request: the host, authority and path strings are new each time.</summary>
    [Benchmark]
    public HttpStatusCode MeshedNewUri() => Send(_meshed, new HttpRequestMessage(HttpMethod.Get, MeshedUrl));

    /// <summary>Through the mesh to a route with a 5 s timeout (a timed cancellation source per request).</summary>
    [Benchmark]
    public HttpStatusCode MeshedRouteTimeout() => Send(_meshed, new HttpRequestMessage(HttpMethod.Get, TimeoutUri));

    /// <summary>The baseline with a 256-byte <see cref="ByteArrayContent"/> body, read by the terminal.</summary>
    [Benchmark]
    public HttpStatusCode PlainSmallBody() => Send(_plain, new HttpRequestMessage(HttpMethod.Post, MeshedUri) { Content = new ByteArrayContent(SmallBody) });

    /// <summary>Through the mesh (istiod's default retry policy) with the same body: sent again as it is, no copy.</summary>
    [Benchmark]
    public HttpStatusCode MeshedSmallBody() => Send(_meshed, new HttpRequestMessage(HttpMethod.Post, MeshedUri) { Content = new ByteArrayContent(SmallBody) });

    /// <summary>The baseline with a 256-byte <see cref="StreamContent"/> body.</summary>
    [Benchmark]
    public HttpStatusCode PlainStreamedBody() => Send(_plain, new HttpRequestMessage(HttpMethod.Post, MeshedUri) { Content = new StreamContent(new MemoryStream(SmallBody, writable: false)) });

    /// <summary>Through the mesh with the same stream body: read once, streamed and kept for a retry.</summary>
    [Benchmark]
    public HttpStatusCode MeshedStreamedBody() => Send(_meshed, new HttpRequestMessage(HttpMethod.Post, MeshedUri) { Content = new StreamContent(new MemoryStream(SmallBody, writable: false)) });

    /// <summary>Through the mesh handler to a host outside the mesh.</summary>
    [Benchmark]
    public HttpStatusCode PassThrough() => Send(_meshed, new HttpRequestMessage(HttpMethod.Get, PassThroughUri));

    /// <summary>Sends (the terminal handler completes synchronously) and disposes the response, as a caller does.</summary>
    private static HttpStatusCode Send(HttpMessageInvoker invoker, HttpRequestMessage request)
    {
        using var response = invoker.SendAsync(request, CancellationToken.None).GetAwaiter().GetResult();
        return response.StatusCode;
    }

    private void Check(Func<HttpStatusCode> send, string what)
    {
        for (var i = 0; i < 2_000; i++)
        {
            if (send() is var status && status != HttpStatusCode.OK)
            {
                throw new InvalidOperationException($"Benchmark setup: {what} got {(int)status} (request {i}).");
            }
        }

        foreach (var subset in new[] { "v1", "v2", "v3" })
        {
            if (_runtime.Clusters.TryGetCluster(ClusterName(subset), out var cluster) && cluster.CircuitBreakers.Default.Requests.Count != 0)
            {
                throw new InvalidOperationException($"Benchmark setup: {what} left {cluster.CircuitBreakers.Default.Requests.Count} max_requests slots of '{cluster.Name}' held.");
            }
        }
    }

    private static MeshSnapshot Snapshot(string missingListener)
    {
        var listener = new Listener { Name = ListenerName, ApiListener = new ApiListener() };
        var listenerResource = new ListenerResource(ListenerName, listener, new HttpConnectionManager(), RouteConfigName, null);
        var clusters = new Dictionary<string, ClusterResource>(StringComparer.Ordinal);
        var endpoints = new Dictionary<string, ClusterLoadAssignment>(StringComparer.Ordinal);
        var octet = 1;
        foreach (var subset in new[] { "v1", "v2", "v3" })
        {
            var name = $"outbound|9080|{subset}|{Fqdn}";
            var cluster = new Cluster
            {
                Name = name,
                Type = Cluster.Types.DiscoveryType.Eds,
                EdsClusterConfig = new Cluster.Types.EdsClusterConfig { ServiceName = name, EdsConfig = new ConfigSource { Ads = new AggregatedConfigSource() } },
                LbPolicy = Cluster.Types.LbPolicy.RoundRobin,
            };
            clusters[name] = new ClusterResource(name, cluster, name);
            var locality = new LocalityLbEndpoints { Locality = new Locality { Region = "r1", Zone = "z1" } };
            for (var i = 0; i < 3; i++)
            {
                locality.LbEndpoints.Add(new LbEndpoint
                {
                    HealthStatus = HealthStatus.Healthy,
                    Endpoint = new Endpoint { Address = new Address { SocketAddress = new Envoy.Config.Core.V3.SocketAddress { Address = $"10.0.0.{octet++}", PortValue = 9080 } } },
                });
            }

            endpoints[name] = new ClusterLoadAssignment { ClusterName = name, Endpoints = { locality } };
        }

        return new MeshSnapshot(
            1,
            new Dictionary<string, ListenerResource> { [ListenerName] = listenerResource }.ToFrozenDictionary(),
            new Dictionary<string, RouteConfiguration> { [RouteConfigName] = Routes() }.ToFrozenDictionary(),
            clusters.ToFrozenDictionary(),
            endpoints.ToFrozenDictionary())
        {
            MissingListeners = new[] { missingListener }.ToFrozenSet(),
        };
    }

    /// <summary>
    /// What istiod sends for a VirtualService with eight header-matched routes (end-user and x-canary headers), one
    /// timed route and a weighted default: Istio domains, istiod's default retry policy, timeout 0 (none).
    /// </summary>
    private static RouteConfiguration Routes()
    {
        var host = new VirtualHost { Name = ListenerName };
        host.Domains.Add(Fqdn);
        host.Domains.Add(ListenerName);
        host.Domains.Add("reviews");
        host.Domains.Add("reviews:9080");
        host.Domains.Add("reviews.default");
        host.Domains.Add("reviews.default:9080");
        for (var i = 0; i < 8; i++)
        {
            var match = new RouteMatch { Prefix = "/" };
            match.Headers.Add(new HeaderMatcher
            {
                Name = i % 2 == 0 ? "end-user" : "x-canary",
                StringMatch = i % 4 < 2 ? new StringMatcher { Exact = $"user-{i}" } : new StringMatcher { Prefix = $"group-{i}" },
            });
            host.Routes.Add(new Route { Name = $"header-{i}", Match = match, Route_ = Action(ClusterName($"v{(i % 3) + 1}")) });
        }

        var timed = Action(ClusterName("v1"));
        timed.Timeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(5));
        host.Routes.Add(new Route { Name = "timed", Match = new RouteMatch { Prefix = "/timed" }, Route_ = timed });

        var split = new WeightedCluster();
        split.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = ClusterName("v1"), Weight = 50 });
        split.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = ClusterName("v2"), Weight = 30 });
        split.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = ClusterName("v3"), Weight = 20 });
        var weighted = Action(null);
        weighted.WeightedClusters = split;
        host.Routes.Add(new Route { Name = "default", Match = new RouteMatch { Prefix = "/" }, Route_ = weighted });

        var config = new RouteConfiguration { Name = RouteConfigName, ValidateClusters = false };
        config.VirtualHosts.Add(host);
        return config;
    }

    private static string ClusterName(string subset) => $"outbound|9080|{subset}|{Fqdn}";

    private static RouteAction Action(string? cluster)
    {
        var action = new RouteAction
        {
            Timeout = Duration.FromTimeSpan(TimeSpan.Zero),
            RetryPolicy = new RetryPolicy
            {
                RetryOn = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
                NumRetries = 2,
                HostSelectionRetryMaxAttempts = 5,
                RetryHostPredicate = { new RetryPolicy.Types.RetryHostPredicate { Name = "envoy.retry_host_predicates.previous_hosts" } },
            },
        };
        if (cluster is not null)
        {
            action.Cluster = cluster;
        }

        return action;
    }

    /// <summary>
    /// The upstream: answers every request with a new 200 response carrying a response header, a 64-byte body and
    /// its <c>Content-Length</c>, as <see cref="SocketsHttpHandler"/> hands one over after reading the response
    /// headers (the body is not read). The baseline pays for the same response, so the difference is what the mesh adds.
    /// </summary>
    private sealed class TerminalHandler : HttpMessageHandler
    {
        private static readonly byte[] Body = new byte[64];

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            // A request body is sent (read to its end), as a transport would.
            request.Content?.CopyTo(Stream.Null, null, cancellationToken);
            var content = new ByteArrayContent(Body);
            content.Headers.ContentLength = Body.Length;
            var response = new HttpResponseMessage(HttpStatusCode.OK) { Content = content, RequestMessage = request };
            response.Headers.TryAddWithoutValidation("server", "terminal");
            return Task.FromResult(response);
        }
    }
}

using System.Collections.Frozen;
using System.Net;
using Envoy.Config.Cluster.V3;
using EnvoyCluster = Envoy.Config.Cluster.V3.Cluster;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Mesh.Sdk.Http;
using Mesh.Sdk.LoadBalancing;
using Mesh.Sdk.Resources;
using Mesh.Sdk.Xds;
using Microsoft.Extensions.Time.Testing;

namespace Mesh.Sdk.Tests.Http;

public sealed class MeshTransportsTests : IDisposable
{
    private const string ClusterName = "outbound|9080|v1|reviews.default.svc.cluster.local";

    private readonly FakeTimeProvider _time = new();
    private readonly MeshSnapshotSource _snapshots;
    private readonly MeshRuntime _runtime;
    private readonly List<TrackingHandler> _handlers = [];
    private readonly MeshTransports _transports;
    private long _version;

    public MeshTransportsTests()
    {
        _snapshots = new MeshSnapshotSource(_time);
        var bootstrap = new XdsBootstrap([new XdsServerConfig("127.0.0.1:15010", "insecure", [])], new XdsNodeConfig { Id = "test" }, "test");
        _runtime = new MeshRuntime(new MeshOptions { Namespace = "default", InstanceIp = "10.1.0.9" }, bootstrap, _time, loggerFactory: null, _snapshots);
        _transports = new MeshTransports(_runtime, (settings, endpoint) =>
        {
            var handler = new TrackingHandler(endpoint?.Key ?? "direct", settings.MaxConnections);
            _handlers.Add(handler);
            return handler;
        });
    }

    public void Dispose()
    {
        _transports.Dispose();
        _runtime.Dispose();
    }

    private void Publish(uint maxConnections, params string[] addresses) => Publish(maxConnections, tlsModeIstio: [], addresses);

    /// <summary>Publishes the cluster, with istiod's auto-mTLS matches when any address is in <paramref name="tlsModeIstio"/> (whose endpoints carry <c>tlsMode: istio</c>).</summary>
    private void Publish(uint maxConnections, string[] tlsModeIstio, params string[] addresses)
    {
        var cluster = new EnvoyCluster
        {
            Name = ClusterName,
            Type = EnvoyCluster.Types.DiscoveryType.Eds,
            EdsClusterConfig = new EnvoyCluster.Types.EdsClusterConfig { ServiceName = ClusterName, EdsConfig = new ConfigSource { Ads = new AggregatedConfigSource() } },
            CircuitBreakers = new CircuitBreakers { Thresholds = { new CircuitBreakers.Types.Thresholds { MaxConnections = maxConnections } } },
        };
        if (tlsModeIstio.Length > 0)
        {
            cluster.TransportSocketMatches.Add(new EnvoyCluster.Types.TransportSocketMatch
            {
                Name = "tlsMode-istio",
                Match = new Google.Protobuf.WellKnownTypes.Struct { Fields = { ["tlsMode"] = Google.Protobuf.WellKnownTypes.Value.ForString("istio") } },
                TransportSocket = Mesh.Sdk.Tests.LoadBalancing.UpstreamTransportTests.IstioMutualSocket(),
            });
            cluster.TransportSocketMatches.Add(new EnvoyCluster.Types.TransportSocketMatch { Name = "tlsMode-disabled", Match = new() });
        }

        var locality = new LocalityLbEndpoints { Locality = new Locality { Region = "r1" } };
        foreach (var address in addresses)
        {
            locality.LbEndpoints.Add(new LbEndpoint
            {
                HealthStatus = HealthStatus.Healthy,
                Endpoint = new Endpoint { Address = new Address { SocketAddress = new Envoy.Config.Core.V3.SocketAddress { Address = address, PortValue = 9080 } } },
                Metadata = tlsModeIstio.Contains(address) ? Mesh.Sdk.Tests.LoadBalancing.UpstreamTransportTests.TlsModeIstio() : null,
            });
        }

        var clusters = addresses.Length == 0 && maxConnections == 0
            ? new Dictionary<string, ClusterResource>()
            : new Dictionary<string, ClusterResource> { [ClusterName] = new(ClusterName, cluster, ClusterName) };
        var endpoints = clusters.Count == 0
            ? new Dictionary<string, ClusterLoadAssignment>()
            : new Dictionary<string, ClusterLoadAssignment> { [ClusterName] = new() { ClusterName = ClusterName, Endpoints = { locality } } };
        _snapshots.Publish(new MeshSnapshot(
            ++_version,
            new Dictionary<string, ListenerResource>().ToFrozenDictionary(),
            new Dictionary<string, RouteConfiguration>().ToFrozenDictionary(),
            clusters.ToFrozenDictionary(),
            endpoints.ToFrozenDictionary()));
    }

    private ClusterRuntime Cluster()
    {
        Assert.True(_runtime.Clusters.TryGetCluster(ClusterName, out var cluster));
        return cluster;
    }

    private MeshEndpoint Endpoint(string key) => Cluster().LoadBalancer.Endpoints.All.Single(e => e.Key == key);

    private TrackingHandler HandlerOf(string key) => _handlers.Where(h => h.Endpoint == key && !h.Disposed).ToList() is [var one] ? one : throw new InvalidOperationException(string.Join("; ", _handlers.Select(h => $"{h.Endpoint} {h.MaxConnections} disposed={h.Disposed}")));

    [Fact]
    public void OnePoolPerEndpoint_ReusedAcrossRequests_WithTheClustersSettings()
    {
        Publish(7, "10.0.0.1", "10.0.0.2");
        var cluster = Cluster();

        var a = _transports.Get(cluster, Endpoint("10.0.0.1:9080"));
        var b = _transports.Get(cluster, Endpoint("10.0.0.2:9080"));

        Assert.NotSame(a, b);
        Assert.Same(a, _transports.Get(cluster, Endpoint("10.0.0.1:9080")));
        Assert.Equal(2, _transports.PoolCount);
        Assert.Equal([("10.0.0.1:9080", 7u), ("10.0.0.2:9080", 7u)], _handlers.Select(h => (h.Endpoint, h.MaxConnections)));
    }

    [Fact]
    public void EndpointWhoseTransportChanges_GetsANewPool_TheOldOneIsRetired()
    {
        Publish(7, tlsModeIstio: ["10.0.0.1"], "10.0.0.1", "10.0.0.2");
        Assert.Equal(
            [("10.0.0.1:9080", UpstreamTransport.IstioMutual), ("10.0.0.2:9080", UpstreamTransport.Plaintext)],
            Cluster().LoadBalancer.Endpoints.All.Select(e => (e.Key, e.Transport.Kind)));
        var mutual = _transports.Get(Cluster(), Endpoint("10.0.0.1:9080"));
        var plain = _transports.Get(Cluster(), Endpoint("10.0.0.2:9080"));
        var old = HandlerOf("10.0.0.1:9080");

        // The same transport on a new EDS version keeps the pool; the label removed makes the endpoint plaintext.
        Publish(7, tlsModeIstio: ["10.0.0.1"], "10.0.0.1", "10.0.0.2");
        Assert.Same(mutual, _transports.Get(Cluster(), Endpoint("10.0.0.1:9080")));
        Publish(7, tlsModeIstio: ["10.0.0.3"], "10.0.0.1", "10.0.0.2");
        var replaced = _transports.Get(Cluster(), Endpoint("10.0.0.1:9080"));

        Assert.NotSame(mutual, replaced);
        Assert.Same(plain, _transports.Get(Cluster(), Endpoint("10.0.0.2:9080")));
        Assert.Equal(UpstreamTransport.Plaintext, Endpoint("10.0.0.1:9080").Transport.Kind);
        Assert.False(old.Disposed);
        _time.Advance(MeshTransports.RetireDelay);
        Assert.True(old.Disposed);
        Assert.Equal(2, _transports.PoolCount);
    }

    [Fact]
    public async Task MutualTlsEndpoint_WithoutWorkloadCertificates_IsRefusedNamingTheSetting()
    {
        Publish(7, tlsModeIstio: ["127.0.0.1"], "127.0.0.1");
        var endpoint = Endpoint("127.0.0.1:9080");
        var settings = Mesh.Sdk.Resilience.ConnectionPoolSettings.FromCluster(new EnvoyCluster { Name = ClusterName });
        using var invoker = new HttpMessageInvoker(MeshTransports.CreateHandler(settings, endpoint, ClusterName, mutualTls: null));

        var error = await Assert.ThrowsAsync<HttpRequestException>(() => invoker.SendAsync(new HttpRequestMessage(HttpMethod.Get, "http://reviews:9080/"), CancellationToken.None));

        Assert.Equal(HttpRequestError.ConnectionError, error.HttpRequestError);
        Assert.IsType<Mesh.Sdk.Security.UpstreamTlsException>(error.InnerException);
        Assert.StartsWith(
            $"Cluster '{ClusterName}' requires Istio mutual TLS (DestinationRule tls.mode ISTIO_MUTUAL, or auto-mTLS toward a workload with a mesh certificate), but this workload has no certificate: set Mesh:Security:Enabled=true. The connection to endpoint '127.0.0.1:9080' was not made.",
            error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EndpointLeavingEds_IsRetiredAndDisposedAfterTheGracePeriod()
    {
        Publish(7, "10.0.0.1", "10.0.0.2");
        _transports.Get(Cluster(), Endpoint("10.0.0.1:9080"));
        _transports.Get(Cluster(), Endpoint("10.0.0.2:9080"));
        var leaving = HandlerOf("10.0.0.1:9080");

        Publish(7, "10.0.0.2");

        Assert.Equal(1, _transports.PoolCount);
        _time.Advance(MeshTransports.RetireDelay - TimeSpan.FromSeconds(1));
        Assert.False(leaving.Disposed);
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(leaving.Disposed);
        Assert.False(HandlerOf("10.0.0.2:9080").Disposed);
    }

    [Fact]
    public void ChangedPoolSettings_ReplaceThePools_AndClusterRemovalRetiresEverything()
    {
        Publish(7, "10.0.0.1");
        var before = _transports.Get(Cluster(), Endpoint("10.0.0.1:9080"));
        var old = HandlerOf("10.0.0.1:9080");

        Publish(3, "10.0.0.1");
        var after = _transports.Get(Cluster(), Endpoint("10.0.0.1:9080"));

        Assert.NotSame(before, after);
        Assert.Equal([7u, 3u], _handlers.Select(h => h.MaxConnections));
        Assert.False(old.Disposed);
        _time.Advance(MeshTransports.RetireDelay);
        Assert.True(old.Disposed);

        var current = HandlerOf("10.0.0.1:9080");
        Publish(0);
        Assert.Equal(0, _transports.PoolCount);
        _time.Advance(MeshTransports.RetireDelay);
        Assert.True(current.Disposed);
    }

    [Fact]
    public async Task EndpointPool_DialsTheEndpoint_WhileTheRequestKeepsItsUriAndHost()
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var endpoint = new MeshEndpoint("127.0.0.1", port, 1, HealthStatus.Healthy, string.Empty, null, new Locality(), 0, new EndpointState());
        var settings = Mesh.Sdk.Resilience.ConnectionPoolSettings.FromCluster(new EnvoyCluster { Name = ClusterName });
        using var invoker = new HttpMessageInvoker(MeshTransports.CreateHandler(settings, endpoint));
        var serve = Task.Run(async () =>
        {
            using var client = await listener.AcceptTcpClientAsync();
            var stream = client.GetStream();
            var buffer = new byte[4096];
            var read = 0;
            while (!System.Text.Encoding.ASCII.GetString(buffer, 0, read).Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                read += await stream.ReadAsync(buffer.AsMemory(read));
            }

            await stream.WriteAsync("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"u8.ToArray());
            return System.Text.Encoding.ASCII.GetString(buffer, 0, read);
        });

        using var response = await invoker.SendAsync(new HttpRequestMessage(HttpMethod.Get, "http://reviews:9080/reviews/1"), CancellationToken.None);
        var seen = await serve.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("GET /reviews/1 HTTP/1.1\r\nHost: reviews:9080\r\n", seen, StringComparison.Ordinal);
    }

    private sealed class TrackingHandler(string endpoint, uint maxConnections) : HttpMessageHandler
    {
        public string Endpoint { get; } = endpoint;

        public uint MaxConnections { get; } = maxConnections;

        public bool Disposed { get; private set; }

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
            => Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK));

        protected override void Dispose(bool disposing)
        {
            Disposed = true;
            base.Dispose(disposing);
        }
    }
}

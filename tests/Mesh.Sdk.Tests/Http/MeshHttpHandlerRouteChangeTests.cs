using System.Collections.Frozen;
using System.Net;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Mesh.Sdk.Http;
using Mesh.Sdk.Resources;
using Mesh.Sdk.Xds;
using Microsoft.Extensions.Time.Testing;
using EnvoyCluster = Envoy.Config.Cluster.V3.Cluster;

namespace Mesh.Sdk.Tests.Http;

/// <summary>
/// A request matched against a route table that is replaced while it waits for the route's cluster (a route change
/// that removes the cluster its old route named, seen between the match and the cluster lookup) is matched again
/// against the table in force, instead of waiting out <see cref="MeshOptions.ResolveTimeout"/> for a cluster that
/// will not come.
/// </summary>
public sealed class MeshHttpHandlerRouteChangeTests : IDisposable
{
    private const string Fqdn = "reviews.default.svc.cluster.local";
    private const string ListenerName = Fqdn + ":9080";
    private const string V1 = "outbound|9080|v1|" + Fqdn;
    private const string Gone = "outbound|9080|gone|" + Fqdn;

    private readonly FakeTimeProvider _time = new();
    private readonly MeshSnapshotSource _snapshots;
    private readonly MeshRuntime _runtime;
    private readonly MeshTransports _transports;
    private readonly HttpMessageInvoker _invoker;
    private readonly List<string> _sentTo = [];
    private long _version;

    public MeshHttpHandlerRouteChangeTests()
    {
        _snapshots = new MeshSnapshotSource(_time);
        var bootstrap = new XdsBootstrap([new XdsServerConfig("127.0.0.1:15010", "insecure", [])], new XdsNodeConfig { Id = "test" }, "test");
        _runtime = new MeshRuntime(new MeshOptions { Namespace = "default", InstanceIp = "10.1.0.9" }, bootstrap, _time, loggerFactory: null, _snapshots);
        _transports = new MeshTransports(_runtime, (_, endpoint) => new RecordingHandler(endpoint?.Key ?? "direct", _sentTo));
        _invoker = new HttpMessageInvoker(new MeshHttpHandler(_runtime, _transports) { InnerHandler = new RecordingHandler("inner", _sentTo) });
    }

    public void Dispose()
    {
        _invoker.Dispose();
        _transports.Dispose();
        _runtime.Dispose();
    }

    [Fact]
    public async Task RouteReplacedWhileWaitingForItsCluster_IsMatchedAgainstTheNewTable()
    {
        await ResolveHostAsync();
        Publish(routeTo: Gone);

        var sending = _invoker.SendAsync(new HttpRequestMessage(HttpMethod.Get, "http://reviews:9080/reviews/1"), CancellationToken.None);
        Assert.False(sending.IsCompleted); // the route names a cluster the client does not have: the request waits

        Publish(routeTo: V1);

        // No fake time passes: before the fix the request waited until ResolveTimeout (5 s of the fake clock).
        using var response = await sending.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(["10.0.0.1:9080"], _sentTo);
    }

    [Fact]
    public async Task ClusterThatNeverArrives_WithTheRouteUnchanged_Answers503AfterTheResolveTimeout()
    {
        await ResolveHostAsync();
        Publish(routeTo: Gone);

        var sending = _invoker.SendAsync(new HttpRequestMessage(HttpMethod.Get, "http://reviews:9080/reviews/1"), CancellationToken.None);
        _time.Advance(TimeSpan.FromSeconds(4.9));
        Assert.False(sending.IsCompleted);

        _time.Advance(TimeSpan.FromSeconds(0.1));
        using var response = await sending.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Contains($"cluster '{Gone}'", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Empty(_sentTo);
    }

    /// <summary>A first request with every resource present, so the host is resolved to the mesh listener.</summary>
    private async Task ResolveHostAsync()
    {
        Publish(routeTo: V1);
        using var first = await _invoker.SendAsync(new HttpRequestMessage(HttpMethod.Get, "http://reviews:9080/warm"), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(["10.0.0.1:9080"], _sentTo);
        _sentTo.Clear();
    }

    private void Publish(string routeTo)
    {
        var host = new VirtualHost { Name = ListenerName, Domains = { Fqdn, ListenerName, "reviews", "reviews:9080" } };
        host.Routes.Add(new Route { Name = "default", Match = new RouteMatch { Prefix = "/" }, Route_ = new RouteAction { Cluster = routeTo } });
        var routes = new RouteConfiguration { Name = "9080", VirtualHosts = { host } };

        var cluster = new EnvoyCluster
        {
            Name = V1,
            Type = EnvoyCluster.Types.DiscoveryType.Eds,
            EdsClusterConfig = new EnvoyCluster.Types.EdsClusterConfig { ServiceName = V1, EdsConfig = new ConfigSource { Ads = new AggregatedConfigSource() } },
        };
        var locality = new LocalityLbEndpoints { Locality = new Locality { Region = "r1" } };
        locality.LbEndpoints.Add(new LbEndpoint
        {
            HealthStatus = HealthStatus.Healthy,
            Endpoint = new Endpoint { Address = new Address { SocketAddress = new Envoy.Config.Core.V3.SocketAddress { Address = "10.0.0.1", PortValue = 9080 } } },
        });

        _snapshots.Publish(new MeshSnapshot(
            ++_version,
            new Dictionary<string, ListenerResource> { [ListenerName] = new(ListenerName, new Listener { Name = ListenerName, ApiListener = new ApiListener() }, new HttpConnectionManager(), "9080", null) }.ToFrozenDictionary(),
            new Dictionary<string, RouteConfiguration> { ["9080"] = routes }.ToFrozenDictionary(),
            new Dictionary<string, ClusterResource> { [V1] = new(V1, cluster, V1) }.ToFrozenDictionary(),
            new Dictionary<string, ClusterLoadAssignment> { [V1] = new() { ClusterName = V1, Endpoints = { locality } } }.ToFrozenDictionary()));
    }

    private sealed class RecordingHandler(string name, List<string> sentTo) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            lock (sentTo)
            {
                sentTo.Add(name);
            }

            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK) { RequestMessage = request });
        }
    }
}

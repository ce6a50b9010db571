using Envoy.Config.Cluster.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Service.Discovery.V3;
using Google.Protobuf.WellKnownTypes;
using Grpc.Net.Client;
using Mesh.Xds;
using Microsoft.Extensions.Time.Testing;

namespace Mesh.ControlPlane.Tests.Xds;

/// <summary>
/// A workload whose first ADS request already subscribes to its own service: the answer to that
/// request includes the workload's registration, while other streams learn of it from the debounced
/// push. The control plane runs on a fake clock, so the debounced push happens only when the test
/// advances it.
/// </summary>
public sealed class AdsSelfRegistrationTests : IAsyncLifetime
{
    private const string Fqdn = "reviews.default.svc.cluster.local";
    private const string ListenerName = $"{Fqdn}:9080";
    private const string ClusterName = $"outbound|9080||{Fqdn}";
    private const uint WorkloadPort = 41234;
    private static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(300);

    private readonly FakeTimeProvider _time = new();
    private MeshControlPlane _controlPlane = null!;
    private GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        // No configuration: reviews exists only once its workload announces itself.
        _controlPlane = new MeshControlPlane(new MeshControlPlaneOptions
        {
            XdsPort = 0,
            TimeProvider = _time,
            PushDebounce = Debounce,
            PushMaxDelay = TimeSpan.FromSeconds(1),
            RegistrationGracePeriod = TimeSpan.FromSeconds(10),
        });
        await _controlPlane.StartAsync();
        _channel = GrpcChannel.ForAddress(_controlPlane.XdsUri!);
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _controlPlane.DisposeAsync();
    }

    private static Envoy.Config.Core.V3.Node ReviewsNode(string id) => Ads.Node(id, metadata: m =>
    {
        m.Fields["MESH_SERVICE"] = Value.ForString("reviews");
        m.Fields["INSTANCE_IPS"] = Value.ForString("127.0.0.7");
        m.Fields["LABELS"] = Value.ForStruct(new Struct { Fields = { ["app"] = Value.ForString("reviews"), ["version"] = Value.ForString("v1") } });
        m.Fields["MESH_PORTS"] = Value.ForStruct(new Struct { Fields = { ["9080"] = Value.ForNumber(WorkloadPort) } });
    });

    private static List<(string Address, uint Port)> Endpoints(ClusterLoadAssignment assignment) =>
        assignment.Endpoints.SelectMany(l => l.LbEndpoints).Select(e => (e.Endpoint.Address.SocketAddress.Address, e.Endpoint.Address.SocketAddress.PortValue)).ToList();

    /// <summary>A stream that watches the reviews cluster's endpoints before the workload registers.</summary>
    private async Task<AdsTestClient<DiscoveryRequest, DiscoveryResponse>> WatchEndpointsAsync()
    {
        var watcher = Ads.Sotw(_channel);
        await watcher.SendAsync(Ads.Request(XdsTypeUrls.ClusterLoadAssignment, [ClusterName], Ads.Node("watcher")));
        var first = await watcher.NextAsync();
        Assert.Empty(first.Resources);
        await watcher.SendAsync(Ads.Ack(first, [ClusterName]));
        return watcher;
    }

    /// <summary>The watcher is not pushed before the debounce; then it gets the workload's endpoint.</summary>
    private async Task<DiscoveryResponse> AssertWatcherPushedAfterDebounceAsync(AdsTestClient<DiscoveryRequest, DiscoveryResponse> watcher)
    {
        Assert.Null(await watcher.TryNextAsync(Quiet));
        _time.Advance(Debounce);
        var pushed = await watcher.NextAsync();
        Assert.Equal(XdsTypeUrls.ClusterLoadAssignment, pushed.TypeUrl);
        var assignment = Assert.Single(pushed.Resources).Unpack<ClusterLoadAssignment>();
        Assert.Equal([("127.0.0.7", WorkloadPort)], Endpoints(assignment));
        return pushed;
    }

    [Fact]
    public async Task Sotw_FirstRequestForItsOwnListener_IsAnsweredWithIt_AndItsEndpoint()
    {
        await using var watcher = await WatchEndpointsAsync();
        await using var workload = Ads.Sotw(_channel);

        await workload.SendAsync(Ads.Request(XdsTypeUrls.Listener, [ListenerName], ReviewsNode("reviews-v1-1")));
        var lds = await workload.NextAsync();
        Assert.Equal(XdsTypeUrls.Listener, lds.TypeUrl);
        var listener = Assert.Single(lds.Resources).Unpack<Listener>();
        Assert.Equal(ListenerName, listener.Name);
        var routeName = listener.ApiListener.ApiListener_.Unpack<HttpConnectionManager>().Rds.RouteConfigName;
        Assert.Equal(ClusterName, routeName);
        await workload.SendAsync(Ads.Ack(lds, [ListenerName]));

        await workload.SendAsync(Ads.Request(XdsTypeUrls.RouteConfiguration, [routeName]));
        var rds = await workload.NextAsync();
        Assert.Equal(routeName, Assert.Single(rds.Resources).Unpack<RouteConfiguration>().Name);
        await workload.SendAsync(Ads.Ack(rds, [routeName]));

        await workload.SendAsync(Ads.Request(XdsTypeUrls.Cluster, [ClusterName]));
        var cds = await workload.NextAsync();
        Assert.Equal(ClusterName, Assert.Single(cds.Resources).Unpack<Cluster>().Name);
        await workload.SendAsync(Ads.Ack(cds, [ClusterName]));

        await workload.SendAsync(Ads.Request(XdsTypeUrls.ClusterLoadAssignment, [ClusterName]));
        var eds = await workload.NextAsync();
        var assignment = Assert.Single(eds.Resources).Unpack<ClusterLoadAssignment>();
        Assert.Equal(ClusterName, assignment.ClusterName);
        Assert.Equal([("127.0.0.7", WorkloadPort)], Endpoints(assignment));
        await workload.SendAsync(Ads.Ack(eds, [ClusterName]));

        // Other streams get the endpoint through the debounced push, with a later version; the workload,
        // which already has it, is sent nothing more.
        var pushed = await AssertWatcherPushedAfterDebounceAsync(watcher);
        Assert.True(long.Parse(pushed.VersionInfo) > long.Parse(lds.VersionInfo));
        Assert.Null(await workload.TryNextAsync(Quiet));
    }

    [Fact]
    public async Task Delta_FirstRequestForItsOwnListener_IsAnsweredWithIt_NotAsRemoved_AndItsEndpoint()
    {
        await using var watcher = await WatchEndpointsAsync();
        await using var workload = Ads.Delta(_channel);

        await workload.SendAsync(new DeltaDiscoveryRequest { Node = ReviewsNode("reviews-v1-2"), TypeUrl = XdsTypeUrls.Listener, ResourceNamesSubscribe = { ListenerName } });
        var lds = await workload.NextAsync();
        Assert.Equal(XdsTypeUrls.Listener, lds.TypeUrl);
        Assert.Empty(lds.RemovedResources);
        var resource = Assert.Single(lds.Resources);
        Assert.Equal(ListenerName, resource.Name);
        Assert.Equal(ListenerName, resource.Resource_.Unpack<Listener>().Name);
        await workload.SendAsync(new DeltaDiscoveryRequest { TypeUrl = XdsTypeUrls.Listener, ResponseNonce = lds.Nonce });

        await workload.SendAsync(new DeltaDiscoveryRequest { TypeUrl = XdsTypeUrls.Cluster, ResourceNamesSubscribe = { ClusterName } });
        var cds = await workload.NextAsync();
        Assert.Empty(cds.RemovedResources);
        Assert.Equal([ClusterName], cds.Resources.Select(r => r.Name));
        await workload.SendAsync(new DeltaDiscoveryRequest { TypeUrl = XdsTypeUrls.Cluster, ResponseNonce = cds.Nonce });

        await workload.SendAsync(new DeltaDiscoveryRequest { TypeUrl = XdsTypeUrls.ClusterLoadAssignment, ResourceNamesSubscribe = { ClusterName } });
        var eds = await workload.NextAsync();
        Assert.Empty(eds.RemovedResources);
        var assignment = Assert.Single(eds.Resources).Resource_.Unpack<ClusterLoadAssignment>();
        Assert.Equal(ClusterName, assignment.ClusterName);
        Assert.Equal([("127.0.0.7", WorkloadPort)], Endpoints(assignment));
        await workload.SendAsync(new DeltaDiscoveryRequest { TypeUrl = XdsTypeUrls.ClusterLoadAssignment, ResponseNonce = eds.Nonce });

        var pushed = await AssertWatcherPushedAfterDebounceAsync(watcher);
        Assert.True(long.Parse(pushed.VersionInfo) > long.Parse(lds.SystemVersionInfo));
        Assert.Null(await workload.TryNextAsync(Quiet));
    }
}

using Envoy.Config.Cluster.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Service.Discovery.V3;
using Google.Protobuf.WellKnownTypes;
using Grpc.Net.Client;
using Mesh.Xds;

namespace Mesh.ControlPlane.Tests.Xds;

public sealed class AdsServerTests : IAsyncLifetime
{
    private const string Fqdn = "reviews.default.svc.cluster.local";
    private const string Base = $"outbound|9080||{Fqdn}";
    private const string V1 = $"outbound|9080|v1|{Fqdn}";
    private const string V2 = $"outbound|9080|v2|{Fqdn}";

    // In ordinal order ('|' sorts after letters).
    private static readonly string[] SubsetClusters = [V1, V2, Base];
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(500);

    private readonly TempDir _dir = new();
    private MeshControlPlane _controlPlane = null!;
    private GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        _dir.Write("reviews.yaml", TestYaml.All);
        _controlPlane = new MeshControlPlane(new MeshControlPlaneOptions
        {
            ConfigDirectory = _dir.Path,
            XdsPort = 0,
            PushDebounce = TimeSpan.FromMilliseconds(20),
            RegistrationGracePeriod = TimeSpan.FromMilliseconds(300),
            ConfigPollInterval = TimeSpan.FromHours(1),
        });
        await _controlPlane.StartAsync();
        _channel = GrpcChannel.ForAddress(_controlPlane.XdsUri!);
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _controlPlane.DisposeAsync();
        _dir.Dispose();
    }

    private void ChangeConfig(string content)
    {
        _dir.Write("reviews.yaml", content);
        _controlPlane.ReloadConfig();
    }

    [Fact]
    public async Task Sotw_LdsRdsCdsEdsWithAcks()
    {
        await using var client = Ads.Sotw(_channel);

        await client.SendAsync(Ads.Request(XdsTypeUrls.Listener, ["reviews:9080"], Ads.Node("client-1")));
        var lds = await client.NextAsync();
        Assert.Equal(XdsTypeUrls.Listener, lds.TypeUrl);
        var listener = Assert.Single(lds.Resources).Unpack<Listener>();
        Assert.Equal("reviews:9080", listener.Name);
        var routeName = listener.ApiListener.ApiListener_.Unpack<HttpConnectionManager>().Rds.RouteConfigName;
        Assert.Equal($"outbound|9080||{Fqdn}", routeName);
        await client.SendAsync(Ads.Ack(lds, ["reviews:9080"]));

        await client.SendAsync(Ads.Request(XdsTypeUrls.RouteConfiguration, [routeName]));
        var rds = await client.NextAsync();
        Assert.Equal(routeName, Assert.Single(rds.Resources).Unpack<RouteConfiguration>().Name);
        await client.SendAsync(Ads.Ack(rds, [routeName]));

        await client.SendAsync(Ads.Request(XdsTypeUrls.Cluster, []));
        var cds = await client.NextAsync();
        Assert.Equal(SubsetClusters, cds.Resources.Select(r => r.Unpack<Cluster>().Name).Order(StringComparer.Ordinal));
        await client.SendAsync(Ads.Ack(cds, []));

        await client.SendAsync(Ads.Request(XdsTypeUrls.ClusterLoadAssignment, SubsetClusters));
        var eds = await client.NextAsync();
        var assignments = eds.Resources.Select(r => r.Unpack<ClusterLoadAssignment>()).ToDictionary(c => c.ClusterName);
        Assert.Equal(SubsetClusters, assignments.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(2, assignments[Base].Endpoints.Sum(l => l.LbEndpoints.Count));
        await client.SendAsync(Ads.Ack(eds, SubsetClusters));

        Assert.Null(await client.TryNextAsync(Quiet));
    }

    [Fact]
    public async Task Sotw_AClusterWhoseLastEndpointLeftIsSentAnEmptyLoadAssignment()
    {
        await using var client = Ads.Sotw(_channel);
        await client.SendAsync(Ads.Request(XdsTypeUrls.ClusterLoadAssignment, SubsetClusters, Ads.Node("client-empty")));
        var eds = await client.NextAsync();
        Assert.Equal(1, eds.Resources.Select(r => r.Unpack<ClusterLoadAssignment>()).Single(c => c.ClusterName == V2).Endpoints.Sum(l => l.LbEndpoints.Count));
        await client.SendAsync(Ads.Ack(eds, SubsetClusters));

        // The v2 workload goes away; the subset (and its cluster) stays. As istiod does, the response lists the
        // cluster's assignment with no endpoints rather than leaving it out (a SotW EDS client keeps an
        // assignment that is merely absent from a response).
        ChangeConfig(string.Join("\n---\n", TestYaml.ReviewsServiceEntry, TestYaml.Workload("reviews-v1", "v1", 19081), TestYaml.ReviewsDestinationRule, TestYaml.ReviewsVirtualService));
        var pushed = await client.NextAsync();
        Assert.Equal(XdsTypeUrls.ClusterLoadAssignment, pushed.TypeUrl);
        var assignments = pushed.Resources.Select(r => r.Unpack<ClusterLoadAssignment>()).ToDictionary(c => c.ClusterName);
        Assert.Equal(SubsetClusters, assignments.Keys.Order(StringComparer.Ordinal));
        Assert.Empty(assignments[V2].Endpoints);
        Assert.Equal(1, assignments[V1].Endpoints.Sum(l => l.LbEndpoints.Count));
    }

    [Fact]
    public async Task Sotw_NackIsNotAnsweredWithTheSameContent_ButALaterChangeIs()
    {
        await using var client = Ads.Sotw(_channel);
        await client.SendAsync(Ads.Request(XdsTypeUrls.Cluster, [], Ads.Node("client-nack")));
        var cds = await client.NextAsync();

        await client.SendAsync(new DiscoveryRequest
        {
            TypeUrl = XdsTypeUrls.Cluster,
            ResponseNonce = cds.Nonce,
            VersionInfo = string.Empty,
            ErrorDetail = new Google.Rpc.Status { Code = 3, Message = "cluster rejected for the test" },
        });
        Assert.Null(await client.TryNextAsync(Quiet));

        ChangeConfig(TestYaml.All.Replace("simple: LEAST_REQUEST", "simple: RANDOM"));
        var next = await client.NextAsync();
        Assert.True(long.Parse(next.VersionInfo) > long.Parse(cds.VersionInfo));
        Assert.NotEqual(cds.Nonce, next.Nonce);
        Assert.Equal(Cluster.Types.LbPolicy.Random, next.Resources.Select(r => r.Unpack<Cluster>()).First(c => c.Name == Base).LbPolicy);
    }

    [Fact]
    public async Task Sotw_ConfigChangePushesOnlyAffectedTypes_AndStaleNonceIsIgnored()
    {
        await using var client = Ads.Sotw(_channel);
        var routeName = $"outbound|9080||{Fqdn}";
        await client.SendAsync(Ads.Request(XdsTypeUrls.RouteConfiguration, [routeName], Ads.Node("client-push")));
        var rds = await client.NextAsync();
        await client.SendAsync(Ads.Ack(rds, [routeName]));
        await client.SendAsync(Ads.Request(XdsTypeUrls.Listener, [$"{Fqdn}:9080"]));
        var lds = await client.NextAsync();
        await client.SendAsync(Ads.Ack(lds, [$"{Fqdn}:9080"]));

        ChangeConfig(TestYaml.All.Replace("weight: 80", "weight: 50").Replace("weight: 20", "weight: 50"));

        var pushed = await client.NextAsync();
        Assert.Equal(XdsTypeUrls.RouteConfiguration, pushed.TypeUrl);
        var split = pushed.Resources[0].Unpack<RouteConfiguration>().VirtualHosts[0].Routes[1].Route_.WeightedClusters.Clusters;
        Assert.Equal([50u, 50u], split.Select(c => c.Weight ?? 0));

        // A request carrying the previous (stale) nonce changes nothing.
        await client.SendAsync(new DiscoveryRequest { TypeUrl = XdsTypeUrls.RouteConfiguration, ResponseNonce = rds.Nonce, ResourceNames = { "other" } });
        Assert.Null(await client.TryNextAsync(Quiet));
    }

    [Fact]
    public async Task Sotw_UnknownNamesAreOmitted()
    {
        await using var client = Ads.Sotw(_channel);
        await client.SendAsync(Ads.Request(XdsTypeUrls.Listener, ["nosuch:80", "reviews:9080"], Ads.Node("client-unknown")));
        var lds = await client.NextAsync();
        Assert.Equal(["reviews:9080"], lds.Resources.Select(r => r.Unpack<Listener>().Name));

        await client.SendAsync(Ads.Request(XdsTypeUrls.ClusterLoadAssignment, ["outbound|1||nosuch"]));
        var eds = await client.NextAsync();
        Assert.Empty(eds.Resources);
        await client.SendAsync(Ads.Request("type.googleapis.com/envoy.config.unknown.v3.Thing", ["x"]));
        Assert.Null(await client.TryNextAsync(Quiet));
    }

    [Fact]
    public async Task Sotw_AddedListenerNameThatDoesNotExist_IsAnsweredAtOnceWithoutIt()
    {
        var bound = TimeSpan.FromSeconds(2);
        await using var client = Ads.Sotw(_channel);
        await client.SendAsync(Ads.Request(XdsTypeUrls.Listener, ["reviews:9080"], Ads.Node("client-missing")));
        var first = await client.NextAsync();
        await client.SendAsync(Ads.Ack(first, ["reviews:9080"]));

        // The content the client subscribes to is unchanged, yet the subscription change is answered:
        // absent from an LDS response means "does not exist".
        string[] names = ["reviews:9080", "example.com:80"];
        await client.SendAsync(Ads.Ack(first, names));
        var second = await client.NextAsync(bound);
        Assert.Equal(XdsTypeUrls.Listener, second.TypeUrl);
        Assert.Equal(["reviews:9080"], second.Resources.Select(r => r.Unpack<Listener>().Name));
        Assert.NotEqual(first.Nonce, second.Nonce);
        Assert.Equal(_controlPlane.SnapshotVersion.ToString(System.Globalization.CultureInfo.InvariantCulture), second.VersionInfo);
        await client.SendAsync(Ads.Ack(second, names));

        await client.SendAsync(Ads.Ack(second, ["nothere.default.svc.cluster.local:9080"]));
        var third = await client.NextAsync(bound);
        Assert.Equal(XdsTypeUrls.Listener, third.TypeUrl);
        Assert.Empty(third.Resources);
        Assert.NotEqual(second.Nonce, third.Nonce);
        Assert.NotEmpty(third.VersionInfo);
        await client.SendAsync(Ads.Ack(third, ["nothere.default.svc.cluster.local:9080"]));

        // ACKs that leave the subscription as it is are not answered.
        Assert.Null(await client.TryNextAsync(Quiet));
    }

    [Fact]
    public async Task Delta_SubscribedListenerNameThatDoesNotExist_IsReportedRemovedOnce()
    {
        var bound = TimeSpan.FromSeconds(2);
        await using var client = Ads.Delta(_channel);
        await client.SendAsync(new DeltaDiscoveryRequest { Node = Ads.Node("delta-missing"), TypeUrl = XdsTypeUrls.Listener, ResourceNamesSubscribe = { "reviews:9080" } });
        var first = await client.NextAsync();
        Assert.Equal(["reviews:9080"], first.Resources.Select(r => r.Name));
        await client.SendAsync(new DeltaDiscoveryRequest { TypeUrl = XdsTypeUrls.Listener, ResponseNonce = first.Nonce });

        await client.SendAsync(new DeltaDiscoveryRequest { TypeUrl = XdsTypeUrls.Listener, ResourceNamesSubscribe = { "example.com:80" } });
        var second = await client.NextAsync(bound);
        Assert.Equal(XdsTypeUrls.Listener, second.TypeUrl);
        Assert.Empty(second.Resources);
        Assert.Equal(["example.com:80"], second.RemovedResources);
        await client.SendAsync(new DeltaDiscoveryRequest { TypeUrl = XdsTypeUrls.Listener, ResponseNonce = second.Nonce });

        // Each missing name is reported once: the next one alone, and nothing on a later unrelated push.
        await client.SendAsync(new DeltaDiscoveryRequest { TypeUrl = XdsTypeUrls.Listener, ResourceNamesSubscribe = { "nothere.default.svc.cluster.local:9080" } });
        var third = await client.NextAsync(bound);
        Assert.Empty(third.Resources);
        Assert.Equal(["nothere.default.svc.cluster.local:9080"], third.RemovedResources);
        await client.SendAsync(new DeltaDiscoveryRequest { TypeUrl = XdsTypeUrls.Listener, ResponseNonce = third.Nonce });

        var version = _controlPlane.SnapshotVersion;
        ChangeConfig(TestYaml.All.Replace("simple: LEAST_REQUEST", "simple: RANDOM"));
        Assert.Null(await client.TryNextAsync(Quiet));
        Assert.True(_controlPlane.SnapshotVersion > version);

        // The name that did not exist is sent once it does.
        ChangeConfig(TestYaml.All.Replace("hosts: [reviews.default.svc.cluster.local]", "hosts: [reviews.default.svc.cluster.local, nothere.default.svc.cluster.local]"));
        var appeared = await client.NextAsync();
        Assert.Equal(["nothere.default.svc.cluster.local:9080"], appeared.Resources.Select(r => r.Name));
        Assert.Empty(appeared.RemovedResources);
    }

    [Fact]
    public async Task Delta_SubscribeUnsubscribeAndRemovedResources()
    {
        await using var client = Ads.Delta(_channel);
        await client.SendAsync(new DeltaDiscoveryRequest
        {
            Node = Ads.Node("delta-1"),
            TypeUrl = XdsTypeUrls.Cluster,
            ResourceNamesSubscribe = { V1, "outbound|1||nosuch" },
        });
        var first = await client.NextAsync();
        Assert.Equal([V1], first.Resources.Select(r => r.Name));
        Assert.Equal(V1, first.Resources[0].Resource_.Unpack<Cluster>().Name);

        // A subscribed name that does not exist is reported removed (Delta's "does not exist").
        Assert.Equal(["outbound|1||nosuch"], first.RemovedResources);
        await client.SendAsync(new DeltaDiscoveryRequest { TypeUrl = XdsTypeUrls.Cluster, ResponseNonce = first.Nonce });

        await client.SendAsync(new DeltaDiscoveryRequest { TypeUrl = XdsTypeUrls.Cluster, ResourceNamesSubscribe = { V2 } });
        var second = await client.NextAsync();
        Assert.Equal([V2], second.Resources.Select(r => r.Name));
        await client.SendAsync(new DeltaDiscoveryRequest { TypeUrl = XdsTypeUrls.Cluster, ResponseNonce = second.Nonce });

        await client.SendAsync(new DeltaDiscoveryRequest { TypeUrl = XdsTypeUrls.Cluster, ResourceNamesUnsubscribe = { V1 } });
        Assert.Null(await client.TryNextAsync(Quiet));

        // Subset v2 disappears from the DestinationRule: the client is told to remove it.
        ChangeConfig(string.Join("\n---\n", TestYaml.ReviewsServiceEntry, TestYaml.Workload("reviews-v1", "v1", 19081), """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: reviews}
            spec:
              host: reviews
              subsets:
              - name: v1
                labels: {version: v1}
            """));
        Assert.Empty(_controlPlane.ConfigErrors);
        var removal = await client.NextAsync();
        Assert.Empty(removal.Resources);
        Assert.Equal([V2], removal.RemovedResources);
    }

    [Fact]
    public async Task Delta_WildcardWithInitialVersionsSendsOnlyChanged()
    {
        string v1Version;
        await using (var first = Ads.Delta(_channel))
        {
            await first.SendAsync(new DeltaDiscoveryRequest { Node = Ads.Node("delta-2"), TypeUrl = XdsTypeUrls.Cluster });
            var all = await first.NextAsync();
            Assert.Equal(SubsetClusters, all.Resources.Select(r => r.Name).Order(StringComparer.Ordinal));
            v1Version = all.Resources.Single(r => r.Name == V1).Version;
        }

        await using var again = Ads.Delta(_channel);
        await again.SendAsync(new DeltaDiscoveryRequest
        {
            Node = Ads.Node("delta-2"),
            TypeUrl = XdsTypeUrls.Cluster,
            ResourceNamesSubscribe = { "*" },
            InitialResourceVersions = { [V1] = v1Version, [V2] = "stale", ["outbound|1||gone"] = "x" },
        });
        var response = await again.NextAsync();
        Assert.Equal([V2, Base], response.Resources.Select(r => r.Name).Order(StringComparer.Ordinal));
        Assert.Equal(["outbound|1||gone"], response.RemovedResources);
    }

    [Fact]
    public async Task SelfRegistration_NodeMetadataAddsEndpointUntilGraceEnds()
    {
        var cluster = Base;
        await using var watcher = Ads.Sotw(_channel);
        await watcher.SendAsync(Ads.Request(XdsTypeUrls.ClusterLoadAssignment, [cluster], Ads.Node("watcher")));
        static List<(string, uint)> Endpoints(DiscoveryResponse r) => Assert.Single(r.Resources).Unpack<ClusterLoadAssignment>().Endpoints
            .SelectMany(l => l.LbEndpoints).Select(e => (e.Endpoint.Address.SocketAddress.Address, e.Endpoint.Address.SocketAddress.PortValue)).Order().ToList();
        Assert.Equal([("127.0.0.1", 19081u), ("127.0.0.1", 19082u)], Endpoints(await watcher.NextAsync()));

        var workload = Ads.Sotw(_channel);
        await workload.SendAsync(Ads.Request(XdsTypeUrls.Listener, ["reviews:9080"], Ads.Node("reviews-v3-1", metadata: m =>
        {
            m.Fields["MESH_SERVICE"] = Value.ForString("reviews");
            m.Fields["INSTANCE_IPS"] = Value.ForString("127.0.0.7,10.0.0.7");
            m.Fields["LABELS"] = Value.ForStruct(new Struct { Fields = { ["app"] = Value.ForString("reviews"), ["version"] = Value.ForString("v3") } });
            m.Fields["MESH_PORTS"] = Value.ForStruct(new Struct { Fields = { ["9080"] = Value.ForNumber(41234) } });
        })));
        await workload.NextAsync();

        Assert.Equal([("127.0.0.1", 19081u), ("127.0.0.1", 19082u), ("127.0.0.7", 41234u)], Endpoints(await watcher.NextAsync()));

        await workload.DisposeAsync();
        Assert.Equal([("127.0.0.1", 19081u), ("127.0.0.1", 19082u)], Endpoints(await watcher.NextAsync()));
    }
}

/// <summary>Route configurations with sourceLabels matches differ per client over a real ADS stream.</summary>
public sealed class AdsSourceScopedRouteTests : IAsyncLifetime
{
    private const string RouteName = "outbound|9080||reviews.default.svc.cluster.local";

    private readonly TempDir _dir = new();
    private MeshControlPlane _controlPlane = null!;
    private GrpcChannel _channel = null!;

    private static string Config(string canaryLabel) => TestYaml.All + $$$"""

        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: ratings-canary}
        spec:
          hosts: [reviews]
          http:
          - name: canary
            match:
            - sourceLabels: {version: {{{canaryLabel}}}}
            route: [{destination: {host: reviews, subset: v2}}]
        """;

    public async Task InitializeAsync()
    {
        _dir.Write("reviews.yaml", Config("v2"));
        _controlPlane = new MeshControlPlane(new MeshControlPlaneOptions
        {
            ConfigDirectory = _dir.Path,
            XdsPort = 0,
            PushDebounce = TimeSpan.FromMilliseconds(20),
            ConfigPollInterval = TimeSpan.FromHours(1),
        });
        await _controlPlane.StartAsync();
        Assert.Empty(_controlPlane.ConfigErrors);
        _channel = GrpcChannel.ForAddress(_controlPlane.XdsUri!);
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _controlPlane.DisposeAsync();
        _dir.Dispose();
    }

    private static Envoy.Config.Core.V3.Node NodeWithVersion(string id, string version) => Ads.Node(id, metadata: m =>
        m.Fields["LABELS"] = Value.ForStruct(new Struct { Fields = { ["app"] = Value.ForString("productpage"), ["version"] = Value.ForString(version) } }));

    private static List<string> RouteNames(DiscoveryResponse response)
    {
        var config = Assert.Single(response.Resources).Unpack<RouteConfiguration>();
        Assert.Equal(RouteName, config.Name);
        return config.VirtualHosts[0].Routes.Select(r => r.Name).ToList();
    }

    [Fact]
    public async Task TwoNodesWithDifferentLabels_GetTheirOwnRoutesForTheSameName_AndAChangeReevaluates()
    {
        await using var v1Client = Ads.Sotw(_channel);
        await using var v2Client = Ads.Delta(_channel);
        await v1Client.SendAsync(Ads.Request(XdsTypeUrls.RouteConfiguration, [RouteName], NodeWithVersion("productpage-v1", "v1")));
        await v2Client.SendAsync(new DeltaDiscoveryRequest
        {
            Node = NodeWithVersion("productpage-v2", "v2"),
            TypeUrl = XdsTypeUrls.RouteConfiguration,
            ResourceNamesSubscribe = { RouteName },
        });

        var v1First = await v1Client.NextAsync();
        Assert.Equal(["jason", ""], RouteNames(v1First));
        var v2First = await v2Client.NextAsync();
        var v2Resource = Assert.Single(v2First.Resources);
        Assert.Equal(RouteName, v2Resource.Name);
        Assert.Equal(["jason", "", "canary"], v2Resource.Resource_.Unpack<RouteConfiguration>().VirtualHosts[0].Routes.Select(r => r.Name));
        await v1Client.SendAsync(Ads.Ack(v1First, [RouteName]));
        await v2Client.SendAsync(new DeltaDiscoveryRequest { TypeUrl = XdsTypeUrls.RouteConfiguration, ResponseNonce = v2First.Nonce });

        // The canary moves to version v1: each client is pushed its new variant.
        _dir.Write("reviews.yaml", Config("v1"));
        _controlPlane.ReloadConfig();
        Assert.Equal(["jason", "", "canary"], RouteNames(await v1Client.NextAsync()));
        var v2Next = await v2Client.NextAsync();
        Assert.Equal(["jason", ""], Assert.Single(v2Next.Resources).Resource_.Unpack<RouteConfiguration>().VirtualHosts[0].Routes.Select(r => r.Name));

        // A change that leaves a client's variant as it was sends that client nothing.
        _dir.Write("reviews.yaml", Config("v1").Replace("name: canary", "name: canary2"));
        _controlPlane.ReloadConfig();
        Assert.Equal(["jason", "", "canary2"], RouteNames(await v1Client.NextAsync()));
        Assert.Null(await v2Client.TryNextAsync(TimeSpan.FromMilliseconds(500)));
    }
}

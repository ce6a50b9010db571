using Envoy.Config.Cluster.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Service.Discovery.V3;
using Grpc.Net.Client;
using Mesh.Xds;

namespace Mesh.ControlPlane.Tests.Xds;

/// <summary>
/// Make-before-break over a real ADS stream: a push sends clusters and endpoints before the
/// listeners and routes that name them, and drops clusters only after the routes stopped naming them.
/// </summary>
public sealed class AdsPushOrderTests : IAsyncLifetime
{
    private const string Reviews = "reviews.default.svc.cluster.local";
    private const string Ratings = "ratings.default.svc.cluster.local";
    private const string ReviewsRoute = $"outbound|9080||{Reviews}";
    private const string RatingsRoute = $"outbound|9080||{Ratings}";
    private const string ReviewsBase = $"outbound|9080||{Reviews}";
    private const string V1 = $"outbound|9080|v1|{Reviews}";
    private const string V2 = $"outbound|9080|v2|{Reviews}";
    private const string V3 = $"outbound|9080|v3|{Reviews}";
    private const string RatingsBase = $"outbound|9080||{Ratings}";

    private static readonly string[] RouteNames = [ReviewsRoute, RatingsRoute];
    private static readonly string[] EndpointNames = [ReviewsBase, V1, V2, V3, RatingsBase];
    // Names below are compared in ordinal order, where "v1" sorts before "|".
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(500);

    private readonly TempDir _dir = new();
    private MeshControlPlane? _controlPlane;
    private GrpcChannel? _channel;

    /// <summary>
    /// Reviews v1/v2/v3 workloads, subsets v1 and v2, a VirtualService routing to v1; <paramref name="withV3"/>
    /// adds, in the same file, subset v3, a route sending jason to v3, and a ratings service.
    /// </summary>
    private static string Config(bool withV3)
    {
        // The v3 workload is there in both: only the subset cluster comes and goes, the base cluster's endpoints stay.
        var documents = new List<string>
        {
            TestYaml.ReviewsServiceEntry, TestYaml.Workload("reviews-v1", "v1", 19081), TestYaml.Workload("reviews-v2", "v2", 19082), TestYaml.Workload("reviews-v3", "v3", 19083),
        };
        var subsets = "  - {name: v1, labels: {version: v1}}\n  - {name: v2, labels: {version: v2}}\n";
        var jason = string.Empty;
        if (withV3)
        {
            subsets += "  - {name: v3, labels: {version: v3}}\n";
            jason = """
                  - name: jason
                    match: [{headers: {end-user: {exact: jason}}}]
                    route: [{destination: {host: reviews, subset: v3}}]

                """;
            documents.Add("""
                apiVersion: networking.istio.io/v1
                kind: ServiceEntry
                metadata: {name: ratings}
                spec:
                  hosts: [ratings.default.svc.cluster.local]
                  ports: [{number: 9080, name: http, protocol: HTTP}]
                  resolution: STATIC
                  endpoints: [{address: 127.0.0.1, ports: {http: 19090}}]
                """);
        }

        documents.Add("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  subsets:\n" + subsets);
        documents.Add("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n"
            + jason + "  - route: [{destination: {host: reviews, subset: v1}}]\n");
        return string.Join("\n---\n", documents);
    }

    private async Task<GrpcChannel> StartAsync(bool withV3)
    {
        _dir.Write("mesh.yaml", Config(withV3));
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
        return _channel;
    }

    private void Change(bool withV3)
    {
        _dir.Write("mesh.yaml", Config(withV3));
        _controlPlane!.ReloadConfig();
        Assert.Empty(_controlPlane.ConfigErrors);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        _channel?.Dispose();
        if (_controlPlane is not null)
        {
            await _controlPlane.DisposeAsync();
        }

        _dir.Dispose();
    }

    /// <summary>The names this test's client subscribes to per type (empty = wildcard for LDS and CDS).</summary>
    private static string[] Subscription(string typeUrl) => typeUrl switch
    {
        XdsTypeUrls.RouteConfiguration => RouteNames,
        XdsTypeUrls.ClusterLoadAssignment => EndpointNames,
        _ => [],
    };

    /// <summary>Subscribes to all four types in the order gRPC does, ACKing every response.</summary>
    private static async Task SubscribeAllSotwAsync(AdsTestClient<DiscoveryRequest, DiscoveryResponse> client)
    {
        string[] order = [XdsTypeUrls.Listener, XdsTypeUrls.RouteConfiguration, XdsTypeUrls.Cluster, XdsTypeUrls.ClusterLoadAssignment];
        foreach (var typeUrl in order)
        {
            await client.SendAsync(Ads.Request(typeUrl, Subscription(typeUrl), typeUrl == XdsTypeUrls.Listener ? Ads.Node("order-sotw") : null));
            var response = await client.NextAsync();
            Assert.Equal(typeUrl, response.TypeUrl);
            await client.SendAsync(Ads.Ack(response, Subscription(typeUrl)));
        }

        Assert.Null(await client.TryNextAsync(Quiet));
    }

    /// <summary>Every response of one push, ACKed as it arrives, until the stream is quiet (at most 12).</summary>
    private static async Task<List<DiscoveryResponse>> DrainSotwAsync(AdsTestClient<DiscoveryRequest, DiscoveryResponse> client)
    {
        var responses = new List<DiscoveryResponse> { await client.NextAsync() };
        await client.SendAsync(Ads.Ack(responses[0], Subscription(responses[0].TypeUrl)));
        while (responses.Count < 12 && await client.TryNextAsync(Quiet) is { } next)
        {
            responses.Add(next);
            await client.SendAsync(Ads.Ack(next, Subscription(next.TypeUrl)));
        }

        return responses;
    }

    private static IEnumerable<string> ClusterNames(DiscoveryResponse cds) => cds.Resources.Select(r => r.Unpack<Cluster>().Name).Order(StringComparer.Ordinal);

    private static IEnumerable<string> RoutedClusters(RouteConfiguration config) =>
        config.VirtualHosts.SelectMany(v => v.Routes).Select(r => r.Route_.Cluster).Order(StringComparer.Ordinal);

    [Fact]
    public async Task Sotw_NewSubsetRouteAndService_ClustersAndEndpointsArriveBeforeListenersAndRoutes()
    {
        await using var client = Ads.Sotw(await StartAsync(withV3: false));
        await SubscribeAllSotwAsync(client);

        Change(withV3: true);
        var push = await DrainSotwAsync(client);

        Assert.Equal([XdsTypeUrls.Cluster, XdsTypeUrls.ClusterLoadAssignment, XdsTypeUrls.Listener, XdsTypeUrls.RouteConfiguration], push.Select(r => r.TypeUrl));
        Assert.Equal([V1, V2, V3, RatingsBase, ReviewsBase], ClusterNames(push[0]));
        Assert.Equal([V3, RatingsBase], push[1].Resources.Select(r => r.Unpack<ClusterLoadAssignment>().ClusterName)
            .Where(n => n is V3 or RatingsBase).Order(StringComparer.Ordinal));
        Assert.Equal([$"{Ratings}:9080", $"{Reviews}:9080"], push[2].Resources.Select(r => r.Unpack<Listener>().Name).Order(StringComparer.Ordinal));
        var reviewsRoutes = push[3].Resources.Select(r => r.Unpack<RouteConfiguration>()).Single(c => c.Name == ReviewsRoute);
        Assert.Equal([V3, V1], reviewsRoutes.VirtualHosts[0].Routes.Select(r => r.Route_.Cluster));

        // Every response of the push carries the same (new) snapshot version.
        Assert.Single(push.Select(r => r.VersionInfo).Distinct());
    }

    [Fact]
    public async Task Sotw_RemovedSubsetAndService_RoutesStopNamingClustersBeforeTheClustersGo()
    {
        await using var client = Ads.Sotw(await StartAsync(withV3: true));
        await SubscribeAllSotwAsync(client);

        Change(withV3: false);
        var push = await DrainSotwAsync(client);

        Assert.Equal([XdsTypeUrls.Listener, XdsTypeUrls.RouteConfiguration, XdsTypeUrls.Cluster, XdsTypeUrls.ClusterLoadAssignment], push.Select(r => r.TypeUrl));
        Assert.Equal([$"{Reviews}:9080"], push[0].Resources.Select(r => r.Unpack<Listener>().Name));
        var routes = Assert.Single(push[1].Resources).Unpack<RouteConfiguration>();
        Assert.Equal([V1], RoutedClusters(routes));
        Assert.Equal([V1, V2, ReviewsBase], ClusterNames(push[2]));
        Assert.Equal([V1, V2, ReviewsBase], push[3].Resources.Select(r => r.Unpack<ClusterLoadAssignment>().ClusterName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Delta_NewSubsetRouteAndService_ClustersAndEndpointsArriveBeforeListenersAndRoutes_RemovalsAfter()
    {
        await using var client = Ads.Delta(await StartAsync(withV3: false));
        string[] order = [XdsTypeUrls.Listener, XdsTypeUrls.RouteConfiguration, XdsTypeUrls.Cluster, XdsTypeUrls.ClusterLoadAssignment];
        foreach (var typeUrl in order)
        {
            await client.SendAsync(new DeltaDiscoveryRequest
            {
                Node = typeUrl == XdsTypeUrls.Listener ? Ads.Node("order-delta") : null,
                TypeUrl = typeUrl,
                ResourceNamesSubscribe = { Subscription(typeUrl) },
            });
            var response = await client.NextAsync();
            Assert.Equal(typeUrl, response.TypeUrl);
            await client.SendAsync(new DeltaDiscoveryRequest { TypeUrl = typeUrl, ResponseNonce = response.Nonce });
        }

        Assert.Null(await client.TryNextAsync(Quiet));

        async Task<List<DeltaDiscoveryResponse>> DrainAsync()
        {
            var responses = new List<DeltaDiscoveryResponse>();
            while (responses.Count < 12 && await client.TryNextAsync(responses.Count == 0 ? TimeSpan.FromSeconds(10) : Quiet) is { } next)
            {
                responses.Add(next);
                await client.SendAsync(new DeltaDiscoveryRequest { TypeUrl = next.TypeUrl, ResponseNonce = next.Nonce });
            }

            return responses;
        }

        Change(withV3: true);
        var added = await DrainAsync();
        Assert.Equal([XdsTypeUrls.Cluster, XdsTypeUrls.ClusterLoadAssignment, XdsTypeUrls.Listener, XdsTypeUrls.RouteConfiguration], added.Select(r => r.TypeUrl));
        Assert.Equal([V3, RatingsBase], added[0].Resources.Select(r => r.Name).Order(StringComparer.Ordinal));
        Assert.Equal([V3, RatingsBase], added[1].Resources.Select(r => r.Name).Order(StringComparer.Ordinal));
        Assert.Equal([$"{Ratings}:9080"], added[2].Resources.Select(r => r.Name));
        Assert.Equal([RatingsRoute, ReviewsRoute], added[3].Resources.Select(r => r.Name).Order(StringComparer.Ordinal));
        Assert.All(added, r => Assert.Empty(r.RemovedResources));

        Change(withV3: false);
        var removed = await DrainAsync();
        Assert.Equal([XdsTypeUrls.Listener, XdsTypeUrls.RouteConfiguration, XdsTypeUrls.Cluster, XdsTypeUrls.ClusterLoadAssignment], removed.Select(r => r.TypeUrl));
        Assert.Equal([$"{Ratings}:9080"], removed[0].RemovedResources);
        Assert.Equal([ReviewsRoute], removed[1].Resources.Select(r => r.Name));
        Assert.Equal([V1], RoutedClusters(removed[1].Resources[0].Resource_.Unpack<RouteConfiguration>()));
        Assert.Equal([RatingsRoute], removed[1].RemovedResources);
        Assert.Equal([V3, RatingsBase], removed[2].RemovedResources.Order(StringComparer.Ordinal));
        Assert.Empty(removed[2].Resources);
        Assert.Equal([V3, RatingsBase], removed[3].RemovedResources.Order(StringComparer.Ordinal));
    }
}

using Envoy.Config.Cluster.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Registry;
using Mesh.ControlPlane.Translation;
using Mesh.Xds;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.ControlPlane.Tests.Translation;

public class XdsTranslatorTests
{
    private const string Fqdn = "reviews.default.svc.cluster.local";

    private static XdsSnapshot Translate(string yaml)
    {
        var store = new ConfigStore("default", NullLogger.Instance);
        store.Apply("/cfg/test.yaml", yaml);
        Assert.Empty(store.LastErrors);
        using var registry = new ServiceRegistry(TimeProvider.System, TimeSpan.FromSeconds(10), "cluster.local", NullLogger.Instance);
        registry.UpdateConfig(store.Current);
        return new XdsTranslator("cluster.local").Translate(store.Current, registry.Current, 7);
    }

    [Fact]
    public void Listener_IsApiListenerWithRdsOverAdsAndRouterLast()
    {
        var snapshot = Translate(TestYaml.All);

        var resource = Assert.Single(snapshot.All(ResourceTypes.Listener)).Value;
        Assert.Equal(XdsTypeUrls.Listener, resource.Resource.TypeUrl);
        var listener = resource.Resource.Unpack<Listener>();
        Assert.Equal($"{Fqdn}:9080", listener.Name);
        Assert.Equal(XdsTypeUrls.HttpConnectionManager, listener.ApiListener.ApiListener_.TypeUrl);
        var hcm = listener.ApiListener.ApiListener_.Unpack<HttpConnectionManager>();
        Assert.Equal($"outbound|9080||{Fqdn}", hcm.Rds.RouteConfigName);
        Assert.NotNull(hcm.Rds.ConfigSource.Ads);
        Assert.Equal(Envoy.Config.Core.V3.ApiVersion.V3, hcm.Rds.ConfigSource.ResourceApiVersion);
        Assert.Equal([HttpFilterNames.Fault, HttpFilterNames.Router], hcm.HttpFilters.Select(f => f.Name));
        Assert.Equal([XdsTypeUrls.Fault, XdsTypeUrls.Router], hcm.HttpFilters.Select(f => f.TypedConfig.TypeUrl));
    }

    [Theory]
    [InlineData("reviews:9080", "default")]
    [InlineData("reviews.default:9080", "other")]
    [InlineData("reviews.default.svc:9080", "other")]
    [InlineData("reviews", "default")]
    public void Listener_AliasCarriesRequestedName(string requested, string nodeNamespace)
    {
        var snapshot = Translate(TestYaml.All);

        var resource = snapshot.Find(ResourceTypes.Listener, requested, nodeNamespace);

        Assert.NotNull(resource);
        Assert.Equal(requested, resource.Name);
        Assert.Equal(requested, resource.Resource.Unpack<Listener>().Name);
        Assert.Null(snapshot.Find(ResourceTypes.Listener, "reviews:9080", "other"));
        Assert.Null(snapshot.Find(ResourceTypes.Listener, "reviews:1234", "default"));
    }

    [Fact]
    public void Route_HasHeaderMatchAndWeightedSplit_AndNoCatchAll()
    {
        var snapshot = Translate(TestYaml.All);

        var route = snapshot.All(ResourceTypes.Route)[$"outbound|9080||{Fqdn}"].Resource.Unpack<RouteConfiguration>();
        var vhost = Assert.Single(route.VirtualHosts);
        Assert.Equal([Fqdn, $"{Fqdn}:9080", "reviews.default.svc", "reviews.default.svc:9080", "reviews.default", "reviews.default:9080", "reviews", "reviews:9080"],
            vhost.Domains);
        // The VirtualService's two routes and nothing after them: istiod appends no default route.
        Assert.Equal(2, vhost.Routes.Count);

        var jason = vhost.Routes[0];
        Assert.Equal("jason", jason.Name);
        Assert.Equal("/reviews", jason.Match.Prefix);
        var header = Assert.Single(jason.Match.Headers);
        Assert.Equal(("end-user", "jason"), (header.Name, header.ExactMatch));
        Assert.Equal($"outbound|9080|v2|{Fqdn}", jason.Route_.Cluster);
        Assert.Equal("x-user", Assert.Single(jason.Route_.HashPolicy).Header.HeaderName);

        var split = vhost.Routes[1];
        Assert.Equal("/", split.Match.Prefix);
        Assert.Equal([($"outbound|9080|v1|{Fqdn}", 80u), ($"outbound|9080|v2|{Fqdn}", 20u)],
            split.Route_.WeightedClusters.Clusters.Select(c => (c.Name, c.Weight ?? 0)));
    }

    [Fact]
    public void Route_TranslatesMethodQueryRegexAndFault()
    {
        var snapshot = Translate(TestYaml.ReviewsServiceEntry + """

            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: reviews}
            spec:
              hosts: [reviews.default.svc.cluster.local]
              http:
              - match:
                - uri: {regex: "/r/[0-9]+"}
                  method: {exact: GET}
                  queryParams: {debug: {exact: "1"}}
                  ignoreUriCase: true
                fault:
                  abort: {percentage: {value: 12.5}, httpStatus: 503}
                timeout: 2s
                route:
                - destination: {host: reviews}
            """);

        var route = snapshot.All(ResourceTypes.Route)[$"outbound|9080||{Fqdn}"].Resource.Unpack<RouteConfiguration>().VirtualHosts[0].Routes[0];
        Assert.Equal("/r/[0-9]+", route.Match.SafeRegex.Regex);
        Assert.False(route.Match.CaseSensitive);
        Assert.Equal((":method", "GET"), (route.Match.Headers[0].Name, route.Match.Headers[0].ExactMatch));
        Assert.Equal(("debug", "1"), (route.Match.QueryParameters[0].Name, route.Match.QueryParameters[0].StringMatch.Exact));
        Assert.Equal(2, route.Route_.Timeout.Seconds);
        var fault = route.TypedPerFilterConfig[HttpFilterNames.Fault].Unpack<Envoy.Extensions.Filters.Http.Fault.V3.HTTPFault>();
        Assert.Equal((503u, 125_000u), (fault.Abort.HttpStatus, fault.Abort.Percentage.Numerator));
    }

    [Fact]
    public void Clusters_OnePerSubsetWithLbPolicyAndEdsOverAds()
    {
        var snapshot = Translate(TestYaml.All);

        var clusters = snapshot.All(ResourceTypes.Cluster).Values.Select(r => r.Resource.Unpack<Cluster>()).ToDictionary(c => c.Name);
        Assert.Equal([$"outbound|9080||{Fqdn}", $"outbound|9080|v1|{Fqdn}", $"outbound|9080|v2|{Fqdn}"], clusters.Keys.Order());
        foreach (var (name, cluster) in clusters)
        {
            Assert.Equal(Cluster.Types.DiscoveryType.Eds, cluster.Type);
            Assert.Equal(name, cluster.EdsClusterConfig.ServiceName);
            Assert.NotNull(cluster.EdsClusterConfig.EdsConfig.Ads);
            Assert.Equal(Envoy.Config.Core.V3.ApiVersion.V3, cluster.EdsClusterConfig.EdsConfig.ResourceApiVersion);
        }

        Assert.Equal(Cluster.Types.LbPolicy.LeastRequest, clusters[$"outbound|9080||{Fqdn}"].LbPolicy);
        Assert.Equal(Cluster.Types.LbPolicy.LeastRequest, clusters[$"outbound|9080|v1|{Fqdn}"].LbPolicy);
        Assert.Equal(Cluster.Types.LbPolicy.RingHash, clusters[$"outbound|9080|v2|{Fqdn}"].LbPolicy);
        Assert.Equal(1024ul, clusters[$"outbound|9080|v2|{Fqdn}"].RingHashLbConfig.MinimumRingSize);
    }

    [Fact]
    public void LoadAssignments_FilterBySubsetAndGroupByLocality()
    {
        var snapshot = Translate(TestYaml.All);
        ClusterLoadAssignment Cla(string subset) => snapshot.All(ResourceTypes.Endpoint)[$"outbound|9080|{subset}|{Fqdn}"].Resource.Unpack<ClusterLoadAssignment>();

        var all = Cla("");
        Assert.Equal([("r1", "z1"), ("r1", "z2")], all.Endpoints.Select(l => (l.Locality.Region, l.Locality.Zone)));
        Assert.All(all.Endpoints, l => Assert.Equal((0u, 3u), (l.Priority, l.LoadBalancingWeight ?? 0)));

        var v1 = Assert.Single(Cla("v1").Endpoints);
        var endpoint = Assert.Single(v1.LbEndpoints);
        Assert.Equal(("127.0.0.1", 19081u), (endpoint.Endpoint.Address.SocketAddress.Address, endpoint.Endpoint.Address.SocketAddress.PortValue));
        Assert.Equal(Envoy.Config.Core.V3.HealthStatus.Healthy, endpoint.HealthStatus);
        Assert.Equal(3u, endpoint.LoadBalancingWeight);
        Assert.Equal(19082u, Cla("v2").Endpoints.Single().LbEndpoints.Single().Endpoint.Address.SocketAddress.PortValue);
        Assert.Equal($"outbound|9080|v1|{Fqdn}", Cla("v1").ClusterName);
    }
}

using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.Xds.Internal;

namespace Mesh.Sdk.Tests.Xds.Fakes;

/// <summary>Builds xDS resources shaped like istiod's proxyless output.</summary>
internal static class TestResources
{
    public const string ListenerName = "reviews.default.svc.cluster.local:9080";
    public const string RouteName = "outbound|9080||reviews.default.svc.cluster.local";
    public const string ClusterV1 = "outbound|9080|v1|reviews.default.svc.cluster.local";
    public const string ClusterV2 = "outbound|9080|v2|reviews.default.svc.cluster.local";

    public static readonly string Lds = XdsResourceType.Listener.TypeUrl;
    public static readonly string Rds = XdsResourceType.RouteConfiguration.TypeUrl;
    public static readonly string Cds = XdsResourceType.Cluster.TypeUrl;
    public static readonly string Eds = XdsResourceType.Endpoints.TypeUrl;

    public static HttpFilter Router() => new()
    {
        Name = "envoy.filters.http.router",
        TypedConfig = new Any { TypeUrl = XdsResourceValidator.RouterTypeUrl },
    };

    public static Listener Listener(string name = ListenerName, string routeName = RouteName, params HttpFilter[] filters)
    {
        var hcm = new HttpConnectionManager
        {
            Rds = new Rds { RouteConfigName = routeName, ConfigSource = new ConfigSource { Ads = new AggregatedConfigSource() } },
        };
        hcm.HttpFilters.AddRange(filters.Length == 0 ? [Router()] : filters);
        return ListenerWith(name, hcm);
    }

    public static Listener ListenerWith(string name, HttpConnectionManager hcm) => new()
    {
        Name = name,
        ApiListener = new ApiListener { ApiListener_ = Any.Pack(hcm) },
    };

    public static RouteConfiguration Routes(string name = RouteName, params string[] clusters)
    {
        var action = new RouteAction();
        if (clusters.Length == 1)
        {
            action.Cluster = clusters[0];
        }
        else
        {
            var weighted = new WeightedCluster();
            foreach (var cluster in clusters)
            {
                weighted.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = cluster, Weight = 50 });
            }

            action.WeightedClusters = weighted;
        }

        var host = new VirtualHost { Name = "reviews", Domains = { "reviews.default.svc.cluster.local", "reviews" } };
        host.Routes.Add(new Route { Match = new RouteMatch { Prefix = "/" }, Route_ = action });
        return new RouteConfiguration { Name = name, VirtualHosts = { host } };
    }

    public static Cluster EdsCluster(string name, string? serviceName = null) => new()
    {
        Name = name,
        Type = Cluster.Types.DiscoveryType.Eds,
        EdsClusterConfig = new Cluster.Types.EdsClusterConfig
        {
            EdsConfig = new ConfigSource { Ads = new AggregatedConfigSource() },
            ServiceName = serviceName ?? string.Empty,
        },
        LbPolicy = Cluster.Types.LbPolicy.RoundRobin,
    };

    public static ClusterLoadAssignment Endpoints(string name, params string[] addresses)
    {
        var group = new LocalityLbEndpoints { Locality = new Locality { Region = "r1", Zone = "z1" } };
        foreach (var address in addresses)
        {
            var (host, port) = (address[..address.LastIndexOf(':')], uint.Parse(address[(address.LastIndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture));
            group.LbEndpoints.Add(new LbEndpoint
            {
                Endpoint = new Endpoint { Address = new Address { SocketAddress = new SocketAddress { Address = host, PortValue = port } } },
            });
        }

        return new ClusterLoadAssignment { ClusterName = name, Endpoints = { group } };
    }

    public static DiscoveryResponse Sotw(string typeUrl, string version, string nonce, params IMessage[] resources)
    {
        var response = new DiscoveryResponse { TypeUrl = typeUrl, VersionInfo = version, Nonce = nonce };
        foreach (var resource in resources)
        {
            response.Resources.Add(Any.Pack(resource));
        }

        return response;
    }

    public static DeltaDiscoveryResponse Delta(string typeUrl, string nonce, IEnumerable<(string Name, string Version, IMessage Resource)> resources, params string[] removed)
    {
        var response = new DeltaDiscoveryResponse { TypeUrl = typeUrl, Nonce = nonce, SystemVersionInfo = nonce };
        foreach (var (name, version, resource) in resources)
        {
            response.Resources.Add(new Resource { Name = name, Version = version, Resource_ = Any.Pack(resource) });
        }

        response.RemovedResources.AddRange(removed);
        return response;
    }
}

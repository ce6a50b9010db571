using System.Collections.Frozen;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Mesh.Sdk.Resources;
using EnvoyCluster = Envoy.Config.Cluster.V3.Cluster;

namespace Mesh.Sdk.Tests.Grpc;

/// <summary>Snapshots for an <c>xds:///recorder:9090</c> target: its listener, route table, cluster and endpoints.</summary>
internal static class GrpcTestSnapshots
{
    public const string Target = "recorder:9090";
    public const string Cluster = "outbound|9090||recorder.default.svc.cluster.local";
    public const string Endpoint = "10.0.0.1";

    /// <summary>The control plane said the listener does not exist.</summary>
    public static MeshSnapshot ListenerMissing(long version) => new(
        version,
        FrozenDictionary<string, ListenerResource>.Empty,
        FrozenDictionary<string, RouteConfiguration>.Empty,
        FrozenDictionary<string, ClusterResource>.Empty,
        FrozenDictionary<string, ClusterLoadAssignment>.Empty)
    {
        MissingListeners = new[] { Target }.ToFrozenSet(StringComparer.Ordinal),
    };

    /// <summary>The listener and its routes (one route to <see cref="Cluster"/>); the cluster only when asked.</summary>
    public static MeshSnapshot Listener(long version, bool withCluster)
    {
        var host = new VirtualHost { Name = Target, Domains = { "*" } };
        host.Routes.Add(new Route { Name = "default", Match = new RouteMatch { Prefix = "/" }, Route_ = new RouteAction { Cluster = Cluster } });
        var routes = new RouteConfiguration { Name = Target, VirtualHosts = { host } };
        var listeners = new Dictionary<string, ListenerResource>
        {
            [Target] = new(Target, new Listener { Name = Target, ApiListener = new ApiListener() }, new HttpConnectionManager(), Target, null),
        };
        var clusters = new Dictionary<string, ClusterResource>();
        var endpoints = new Dictionary<string, ClusterLoadAssignment>();
        if (withCluster)
        {
            var cluster = new EnvoyCluster
            {
                Name = Cluster,
                Type = EnvoyCluster.Types.DiscoveryType.Eds,
                EdsClusterConfig = new EnvoyCluster.Types.EdsClusterConfig { ServiceName = Cluster, EdsConfig = new ConfigSource { Ads = new AggregatedConfigSource() } },
            };
            var locality = new LocalityLbEndpoints { Locality = new Locality { Region = "r1" } };
            locality.LbEndpoints.Add(new LbEndpoint
            {
                HealthStatus = HealthStatus.Healthy,
                Endpoint = new Envoy.Config.Endpoint.V3.Endpoint { Address = new Address { SocketAddress = new SocketAddress { Address = Endpoint, PortValue = 9090 } } },
            });
            clusters[Cluster] = new ClusterResource(Cluster, cluster, Cluster);
            endpoints[Cluster] = new ClusterLoadAssignment { ClusterName = Cluster, Endpoints = { locality } };
        }

        return new MeshSnapshot(
            version,
            listeners.ToFrozenDictionary(StringComparer.Ordinal),
            new Dictionary<string, RouteConfiguration> { [Target] = routes }.ToFrozenDictionary(StringComparer.Ordinal),
            clusters.ToFrozenDictionary(StringComparer.Ordinal),
            endpoints.ToFrozenDictionary(StringComparer.Ordinal));
    }
}

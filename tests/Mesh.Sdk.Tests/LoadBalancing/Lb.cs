using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Mesh.Sdk.LoadBalancing;

namespace Mesh.Sdk.Tests.LoadBalancing;

/// <summary>Builders of EDS load assignments and helpers for counting picks.</summary>
internal static class Lb
{
    public const string ClusterName = "outbound|9080|v1|reviews.default.svc.cluster.local";

    public static LbEndpoint Ep(string address, uint? weight = null, HealthStatus health = HealthStatus.Healthy, int port = 9080)
    {
        var (host, p) = address.Count(c => c == ':') == 1
            ? (address[..address.LastIndexOf(':')], int.Parse(address[(address.LastIndexOf(':') + 1)..]))
            : (address, port);
        var ep = new LbEndpoint
        {
            Endpoint = new Endpoint { Address = new Address { SocketAddress = new SocketAddress { Address = host, PortValue = (uint)p } } },
            HealthStatus = health,
        };
        if (weight is { } w)
        {
            ep.LoadBalancingWeight = w;
        }

        return ep;
    }

    public static LocalityLbEndpoints Locality(string zone, uint priority, uint? weight, params LbEndpoint[] endpoints)
    {
        var l = new LocalityLbEndpoints { Locality = new Locality { Region = "r1", Zone = zone }, Priority = priority };
        if (weight is { } w)
        {
            l.LoadBalancingWeight = w;
        }

        l.LbEndpoints.AddRange(endpoints);
        return l;
    }

    public static ClusterLoadAssignment Assignment(params LocalityLbEndpoints[] localities)
    {
        var cla = new ClusterLoadAssignment { ClusterName = ClusterName };
        cla.Endpoints.AddRange(localities);
        return cla;
    }

    /// <summary>One locality at priority 0 with the given endpoints.</summary>
    public static ClusterLoadAssignment Flat(params LbEndpoint[] endpoints) => Assignment(Locality("z1", 0, 1, endpoints));

    /// <summary>N healthy endpoints 10.0.0.1:9080, 10.0.0.2:9080, … in one locality.</summary>
    public static ClusterLoadAssignment Hosts(int count)
        => Flat(Enumerable.Range(1, count).Select(i => Ep($"10.0.{i / 200}.{i % 200}")).ToArray());

    public static ClusterLoadBalancer Balancer(ClusterLoadAssignment cla, LoadBalancerPolicy? policy = null, int seed = 42)
    {
        var lb = new ClusterLoadBalancer(ClusterName, policy ?? LoadBalancerPolicy.Default, new Random(seed));
        lb.Update(EndpointSet.Create(ClusterName, cla));
        return lb;
    }

    public static Cluster Cluster(Cluster.Types.LbPolicy policy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.RoundRobin)
        => new() { Name = ClusterName, Type = Envoy.Config.Cluster.V3.Cluster.Types.DiscoveryType.Eds, LbPolicy = policy };

    /// <summary>Picks <paramref name="picks"/> times and counts picks per endpoint key (null picks under "none").</summary>
    public static Dictionary<string, int> Count(ClusterLoadBalancer lb, int picks, Func<int, PickContext>? context = null)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < picks; i++)
        {
            var ctx = context?.Invoke(i) ?? default;
            var key = lb.Pick(ctx)?.Key ?? "none";
            counts[key] = counts.GetValueOrDefault(key) + 1;
        }

        return counts;
    }

    public static double Share(Dictionary<string, int> counts, string key) => (double)counts.GetValueOrDefault(key) / counts.Values.Sum();
}

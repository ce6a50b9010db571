using Envoy.Config.Route.V3;

namespace Mesh.Sdk.Resources;

/// <summary>Names one resource refers to.</summary>
internal static class ResourceReferences
{
    /// <summary>
    /// Every cluster a route configuration's routes name (single and weighted), then the shadow clusters of its
    /// request mirror policies (route configuration, virtual host and route level), each once, in order.
    /// </summary>
    public static IReadOnlyList<string> ClusterNames(RouteConfiguration routes)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var result = new List<string>();
        AddMirrors(routes.RequestMirrorPolicies, seen, result);
        foreach (var host in routes.VirtualHosts)
        {
            AddMirrors(host.RequestMirrorPolicies, seen, result);
            foreach (var route in host.Routes)
            {
                if (route.ActionCase != Route.ActionOneofCase.Route_)
                {
                    continue;
                }

                var action = route.Route_;
                AddMirrors(action.RequestMirrorPolicies, seen, result);
                switch (action.ClusterSpecifierCase)
                {
                    case RouteAction.ClusterSpecifierOneofCase.Cluster:
                        if (seen.Add(action.Cluster))
                        {
                            result.Add(action.Cluster);
                        }

                        break;
                    case RouteAction.ClusterSpecifierOneofCase.WeightedClusters:
                        foreach (var weighted in action.WeightedClusters.Clusters)
                        {
                            if (seen.Add(weighted.Name))
                            {
                                result.Add(weighted.Name);
                            }
                        }

                        break;
                }
            }
        }

        return result;
    }

    private static void AddMirrors(IEnumerable<RouteAction.Types.RequestMirrorPolicy> policies, HashSet<string> seen, List<string> result)
    {
        foreach (var policy in policies)
        {
            if (policy.Cluster.Length > 0 && seen.Add(policy.Cluster))
            {
                result.Add(policy.Cluster);
            }
        }
    }
}

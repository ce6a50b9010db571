using Envoy.Config.Route.V3;

namespace Mesh.Sdk.Resources;

/// <summary>Names one resource refers to.</summary>
internal static class ResourceReferences
{
    /// <summary>Every cluster a route configuration's routes name (single and weighted), each once, in order.</summary>
    public static IReadOnlyList<string> ClusterNames(RouteConfiguration routes)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var result = new List<string>();
        foreach (var host in routes.VirtualHosts)
        {
            foreach (var route in host.Routes)
            {
                if (route.ActionCase != Route.ActionOneofCase.Route_)
                {
                    continue;
                }

                var action = route.Route_;
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
}

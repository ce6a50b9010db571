using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.ControlPlane.Config;
using Mesh.Xds;

namespace Mesh.ControlPlane.Translation;

/// <summary>
/// Applies the EnvoyFilter patches that select a workload to one of its inbound listeners, as istiod's
/// <c>envoyfilter</c> package applies SIDECAR_INBOUND patches: the root namespace's EnvoyFilters first, then the
/// workload namespace's, each group ordered by <c>priority</c> (then file order), patches in the order written.
/// </summary>
internal static class EnvoyFilterPatches
{
    /// <summary>Istio's name of a sidecar's inbound HTTP virtual host for a port.</summary>
    public static string InboundVirtualHostName(uint port) => $"inbound|http|{port}";

    /// <summary>The EnvoyFilters that apply to a workload, in the order istiod applies them.</summary>
    public static IReadOnlyList<EnvoyFilter> For(IReadOnlyList<EnvoyFilter> envoyFilters, InboundWorkload workload, string rootNamespace)
    {
        if (envoyFilters.Count == 0)
        {
            return [];
        }

        var result = new List<EnvoyFilter>();
        foreach (var inRoot in new[] { true, false })
        {
            var group = new List<EnvoyFilter>();
            foreach (var filter in envoyFilters)
            {
                if ((filter.Namespace == rootNamespace) == inRoot
                    && (inRoot || filter.Namespace == workload.Namespace)
                    && Selects(filter.Selector, workload.Labels))
                {
                    group.Add(filter);
                }
            }

            // A stable sort: equal priorities keep file order, as istiod keeps creation order.
            result.AddRange(group.OrderBy(static f => f.Priority));
        }

        return result;
    }

    /// <summary>Inserts the HTTP_FILTER patches into <paramref name="filters"/> (the HCM's list, router last).</summary>
    public static void ApplyHttpFilters(IReadOnlyList<EnvoyFilter> selected, uint port, List<HttpFilter> filters)
    {
        foreach (var envoyFilter in selected)
        {
            foreach (var patch in envoyFilter.HttpFilterPatches)
            {
                if (patch.PortNumber != 0 && patch.PortNumber != port)
                {
                    continue;
                }

                // Optional, so that gRPC xDS servers, which have no local rate limit filter, keep serving (they would
                // reject the listener otherwise); Envoy and the SDK implement it and run it all the same.
                var value = patch.Value.Clone();
                value.IsOptional = true;
                switch (patch.Operation)
                {
                    case EnvoyFilterOperation.Add:
                        filters.Add(value);
                        break;
                    case EnvoyFilterOperation.InsertFirst:
                        filters.Insert(0, value);
                        break;
                    case EnvoyFilterOperation.InsertBefore when patch.SubFilter is null:
                        filters.Insert(0, value);
                        break;
                    case EnvoyFilterOperation.InsertAfter when patch.SubFilter is null:
                        filters.Add(value);
                        break;
                    case EnvoyFilterOperation.InsertBefore:
                    case EnvoyFilterOperation.InsertAfter:
                        // Relative to the first filter of that name; no such filter, no change (as istiod).
                        var at = filters.FindIndex(f => f.Name == patch.SubFilter);
                        if (at >= 0)
                        {
                            filters.Insert(patch.Operation == EnvoyFilterOperation.InsertBefore ? at : at + 1, value);
                        }

                        break;
                }
            }
        }
    }

    /// <summary>Merges the HTTP_ROUTE patches into the routes of <paramref name="routeConfig"/>.</summary>
    public static void ApplyRoutes(IReadOnlyList<EnvoyFilter> selected, uint port, RouteConfiguration routeConfig)
    {
        foreach (var envoyFilter in selected)
        {
            foreach (var patch in envoyFilter.RoutePatches)
            {
                if (patch.PortNumber != 0 && patch.PortNumber != port)
                {
                    continue;
                }

                foreach (var vhost in routeConfig.VirtualHosts)
                {
                    if (patch.VirtualHostName is not null && patch.VirtualHostName != vhost.Name)
                    {
                        continue;
                    }

                    foreach (var route in vhost.Routes)
                    {
                        if (patch.RouteName is not null && patch.RouteName != route.Name)
                        {
                            continue;
                        }

                        if (patch.PerRoute is not null)
                        {
                            // Wrapped as optional for the same reason as the filter (gRPC rejects unknown per-route configs).
                            route.TypedPerFilterConfig[HttpFilterNames.LocalRateLimit] = Any.Pack(new FilterConfig { Config = Any.Pack(patch.PerRoute), IsOptional = true });
                        }

                        // The inbound route keeps its non_forwarding_action (gRPC servers require it), so it has no
                        // RouteAction to carry rate_limits: they go on its virtual host, which holds only this route.
                        // Envoy reads a virtual host's rate_limits for a route that has none (vh_rate_limits OVERRIDE,
                        // the default), so the descriptors are the same.
                        vhost.RateLimits.Add(patch.RateLimits.Select(static r => r.Clone()));
                    }
                }
            }
        }
    }

    private static bool Selects(IReadOnlyDictionary<string, string>? selector, IReadOnlyDictionary<string, string> labels)
    {
        foreach (var (key, value) in selector ?? Config.Empty.Labels)
        {
            if (!labels.TryGetValue(key, out var actual) || actual != value)
            {
                return false;
            }
        }

        return true;
    }
}

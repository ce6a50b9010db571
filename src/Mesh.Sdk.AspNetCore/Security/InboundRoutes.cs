using Envoy.Config.Route.V3;
using Mesh.Sdk.Routing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace Mesh.Sdk.AspNetCore.Security;

/// <summary>
/// Finds the virtual host and route of an inbound request in its listener's inline route configuration, for the
/// per-route configuration of local rate limits. Inbound route configurations are small (istiod and the control plane
/// send one virtual host, <c>*</c>, with one route, prefix <c>/</c>): virtual hosts match by <c>*</c> or the exact
/// authority, routes by <c>prefix</c> or <c>path</c>; other route matches never match here, and such a request is
/// governed by the filter's listener-level configuration.
/// </summary>
internal static class InboundRoutes
{
    public static (int VirtualHost, int Route) Match<TRequest>(RouteConfiguration? routes, in TRequest request)
        where TRequest : IRouteRequest
    {
        if (routes is null)
        {
            return (-1, -1);
        }

        var path = request.PathAndQuery.AsSpan();
        var query = path.IndexOf('?');
        if (query >= 0)
        {
            path = path[..query];
        }

        var authority = request.Authority;
        for (var v = 0; v < routes.VirtualHosts.Count; v++)
        {
            var vhost = routes.VirtualHosts[v];
            var domainMatches = false;
            foreach (var domain in vhost.Domains)
            {
                if (domain == "*" || string.Equals(domain, authority, StringComparison.OrdinalIgnoreCase))
                {
                    domainMatches = true;
                    break;
                }
            }

            if (!domainMatches)
            {
                continue;
            }

            for (var r = 0; r < vhost.Routes.Count; r++)
            {
                var match = vhost.Routes[r].Match;
                if (match is null || match.Headers.Count > 0 || match.QueryParameters.Count > 0)
                {
                    continue;
                }

                var caseSensitive = match.CaseSensitive ?? true;
                var comparison = caseSensitive ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase;
                var matched = match.PathSpecifierCase switch
                {
                    RouteMatch.PathSpecifierOneofCase.Prefix => path.StartsWith(match.Prefix, comparison),
                    RouteMatch.PathSpecifierOneofCase.Path => path.Equals(match.Path, comparison),
                    _ => false,
                };
                if (matched)
                {
                    return (v, r);
                }
            }

            return (v, -1);
        }

        return (-1, -1);
    }
}

/// <summary>Header mutations applied to an ASP.NET Core header dictionary (request or response).</summary>
internal readonly struct HeaderDictionaryTarget(IHeaderDictionary headers) : IHeaderMutationTarget
{
    public bool Contains(string name) => headers.TryGetValue(name, out var values) && values.Count > 0;

    public void Remove(string name) => headers.Remove(name);

    public void Append(string name, string value) => headers[name] = StringValues.Concat(headers[name], value);
}

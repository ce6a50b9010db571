using System.Diagnostics.CodeAnalysis;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Common.Ratelimit.V3;
using Envoy.Extensions.Filters.Http.LocalRatelimit.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.Collections;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.Routing;
using Mesh.Xds;

namespace Mesh.Sdk.RateLimiting;

/// <summary>
/// One <c>envoy.filters.http.local_ratelimit</c> entry of an HTTP connection manager, compiled with the route
/// configuration it serves: for every route, the most specific configuration (the route's
/// <c>typed_per_filter_config</c>, else its virtual host's, else the route configuration's, else the filter's own),
/// each with its own token bucket, as Envoy keeps one bucket per configuration.
/// </summary>
/// <remarks>
/// Compile once per listener update, passing the previous compilation: a configuration that is unchanged at the same
/// place keeps its buckets, so an update elsewhere does not hand out a fresh burst.
/// </remarks>
internal sealed class LocalRateLimitFilter
{
    private readonly LocalRateLimitPolicy? _listener;
    private readonly RouteEntry[][] _routes;
    private readonly Dictionary<string, LocalRateLimitPolicy> _byPlace;

    private LocalRateLimitFilter(string name, LocalRateLimitPolicy? listener, RouteEntry[][] routes, Dictionary<string, LocalRateLimitPolicy> byPlace)
    {
        Name = name;
        _listener = listener;
        _routes = routes;
        _byPlace = byPlace;
    }

    /// <summary>The filter's name in the HTTP filter list (the key of <c>typed_per_filter_config</c> entries).</summary>
    public string Name { get; }

    /// <summary>The listener-wide configuration; null when the filter is disabled on the listener.</summary>
    public LocalRateLimitPolicy? Listener => _listener;

    /// <summary>Whether an HTTP filter is a local rate limit filter.</summary>
    public static bool Is(HttpFilter filter)
        => filter.TypedConfig?.TypeUrl == XdsTypeUrls.LocalRateLimit || (filter.TypedConfig is null && filter.Name == HttpFilterNames.LocalRateLimit);

    /// <summary>Compiles; on failure <paramref name="errors"/> lists every problem, naming where it is.</summary>
    /// <param name="filter">The HTTP filter entry (typed config a <c>LocalRateLimit</c>).</param>
    /// <param name="routes">The route configuration of the same connection manager; null when there is none.</param>
    /// <param name="time">The clock of the token buckets.</param>
    /// <param name="random">The source of <c>filter_enabled</c> / <c>filter_enforced</c> samples; <see cref="Random.Shared"/> by default.</param>
    /// <param name="previous">The compilation this one replaces, whose unchanged buckets carry over.</param>
    /// <param name="compiled">The compiled filter.</param>
    /// <param name="errors">The problems found.</param>
    public static bool TryCompile(
        HttpFilter filter,
        RouteConfiguration? routes,
        TimeProvider time,
        Random? random,
        LocalRateLimitFilter? previous,
        [NotNullWhen(true)] out LocalRateLimitFilter? compiled,
        out IReadOnlyList<string> errors)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentNullException.ThrowIfNull(time);
        random ??= Random.Shared;
        var problems = new List<string>();
        var byPlace = new Dictionary<string, LocalRateLimitPolicy>(StringComparer.Ordinal);

        LocalRateLimitPolicy? Policy(LocalRateLimit config, bool perRoute, string place)
        {
            if (previous is not null && previous._byPlace.TryGetValue(place, out var old) && old.Config.Equals(config))
            {
                byPlace[place] = old;
                return old;
            }

            if (!LocalRateLimitPolicy.TryCompile(config, perRoute, time, random, out var policy, out var error))
            {
                problems.Add($"{place}: {error}");
                return null;
            }

            byPlace[place] = policy;
            return policy;
        }

        LocalRateLimitPolicy? listener = null;
        if (filter.TypedConfig is null || filter.TypedConfig.TypeUrl != XdsTypeUrls.LocalRateLimit)
        {
            problems.Add($"HTTP filter '{filter.Name}': typed_config must be {XdsTypeUrls.LocalRateLimit}, got '{filter.TypedConfig?.TypeUrl}'");
        }
        else if (!filter.Disabled)
        {
            listener = Policy(filter.TypedConfig.Unpack<LocalRateLimit>(), perRoute: false, $"HTTP filter '{filter.Name}'");
        }

        var table = new RouteEntry[routes?.VirtualHosts.Count ?? 0][];
        if (routes is not null)
        {
            var configScope = ScopeOf(routes.TypedPerFilterConfig, filter.Name, $"route configuration '{routes.Name}'", Policy, problems) ?? Scope.Inherit;
            for (var v = 0; v < routes.VirtualHosts.Count; v++)
            {
                var vh = routes.VirtualHosts[v];
                var vhPlace = $"virtual host '{(vh.Name.Length > 0 ? vh.Name : $"[{v}]")}'";
                var vhScope = ScopeOf(vh.TypedPerFilterConfig, filter.Name, vhPlace, Policy, problems) ?? configScope;
                table[v] = new RouteEntry[vh.Routes.Count];
                for (var r = 0; r < vh.Routes.Count; r++)
                {
                    var route = vh.Routes[r];
                    var place = $"{vhPlace} route '{(route.Name.Length > 0 ? route.Name : $"[{r}]")}'";
                    var scope = ScopeOf(route.TypedPerFilterConfig, filter.Name, place, Policy, problems) ?? vhScope;
                    var governing = scope.Disabled ? null : scope.Policy ?? listener;
                    table[v][r] = new RouteEntry(scope, RateLimitsOf(vh, route, governing, place, problems));
                }
            }
        }

        errors = problems;
        compiled = problems.Count == 0 ? new LocalRateLimitFilter(filter.Name, listener, table, byPlace) : null;
        return compiled is not null;
    }

    /// <summary>
    /// The configuration that governs a route: the most specific per-route one, else the listener's; null when the
    /// filter does not act on it (disabled for the route, or on the listener with no per-route configuration).
    /// </summary>
    /// <param name="virtualHostIndex">The matched virtual host's position in the route configuration; -1 when none matched.</param>
    /// <param name="routeIndex">The matched route's position in its virtual host; -1 when none matched.</param>
    public LocalRateLimitPolicy? PolicyFor(int virtualHostIndex, int routeIndex)
    {
        if ((uint)virtualHostIndex < (uint)_routes.Length && (uint)routeIndex < (uint)_routes[virtualHostIndex].Length)
        {
            var scope = _routes[virtualHostIndex][routeIndex].Scope;
            return scope.Disabled ? null : scope.Policy ?? _listener;
        }

        return _listener;
    }

    /// <summary>Decides for one request on a route (see <see cref="PolicyFor"/>), without descriptors.</summary>
    /// <param name="virtualHostIndex">The matched virtual host's position; -1 when none matched.</param>
    /// <param name="routeIndex">The matched route's position in its virtual host; -1 when none matched.</param>
    /// <param name="connection">The downstream connection, for per-connection buckets.</param>
    public RateLimitDecision Check(int virtualHostIndex, int routeIndex, object? connection = null)
        => PolicyFor(virtualHostIndex, routeIndex)?.Check(connection) ?? RateLimitDecision.Allowed;

    /// <summary>
    /// Decides for one request on a route (see <see cref="PolicyFor"/>); when the configuration has
    /// <c>descriptors</c>, the request's descriptors come from the route's <c>rate_limits</c> actions.
    /// </summary>
    /// <param name="virtualHostIndex">The matched virtual host's position; -1 when none matched.</param>
    /// <param name="routeIndex">The matched route's position in its virtual host; -1 when none matched.</param>
    /// <param name="request">The request, read by the <c>rate_limits</c> actions.</param>
    /// <param name="connection">The downstream connection, for per-connection buckets.</param>
    public RateLimitDecision Check<TRequest>(int virtualHostIndex, int routeIndex, in TRequest request, object? connection = null)
        where TRequest : IRouteRequest
    {
        var policy = PolicyFor(virtualHostIndex, routeIndex);
        if (policy is null)
        {
            return RateLimitDecision.Allowed;
        }

        List<string>? descriptors = null;
        if (policy.HasDescriptors && (uint)virtualHostIndex < (uint)_routes.Length && (uint)routeIndex < (uint)_routes[virtualHostIndex].Length)
        {
            foreach (var actions in _routes[virtualHostIndex][routeIndex].RateLimits)
            {
                if (actions.TryPopulate(in request, out var descriptor))
                {
                    (descriptors ??= []).Add(descriptor);
                }
            }
        }

        return policy.Check(connection, descriptors);
    }

    /// <summary>
    /// The route's <c>rate_limits</c> entries the governing configuration reads: the route action's, and the virtual
    /// host's as <c>vh_rate_limits</c> says (OVERRIDE: only when the route has none; INCLUDE: as well; IGNORE: never;
    /// the route's <c>include_vh_rate_limits</c> means INCLUDE), of the configuration's <c>stage</c>, without a
    /// <c>disable_key</c>.
    /// </summary>
    private static RateLimitActions[] RateLimitsOf(VirtualHost vh, Route route, LocalRateLimitPolicy? policy, string place, List<string> problems)
    {
        if (policy is not { HasDescriptors: true })
        {
            return [];
        }

        var routeLimits = route.Route_?.RateLimits;
        var option = route.Route_?.IncludeVhRateLimits == true ? VhRateLimitsOptions.Include : policy.Config.VhRateLimits;
        var entries = new List<RateLimit>(routeLimits ?? []);
        if (option == VhRateLimitsOptions.Include || (option == VhRateLimitsOptions.Override && entries.Count == 0))
        {
            entries.AddRange(vh.RateLimits);
        }

        var result = new List<RateLimitActions>();
        foreach (var entry in entries)
        {
            if ((entry.Stage ?? 0) != policy.Stage || entry.DisableKey.Length > 0)
            {
                continue;
            }

            if (RateLimitActions.TryCompile(entry, out var compiled, out var error))
            {
                result.Add(compiled);
            }
            else
            {
                problems.Add($"{place}: {error}");
            }
        }

        return [.. result];
    }

    private static Scope? ScopeOf(
        MapField<string, Any> perFilter,
        string filterName,
        string place,
        Func<LocalRateLimit, bool, string, LocalRateLimitPolicy?> policy,
        List<string> problems)
    {
        if (!perFilter.TryGetValue(filterName, out var any))
        {
            return null;
        }

        if (any.TypeUrl == XdsTypeUrls.FilterConfig)
        {
            var wrapper = any.Unpack<FilterConfig>();
            if (wrapper.Disabled)
            {
                return Scope.Off;
            }

            if (wrapper.Config is null)
            {
                problems.Add($"{place}: typed_per_filter_config '{filterName}' is a FilterConfig without config");
                return null;
            }

            any = wrapper.Config;
        }

        if (any.TypeUrl != XdsTypeUrls.LocalRateLimit)
        {
            problems.Add($"{place}: typed_per_filter_config '{filterName}' must be {XdsTypeUrls.LocalRateLimit}, got '{any.TypeUrl}'");
            return null;
        }

        var compiled = policy(any.Unpack<LocalRateLimit>(), true, place);
        return compiled is null ? null : new Scope(compiled, Disabled: false);
    }

    private sealed record RouteEntry(Scope Scope, RateLimitActions[] RateLimits);

    private sealed record Scope(LocalRateLimitPolicy? Policy, bool Disabled)
    {
        public static readonly Scope Inherit = new(null, false);
        public static readonly Scope Off = new(null, true);
    }
}

using Envoy.Extensions.Filters.Http.LocalRatelimit.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;

namespace Mesh.ControlPlane.Config;

// The subset of networking.istio.io/v1alpha3 EnvoyFilter the control plane applies: the shapes of Istio's "local rate
// limit" task, patched into the proxyless inbound listeners. Every other patch is reported as not applied.

/// <summary>Where an HTTP_FILTER patch puts its filter (Istio's <c>patch.operation</c>).</summary>
internal enum EnvoyFilterOperation { Add, InsertBefore, InsertAfter, InsertFirst }

/// <summary>
/// An <c>applyTo: HTTP_FILTER</c> patch on the inbound HTTP connection manager: insert <see cref="Value"/> (an
/// <c>envoy.filters.http.local_ratelimit</c> filter whose typed config is a <c>LocalRateLimit</c>).
/// </summary>
/// <param name="Operation">Where the filter goes.</param>
/// <param name="PortNumber"><c>match.listener.portNumber</c>; 0 matches every port.</param>
/// <param name="SubFilter"><c>match.listener.filterChain.filter.subFilter.name</c>; null when none is named.</param>
/// <param name="Value">The filter to insert.</param>
/// <param name="Line">The line of the patch in its file.</param>
internal sealed record EnvoyFilterHttpFilterPatch(EnvoyFilterOperation Operation, uint PortNumber, string? SubFilter, HttpFilter Value, int Line);

/// <summary>
/// An <c>applyTo: HTTP_ROUTE</c> MERGE patch on the inbound route: sets the route's
/// <c>typed_per_filter_config[envoy.filters.http.local_ratelimit]</c> to <see cref="PerRoute"/> and adds
/// <see cref="RateLimits"/> (<c>route.rate_limits</c>, the actions that make a request's descriptors).
/// </summary>
/// <param name="PortNumber"><c>match.routeConfiguration.portNumber</c>; 0 matches every port.</param>
/// <param name="VirtualHostName"><c>match.routeConfiguration.vhost.name</c> (for example <c>inbound|http|9080</c>); null matches any.</param>
/// <param name="RouteName"><c>match.routeConfiguration.vhost.route.name</c>; null matches any.</param>
/// <param name="PerRoute">The route's local rate limit configuration; null when the patch sets none.</param>
/// <param name="RateLimits">The <c>route.rate_limits</c> entries to add.</param>
/// <param name="Line">The line of the patch in its file.</param>
internal sealed record EnvoyFilterRoutePatch(uint PortNumber, string? VirtualHostName, string? RouteName, LocalRateLimit? PerRoute, IReadOnlyList<Envoy.Config.Route.V3.RateLimit> RateLimits, int Line);

/// <summary><c>networking.istio.io/v1alpha3</c> EnvoyFilter: the patches of it that apply to inbound listeners.</summary>
internal sealed record EnvoyFilter : IstioResource
{
    /// <summary><c>workloadSelector.labels</c>; null means every workload of the namespace (of the mesh in the root namespace).</summary>
    public IReadOnlyDictionary<string, string>? Selector { get; init; }

    /// <summary><c>priority</c>: lower values apply first.</summary>
    public int Priority { get; init; }

    /// <summary>The HTTP_FILTER patches, in the order written.</summary>
    public IReadOnlyList<EnvoyFilterHttpFilterPatch> HttpFilterPatches { get; init; } = [];

    /// <summary>The HTTP_ROUTE patches, in the order written.</summary>
    public IReadOnlyList<EnvoyFilterRoutePatch> RoutePatches { get; init; } = [];

    public bool HasSelector => Selector is { Count: > 0 };
}

namespace Mesh.Sdk.Routing;

/// <summary>The outcome of matching a request.</summary>
internal enum RouteMatchStatus
{
    /// <summary>No virtual host's domains match the authority: answer 404 (Envoy's <c>NR</c> flag).</summary>
    NoVirtualHost,

    /// <summary>A virtual host matched but none of its routes did: answer 404 (<c>NR</c>).</summary>
    NoRoute,

    /// <summary>A route matched; see <see cref="RouteMatchResult.Route"/>.</summary>
    Matched,
}

/// <summary>
/// The result of <see cref="CompiledRouteTable.Match{TRequest}"/>: a struct holding references into the
/// immutable table, so matching allocates nothing.
/// </summary>
internal readonly struct RouteMatchResult
{
    private RouteMatchResult(RouteMatchStatus status, CompiledVirtualHost? virtualHost, CompiledRoute? route, RouteTarget? target)
    {
        Status = status;
        VirtualHost = virtualHost;
        Route = route;
        Target = target;
    }

    /// <summary>The outcome.</summary>
    public RouteMatchStatus Status { get; }

    /// <summary>Whether a route matched.</summary>
    public bool IsMatch => Status == RouteMatchStatus.Matched;

    /// <summary>The virtual host chosen by authority, when one matched.</summary>
    public CompiledVirtualHost? VirtualHost { get; }

    /// <summary>The matched route.</summary>
    public CompiledRoute? Route { get; }

    /// <summary>The chosen target (for weighted clusters, the one picked).</summary>
    public RouteTarget? Target { get; }

    /// <summary>The chosen cluster; empty for redirects and direct responses, <see langword="null"/> without a match.</summary>
    public string? Cluster => Target?.Cluster;

    /// <summary>The status a caller answers when nothing matched (404, as Envoy).</summary>
    public const int NoRouteStatus = 404;

    internal static RouteMatchResult NoVirtualHostResult => new(RouteMatchStatus.NoVirtualHost, null, null, null);

    internal static RouteMatchResult NoRouteResult(CompiledVirtualHost virtualHost) => new(RouteMatchStatus.NoRoute, virtualHost, null, null);

    internal static RouteMatchResult Matched(CompiledVirtualHost virtualHost, CompiledRoute route, RouteTarget target) => new(RouteMatchStatus.Matched, virtualHost, route, target);
}

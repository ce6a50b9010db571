namespace Mesh.Sdk.Routing;

/// <summary>
/// One place a matched route sends requests: the route's single cluster, or one weighted cluster. Header
/// mutations and the fault policy are flattened per target at compile time so matching allocates nothing.
/// </summary>
internal sealed class RouteTarget
{
    /// <summary>Creates a target.</summary>
    public RouteTarget(string cluster, uint weight, ulong cumulativeWeight, HeaderMutations requestHeaders, HeaderMutations responseHeaders, string? hostRewriteLiteral, FaultPolicy? fault)
    {
        Cluster = cluster;
        Weight = weight;
        CumulativeWeight = cumulativeWeight;
        RequestHeaders = requestHeaders;
        ResponseHeaders = responseHeaders;
        HostRewriteLiteral = hostRewriteLiteral;
        Fault = fault;
    }

    /// <summary>The cluster name; empty for redirect and direct-response routes.</summary>
    public string Cluster { get; }

    /// <summary>This target's weight (1 for a single cluster).</summary>
    public uint Weight { get; }

    /// <summary>The running total of weights up to and including this target (exclusive upper bound of its slice).</summary>
    public ulong CumulativeWeight { get; }

    /// <summary>Request header operations from every level, in Envoy's order.</summary>
    public HeaderMutations RequestHeaders { get; }

    /// <summary>Response header operations from every level, in Envoy's order.</summary>
    public HeaderMutations ResponseHeaders { get; }

    /// <summary>The authority to send upstream, when rewritten to a literal (weighted cluster over route).</summary>
    public string? HostRewriteLiteral { get; }

    /// <summary>The fault policy in force, or <see langword="null"/> for none.</summary>
    public FaultPolicy? Fault { get; }
}

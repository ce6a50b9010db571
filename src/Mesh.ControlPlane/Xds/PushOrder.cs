using Mesh.ControlPlane.Translation;

namespace Mesh.ControlPlane.Xds;

/// <summary>Which part of a type's changes one step of a push sends.</summary>
internal enum PushPhase
{
    /// <summary>Everything that differs from what the client holds.</summary>
    All,

    /// <summary>New and changed resources only; resources that went away are still held (SotW: still listed).</summary>
    Additions,

    /// <summary>Whatever is left after <see cref="Additions"/>: the resources that went away.</summary>
    Removals,
}

/// <summary>
/// Make-before-break order of a push that follows a new snapshot, as istiod and go-control-plane
/// order ADS: clusters and their endpoints first, then the listeners and routes that name them,
/// and only then the removal of clusters and endpoints nothing references any more. A client is
/// therefore never sent a route naming a cluster it has not been offered, and a cluster a route
/// still names is not deleted before the route that stops naming it.
/// </summary>
internal static class PushOrder
{
    public static readonly IReadOnlyList<(string TypeUrl, PushPhase Phase)> Steps =
    [
        (ResourceTypes.Cluster, PushPhase.Additions),
        (ResourceTypes.Endpoint, PushPhase.Additions),
        (ResourceTypes.Listener, PushPhase.All),
        (ResourceTypes.Route, PushPhase.All),
        (ResourceTypes.Cluster, PushPhase.Removals),
        (ResourceTypes.Endpoint, PushPhase.Removals),
    ];
}

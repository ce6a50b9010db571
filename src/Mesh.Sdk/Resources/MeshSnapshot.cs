using System.Collections.Frozen;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;

namespace Mesh.Sdk.Resources;

/// <summary>
/// One immutable, validated view of the xDS resources the application depends on. A new instance with a
/// higher <see cref="Version"/> is published after every accepted update. The proto messages inside are
/// shared between snapshots and must not be modified.
/// </summary>
public sealed record MeshSnapshot
{
    /// <summary>The empty snapshot, version 0, in force before the control plane has answered.</summary>
    public static MeshSnapshot Empty { get; } = new(
        0,
        FrozenDictionary<string, ListenerResource>.Empty,
        FrozenDictionary<string, RouteConfiguration>.Empty,
        FrozenDictionary<string, ClusterResource>.Empty,
        FrozenDictionary<string, ClusterLoadAssignment>.Empty);

    /// <summary>Creates a snapshot.</summary>
    /// <param name="version">The snapshot version; grows by one with every publication.</param>
    /// <param name="listeners">Listeners by resource name.</param>
    /// <param name="routes">Route configurations (RDS) by resource name.</param>
    /// <param name="clusters">Clusters by resource name.</param>
    /// <param name="endpoints">Cluster load assignments (EDS) by resource name.</param>
    public MeshSnapshot(
        long version,
        IReadOnlyDictionary<string, ListenerResource> listeners,
        IReadOnlyDictionary<string, RouteConfiguration> routes,
        IReadOnlyDictionary<string, ClusterResource> clusters,
        IReadOnlyDictionary<string, ClusterLoadAssignment> endpoints)
    {
        Version = version;
        Listeners = listeners;
        Routes = routes;
        Clusters = clusters;
        Endpoints = endpoints;
    }

    /// <summary>The snapshot version; grows by one with every publication.</summary>
    public long Version { get; }

    /// <summary>Listeners by resource name, for example <c>reviews.default.svc.cluster.local:9080</c>.</summary>
    public IReadOnlyDictionary<string, ListenerResource> Listeners { get; }

    /// <summary>Route configurations received over RDS, by resource name.</summary>
    public IReadOnlyDictionary<string, RouteConfiguration> Routes { get; }

    /// <summary>Clusters by resource name, for example <c>outbound|9080|v1|reviews.default.svc.cluster.local</c>.</summary>
    public IReadOnlyDictionary<string, ClusterResource> Clusters { get; }

    /// <summary>Cluster load assignments received over EDS, by resource name (the EDS service name).</summary>
    public IReadOnlyDictionary<string, ClusterLoadAssignment> Endpoints { get; }

    /// <summary>
    /// Listeners that were asked for but that the control plane says do not exist (deleted, left out of a
    /// State-of-the-World response, or not sent within 15 s of subscribing). A caller can treat such a host
    /// as outside the mesh instead of waiting for it.
    /// </summary>
    /// <value>Empty by default.</value>
    public IReadOnlySet<string> MissingListeners { get; init; } = FrozenSet<string>.Empty;

    /// <summary>
    /// Clusters that routes name but that the control plane says do not exist (such as the cluster of a
    /// DestinationRule subset nobody defined). Requests routed to one are answered at once with 503 and response
    /// flag <c>NC</c>, as Envoy answers them, instead of waiting for a cluster that will not come.
    /// </summary>
    /// <value>Empty by default.</value>
    public IReadOnlySet<string> MissingClusters { get; init; } = FrozenSet<string>.Empty;

    /// <summary>The route configuration a listener uses: its inline one or the RDS resource it names.</summary>
    /// <param name="listenerName">The listener resource name.</param>
    /// <param name="routeConfiguration">The route configuration when known.</param>
    /// <returns><see langword="true"/> when the listener and its route configuration are present.</returns>
    public bool TryGetRouteConfiguration(string listenerName, out RouteConfiguration routeConfiguration)
    {
        routeConfiguration = null!;
        if (!Listeners.TryGetValue(listenerName, out var listener))
        {
            return false;
        }

        if (listener.InlineRouteConfiguration is { } inline)
        {
            routeConfiguration = inline;
            return true;
        }

        return listener.RouteConfigName is { } name && Routes.TryGetValue(name, out routeConfiguration!);
    }

    /// <summary>The endpoints of a cluster: its EDS resource, or the cluster's own <c>load_assignment</c>.</summary>
    /// <param name="clusterName">The cluster resource name.</param>
    /// <param name="endpoints">The load assignment when known.</param>
    /// <returns><see langword="true"/> when the cluster and its endpoints are present.</returns>
    public bool TryGetEndpoints(string clusterName, out ClusterLoadAssignment endpoints)
    {
        endpoints = null!;
        if (!Clusters.TryGetValue(clusterName, out var cluster))
        {
            return false;
        }

        if (cluster.EdsServiceName is { } eds)
        {
            return Endpoints.TryGetValue(eds, out endpoints!);
        }

        if (cluster.Cluster.LoadAssignment is { } inline)
        {
            endpoints = inline;
            return true;
        }

        return false;
    }

    /// <summary>
    /// Whether everything a listener needs is present: the listener, its route configuration, every cluster
    /// its routes name and every such cluster's endpoints (a cluster in <see cref="MissingClusters"/> counts as
    /// settled: the control plane said it does not exist).
    /// </summary>
    /// <param name="listenerName">The listener resource name.</param>
    /// <returns><see langword="true"/> when the whole chain is present.</returns>
    public bool IsComplete(string listenerName)
    {
        if (!TryGetRouteConfiguration(listenerName, out var routes))
        {
            return false;
        }

        foreach (var cluster in ResourceReferences.ClusterNames(routes))
        {
            // A cluster the control plane says does not exist is settled too: requests routed to it get 503 (NC).
            if (!TryGetEndpoints(cluster, out _) && !MissingClusters.Contains(cluster))
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>
/// A validated Listener with its decoded HttpConnectionManager. Client (API) listeners have one; for a
/// server-side listener (address and filter chains) this is the default filter chain's, else the first chain's.
/// </summary>
/// <param name="Name">The listener resource name.</param>
/// <param name="Listener">The Listener message.</param>
/// <param name="HttpConnectionManager">The HttpConnectionManager decoded from the api_listener (or the main filter chain).</param>
/// <param name="RouteConfigName">The RDS resource name when routes come over RDS; otherwise <see langword="null"/>.</param>
/// <param name="InlineRouteConfiguration">The inline route configuration; otherwise <see langword="null"/>.</param>
public sealed record ListenerResource(
    string Name,
    Listener Listener,
    HttpConnectionManager HttpConnectionManager,
    string? RouteConfigName,
    RouteConfiguration? InlineRouteConfiguration)
{
    /// <summary>Every RDS name the listener uses (for server-side listeners, across all filter chains).</summary>
    /// <value>Empty when routes are inline.</value>
    public IReadOnlyList<string> RouteConfigNames { get; init; } = RouteConfigName is null ? [] : [RouteConfigName];

    /// <summary>Whether this is a client-side API listener (as opposed to a server-side socket listener).</summary>
    public bool IsApiListener => Listener.ApiListener is not null;
}

/// <summary>A validated Cluster.</summary>
/// <param name="Name">The cluster resource name.</param>
/// <param name="Cluster">The Cluster message.</param>
/// <param name="EdsServiceName">For EDS clusters the ClusterLoadAssignment name (<c>eds_cluster_config.service_name</c>, else the cluster name); <see langword="null"/> for clusters carrying their own <c>load_assignment</c>.</param>
public sealed record ClusterResource(string Name, Cluster Cluster, string? EdsServiceName);

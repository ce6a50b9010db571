namespace Mesh.Sdk.Resilience;

/// <summary>
/// Thrown when a request to a cluster is refused because one of the cluster's circuit-breaker limits
/// (<c>max_requests</c>, <c>max_pending_requests</c>, <c>max_connections</c>, <c>max_retries</c>) is reached.
/// Envoy answers such requests with 503 and <c>x-envoy-overloaded</c>; the request was not sent.
/// </summary>
public sealed class ClusterOverflowException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="clusterName">The cluster.</param>
    /// <param name="limitName">The limit's xDS field name, for example <c>max_requests</c>.</param>
    /// <param name="limit">The limit's value.</param>
    public ClusterOverflowException(string clusterName, string limitName, long limit)
        : base($"Cluster '{clusterName}' is over its {limitName} limit of {limit}.")
    {
        ClusterName = clusterName;
        LimitName = limitName;
        Limit = limit;
    }

    /// <summary>The cluster whose limit was reached.</summary>
    public string ClusterName { get; }

    /// <summary>The limit's xDS field name: <c>max_requests</c>, <c>max_pending_requests</c>, <c>max_connections</c> or <c>max_retries</c>.</summary>
    public string LimitName { get; }

    /// <summary>The configured value of the limit.</summary>
    public long Limit { get; }
}

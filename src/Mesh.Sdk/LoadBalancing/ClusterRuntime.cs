using Envoy.Config.Cluster.V3;
using Envoy.Config.Endpoint.V3;
using Mesh.Sdk.Resilience;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.LoadBalancing;

/// <summary>
/// Everything the request path needs about one cluster, compiled from its CDS resource and kept up to date
/// with its EDS resource: the load balancer, outlier detection, circuit breakers and connection-pool settings.
/// </summary>
internal sealed class ClusterRuntime : IDisposable
{
    private ClusterRuntime(
        Cluster cluster,
        ClusterLoadBalancer loadBalancer,
        OutlierDetector? outlierDetector,
        ClusterCircuitBreakers circuitBreakers,
        ConnectionPoolSettings connectionPool,
        ClusterTransports transports)
    {
        Cluster = cluster;
        Transports = transports;
        LoadBalancer = loadBalancer;
        OutlierDetector = outlierDetector;
        CircuitBreakers = circuitBreakers;
        ConnectionPool = connectionPool;
    }

    /// <summary>The cluster name.</summary>
    public string Name => Cluster.Name;

    /// <summary>The CDS resource this runtime was compiled from.</summary>
    public Cluster Cluster { get; }

    /// <summary>How requests reach this cluster's endpoints without a transport socket match: plaintext, TLS, or Istio mutual TLS.</summary>
    public UpstreamTransport Transport => Transports.Default.Kind;

    /// <summary>The cluster's transports; each endpoint's own is <see cref="MeshEndpoint.Transport"/>.</summary>
    public ClusterTransports Transports { get; }

    /// <summary>
    /// Whether requests to this cluster go over TLS validated by the system's roots (<c>https://</c> to the endpoint).
    /// Istio mutual TLS is not this: the connection pool does it under an <c>http://</c> request URI.
    /// </summary>
    public bool SendsTls => Transport == UpstreamTransport.Tls;

    /// <summary>The EDS resource in force, if any.</summary>
    public ClusterLoadAssignment? Assignment { get; private set; }

    /// <summary>The load balancer.</summary>
    public ClusterLoadBalancer LoadBalancer { get; }

    /// <summary>Outlier detection; <see langword="null"/> when the cluster has none.</summary>
    public OutlierDetector? OutlierDetector { get; }

    /// <summary>The circuit breakers (Envoy's defaults when the cluster sets none).</summary>
    public ClusterCircuitBreakers CircuitBreakers { get; }

    /// <summary>Connection-pool settings for the HTTP handler.</summary>
    public ConnectionPoolSettings ConnectionPool { get; }

    /// <summary>
    /// Compiles a cluster. Endpoint state (active requests, outlier history) of <paramref name="previous"/> is
    /// carried over for addresses that stay.
    /// </summary>
    /// <exception cref="NotSupportedException">The cluster uses something the SDK does not implement; the message names the cluster and field.</exception>
    /// <exception cref="InvalidDataException">The endpoints are invalid; the message names the endpoint.</exception>
    public static ClusterRuntime Create(
        Cluster cluster,
        ClusterLoadAssignment? assignment,
        TimeProvider timeProvider,
        ClusterRuntime? previous = null,
        ILogger? logger = null,
        Random? random = null)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        var policy = LoadBalancerPolicy.FromCluster(cluster);
        var outlierSettings = cluster.OutlierDetection is { } od ? OutlierDetectionSettings.FromProto(cluster.Name, od) : null;
        var breakers = new ClusterCircuitBreakers(cluster.Name, cluster.CircuitBreakers);
        var pool = ConnectionPoolSettings.FromCluster(cluster);
        var transports = ClusterTransports.Of(cluster);
        var set = assignment is null
            ? EndpointSet.Empty(cluster.Name)
            : EndpointSet.Create(cluster.Name, assignment, previous?.LoadBalancer.Endpoints);

        var balancer = new ClusterLoadBalancer(cluster.Name, policy, random);
        OutlierDetector? detector = null;
        if (outlierSettings is not null)
        {
            detector = new OutlierDetector(cluster.Name, outlierSettings, timeProvider, balancer.Refresh, logger, random);
            detector.SetHosts(set.All);
        }
        else
        {
            // Without outlier detection nothing would ever return an ejected host.
            foreach (var endpoint in set.All)
            {
                endpoint.State.Outlier.SetEjected(false);
            }
        }

        AssignTransports(set, transports);
        balancer.Update(set);
        return new ClusterRuntime(cluster, balancer, detector, breakers, pool, transports) { Assignment = assignment };
    }

    /// <summary>Applies a new EDS resource.</summary>
    /// <exception cref="InvalidDataException">The endpoints are invalid; the previous ones stay in force.</exception>
    public void UpdateEndpoints(ClusterLoadAssignment assignment)
    {
        var set = EndpointSet.Create(Name, assignment, LoadBalancer.Endpoints);
        AssignTransports(set, Transports);
        OutlierDetector?.SetHosts(set.All);
        LoadBalancer.Update(set);
        Assignment = assignment;
    }

    private static void AssignTransports(EndpointSet set, ClusterTransports transports)
    {
        foreach (var endpoint in set.All)
        {
            endpoint.Transport = transports.For(endpoint.Metadata);
        }
    }

    /// <summary>Picks an endpoint; see <see cref="ClusterLoadBalancer.Pick"/>.</summary>
    public MeshEndpoint? Pick(in PickContext context) => LoadBalancer.Pick(context);

    /// <summary>Feeds an HTTP status from <paramref name="endpoint"/> to outlier detection.</summary>
    public void ReportResponse(MeshEndpoint endpoint, int statusCode) => OutlierDetector?.ReportResponse(endpoint, statusCode);

    /// <summary>Feeds a local-origin outcome (connect failure, timeout) to outlier detection.</summary>
    public void ReportLocalOrigin(MeshEndpoint endpoint, LocalOriginOutcome outcome) => OutlierDetector?.ReportLocalOrigin(endpoint, outcome);

    public void Dispose() => OutlierDetector?.Dispose();
}

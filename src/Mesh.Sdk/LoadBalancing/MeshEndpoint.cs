using Envoy.Config.Core.V3;
using Mesh.Sdk.Resilience;

namespace Mesh.Sdk.LoadBalancing;

/// <summary>
/// One upstream endpoint of a cluster as compiled from an EDS update. Immutable; the mutable per-endpoint
/// state (active requests, outlier state) lives in <see cref="State"/>, which survives updates that keep
/// the endpoint's address.
/// </summary>
internal sealed class MeshEndpoint
{
    public MeshEndpoint(
        string host,
        int port,
        uint weight,
        HealthStatus health,
        string hostname,
        Metadata? metadata,
        Locality locality,
        int priority,
        EndpointState state)
    {
        Host = host;
        Port = port;
        Weight = weight;
        Health = health;
        Hostname = hostname;
        Metadata = metadata;
        Locality = locality;
        Priority = priority;
        State = state;
        Key = FormatKey(host, port);
    }

    /// <summary>The IP address or DNS name to connect to.</summary>
    public string Host { get; }

    /// <summary>The port to connect to.</summary>
    public int Port { get; }

    /// <summary>The address as Envoy prints it: <c>10.0.0.1:8080</c> or <c>[::1]:8080</c>; the identity of the endpoint across updates and the ring-hash key.</summary>
    public string Key { get; }

    /// <summary>The endpoint's load-balancing weight (at least 1).</summary>
    public uint Weight { get; }

    /// <summary>The health status EDS reported.</summary>
    public HealthStatus Health { get; }

    /// <summary>The endpoint's hostname (<c>Endpoint.hostname</c>); empty when not set.</summary>
    public string Hostname { get; }

    /// <summary>The endpoint's metadata, if any.</summary>
    public Metadata? Metadata { get; }

    /// <summary>The locality the endpoint belongs to.</summary>
    public Locality Locality { get; }

    /// <summary>The priority level (0 is the highest).</summary>
    public int Priority { get; }

    /// <summary>Mutable state shared by every compiled version of this endpoint.</summary>
    public EndpointState State { get; }

    /// <summary>
    /// How connections to this endpoint are made: the cluster's transport, or the one its <c>transport_socket_matches</c>
    /// pick by this endpoint's metadata. Set by <see cref="ClusterRuntime"/> before the endpoint is published.
    /// </summary>
    public EndpointTransport Transport { get; internal set; } = EndpointTransport.Plaintext;

    /// <summary>Whether the endpoint takes traffic, and from which host set.</summary>
    public EndpointHealth HealthClass => Classify(Health);

    /// <summary>HEALTHY and UNKNOWN take traffic; DEGRADED only when healthy hosts are short; the rest never.</summary>
    public static EndpointHealth Classify(HealthStatus status) => status switch
    {
        HealthStatus.Healthy or HealthStatus.Unknown => EndpointHealth.Healthy,
        HealthStatus.Degraded => EndpointHealth.Degraded,
        _ => EndpointHealth.Excluded,
    };

    public static string FormatKey(string host, int port)
        => host.Contains(':', StringComparison.Ordinal) ? $"[{host}]:{port}" : $"{host}:{port}";

    public override string ToString() => Key;
}

/// <summary>How an endpoint's EDS health status is used.</summary>
internal enum EndpointHealth
{
    /// <summary>HEALTHY or UNKNOWN: in the healthy host set.</summary>
    Healthy,

    /// <summary>DEGRADED: in the degraded host set, used when healthy hosts cannot carry the load.</summary>
    Degraded,

    /// <summary>UNHEALTHY, DRAINING or TIMEOUT: never picked.</summary>
    Excluded,
}

/// <summary>
/// Mutable state of one endpoint, kept across EDS updates while the endpoint's address stays in the cluster
/// (the counterpart of YARP's <c>DestinationState</c>).
/// </summary>
internal sealed class EndpointState
{
    private int _activeRequests;

    /// <summary>Requests sent to the endpoint and not yet completed.</summary>
    public int ActiveRequests => Volatile.Read(ref _activeRequests);

    /// <summary>Outlier detection counters and ejection state.</summary>
    public OutlierHostState Outlier { get; } = new();

    /// <summary>Marks the start of a request to this endpoint; pair with <see cref="RequestCompleted"/>.</summary>
    public void RequestStarted() => Interlocked.Increment(ref _activeRequests);

    /// <summary>Marks the end of a request started with <see cref="RequestStarted"/>.</summary>
    public void RequestCompleted() => Interlocked.Decrement(ref _activeRequests);

    /// <summary>
    /// The SPIFFE id of the certificate the endpoint last presented in a verified mesh mTLS handshake (the caller's
    /// <c>destination_principal</c>); <see langword="null"/> before one. Replaced only when it changes.
    /// </summary>
    public string? PeerPrincipal
    {
        get => Volatile.Read(ref _peerPrincipal);
        set
        {
            if (!string.Equals(Volatile.Read(ref _peerPrincipal), value, StringComparison.Ordinal))
            {
                Volatile.Write(ref _peerPrincipal, value);
            }
        }
    }

    private string? _peerPrincipal;
}

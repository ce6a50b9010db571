using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace Mesh.Xds;

/// <summary>
/// Type URLs of the xDS resources and typed configs exchanged with a control plane: the value of
/// <c>DiscoveryRequest.type_url</c> and of <c>google.protobuf.Any.type_url</c>.
/// </summary>
public static class XdsTypeUrls
{
    /// <summary>The prefix every type URL here starts with.</summary>
    public const string Prefix = "type.googleapis.com/";

    /// <summary>LDS resource: <c>envoy.config.listener.v3.Listener</c>.</summary>
    public const string Listener = Prefix + "envoy.config.listener.v3.Listener";

    /// <summary>RDS resource: <c>envoy.config.route.v3.RouteConfiguration</c>.</summary>
    public const string RouteConfiguration = Prefix + "envoy.config.route.v3.RouteConfiguration";

    /// <summary>CDS resource: <c>envoy.config.cluster.v3.Cluster</c>.</summary>
    public const string Cluster = Prefix + "envoy.config.cluster.v3.Cluster";

    /// <summary>EDS resource: <c>envoy.config.endpoint.v3.ClusterLoadAssignment</c>.</summary>
    public const string ClusterLoadAssignment = Prefix + "envoy.config.endpoint.v3.ClusterLoadAssignment";

    /// <summary>HTTP connection manager, carried in <c>ApiListener.api_listener</c> or a network filter.</summary>
    public const string HttpConnectionManager =
        Prefix + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

    /// <summary>Router HTTP filter config.</summary>
    public const string Router = Prefix + "envoy.extensions.filters.http.router.v3.Router";

    /// <summary>Fault injection HTTP filter config (also its per-route override).</summary>
    public const string Fault = Prefix + "envoy.extensions.filters.http.fault.v3.HTTPFault";

    /// <summary>RBAC HTTP filter config.</summary>
    public const string Rbac = Prefix + "envoy.extensions.filters.http.rbac.v3.RBAC";

    /// <summary>RBAC HTTP filter per-route override.</summary>
    public const string RbacPerRoute = Prefix + "envoy.extensions.filters.http.rbac.v3.RBACPerRoute";

    /// <summary>Local rate limit HTTP filter config (also its per-route override).</summary>
    public const string LocalRateLimit = Prefix + "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";

    /// <summary>Client-side TLS transport socket config.</summary>
    public const string UpstreamTlsContext = Prefix + "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext";

    /// <summary>Server-side TLS transport socket config.</summary>
    public const string DownstreamTlsContext = Prefix + "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";

    /// <summary>Typed config of an aggregate cluster (<c>Cluster.cluster_type</c>).</summary>
    public const string AggregateClusterConfig = Prefix + "envoy.extensions.clusters.aggregate.v3.ClusterConfig";

    /// <summary>Route-level wrapper marking a <c>typed_per_filter_config</c> entry optional.</summary>
    public const string FilterConfig = Prefix + "envoy.config.route.v3.FilterConfig";

    /// <summary>Typed load-balancing policy: round robin.</summary>
    public const string RoundRobin = Prefix + "envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin";

    /// <summary>Typed load-balancing policy: ring hash.</summary>
    public const string RingHash = Prefix + "envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash";

    /// <summary>Typed load-balancing policy: least request.</summary>
    public const string LeastRequest = Prefix + "envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest";

    /// <summary>Typed load-balancing policy: random.</summary>
    public const string Random = Prefix + "envoy.extensions.load_balancing_policies.random.v3.Random";

    /// <summary>Typed load-balancing policy: weighted round robin across localities.</summary>
    public const string WrrLocality = Prefix + "envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality";

    /// <summary>Zipkin tracer config (<c>HttpConnectionManager.Tracing.provider</c>).</summary>
    public const string ZipkinConfig = Prefix + "envoy.config.trace.v3.ZipkinConfig";

    /// <summary>OpenTelemetry tracer config (<c>HttpConnectionManager.Tracing.provider</c>).</summary>
    public const string OpenTelemetryConfig = Prefix + "envoy.config.trace.v3.OpenTelemetryConfig";

    /// <summary>File access logger config (<c>AccessLog.typed_config</c>).</summary>
    public const string FileAccessLog = Prefix + "envoy.extensions.access_loggers.file.v3.FileAccessLog";

    /// <summary>CEL access-log filter config (<c>ExtensionFilter.typed_config</c>).</summary>
    public const string CelExpressionFilter = Prefix + "envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter";

    /// <summary>Returns the type URL of the message type <typeparamref name="T"/>.</summary>
    /// <typeparam name="T">A generated protobuf message type.</typeparam>
    /// <returns><see cref="Prefix"/> followed by the message's full protobuf name.</returns>
    public static string For<T>()
        where T : IMessage<T>, new()
        => TypeUrlCache<T>.Value;

    /// <summary>Returns the type URL of a message descriptor.</summary>
    /// <param name="descriptor">The message descriptor.</param>
    /// <returns><see cref="Prefix"/> followed by the message's full protobuf name.</returns>
    public static string For(MessageDescriptor descriptor)
    {
        ArgumentNullException.ThrowIfNull(descriptor);
        return Prefix + descriptor.FullName;
    }

    /// <summary>
    /// Returns the full message name of a type URL: the part after the last <c>/</c>, as
    /// <c>google.protobuf.Any</c> defines it.
    /// </summary>
    /// <param name="typeUrl">A type URL such as <see cref="Listener"/>.</param>
    /// <returns>The full message name, e.g. <c>envoy.config.listener.v3.Listener</c>.</returns>
    public static string MessageName(string typeUrl)
    {
        ArgumentNullException.ThrowIfNull(typeUrl);
        return typeUrl[(typeUrl.LastIndexOf('/') + 1)..];
    }

    private static class TypeUrlCache<T>
        where T : IMessage<T>, new()
    {
        public static readonly string Value = Prefix + new T().Descriptor.FullName;
    }
}

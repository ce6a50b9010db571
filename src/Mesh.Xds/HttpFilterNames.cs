namespace Mesh.Xds;

/// <summary>
/// Names of the HTTP filters in an <c>HttpConnectionManager.http_filters</c> list (the <c>HttpFilter.name</c>
/// values istiod sends) and the keys of <c>typed_per_filter_config</c> maps.
/// </summary>
public static class HttpFilterNames
{
    /// <summary>The router filter; always present and always last.</summary>
    public const string Router = "envoy.filters.http.router";

    /// <summary>The fault injection filter.</summary>
    public const string Fault = "envoy.filters.http.fault";

    /// <summary>The role-based access control filter.</summary>
    public const string Rbac = "envoy.filters.http.rbac";

    /// <summary>The local (per-instance) rate limit filter.</summary>
    public const string LocalRateLimit = "envoy.filters.http.local_ratelimit";
}

/// <summary>Well-known names of other xDS extensions (network filters, transport sockets, cluster types).</summary>
public static class XdsExtensionNames
{
    /// <summary>Network filter name of the HTTP connection manager in a server filter chain.</summary>
    public const string HttpConnectionManager = "envoy.filters.network.http_connection_manager";

    /// <summary>Transport socket name of TLS (<c>TransportSocket.name</c>).</summary>
    public const string TlsTransportSocket = "envoy.transport_sockets.tls";

    /// <summary>Custom cluster type name of an aggregate cluster (<c>Cluster.CustomClusterType.name</c>).</summary>
    public const string AggregateCluster = "envoy.clusters.aggregate";

    /// <summary>Tracer name of Zipkin (<c>Tracing.Http.name</c>).</summary>
    public const string ZipkinTracer = "envoy.tracers.zipkin";

    /// <summary>Tracer name of OpenTelemetry (<c>Tracing.Http.name</c>).</summary>
    public const string OpenTelemetryTracer = "envoy.tracers.opentelemetry";

    /// <summary>Access logger name of the file logger (<c>AccessLog.name</c>).</summary>
    public const string FileAccessLog = "envoy.access_loggers.file";

    /// <summary>Access-log extension filter name of the CEL expression filter (<c>ExtensionFilter.name</c>).</summary>
    public const string CelAccessLogFilter = "envoy.access_loggers.extension_filters.cel";
}

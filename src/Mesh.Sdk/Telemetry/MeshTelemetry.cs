namespace Mesh.Sdk.Telemetry;

/// <summary>
/// Names of the mesh's telemetry: the <see cref="System.Diagnostics.Metrics.Meter"/> that records Istio's standard
/// metrics (add it to OpenTelemetry with <c>AddMeter(MeshTelemetry.MeterName)</c>), the metrics themselves, and the
/// peer metadata exchange headers. See docs/telemetry.md.
/// </summary>
public static class MeshTelemetry
{
    /// <summary>The name of the meter Istio's standard metrics are recorded through.</summary>
    public const string MeterName = "Mesh.Sdk";

    /// <summary>
    /// The name of the <see cref="System.Diagnostics.ActivitySource"/> the mesh's spans are started from: a server span per
    /// inbound request and a client span per outbound attempt (add it to OpenTelemetry with <c>AddSource(MeshTelemetry.ActivitySourceName)</c>).
    /// </summary>
    public const string ActivitySourceName = "Mesh.Sdk";

    /// <summary>Istio's request count: a counter incremented once per request, by the caller and by the callee.</summary>
    public const string RequestsTotal = "istio_requests_total";

    /// <summary>Istio's request duration histogram, in milliseconds.</summary>
    public const string RequestDuration = "istio_request_duration_milliseconds";

    /// <summary>Istio's request body size histogram, in bytes.</summary>
    public const string RequestBytes = "istio_request_bytes";

    /// <summary>Istio's response body size histogram, in bytes.</summary>
    public const string ResponseBytes = "istio_response_bytes";

    /// <summary>Istio's count of gRPC messages the client sent, per call direction: a counter, gRPC calls only.</summary>
    public const string RequestMessages = "istio_request_messages_total";

    /// <summary>Istio's count of gRPC messages the server sent: a counter, gRPC calls only.</summary>
    public const string ResponseMessages = "istio_response_messages_total";

    /// <summary>
    /// The request header carrying the caller's workload metadata (Istio's metadata exchange): base64 of a serialized
    /// <c>google.protobuf.Struct</c> with <c>NAME</c>, <c>NAMESPACE</c>, <c>WORKLOAD_NAME</c>, <c>CLUSTER_ID</c> and
    /// <c>LABELS</c> (<c>app</c>, <c>version</c>).
    /// </summary>
    public const string PeerMetadataHeader = "x-envoy-peer-metadata";

    /// <summary>The request header carrying the caller's node id (Istio's metadata exchange).</summary>
    public const string PeerMetadataIdHeader = "x-envoy-peer-metadata-id";

    /// <summary>
    /// The bucket bounds of every histogram: Envoy's default histogram buckets, which Istio's sidecars use for
    /// <c>istio_request_duration_milliseconds</c>, <c>istio_request_bytes</c> and <c>istio_response_bytes</c>.
    /// </summary>
    internal static readonly double[] HistogramBuckets =
        [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];
}

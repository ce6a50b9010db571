using System.Globalization;

namespace Mesh.Sdk.Telemetry.Tracing;

/// <summary>Where the mesh's spans are exported to: the tracer provider an HttpConnectionManager's <c>tracing.provider</c> names.</summary>
internal enum TraceProviderKind
{
    /// <summary><c>envoy.tracers.zipkin</c>: Zipkin v2 JSON over HTTP (<c>collector_endpoint</c>, usually <c>/api/v2/spans</c>).</summary>
    Zipkin,

    /// <summary><c>envoy.tracers.opentelemetry</c> with a <c>grpc_service</c>: OTLP over gRPC.</summary>
    OtlpGrpc,

    /// <summary><c>envoy.tracers.opentelemetry</c> with an <c>http_service</c>: OTLP http/protobuf.</summary>
    OtlpHttp,
}

/// <summary>How a custom tag gets its value (Envoy's <c>type.tracing.v3.CustomTag</c>).</summary>
internal enum CustomTagKind
{
    /// <summary>A fixed value.</summary>
    Literal,

    /// <summary>An environment variable of the workload's process, else the default.</summary>
    Environment,

    /// <summary>A request header, else the default.</summary>
    RequestHeader,
}

/// <summary>One custom tag: the span tag <paramref name="Tag"/>, from a literal, an environment variable or a request header.</summary>
internal sealed record CustomTag(string Tag, CustomTagKind Kind, string Value, string DefaultValue = "");

/// <summary>
/// The tracing configuration of one HttpConnectionManager, as Istio's <c>extensionProviders</c> and <c>Telemetry</c>
/// resources make it: the collector (provider, the mesh host and port its collector service resolves as, and the
/// path), the sampling percentages, the service name spans are reported under and the custom tags. Immutable; compared
/// by value, so an update that changes nothing keeps the exporter in force.
/// </summary>
internal sealed record TracingPolicy
{
    /// <summary>The provider kind.</summary>
    public required TraceProviderKind Provider { get; init; }

    /// <summary>The collector's host as the mesh resolves it (<c>zipkin.istio-system.svc.cluster.local</c>).</summary>
    public required string CollectorHost { get; init; }

    /// <summary>The collector's port (9411 for Zipkin, 4317 for OTLP gRPC, 4318 for OTLP http).</summary>
    public required int CollectorPort { get; init; }

    /// <summary>The path spans are posted to: Zipkin's <c>collector_endpoint</c>, OTLP http's path; empty for OTLP gRPC.</summary>
    public string CollectorPath { get; init; } = string.Empty;

    /// <summary>Percentage (0-100) of requests without a sampling decision that the first hop samples (<c>random_sampling</c>).</summary>
    public double RandomSampling { get; init; } = 100;

    /// <summary>Percentage of requests carrying <c>x-client-trace-id</c> that are sampled (<c>client_sampling</c>).</summary>
    public double ClientSampling { get; init; } = 100;

    /// <summary>Upper bound on the sampled percentage, applied after the other decisions (<c>overall_sampling</c>).</summary>
    public double OverallSampling { get; init; } = 100;

    /// <summary>Whether Zipkin trace ids are 128-bit (<c>trace_id_128bit</c>; Istio sets it).</summary>
    public bool TraceId128Bit { get; init; } = true;

    /// <summary>The service name spans are reported under; empty means Istio's <c>&lt;app&gt;.&lt;namespace&gt;</c>.</summary>
    public string ServiceName { get; init; } = string.Empty;

    /// <summary>Tags added to every span.</summary>
    public IReadOnlyList<CustomTag> CustomTags { get; init; } = [];

    /// <summary>The collector's URL: <c>http://host:port/path</c>.</summary>
    public Uri CollectorUri => new(string.Create(CultureInfo.InvariantCulture, $"http://{CollectorHost}:{CollectorPort}{CollectorPath}"));

    /// <summary>Whether <paramref name="other"/> exports to the same place the same way (only sampling or tags differ).</summary>
    public bool SameExporter(TracingPolicy? other)
        => other is not null && other.Provider == Provider && other.CollectorHost == CollectorHost && other.CollectorPort == CollectorPort
           && other.CollectorPath == CollectorPath && other.TraceId128Bit == TraceId128Bit && other.ServiceName == ServiceName;

    public bool Equals(TracingPolicy? other)
        => SameExporter(other) && other!.RandomSampling.Equals(RandomSampling) && other.ClientSampling.Equals(ClientSampling)
           && other.OverallSampling.Equals(OverallSampling) && CustomTags.SequenceEqual(other.CustomTags);

    public override int GetHashCode() => HashCode.Combine(Provider, CollectorHost, CollectorPort, CollectorPath, RandomSampling);
}

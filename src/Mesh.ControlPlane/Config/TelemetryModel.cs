namespace Mesh.ControlPlane.Config;

// The telemetry part of Istio's configuration: the mesh config (the `istio` ConfigMap of istio-system, `data.mesh`) and
// telemetry.istio.io Telemetry resources, as immutable records. Field names follow Istio's YAML.

/// <summary>An <c>extensionProviders[]</c> entry's <c>headers[]</c> item (a literal value or an environment variable).</summary>
internal sealed record ProviderHeader(string Name, string? Value, string? EnvName);

/// <summary><c>extensionProviders[].zipkin</c>.</summary>
internal sealed record ZipkinProvider(string Service, uint Port)
{
    public uint MaxTagLength { get; init; }

    /// <summary><c>enable64bitTraceId</c>: istiod then turns <c>trace_id_128bit</c> off.</summary>
    public bool Enable64BitTraceId { get; init; }

    /// <summary><c>path</c>; istiod uses <c>/api/v2/spans</c> when empty.</summary>
    public string? Path { get; init; }
}

/// <summary><c>extensionProviders[].opentelemetry.http</c>: OTLP over HTTP instead of gRPC.</summary>
internal sealed record OtlpHttp(string Path, TimeSpan? Timeout, IReadOnlyList<ProviderHeader> Headers);

/// <summary><c>extensionProviders[].opentelemetry.grpc</c>.</summary>
internal sealed record OtlpGrpc(TimeSpan? Timeout, IReadOnlyList<ProviderHeader> InitialMetadata);

/// <summary><c>extensionProviders[].opentelemetry</c>.</summary>
internal sealed record OpenTelemetryProvider(string Service, uint Port)
{
    public uint MaxTagLength { get; init; }
    public OtlpHttp? Http { get; init; }
    public OtlpGrpc? Grpc { get; init; }
}

/// <summary><c>extensionProviders[].envoyFileAccessLog</c> (the built-in <c>envoy</c> provider is one, writing to /dev/stdout).</summary>
internal sealed record FileAccessLogProvider(string? Path)
{
    /// <summary><c>logFormat.text</c>.</summary>
    public string? Text { get; init; }

    /// <summary><c>logFormat.labels</c> (JSON output); null when not set.</summary>
    public Google.Protobuf.WellKnownTypes.Struct? Labels { get; init; }

    /// <summary>Whether <c>logFormat</c> was written at all.</summary>
    public bool HasLogFormat { get; init; }

    public bool OmitEmptyValues { get; init; }
}

/// <summary>
/// A named extension provider. Exactly one of the kinds is set for the kinds this control plane translates; other kinds
/// Istio knows (prometheus, stackdriver, envoyExtAuthz*, ...) keep only <see cref="OtherKind"/>.
/// </summary>
internal sealed record ExtensionProvider(string Name, int Line)
{
    public ZipkinProvider? Zipkin { get; init; }
    public OpenTelemetryProvider? OpenTelemetry { get; init; }
    public FileAccessLogProvider? FileAccessLog { get; init; }
    public bool Prometheus { get; init; }
    public string? OtherKind { get; init; }
}

/// <summary>The telemetry-related part of Istio's mesh config (<c>data.mesh</c> of the <c>istio</c> ConfigMap), with istiod's defaults.</summary>
internal sealed record MeshTelemetrySettings
{
    /// <summary>istiod's defaults for a ConfigMap that leaves telemetry alone: prometheus, stackdriver and envoy (/dev/stdout).</summary>
    public static readonly IReadOnlyList<ExtensionProvider> BuiltInProviders =
    [
        new("prometheus", 0) { Prometheus = true },
        new("stackdriver", 0) { OtherKind = "stackdriver" },
        new("envoy", 0) { FileAccessLog = new FileAccessLogProvider("/dev/stdout") },
    ];

    // Declared after BuiltInProviders: static fields initialize in order, and the default's providers are those.
    public static readonly MeshTelemetrySettings Default = new();

    /// <summary>The providers by name: the built-in ones, replaced or extended by the ConfigMap's (as istiod merges them).</summary>
    public IReadOnlyList<ExtensionProvider> ExtensionProviders { get; init; } = BuiltInProviders;

    public IReadOnlyList<string> DefaultTracing { get; init; } = [];
    public IReadOnlyList<string> DefaultAccessLogging { get; init; } = [];
    public IReadOnlyList<string> DefaultMetrics { get; init; } = [];

    /// <summary><c>enableTracing</c>: istiod's default is true.</summary>
    public bool EnableTracing { get; init; } = true;

    /// <summary><c>defaultConfig.tracing.sampling</c>; 0 when unset (istiod then uses PILOT_TRACE_SAMPLING, 1 %).</summary>
    public double DefaultSampling { get; init; }

    /// <summary><c>defaultConfig.tracing.maxPathTagLength</c>; 0 when unset.</summary>
    public uint DefaultMaxPathTagLength { get; init; }

    /// <summary><c>defaultConfig.tracing.custom_tags</c> (used when no Telemetry sets custom tags).</summary>
    public IReadOnlyDictionary<string, CustomTagSpec> DefaultCustomTags { get; init; } = new Dictionary<string, CustomTagSpec>();

    /// <summary><c>defaultConfig.tracing.enableIstioTags</c>; istiod's default is true.</summary>
    public bool? DefaultEnableIstioTags { get; init; }

    public string AccessLogFile { get; init; } = string.Empty;

    /// <summary><c>accessLogEncoding</c>: TEXT (default) or JSON.</summary>
    public string AccessLogEncoding { get; init; } = "TEXT";

    public string AccessLogFormat { get; init; } = string.Empty;

    /// <summary>The provider named <paramref name="name"/> (case-insensitive, as istiod looks them up), or null.</summary>
    public ExtensionProvider? Provider(string name)
    {
        foreach (var p in ExtensionProviders)
        {
            if (string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                return p;
            }
        }

        return null;
    }
}

/// <summary>The mesh config document: the <c>istio</c> ConfigMap of <c>istio-system</c>.</summary>
internal sealed record MeshConfigMap : IstioResource
{
    public const string ConfigMapName = "istio";
    public const string ConfigMapNamespace = "istio-system";

    public required MeshTelemetrySettings Settings { get; init; }
}

/// <summary>Which side of a call a Telemetry entry applies to (<c>match.mode</c>).</summary>
internal enum WorkloadMode { ClientAndServer, Client, Server }

/// <summary>A custom tag of a Telemetry <c>tracing[].customTags</c> entry (or of the proxy config's tracing).</summary>
internal sealed record CustomTagSpec
{
    public string? Literal { get; init; }
    public string? EnvironmentName { get; init; }
    public string? HeaderName { get; init; }

    /// <summary>The environment variable's or header's <c>defaultValue</c>.</summary>
    public string? DefaultValue { get; init; }
}

/// <summary>A provider name of a Telemetry entry, with its line (for "unknown provider" errors).</summary>
internal sealed record ProviderRef(string Name, int Line, int Column);

/// <summary>Telemetry <c>tracing[]</c>.</summary>
internal sealed record TracingEntry
{
    public WorkloadMode? Mode { get; init; }
    public IReadOnlyList<ProviderRef> Providers { get; init; } = [];
    public double? RandomSamplingPercentage { get; init; }
    public bool? DisableSpanReporting { get; init; }
    public IReadOnlyDictionary<string, CustomTagSpec>? CustomTags { get; init; }
    public bool? UseRequestIdForTraceSampling { get; init; }
    public bool? EnableIstioTags { get; init; }
}

/// <summary>Telemetry <c>accessLogging[]</c>.</summary>
internal sealed record AccessLoggingEntry
{
    public WorkloadMode? Mode { get; init; }
    public IReadOnlyList<ProviderRef> Providers { get; init; } = [];
    public bool? Disabled { get; init; }
    public string? FilterExpression { get; init; }
}

/// <summary>Telemetry <c>metrics[].overrides[].tagOverrides</c> value.</summary>
internal sealed record TagOverride(string Operation, string? Value);

/// <summary>Telemetry <c>metrics[].overrides[]</c>.</summary>
internal sealed record MetricOverride
{
    /// <summary><c>match.metric</c> (ALL_METRICS when neither it nor <c>customMetric</c> is set).</summary>
    public string Metric { get; init; } = "ALL_METRICS";
    public string? CustomMetric { get; init; }
    public WorkloadMode Mode { get; init; }
    public bool? Disabled { get; init; }
    public IReadOnlyDictionary<string, TagOverride> TagOverrides { get; init; } = new Dictionary<string, TagOverride>();
}

/// <summary>Telemetry <c>metrics[]</c>.</summary>
internal sealed record MetricsEntry
{
    public IReadOnlyList<ProviderRef> Providers { get; init; } = [];
    public IReadOnlyList<MetricOverride> Overrides { get; init; } = [];
    public TimeSpan? ReportingInterval { get; init; }
}

/// <summary>A <c>telemetry.istio.io</c> Telemetry resource (v1 or v1alpha1).</summary>
internal sealed record Telemetry : IstioResource
{
    /// <summary><c>selector.matchLabels</c>; null for a namespace-wide (or, in the root namespace, mesh-wide) resource.</summary>
    public IReadOnlyDictionary<string, string>? Selector { get; init; }

    public IReadOnlyList<TracingEntry> Tracing { get; init; } = [];
    public IReadOnlyList<AccessLoggingEntry> AccessLogging { get; init; } = [];
    public IReadOnlyList<MetricsEntry> Metrics { get; init; } = [];
}

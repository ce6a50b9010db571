using System.Collections.Concurrent;
using Envoy.Config.Accesslog.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Trace.V3;
using Envoy.Extensions.AccessLoggers.File.V3;
using Envoy.Extensions.AccessLoggers.Filters.Cel.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Type.Metadata.V3;
using Envoy.Type.Tracing.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Registry;
using Mesh.Xds;
using EnvoyPercent = Envoy.Type.V3.Percent;
using HcmTracing = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager.Types.Tracing;
using IstioTelemetry = Mesh.ControlPlane.Config.Telemetry;

namespace Mesh.ControlPlane.Translation;

/// <summary>
/// What istiod writes into a sidecar's HTTP connection managers for tracing and access logging, from the mesh config and
/// the Telemetry resources that apply to the asking workload (pilot's <c>Telemetries.Tracing</c>/<c>AccessLogging</c> and
/// the HCM builders of its listener generator). Applied to the listeners Mesh.Sdk nodes get: the outbound
/// <c>api_listener</c> HCMs as the client side, the inbound listeners' HCMs as the server side. Proxyless gRPC clients
/// get nothing of it, as from istiod's gRPC generator.
/// </summary>
internal sealed class TelemetryListeners
{
    /// <summary>istiod's <c>PILOT_TRACE_SAMPLING</c> default: the sampling percentage when nothing else sets one.</summary>
    public const double DefaultTraceSampling = 1.0;

    /// <summary>The Zipkin collector path istiod uses when the provider sets none.</summary>
    public const string DefaultZipkinPath = "/api/v2/spans";

    /// <summary>istiod's default text access-log format (Istio 1.9 onwards).</summary>
    public const string EnvoyTextLogFormat = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% "
        + "%PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% "
        + "%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "
        + "\"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% "
        + "%DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" "
        + "\"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" "
        + "%UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% "
        + "%DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

    /// <summary>istiod's default JSON access-log format: field name to command operator.</summary>
    public static readonly IReadOnlyList<KeyValuePair<string, string>> EnvoyJsonLogFormat =
    [
        new("start_time", "%START_TIME%"),
        new("route_name", "%ROUTE_NAME%"),
        new("method", "%REQ(:METHOD)%"),
        new("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
        new("protocol", "%PROTOCOL%"),
        new("response_code", "%RESPONSE_CODE%"),
        new("response_flags", "%RESPONSE_FLAGS%"),
        new("response_code_details", "%RESPONSE_CODE_DETAILS%"),
        new("connection_termination_details", "%CONNECTION_TERMINATION_DETAILS%"),
        new("bytes_received", "%BYTES_RECEIVED%"),
        new("bytes_sent", "%BYTES_SENT%"),
        new("duration", "%DURATION%"),
        new("upstream_service_time", "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%"),
        new("x_forwarded_for", "%REQ(X-FORWARDED-FOR)%"),
        new("user_agent", "%REQ(USER-AGENT)%"),
        new("request_id", "%REQ(X-REQUEST-ID)%"),
        new("authority", "%REQ(:AUTHORITY)%"),
        new("upstream_host", "%UPSTREAM_HOST%"),
        new("upstream_cluster", "%UPSTREAM_CLUSTER_RAW%"),
        new("upstream_local_address", "%UPSTREAM_LOCAL_ADDRESS%"),
        new("downstream_local_address", "%DOWNSTREAM_LOCAL_ADDRESS%"),
        new("downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%"),
        new("requested_server_name", "%REQUESTED_SERVER_NAME%"),
        new("upstream_transport_failure_reason", "%UPSTREAM_TRANSPORT_FAILURE_REASON%"),
    ];

    private const string ReqWithoutQueryFormatterName = "envoy.formatter.req_without_query";
    private const string ReqWithoutQueryTypeUrl = XdsTypeUrls.Prefix + "envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery";

    // istiod's dry-run authorization tags: read from the RBAC filter's request metadata.
    private static readonly (string Tag, string Key)[] PolicyTags =
    [
        ("istio.authorization.dry_run.allow_policy.name", "istio_dry_run_allow_shadow_effective_policy_id"),
        ("istio.authorization.dry_run.allow_policy.result", "istio_dry_run_allow_shadow_engine_result"),
        ("istio.authorization.dry_run.deny_policy.name", "istio_dry_run_deny_shadow_effective_policy_id"),
        ("istio.authorization.dry_run.deny_policy.result", "istio_dry_run_deny_shadow_engine_result"),
    ];

    private readonly MeshConfig _config;
    private readonly MeshTelemetrySettings _mesh;
    private readonly RegistrySnapshot _registry;
    private readonly IReadOnlySet<string> _clusters;
    private readonly string _rootNamespace;
    private readonly ConcurrentDictionary<string, XdsResource> _cache = new(StringComparer.Ordinal);

    public TelemetryListeners(MeshConfig config, RegistrySnapshot registry, IReadOnlySet<string> clusters, string rootNamespace)
    {
        _config = config;
        _mesh = config.TelemetrySettings;
        _registry = registry;
        _clusters = clusters;
        _rootNamespace = rootNamespace;
        Warnings = CollectWarnings();
    }

    public static TelemetryListeners Empty { get; } = new(MeshConfig.Empty, RegistrySnapshot.Empty, new HashSet<string>(), "istio-system");

    /// <summary>Problems of the configured providers (a service that is not a mesh host, a port without a cluster), one line each.</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>Whether anything here can change a listener: a mesh config file or a Telemetry resource exists.</summary>
    public bool IsConfigured => _config.MeshConfigMap is not null || _config.Telemetries.Count > 0;

    /// <summary>The listener as <paramref name="client"/> gets it: with istiod's tracing and access log on its HCMs for Mesh.Sdk nodes.</summary>
    public XdsResource Apply(XdsResource listener, ClientScope client)
    {
        if (!client.IsSdk || !IsConfigured)
        {
            return listener;
        }

        var key = $"{listener.Name}\n{listener.Hash}\n{client.Namespace}\n{client.NodeCluster}\n{client.MeshId}\n{client.ClusterId}\n"
            + string.Join(",", client.Labels.OrderBy(static l => l.Key, StringComparer.Ordinal).Select(static l => $"{l.Key}={l.Value}"));
        return _cache.GetOrAdd(key, static (_, s) => s.Self.Decorate(s.Listener, s.Client), (Self: this, Listener: listener, Client: client));
    }

    private XdsResource Decorate(XdsResource resource, ClientScope client)
    {
        var listener = resource.Resource.Unpack<Listener>();
        var changed = false;
        if (listener.ApiListener?.ApiListener_ is { } outbound && outbound.Is(HttpConnectionManager.Descriptor))
        {
            var hcm = outbound.Unpack<HttpConnectionManager>();
            changed |= Configure(hcm, client, WorkloadMode.Client);
            listener.ApiListener.ApiListener_ = Any.Pack(hcm);
        }

        foreach (var chain in listener.FilterChains)
        {
            foreach (var filter in chain.Filters)
            {
                if (filter.TypedConfig is { } config && config.Is(HttpConnectionManager.Descriptor))
                {
                    var hcm = config.Unpack<HttpConnectionManager>();
                    changed |= Configure(hcm, client, WorkloadMode.Server);
                    filter.TypedConfig = Any.Pack(hcm);
                }
            }
        }

        return changed ? XdsResource.Create(resource.Name, listener) : resource;
    }

    /// <summary>Sets the HCM's tracing and access log for one side; false when it gets neither.</summary>
    internal bool Configure(HttpConnectionManager hcm, ClientScope client, WorkloadMode side)
    {
        var applicable = Applicable(client);
        if (BuildTracing(applicable, client, side) is { } tracing)
        {
            hcm.Tracing = tracing;
        }

        hcm.AccessLog.AddRange(BuildAccessLogs(applicable, side));
        return hcm.Tracing is not null || hcm.AccessLog.Count > 0;
    }

    // ---- which Telemetry resources apply (istiod's applicableTelemetries) ----

    /// <summary>The Telemetry resources of a workload, in override order: root namespace, own namespace, then selecting ones.</summary>
    internal IReadOnlyList<IstioTelemetry> Applicable(ClientScope client)
    {
        var result = new List<IstioTelemetry>();
        if (NamespaceWide(_rootNamespace) is { } root)
        {
            result.Add(root);
        }

        if (client.Namespace != _rootNamespace && NamespaceWide(client.Namespace) is { } ns)
        {
            result.Add(ns);
        }

        foreach (var t in _config.Telemetries)
        {
            if (t.Namespace == client.Namespace && t.Selector is { } selector && Selects(selector, client.Labels))
            {
                result.Add(t);
            }
        }

        return result;
    }

    // The first namespace-wide one, as istiod takes the oldest.
    private IstioTelemetry? NamespaceWide(string ns) => _config.Telemetries.FirstOrDefault(t => t.Namespace == ns && t.Selector is null);

    private static bool Selects(IReadOnlyDictionary<string, string> selector, IReadOnlyDictionary<string, string> labels)
    {
        foreach (var (key, value) in selector)
        {
            if (!labels.TryGetValue(key, out var actual) || actual != value)
            {
                return false;
            }
        }

        return true;
    }

    // ---- tracing ----

    internal sealed record TracingSpec
    {
        public ExtensionProvider? Provider { get; set; }
        public bool Disabled { get; set; }
        public double? RandomSamplingPercentage { get; set; }
        public IReadOnlyDictionary<string, CustomTagSpec>? CustomTags { get; set; }
        public bool EnableIstioTags { get; set; } = true;
    }

    /// <summary>istiod's <c>Telemetries.Tracing</c>: null when neither a Telemetry nor a default provider configures tracing.</summary>
    internal (TracingSpec Client, TracingSpec Server)? ResolveTracing(IReadOnlyList<IstioTelemetry> applicable)
    {
        var entries = applicable.SelectMany(static t => t.Tracing).ToList();
        var hasDefault = _mesh.DefaultTracing.Count > 0;
        if (entries.Count == 0 && !hasDefault)
        {
            return null;
        }

        var client = new TracingSpec();
        var server = new TracingSpec();
        if (hasDefault)
        {
            // Only the first default provider is used, as istiod does.
            client.Provider = server.Provider = _mesh.Provider(_mesh.DefaultTracing[0]);
        }

        foreach (var m in entries)
        {
            TracingSpec[] specs = m.Mode switch
            {
                WorkloadMode.Client => [client],
                WorkloadMode.Server => [server],
                _ => [client, server],
            };
            foreach (var spec in specs)
            {
                if (m.Providers.Count > 0)
                {
                    spec.Provider = _mesh.Provider(m.Providers[0].Name);
                }

                if (m.DisableSpanReporting is { } disabled)
                {
                    spec.Disabled = disabled;
                }

                if (m.CustomTags is not null)
                {
                    spec.CustomTags = m.CustomTags;
                }

                if (m.RandomSamplingPercentage is { } sampling)
                {
                    spec.RandomSamplingPercentage = sampling;
                }

                if (m.EnableIstioTags is { } tags)
                {
                    spec.EnableIstioTags = tags;
                }
            }
        }

        if (client.Provider is null)
        {
            client.Disabled = true;
        }

        if (server.Provider is null)
        {
            server.Disabled = true;
        }

        return (client, server);
    }

    /// <summary>istiod's <c>configureTracingFromTelemetry</c> for one side; null when that side is not traced.</summary>
    internal HcmTracing? BuildTracing(IReadOnlyList<IstioTelemetry> applicable, ClientScope client, WorkloadMode side)
    {
        var resolved = ResolveTracing(applicable);
        if (resolved is null)
        {
            // No Telemetry configures tracing: the mesh config's legacy settings, when a mesh config exists and enables tracing.
            if (_config.MeshConfigMap is null || !_mesh.EnableTracing)
            {
                return null;
            }

            var legacy = new HcmTracing();
            ConfigureSampling(legacy, ProxyConfigSampling());
            legacy.CustomTags.AddRange(CustomTags(null, client));
            if (_mesh.DefaultMaxPathTagLength != 0)
            {
                legacy.MaxPathTagLength = _mesh.DefaultMaxPathTagLength;
            }

            return legacy;
        }

        var spec = side == WorkloadMode.Server ? resolved.Value.Server : resolved.Value.Client;
        if (spec.Disabled || spec.Provider is null)
        {
            return null;
        }

        if (ProviderTracing(spec.Provider, client, out _) is not { } tracing)
        {
            return null;
        }

        ConfigureSampling(tracing, spec.RandomSamplingPercentage ?? ProxyConfigSampling());
        tracing.CustomTags.AddRange(CustomTags(spec, client));
        if (tracing.MaxPathTagLength is null && _mesh.DefaultMaxPathTagLength != 0)
        {
            tracing.MaxPathTagLength = _mesh.DefaultMaxPathTagLength;
        }

        return tracing;
    }

    /// <summary>The tracer config of a provider (istiod's <c>configureFromProviderConfig</c>); null with a reason when istiod would send none.</summary>
    internal HcmTracing? ProviderTracing(ExtensionProvider provider, ClientScope client, out string? problem)
    {
        problem = null;
        uint maxTagLength;
        string tracerName;
        IMessage config;
        if (provider.Zipkin is { } zipkin)
        {
            if (!LookupCluster(zipkin.Service, zipkin.Port, out var hostname, out var cluster, out problem))
            {
                return null;
            }

            maxTagLength = zipkin.MaxTagLength;
            tracerName = XdsExtensionNames.ZipkinTracer;
            // The collector fields istiod writes for proxies before 1.29 (collector_cluster/endpoint/hostname).
            config = new ZipkinConfig
            {
                CollectorCluster = cluster,
                CollectorEndpoint = string.IsNullOrEmpty(zipkin.Path) ? DefaultZipkinPath : zipkin.Path,
                CollectorHostname = hostname,
                CollectorEndpointVersion = ZipkinConfig.Types.CollectorEndpointVersion.HttpJson,
                TraceId128Bit = !zipkin.Enable64BitTraceId,
                SharedSpanContext = false,
            };
        }
        else if (provider.OpenTelemetry is { } otel)
        {
            if (!LookupCluster(otel.Service, otel.Port, out var hostname, out var cluster, out problem))
            {
                return null;
            }

            maxTagLength = otel.MaxTagLength;
            tracerName = XdsExtensionNames.OpenTelemetryTracer;
            var oc = new OpenTelemetryConfig { ServiceName = client.NodeCluster };
            if (otel.Http is { } http)
            {
                oc.HttpService = new HttpService
                {
                    HttpUri = new HttpUri
                    {
                        Uri = JoinPath(hostname, http.Path),
                        Cluster = cluster,
                        Timeout = http.Timeout is { } t ? Duration.FromTimeSpan(t) : null,
                    },
                };
                oc.HttpService.RequestHeadersToAdd.AddRange(http.Headers.Select(static h => new HeaderValueOption
                {
                    AppendAction = HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExistsOrAdd,
                    Header = new HeaderValue { Key = h.Name, Value = HeaderValueOf(h) },
                }));
            }
            else
            {
                oc.GrpcService = new GrpcService
                {
                    EnvoyGrpc = new GrpcService.Types.EnvoyGrpc { ClusterName = cluster, Authority = hostname },
                    Timeout = otel.Grpc?.Timeout is { } t ? Duration.FromTimeSpan(t) : null,
                };
                oc.GrpcService.InitialMetadata.AddRange((otel.Grpc?.InitialMetadata ?? []).Select(static h => new HeaderValue { Key = h.Name, Value = HeaderValueOf(h) }));
            }

            config = oc;
        }
        else
        {
            problem = $"provider '{provider.Name}' ({ProviderKind(provider)}) does not support tracing";
            return null;
        }

        var tracing = new HcmTracing
        {
            Provider = new Tracing.Types.Http { Name = tracerName, TypedConfig = Any.Pack(config) },
        };
        if (maxTagLength != 0)
        {
            tracing.MaxPathTagLength = maxTagLength;
        }

        return tracing;
    }

    private static string HeaderValueOf(ProviderHeader h) =>
        h.Value ?? (h.EnvName is { } env ? Environment.GetEnvironmentVariable(env) ?? string.Empty : string.Empty);

    private static string ProviderKind(ExtensionProvider p) =>
        p.Zipkin is not null ? "zipkin" : p.OpenTelemetry is not null ? "opentelemetry" : p.FileAccessLog is not null ? "envoyFileAccessLog"
        : p.Prometheus ? "prometheus" : p.OtherKind ?? "unknown";

    // Go's url.JoinPath on a bare host name: the path is joined and cleaned.
    private static string JoinPath(string hostname, string path)
    {
        var segments = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var joined = segments.Length == 0 ? hostname : hostname + "/" + string.Join('/', segments);
        return path.EndsWith('/') && segments.Length > 0 ? joined + "/" : joined;
    }

    /// <summary>
    /// istiod's <c>LookupCluster</c>: <c>namespace/host</c> or a host that exactly one namespace has; the cluster is the
    /// service's outbound cluster for the port.
    /// </summary>
    private bool LookupCluster(string service, uint port, out string hostname, out string cluster, out string? problem)
    {
        hostname = cluster = string.Empty;
        problem = null;
        var slash = service.IndexOf('/', StringComparison.Ordinal);
        var host = slash >= 0 ? service[(slash + 1)..] : service;
        var ns = slash >= 0 ? service[..slash] : null;
        var matches = _registry.Services.Where(s => s.Hostname == host && (ns is null || s.Namespace == ns)).ToList();
        var namespaces = matches.Select(static s => s.Namespace).Distinct(StringComparer.Ordinal).ToList();
        if (namespaces.Count > 1 && ns is null)
        {
            problem = $"service '{service}' is found in several namespaces ({string.Join(", ", namespaces)}); write it as <namespace>/<hostname>";
            return false;
        }

        if (matches.Count == 0)
        {
            problem = $"service '{service}' is not a host of the mesh (no ServiceEntry or registered service has it)";
            return false;
        }

        hostname = matches[0].Hostname;
        cluster = IstioNaming.ClusterName((int)port, null, hostname);
        return true;
    }

    private double ProxyConfigSampling() => _mesh.DefaultSampling is > 0 and <= 100 ? _mesh.DefaultSampling : DefaultTraceSampling;

    private static void ConfigureSampling(HcmTracing tracing, double percentage)
    {
        tracing.ClientSampling = new EnvoyPercent { Value = 100 };
        tracing.OverallSampling = new EnvoyPercent { Value = 100 };
        tracing.RandomSampling = new EnvoyPercent { Value = percentage };
    }

    /// <summary>istiod's <c>configureCustomTags</c>: Istio's own tags (unless turned off), then the configured ones, sorted by tag.</summary>
    private List<CustomTag> CustomTags(TracingSpec? spec, ClientScope client)
    {
        var tags = new List<CustomTag>();
        var istioTags = spec is null ? _mesh.DefaultEnableIstioTags ?? true : spec.EnableIstioTags;
        if (istioTags)
        {
            tags.AddRange(ServiceTags(client));
            tags.AddRange(PolicyTags.Select(static p => new CustomTag
            {
                Tag = p.Tag,
                Metadata = new CustomTag.Types.Metadata
                {
                    Kind = new MetadataKind { Request = new MetadataKind.Types.Request() },
                    MetadataKey = new MetadataKey { Key = HttpFilterNames.Rbac, Path = { new MetadataKey.Types.PathSegment { Key = p.Key } } },
                },
            }));
        }

        var configured = spec?.CustomTags is { Count: > 0 } fromTelemetry ? fromTelemetry : _mesh.DefaultCustomTags;
        foreach (var (name, tag) in configured)
        {
            var t = new CustomTag { Tag = name };
            if (tag.Literal is { } literal)
            {
                t.Literal = new CustomTag.Types.Literal { Value = literal };
            }
            else if (tag.EnvironmentName is { } env)
            {
                t.Environment = new CustomTag.Types.Environment { Name = env, DefaultValue = tag.DefaultValue ?? string.Empty };
            }
            else if (tag.HeaderName is { } header)
            {
                t.RequestHeader = new CustomTag.Types.Header { Name = header, DefaultValue = tag.DefaultValue ?? string.Empty };
            }

            tags.Add(t);
        }

        tags.Sort(static (a, b) => string.CompareOrdinal(a.Tag, b.Tag));
        return tags;
    }

    private static IEnumerable<CustomTag> ServiceTags(ClientScope client)
    {
        static string Or(string? value, string fallback) => string.IsNullOrEmpty(value) ? fallback : value;
        static CustomTag Literal(string tag, string value) => new() { Tag = tag, Literal = new CustomTag.Types.Literal { Value = value } };
        yield return Literal("istio.canonical_revision", Or(client.Labels.GetValueOrDefault("service.istio.io/canonical-revision"), "latest"));
        yield return Literal("istio.canonical_service", Or(client.Labels.GetValueOrDefault("service.istio.io/canonical-name"), "unknown"));
        yield return Literal("istio.mesh_id", Or(client.MeshId, "unknown"));
        yield return Literal("istio.namespace", Or(client.Namespace, "default"));
        yield return Literal("istio.cluster_id", Or(client.ClusterId, "unknown"));
    }

    // ---- access log ----

    /// <summary>istiod's HCM access log (<c>setHTTPAccessLog</c>) for one side.</summary>
    internal IReadOnlyList<AccessLog> BuildAccessLogs(IReadOnlyList<IstioTelemetry> applicable, WorkloadMode side)
    {
        var logging = applicable.Where(static t => t.AccessLogging.Count > 0).Select(static t => t.AccessLogging).ToList();
        var configs = new List<(ExtensionProvider Provider, AccessLog Log, string? Filter, bool Disabled)>();
        if (logging.Count > 0 || _mesh.DefaultAccessLogging.Count > 0)
        {
            foreach (var (name, (filter, disabled)) in MergeLogs(logging, side))
            {
                if (_mesh.Provider(name) is not { FileAccessLog: { } file } provider)
                {
                    // Other kinds write no HCM access log (or are not translated here).
                    continue;
                }

                var log = provider.Name == "envoy" && !file.HasLogFormat && !file.OmitEmptyValues
                    ? FromMeshConfig(file.Path ?? "/dev/stdout")
                    : FromProvider(file);
                configs.Add((provider, log, filter, disabled));
            }
        }

        if (configs.Count == 0)
        {
            // No Telemetry access logging: the mesh config's accessLogFile.
            return _mesh.AccessLogFile.Length > 0 ? [FromMeshConfig(_mesh.AccessLogFile)] : [];
        }

        configs.Sort(static (a, b) => string.CompareOrdinal(a.Provider.Name, b.Provider.Name));
        var logs = new List<AccessLog>();
        foreach (var (_, log, filter, disabled) in configs)
        {
            if (disabled)
            {
                continue;
            }

            if (filter is not null)
            {
                log.Filter = new AccessLogFilter
                {
                    ExtensionFilter = new ExtensionFilter
                    {
                        Name = XdsExtensionNames.CelAccessLogFilter,
                        TypedConfig = Any.Pack(new ExpressionFilter { Expression = filter }),
                    },
                };
            }

            logs.Add(log);
        }

        return logs;
    }

    /// <summary>istiod's <c>mergeLogs</c>: provider name to its filter expression and whether it is disabled.</summary>
    private Dictionary<string, (string? Filter, bool Disabled)> MergeLogs(List<IReadOnlyList<AccessLoggingEntry>> logs, WorkloadMode side)
    {
        var providers = new Dictionary<string, (string?, bool)>(StringComparer.Ordinal);
        if (logs.Count == 0)
        {
            foreach (var dp in _mesh.DefaultAccessLogging)
            {
                providers[dp] = (null, false);
            }

            return providers;
        }

        IReadOnlyCollection<string> providerNames = _mesh.DefaultAccessLogging;
        var filters = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var telemetry in logs)
        {
            var names = new HashSet<string>(StringComparer.Ordinal);
            foreach (var entry in telemetry)
            {
                if (!Matches(entry.Mode, side))
                {
                    continue;
                }

                foreach (var p in entry.Providers)
                {
                    names.Add(p.Name);
                    filters[p.Name] = entry.FilterExpression;
                }
            }

            if (names.Count > 0)
            {
                providerNames = names;
            }
        }

        var inScope = new HashSet<string>(providerNames, StringComparer.Ordinal);
        IReadOnlyCollection<string> parent = _mesh.DefaultAccessLogging;
        foreach (var telemetry in logs)
        {
            foreach (var entry in telemetry)
            {
                IReadOnlyCollection<string> names = entry.Providers.Count > 0 ? entry.Providers.Select(static p => p.Name).ToList() : parent;
                parent = names;
                foreach (var provider in names)
                {
                    if (!inScope.Contains(provider) || !Matches(entry.Mode, side))
                    {
                        continue;
                    }

                    providers[provider] = entry.Disabled == true ? (null, true) : (filters.GetValueOrDefault(provider), false);
                }
            }
        }

        return providers;
    }

    private static bool Matches(WorkloadMode? mode, WorkloadMode side) => mode is null or WorkloadMode.ClientAndServer || mode == side;

    /// <summary>istiod's <c>FileAccessLogFromMeshConfig</c>: accessLogEncoding and accessLogFormat of the mesh config.</summary>
    private AccessLog FromMeshConfig(string path)
    {
        var file = new FileAccessLog { Path = path };
        if (_mesh.AccessLogEncoding == "JSON")
        {
            var json = _mesh.AccessLogFormat.Length > 0 ? JsonParser.Default.Parse<Struct>(_mesh.AccessLogFormat) : DefaultJsonFormat();
            file.LogFormat = JsonFormat(json, omitEmptyValues: false);
        }
        else
        {
            file.LogFormat = TextFormat(_mesh.AccessLogFormat, omitEmptyValues: false);
        }

        return new AccessLog { Name = XdsExtensionNames.FileAccessLog, TypedConfig = Any.Pack(file) };
    }

    /// <summary>istiod's <c>fileAccessLogFromTelemetry</c>.</summary>
    private static AccessLog FromProvider(FileAccessLogProvider provider)
    {
        var file = new FileAccessLog { Path = string.IsNullOrEmpty(provider.Path) ? "/dev/stdout" : provider.Path };
        file.LogFormat = provider.Labels is { } labels
            ? JsonFormat(labels.Fields.Count > 0 ? labels : DefaultJsonFormat(), provider.OmitEmptyValues)
            : TextFormat(provider.Text ?? string.Empty, provider.OmitEmptyValues);
        return new AccessLog { Name = XdsExtensionNames.FileAccessLog, TypedConfig = Any.Pack(file) };
    }

    private static SubstitutionFormatString TextFormat(string text, bool omitEmptyValues)
    {
        // Istio adds the newline a format lacks.
        var format = text.Length == 0 ? EnvoyTextLogFormat : text.EndsWith('\n') ? text : text + "\n";
        var result = new SubstitutionFormatString
        {
            TextFormatSource = new DataSource { InlineString = format },
            OmitEmptyValues = omitEmptyValues,
        };
        AddFormatters(result, format.Contains("%REQ_WITHOUT_QUERY", StringComparison.Ordinal));
        return result;
    }

    private static SubstitutionFormatString JsonFormat(Struct json, bool omitEmptyValues)
    {
        var result = new SubstitutionFormatString
        {
            JsonFormat = json,
            JsonFormatOptions = new JsonFormatOptions { SortProperties = false },
            OmitEmptyValues = omitEmptyValues,
        };
        AddFormatters(result, json.Fields.Values.Any(static v => v.KindCase == Value.KindOneofCase.StringValue
            && v.StringValue.Contains("%REQ_WITHOUT_QUERY", StringComparison.Ordinal)));
        return result;
    }

    private static void AddFormatters(SubstitutionFormatString format, bool reqWithoutQuery)
    {
        if (reqWithoutQuery)
        {
            // The formatter's config is an empty message: its type URL alone says which it is.
            format.Formatters.Add(new TypedExtensionConfig { Name = ReqWithoutQueryFormatterName, TypedConfig = new Any { TypeUrl = ReqWithoutQueryTypeUrl } });
        }
    }

    private static Struct DefaultJsonFormat()
    {
        var s = new Struct();
        foreach (var (key, value) in EnvoyJsonLogFormat)
        {
            s.Fields[key] = Value.ForString(value);
        }

        return s;
    }

    // ---- provider checks, reported once per translation ----

    private List<string> CollectWarnings()
    {
        var warnings = new List<string>();
        if (!IsConfigured)
        {
            return warnings;
        }

        var names = new SortedSet<string>(_mesh.DefaultTracing, StringComparer.OrdinalIgnoreCase);
        foreach (var entry in _config.Telemetries.SelectMany(static t => t.Tracing))
        {
            if (entry.Providers.Count > 0)
            {
                names.Add(entry.Providers[0].Name);
            }
        }

        foreach (var name in names)
        {
            if (_mesh.Provider(name) is not { } provider)
            {
                warnings.Add($"tracing provider '{name}' is not defined in the mesh config; workloads using it get no tracing");
                continue;
            }

            if (ProviderTracing(provider, ClientScope.None, out var problem) is null)
            {
                warnings.Add($"tracing provider '{provider.Name}': {problem}; workloads using it get no tracing (as from istiod)");
                continue;
            }

            var (service, port) = provider.Zipkin is { } z ? (z.Service, z.Port) : (provider.OpenTelemetry!.Service, provider.OpenTelemetry.Port);
            LookupCluster(service, port, out var hostname, out var cluster, out _);
            if (!_clusters.Contains(cluster))
            {
                warnings.Add($"tracing provider '{provider.Name}': cluster '{cluster}' does not exist ('{hostname}' has no port {port}); "
                    + "the tracer is configured with it as istiod does, and its spans are not delivered until the port exists");
            }
        }

        return warnings;
    }
}

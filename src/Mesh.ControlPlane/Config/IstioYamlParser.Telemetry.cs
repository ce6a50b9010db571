using System.Globalization;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Mesh.ControlPlane.Config;

/// <summary>The mesh config (<c>istio</c> ConfigMap of <c>istio-system</c>) and Telemetry (<c>telemetry.istio.io</c>).</summary>
internal static partial class IstioYamlParser
{
    private const string TelemetryGroup = "telemetry.istio.io/";
    private static readonly HashSet<string> TelemetryVersions = ["v1", "v1alpha1"];

    private static bool IsTelemetryKind(string apiVersion, string kind) =>
        kind == "Telemetry" && apiVersion.StartsWith(TelemetryGroup, StringComparison.Ordinal)
        && TelemetryVersions.Contains(apiVersion[TelemetryGroup.Length..]);

    private static bool IsConfigMap(string apiVersion, string kind) => kind == "ConfigMap" && apiVersion == "v1";

    // MeshConfig's top-level fields (istio.io/api mesh/v1alpha1/config.proto, JSON names), current and deprecated: none
    // of them is an error; the ones outside telemetry are accepted and have no effect here.
    private static readonly HashSet<string> MeshConfigFields = new(StringComparer.Ordinal)
    {
        "proxyListenPort", "proxyInboundListenPort", "proxyHttpPort", "connectTimeout", "protocolDetectionTimeout", "tcpKeepalive",
        "ingressClass", "ingressService", "ingressControllerMode", "ingressSelector", "enableTracing", "accessLogFile",
        "accessLogFormat", "accessLogEncoding", "enableEnvoyAccessLogService", "disableEnvoyListenerLog", "defaultConfig",
        "outboundTrafficPolicy", "inboundTrafficPolicy", "configSources", "enableAutoMtls", "trustDomain", "trustDomainAliases",
        "caCertificates", "defaultServiceExportTo", "defaultVirtualServiceExportTo", "defaultDestinationRuleExportTo",
        "rootNamespace", "localityLbSetting", "dnsRefreshRate", "h2UpgradePolicy", "inboundClusterStatName",
        "outboundClusterStatName", "certificates", "serviceSettings", "enablePrometheusMerge", "verifyCertificateAtClient", "ca",
        "extensionProviders", "defaultProviders", "discoverySelectors", "pathNormalization", "defaultHttpRetryPolicy", "meshMTLS",
        "tlsDefaults", "serviceScopeConfigs", "meshNetworks", "thriftConfig", "mixerCheckServer", "mixerReportServer",
        "disablePolicyChecks", "policyCheckFailOpen", "sidecarToTelemetrySessionAffinity", "sdsUdsPath", "enableSdsTokenMount",
        "sdsUseK8sSaJwt", "authPolicy", "rdsRefreshDelay", "mixerAddress", "outboundTrafficPolicyMode", "enableTelemetryLabel",
    };

    // ---- mesh config ----

    /// <summary>
    /// Parses a ConfigMap. The <c>istio</c> ConfigMap of <c>istio-system</c> is the mesh config; any other ConfigMap is
    /// reported as not applied (it is not the mesh config).
    /// </summary>
    private static IstioResource? ParseConfigMap(YamlMappingNode map, string apiVersion, string name, string ns, int line, List<UnappliedResource> unapplied)
    {
        if (name != MeshConfigMap.ConfigMapName || ns != MeshConfigMap.ConfigMapNamespace)
        {
            unapplied.Add(new UnappliedResource(apiVersion, "ConfigMap", ns, name, line,
                $"only the ConfigMap '{MeshConfigMap.ConfigMapNamespace}/{MeshConfigMap.ConfigMapName}' (Istio's mesh config, key 'data.mesh') is read; this one is not the mesh config",
                Severe: true));
            return null;
        }

        var settings = MeshTelemetrySettings.Default;
        if (Get(map, "data") is { } dataNode && !IsNull(dataNode)
            && Get(AsMap(dataNode, "data"), "mesh") is { } meshNode && !IsNull(meshNode))
        {
            var scalar = meshNode as YamlScalarNode ?? throw Error(meshNode, $"'data.mesh' must be a string holding the mesh config YAML, got {Describe(meshNode)}");
            settings = ParseMeshConfigText(scalar);
        }

        return new MeshConfigMap { Settings = settings, Kind = "", ApiVersion = "", Name = "", Namespace = "", Source = null! };
    }

    private static MeshTelemetrySettings ParseMeshConfigText(YamlScalarNode scalar)
    {
        // A block scalar's text starts on the line after its indicator ('mesh: |'); errors are reported at file lines.
        var offset = scalar.Style is ScalarStyle.Literal or ScalarStyle.Folded ? (int)scalar.Start.Line : (int)scalar.Start.Line - 1;
        var stream = LoadYaml(scalar.Value ?? string.Empty, " in 'data.mesh'", offset);

        if (stream.Documents.Count == 0 || IsNull(stream.Documents[0].RootNode))
        {
            return MeshTelemetrySettings.Default;
        }

        var notesAt = t_notes?.Count ?? 0;
        var warningsAt = t_warnings?.Count ?? 0;
        try
        {
            return ParseMeshConfig(AsMap(stream.Documents[0].RootNode, "data.mesh"));
        }
        catch (ConfigException ex)
        {
            throw new ConfigException(ex.Message, ex.Line + offset, ex.Column);
        }
        finally
        {
            ShiftLines(t_notes, notesAt, offset);
            ShiftLines(t_warnings, warningsAt, offset);
        }
    }

    /// <summary>Turns "line:column: ..." messages recorded inside the embedded mesh config into file lines.</summary>
    private static void ShiftLines(List<string>? messages, int from, int offset)
    {
        for (var i = from; i < (messages?.Count ?? 0); i++)
        {
            var m = messages![i];
            var colon = m.IndexOf(':', StringComparison.Ordinal);
            if (colon > 0 && int.TryParse(m.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                messages[i] = $"{n + offset}{m[colon..]}";
            }
        }
    }

    private static MeshTelemetrySettings ParseMeshConfig(YamlMappingNode mesh)
    {
        foreach (var (k, _) in mesh.Children)
        {
            var key = ScalarValue(k, "data.mesh");
            if (!MeshConfigFields.Contains(key))
            {
                var likely = Suggest.Closest(key, MeshConfigFields) is { } m ? $" (did you mean '{m}'?)" : string.Empty;
                Warn(k, $"'data.mesh.{key}' is not a field of Istio's mesh config{likely}; it is ignored");
            }
        }

        // istiod merges the ConfigMap's providers into its built-in ones by name: a provider of the same name replaces the built-in.
        var providers = MeshTelemetrySettings.BuiltInProviders.ToList();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in Sequence(mesh, "extensionProviders", "data.mesh"))
        {
            var provider = ParseExtensionProvider(AsMap(node, "data.mesh.extensionProviders[]"));
            if (!names.Add(provider.Name))
            {
                throw Error(node, $"duplicate extension provider name '{provider.Name}' in 'data.mesh.extensionProviders'");
            }

            var existing = providers.FindIndex(p => p.Name == provider.Name);
            if (existing >= 0)
            {
                providers[existing] = provider;
            }
            else
            {
                providers.Add(provider);
            }
        }

        IReadOnlyList<string> tracing = [], accessLogging = [], metrics = [];
        if (Get(mesh, "defaultProviders") is { } dpNode && !IsNull(dpNode))
        {
            var dp = AsMap(dpNode, "data.mesh.defaultProviders");
            CheckKeys(dp, "data.mesh.defaultProviders", "tracing", "metrics", "accessLogging");
            tracing = KnownProviderNames(dp, "tracing", providers);
            accessLogging = KnownProviderNames(dp, "accessLogging", providers);
            metrics = KnownProviderNames(dp, "metrics", providers);
        }

        var settings = new MeshTelemetrySettings
        {
            ExtensionProviders = providers,
            DefaultTracing = tracing,
            DefaultAccessLogging = accessLogging,
            DefaultMetrics = metrics,
            EnableTracing = OptionalBool(mesh, "enableTracing") ?? true,
            AccessLogFile = OptionalString(mesh, "accessLogFile") ?? string.Empty,
            AccessLogEncoding = Enum(mesh, "accessLogEncoding", ["TEXT", "JSON"]) ?? "TEXT",
            AccessLogFormat = OptionalString(mesh, "accessLogFormat") ?? string.Empty,
        };
        if (settings.AccessLogEncoding == "JSON" && settings.AccessLogFormat.Length > 0)
        {
            // istiod falls back to its default JSON format when this does not parse; the mistake is reported here instead.
            try
            {
                JsonParser.Default.Parse<Struct>(settings.AccessLogFormat);
            }
            catch (InvalidProtocolBufferException ex)
            {
                throw Error(Get(mesh, "accessLogFormat")!, $"'data.mesh.accessLogFormat' must be a JSON object when 'accessLogEncoding' is JSON: {ex.Message}");
            }
            catch (InvalidJsonException ex)
            {
                throw Error(Get(mesh, "accessLogFormat")!, $"'data.mesh.accessLogFormat' must be a JSON object when 'accessLogEncoding' is JSON: {ex.Message}");
            }
        }

        if (Get(mesh, "defaultConfig") is { } dcNode && !IsNull(dcNode)
            && Get(AsMap(dcNode, "data.mesh.defaultConfig"), "tracing") is { } trNode && !IsNull(trNode))
        {
            var tr = AsMap(trNode, "data.mesh.defaultConfig.tracing");
            double sampling = 0;
            if (Get(tr, "sampling") is { } sn && !IsNull(sn))
            {
                var text = ScalarValue(sn, "data.mesh.defaultConfig.tracing.sampling");
                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out sampling) || sampling < 0 || sampling > 100)
                {
                    throw Error(sn, $"'data.mesh.defaultConfig.tracing.sampling' must be a percentage from 0 to 100, got '{text}'");
                }
            }

            settings = settings with
            {
                DefaultSampling = sampling,
                DefaultMaxPathTagLength = Get(tr, "maxPathTagLength") is { } ml && !IsNull(ml) ? UIntValue(ml, "data.mesh.defaultConfig.tracing.maxPathTagLength", 0, uint.MaxValue) : 0,
                DefaultCustomTags = CustomTags(tr, "custom_tags", "data.mesh.defaultConfig.tracing") ?? CustomTags(tr, "customTags", "data.mesh.defaultConfig.tracing") ?? new Dictionary<string, CustomTagSpec>(),
                DefaultEnableIstioTags = OptionalBool(tr, "enableIstioTags"),
            };
        }

        return settings;
    }

    /// <summary><c>defaultProviders.{key}</c>: names of providers that exist (istiod ignores the others; so does this, with a warning).</summary>
    private static List<string> KnownProviderNames(YamlMappingNode dp, string key, List<ExtensionProvider> providers)
    {
        var names = new List<string>();
        foreach (var n in Sequence(dp, key, "data.mesh.defaultProviders"))
        {
            var name = ScalarValue(n, $"data.mesh.defaultProviders.{key}[]");
            if (!providers.Any(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase)))
            {
                throw Error(n, $"'data.mesh.defaultProviders.{key}' names provider '{name}', which 'data.mesh.extensionProviders' does not define "
                    + $"(defined: {string.Join(", ", providers.Select(p => p.Name))})");
            }

            names.Add(name);
        }

        return names;
    }

    private static ExtensionProvider ParseExtensionProvider(YamlMappingNode p)
    {
        const string path = "data.mesh.extensionProviders[]";
        var name = RequiredString(p, "name", path);
        var kinds = p.Children.Keys.Select(k => ScalarValue(k, path)).Where(k => k != "name").ToList();
        if (kinds.Count != 1)
        {
            throw Error(p, $"extension provider '{name}' must set exactly one provider kind (e.g. 'zipkin', 'opentelemetry', 'envoyFileAccessLog'), got {(kinds.Count == 0 ? "none" : string.Join(", ", kinds))}");
        }

        var kind = kinds[0];
        var kindPath = $"{path}.{kind}";
        var body = Get(p, kind) is { } b && !IsNull(b) ? AsMap(b, kindPath) : new YamlMappingNode();
        var provider = new ExtensionProvider(name, (int)p.Start.Line);
        switch (kind)
        {
            case "zipkin":
                CheckKeys(body, kindPath, "service", "port", "maxTagLength", "enable64bitTraceId", "path", "traceContextOption", "timeout", "headers");
                return provider with
                {
                    Zipkin = new ZipkinProvider(RequiredString(body, "service", kindPath), RequiredPort(body, "port", kindPath))
                    {
                        MaxTagLength = OptionalUInt(body, "maxTagLength", kindPath),
                        Enable64BitTraceId = OptionalBool(body, "enable64bitTraceId") ?? false,
                        Path = OptionalString(body, "path"),
                    },
                };
            case "opentelemetry":
                CheckKeys(body, kindPath, "service", "port", "maxTagLength", "http", "grpc", "resourceDetectors", "dynatraceSampler", "serviceAttributeEnrichment");
                var otel = new OpenTelemetryProvider(RequiredString(body, "service", kindPath), RequiredPort(body, "port", kindPath))
                {
                    MaxTagLength = OptionalUInt(body, "maxTagLength", kindPath),
                };
                if (Get(body, "http") is { } httpNode && !IsNull(httpNode))
                {
                    var http = AsMap(httpNode, kindPath + ".http");
                    CheckKeys(http, kindPath + ".http", "path", "timeout", "headers");
                    otel = otel with { Http = new OtlpHttp(OptionalString(http, "path") ?? string.Empty, OptionalDuration(http, "timeout"), Headers(http, "headers", kindPath + ".http")) };
                }

                if (Get(body, "grpc") is { } grpcNode && !IsNull(grpcNode))
                {
                    var grpc = AsMap(grpcNode, kindPath + ".grpc");
                    CheckKeys(grpc, kindPath + ".grpc", "timeout", "initialMetadata");
                    otel = otel with { Grpc = new OtlpGrpc(OptionalDuration(grpc, "timeout"), Headers(grpc, "initialMetadata", kindPath + ".grpc")) };
                }

                if (otel.Http is not null && otel.Grpc is not null)
                {
                    throw Error(body, $"extension provider '{name}': '{kindPath}' sets both 'http' and 'grpc'; choose one exporter");
                }

                return provider with { OpenTelemetry = otel };
            case "envoyFileAccessLog":
                CheckKeys(body, kindPath, "path", "logFormat", "omitEmptyValues");
                var file = new FileAccessLogProvider(OptionalString(body, "path")) { OmitEmptyValues = OptionalBool(body, "omitEmptyValues") ?? false };
                if (Get(body, "logFormat") is { } lfNode && !IsNull(lfNode))
                {
                    var lf = AsMap(lfNode, kindPath + ".logFormat");
                    CheckKeys(lf, kindPath + ".logFormat", "text", "labels");
                    Struct? labels = null;
                    if (Get(lf, "labels") is { } ln && !IsNull(ln))
                    {
                        labels = ToStruct(AsMap(ln, kindPath + ".logFormat.labels"));
                    }

                    if (labels is not null && Get(lf, "text") is { } tn && !IsNull(tn))
                    {
                        throw Error(lf, $"extension provider '{name}': '{kindPath}.logFormat' sets both 'text' and 'labels'");
                    }

                    file = file with
                    {
                        HasLogFormat = true,
                        Text = OptionalString(lf, "text"),
                        Labels = labels,
                    };
                }

                return provider with { FileAccessLog = file };
            case "prometheus":
                return provider with { Prometheus = true };
            case "envoyExtAuthzHttp" or "envoyExtAuthzGrpc" or "stackdriver" or "skywalking" or "datadog" or "lightstep" or "opencensus"
                or "envoyHttpAls" or "envoyTcpAls" or "envoyOtelAls" or "sds":
                Note(p, $"extension provider '{name}' of kind '{kind}' is accepted but not translated by this control plane");
                return provider with { OtherKind = kind };
            default:
                throw Error(p, $"extension provider '{name}' has unknown kind '{kind}' (expected one of zipkin, opentelemetry, envoyFileAccessLog, prometheus, "
                    + "envoyExtAuthzHttp, envoyExtAuthzGrpc, stackdriver, skywalking, datadog, lightstep, opencensus, envoyHttpAls, envoyTcpAls, envoyOtelAls, sds)");
        }
    }

    private static List<ProviderHeader> Headers(YamlMappingNode map, string key, string path)
    {
        var headers = new List<ProviderHeader>();
        foreach (var node in Sequence(map, key, path))
        {
            var h = AsMap(node, $"{path}.{key}[]");
            CheckKeys(h, $"{path}.{key}[]", "name", "value", "envName");
            headers.Add(new ProviderHeader(RequiredString(h, "name", $"{path}.{key}[]"), OptionalString(h, "value"), OptionalString(h, "envName")));
        }

        return headers;
    }

    private static Struct ToStruct(YamlMappingNode map)
    {
        var s = new Struct();
        foreach (var (k, v) in map.Children)
        {
            s.Fields[ScalarValue(k, "labels")] = ToValue(v);
        }

        return s;
    }

    private static Value ToValue(YamlNode node) => node switch
    {
        YamlMappingNode m => Value.ForStruct(ToStruct(m)),
        YamlSequenceNode seq => Value.ForList([.. seq.Children.Select(ToValue)]),
        _ when IsNull(node) => Value.ForNull(),
        YamlScalarNode { Style: ScalarStyle.Plain } s when double.TryParse(s.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) => Value.ForNumber(d),
        YamlScalarNode { Style: ScalarStyle.Plain, Value: "true" or "false" } s => Value.ForBool(s.Value == "true"),
        _ => Value.ForString(ScalarValue(node, "labels")),
    };

    private static uint OptionalUInt(YamlMappingNode map, string key, string path) =>
        Get(map, key) is { } v && !IsNull(v) ? UIntValue(v, $"{path}.{key}", 0, uint.MaxValue) : 0;

    /// <summary>Rejects a key of <paramref name="map"/> that is not among <paramref name="known"/>, naming where.</summary>
    private static void CheckKeys(YamlMappingNode map, string path, params string[] known)
    {
        foreach (var (k, _) in map.Children)
        {
            var key = ScalarValue(k, path);
            if (!known.Contains(key, StringComparer.Ordinal))
            {
                throw IstioFields.Unknown(k, key, path, known);
            }
        }
    }

    // ---- Telemetry ----

    private static readonly string[] MetricNames =
    [
        "ALL_METRICS", "REQUEST_COUNT", "REQUEST_DURATION", "REQUEST_SIZE", "RESPONSE_SIZE", "TCP_OPENED_CONNECTIONS",
        "TCP_CLOSED_CONNECTIONS", "TCP_SENT_BYTES", "TCP_RECEIVED_BYTES", "GRPC_REQUEST_MESSAGES", "GRPC_RESPONSE_MESSAGES",
    ];

    private static Telemetry ParseTelemetry(YamlMappingNode spec)
    {
        CheckKeys(spec, "spec", "selector", "targetRef", "targetRefs", "tracing", "metrics", "accessLogging");
        var selectorNode = Get(spec, "selector");
        foreach (var key in new[] { "targetRef", "targetRefs" })
        {
            if (Get(spec, key) is { } t && !IsNull(t))
            {
                throw selectorNode is not null && !IsNull(selectorNode)
                    ? Error(t, $"'spec.selector' and 'spec.{key}' cannot both be set")
                    : Error(t, $"'spec.{key}' (attachment to gateways and services) is not supported by this control plane; use 'spec.selector'");
            }
        }

        IReadOnlyDictionary<string, string>? selector = null;
        if (selectorNode is not null && !IsNull(selectorNode))
        {
            var sm = AsMap(selectorNode, "spec.selector");
            CheckKeys(sm, "spec.selector", "matchLabels");
            var labels = StringMap(sm, "matchLabels", "spec.selector");
            selector = labels.Count == 0 ? null : labels;
        }

        var tracing = new List<TracingEntry>();
        foreach (var node in Sequence(spec, "tracing", "spec"))
        {
            const string path = "spec.tracing[]";
            var t = AsMap(node, path);
            CheckKeys(t, path, "match", "providers", "randomSamplingPercentage", "disableSpanReporting", "customTags",
                "useRequestIdForTraceSampling", "enableIstioTags", "disableContextPropagation");
            double? sampling = null;
            if (Get(t, "randomSamplingPercentage") is { } sn && !IsNull(sn))
            {
                var text = ScalarValue(sn, path + ".randomSamplingPercentage");
                if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || v < 0 || v > 100)
                {
                    throw Error(sn, $"'{path}.randomSamplingPercentage' must be a percentage from 0 to 100, got '{text}'");
                }

                sampling = v;
            }

            if (Get(t, "disableContextPropagation") is { } dcp && !IsNull(dcp))
            {
                Note(dcp, $"'{path}.disableContextPropagation' is accepted but not translated (the xDS subset carries no no_context_propagation)");
            }

            tracing.Add(new TracingEntry
            {
                Mode = Mode(t, path),
                Providers = Providers(t, path),
                RandomSamplingPercentage = sampling,
                DisableSpanReporting = OptionalBool(t, "disableSpanReporting"),
                CustomTags = CustomTags(t, "customTags", path),
                UseRequestIdForTraceSampling = OptionalBool(t, "useRequestIdForTraceSampling"),
                EnableIstioTags = OptionalBool(t, "enableIstioTags"),
            });
        }

        var logging = new List<AccessLoggingEntry>();
        foreach (var node in Sequence(spec, "accessLogging", "spec"))
        {
            const string path = "spec.accessLogging[]";
            var a = AsMap(node, path);
            CheckKeys(a, path, "match", "providers", "disabled", "filter");
            string? expression = null;
            if (Get(a, "filter") is { } fn && !IsNull(fn))
            {
                var f = AsMap(fn, path + ".filter");
                CheckKeys(f, path + ".filter", "expression");
                expression = RequiredString(f, "expression", path + ".filter");
            }

            logging.Add(new AccessLoggingEntry { Mode = Mode(a, path), Providers = Providers(a, path), Disabled = OptionalBool(a, "disabled"), FilterExpression = expression });
        }

        var metrics = new List<MetricsEntry>();
        foreach (var node in Sequence(spec, "metrics", "spec"))
        {
            const string path = "spec.metrics[]";
            var m = AsMap(node, path);
            CheckKeys(m, path, "providers", "overrides", "reportingInterval");
            var overrides = new List<MetricOverride>();
            foreach (var on in Sequence(m, "overrides", path))
            {
                var o = AsMap(on, path + ".overrides[]");
                CheckKeys(o, path + ".overrides[]", "match", "disabled", "tagOverrides");
                var metric = "ALL_METRICS";
                string? custom = null;
                var mode = WorkloadMode.ClientAndServer;
                if (Get(o, "match") is { } mn && !IsNull(mn))
                {
                    var match = AsMap(mn, path + ".overrides[].match");
                    CheckKeys(match, path + ".overrides[].match", "metric", "customMetric", "mode");
                    metric = Enum(match, "metric", MetricNames) ?? "ALL_METRICS";
                    custom = OptionalString(match, "customMetric");
                    if (custom is not null && Get(match, "metric") is { } both && !IsNull(both))
                    {
                        throw Error(both, $"'{path}.overrides[].match' sets both 'metric' and 'customMetric'");
                    }

                    mode = ModeValue(match, path + ".overrides[].match") ?? WorkloadMode.ClientAndServer;
                }

                var tags = new Dictionary<string, TagOverride>(StringComparer.Ordinal);
                if (Get(o, "tagOverrides") is { } tn && !IsNull(tn))
                {
                    foreach (var (k, v) in AsMap(tn, path + ".overrides[].tagOverrides").Children)
                    {
                        var tag = ScalarValue(k, path + ".overrides[].tagOverrides");
                        var tagPath = $"{path}.overrides[].tagOverrides.{tag}";
                        var tm = IsNull(v) ? new YamlMappingNode() : AsMap(v, tagPath);
                        CheckKeys(tm, tagPath, "operation", "value");
                        var operation = Enum(tm, "operation", ["UPSERT", "REMOVE"]) ?? "UPSERT";
                        var value = OptionalString(tm, "value");
                        if (operation == "UPSERT" && value is null)
                        {
                            throw Error(tm, $"'{tagPath}' with operation UPSERT needs a 'value'");
                        }

                        tags[tag] = new TagOverride(operation, value);
                    }
                }

                overrides.Add(new MetricOverride { Metric = custom is null ? metric : string.Empty, CustomMetric = custom, Mode = mode, Disabled = OptionalBool(o, "disabled"), TagOverrides = tags });
            }

            metrics.Add(new MetricsEntry { Providers = Providers(m, path), Overrides = overrides, ReportingInterval = OptionalDuration(m, "reportingInterval") });
        }

        return new Telemetry
        {
            Selector = selector,
            Tracing = tracing,
            AccessLogging = logging,
            Metrics = metrics,
            Kind = "", ApiVersion = "", Name = "", Namespace = "", Source = null!,
        };
    }

    private static WorkloadMode? Mode(YamlMappingNode entry, string path)
    {
        if (Get(entry, "match") is not { } mn || IsNull(mn))
        {
            return null;
        }

        var match = AsMap(mn, path + ".match");
        CheckKeys(match, path + ".match", "mode");
        return ModeValue(match, path + ".match");
    }

    private static WorkloadMode? ModeValue(YamlMappingNode match, string path) => Enum(match, "mode", ["CLIENT_AND_SERVER", "CLIENT", "SERVER"]) switch
    {
        null => null,
        "CLIENT" => WorkloadMode.Client,
        "SERVER" => WorkloadMode.Server,
        _ => WorkloadMode.ClientAndServer,
    };

    private static List<ProviderRef> Providers(YamlMappingNode entry, string path)
    {
        var refs = new List<ProviderRef>();
        foreach (var node in Sequence(entry, "providers", path))
        {
            var p = AsMap(node, path + ".providers[]");
            CheckKeys(p, path + ".providers[]", "name");
            var nameNode = Required(p, "name", path + ".providers[]");
            refs.Add(new ProviderRef(ScalarValue(nameNode, path + ".providers[].name"), (int)nameNode.Start.Line, (int)nameNode.Start.Column));
        }

        return refs;
    }

    private static Dictionary<string, CustomTagSpec>? CustomTags(YamlMappingNode entry, string key, string path)
    {
        if (Get(entry, key) is not { } node || IsNull(node))
        {
            return null;
        }

        var tags = new Dictionary<string, CustomTagSpec>(StringComparer.Ordinal);
        foreach (var (k, v) in AsMap(node, $"{path}.{key}").Children)
        {
            var name = ScalarValue(k, $"{path}.{key}");
            var tagPath = $"{path}.{key}.{name}";
            var tag = AsMap(v, tagPath);
            CheckKeys(tag, tagPath, "literal", "environment", "header", "formatter");
            if (tag.Children.Count != 1)
            {
                throw Error(tag, $"custom tag '{name}' must set exactly one of 'literal', 'environment', 'header'");
            }

            var (kindNode, body) = tag.Children.First();
            var kind = ScalarValue(kindNode, tagPath);
            var bodyPath = $"{tagPath}.{kind}";
            var b = AsMap(body, bodyPath);
            tags[name] = kind switch
            {
                "literal" => Checked(b, bodyPath, ["value"], new CustomTagSpec { Literal = RequiredString(b, "value", bodyPath) }),
                "environment" => Checked(b, bodyPath, ["name", "defaultValue"], new CustomTagSpec { EnvironmentName = RequiredString(b, "name", bodyPath), DefaultValue = OptionalString(b, "defaultValue") }),
                "header" => Checked(b, bodyPath, ["name", "defaultValue"], new CustomTagSpec { HeaderName = RequiredString(b, "name", bodyPath), DefaultValue = OptionalString(b, "defaultValue") }),
                _ => throw Error(kindNode, $"custom tag '{name}': '{kind}' (Envoy formatter tags) is not supported; use 'literal', 'environment' or 'header'"),
            };
        }

        return tags;
    }

    private static T Checked<T>(YamlMappingNode map, string path, string[] known, T value)
    {
        CheckKeys(map, path, known);
        return value;
    }
}

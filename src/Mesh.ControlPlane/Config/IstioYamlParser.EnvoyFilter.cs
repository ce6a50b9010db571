using System.Globalization;
using System.Text;
using System.Text.Json;
using Envoy.Extensions.Filters.Http.LocalRatelimit.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Mesh.Xds;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Mesh.ControlPlane.Config;

// networking.istio.io/v1alpha3 EnvoyFilter: the local rate limit shapes of Istio's "local rate limit" task are parsed
// into EnvoyFilter patches; every other patch is accepted and reported as not applied, with its line and why.
internal static partial class IstioYamlParser
{
    private const string TypedStructTypeUrl = "type.googleapis.com/udpa.type.v1.TypedStruct";
    private const string XdsTypedStructTypeUrl = "type.googleapis.com/xds.type.v3.TypedStruct";

    /// <summary>Envoy refuses a local rate limit token bucket refilled more often than this.</summary>
    internal static readonly TimeSpan MinFillInterval = TimeSpan.FromMilliseconds(50);

    private static readonly string[] HcmNames = [XdsExtensionNames.HttpConnectionManager, "envoy.http_connection_manager"];

    private static readonly JsonParser StrictJson = new(JsonParser.Settings.Default);

    private static EnvoyFilter ParseEnvoyFilter(YamlMappingNode spec, string apiVersion, string ns, string name, List<UnappliedResource> unapplied)
    {
        if (Get(spec, "targetRefs") is { } targetRefs && !IsNull(targetRefs))
        {
            throw Error(targetRefs, "'spec.targetRefs' is not supported by this control plane; use 'spec.workloadSelector'");
        }

        IReadOnlyDictionary<string, string>? selector = null;
        if (Get(spec, "workloadSelector") is { } ws && !IsNull(ws))
        {
            var labels = StringMap(AsMap(ws, "spec.workloadSelector"), "labels", "spec.workloadSelector");
            selector = labels.Count == 0 ? null : labels;
        }

        var priority = 0;
        if (Get(spec, "priority") is { } p && !IsNull(p))
        {
            var text = ScalarValue(p, "spec.priority");
            priority = int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value)
                ? value
                : throw Error(p, $"'spec.priority' must be an integer, got '{text}'");
        }

        var filters = new List<EnvoyFilterHttpFilterPatch>();
        var routes = new List<EnvoyFilterRoutePatch>();
        var index = 0;
        foreach (var node in Sequence(spec, "configPatches", "spec"))
        {
            var path = $"spec.configPatches[{index++}]";
            var patch = AsMap(node, path);
            var skip = ParseConfigPatch(patch, path, filters, routes);
            if (skip is not null)
            {
                unapplied.Add(new UnappliedResource(apiVersion, "EnvoyFilter", ns, name, (int)patch.Start.Line, $"{path}: {skip}", Severe: true, (int)patch.Start.Column));
            }
        }

        return new EnvoyFilter
        {
            Selector = selector,
            Priority = priority,
            HttpFilterPatches = filters,
            RoutePatches = routes,
            Kind = "", ApiVersion = "", Name = "", Namespace = "", Source = null!,
        };
    }

    /// <summary>Adds the patch to <paramref name="filters"/> or <paramref name="routes"/>; returns why it is not applied otherwise.</summary>
    private static string? ParseConfigPatch(YamlMappingNode patch, string path, List<EnvoyFilterHttpFilterPatch> filters, List<EnvoyFilterRoutePatch> routes)
    {
        var applyTo = OptionalString(patch, "applyTo") ?? "INVALID";
        var match = Get(patch, "match") is { } m && !IsNull(m) ? AsMap(m, path + ".match") : new YamlMappingNode();
        var patchNode = AsMap(Required(patch, "patch", path), path + ".patch");
        var operation = OptionalString(patchNode, "operation") ?? "INVALID";
        var context = OptionalString(match, "context") ?? "ANY";
        if (context is not ("SIDECAR_INBOUND" or "ANY"))
        {
            return $"match.context {context} is not applied: only SIDECAR_INBOUND patches (the workload's inbound listeners) are";
        }

        if (Get(match, "proxy") is { } proxy && !IsNull(proxy))
        {
            return "match.proxy is not supported";
        }

        return applyTo switch
        {
            "HTTP_FILTER" => ParseHttpFilterPatch(match, patchNode, operation, path, (int)patch.Start.Line, filters),
            "HTTP_ROUTE" => ParseRoutePatch(match, patchNode, operation, path, (int)patch.Start.Line, routes),
            _ => $"applyTo {applyTo} is not applied: only HTTP_FILTER (envoy.filters.http.local_ratelimit) and HTTP_ROUTE "
                 + "(typed_per_filter_config for it) patches are",
        };
    }

    private static string? ParseHttpFilterPatch(YamlMappingNode match, YamlMappingNode patchNode, string operation, string path, int line, List<EnvoyFilterHttpFilterPatch> filters)
    {
        var op = operation switch
        {
            "INSERT_BEFORE" => EnvoyFilterOperation.InsertBefore,
            "INSERT_AFTER" => EnvoyFilterOperation.InsertAfter,
            "INSERT_FIRST" => EnvoyFilterOperation.InsertFirst,
            "ADD" => EnvoyFilterOperation.Add,
            _ => (EnvoyFilterOperation?)null,
        };
        if (op is null)
        {
            return $"patch.operation {operation} is not applied to HTTP_FILTER: only INSERT_BEFORE, INSERT_AFTER, INSERT_FIRST and ADD are";
        }

        if (Get(match, "routeConfiguration") is { } rc && !IsNull(rc) || Get(match, "cluster") is { } c && !IsNull(c))
        {
            return "an HTTP_FILTER patch must match a listener (match.listener), not a route configuration or cluster";
        }

        uint port = 0;
        string? subFilter = null;
        if (Get(match, "listener") is { } l && !IsNull(l))
        {
            var listener = AsMap(l, path + ".match.listener");
            if (Get(listener, "portNumber") is { } pn && !IsNull(pn))
            {
                port = PortValue(pn, path + ".match.listener.portNumber");
            }

            foreach (var key in new[] { "name", "portName", "listenerFilter" })
            {
                if (Get(listener, key) is { } v && !IsNull(v))
                {
                    return $"match.listener.{key} is not supported (inbound listeners are matched by portNumber only)";
                }
            }

            if (Get(listener, "filterChain") is { } fcNode && !IsNull(fcNode))
            {
                var fc = AsMap(fcNode, path + ".match.listener.filterChain");
                foreach (var (k, v) in fc.Children)
                {
                    var key = ScalarValue(k, path + ".match.listener.filterChain");
                    if (key != "filter" && !IsNull(v))
                    {
                        return $"match.listener.filterChain.{key} is not supported (only filterChain.filter is)";
                    }
                }

                if (Get(fc, "filter") is { } fNode && !IsNull(fNode))
                {
                    var filter = AsMap(fNode, path + ".match.listener.filterChain.filter");
                    var filterName = OptionalString(filter, "name");
                    if (filterName is not null && !HcmNames.Contains(filterName, StringComparer.Ordinal))
                    {
                        return $"match.listener.filterChain.filter.name '{filterName}' is not applied: HTTP filters go into {XdsExtensionNames.HttpConnectionManager}";
                    }

                    if (Get(filter, "subFilter") is { } sf && !IsNull(sf))
                    {
                        subFilter = OptionalString(AsMap(sf, path + ".match.listener.filterChain.filter.subFilter"), "name");
                        if (subFilter == "envoy.router")
                        {
                            subFilter = HttpFilterNames.Router;
                        }
                    }
                }
            }
        }

        var valueNode = AsMap(Required(patchNode, "value", path + ".patch"), path + ".patch.value");
        var filterValueName = OptionalString(valueNode, "name");
        if (filterValueName != HttpFilterNames.LocalRateLimit)
        {
            return $"the filter '{filterValueName}' is not applied: only {HttpFilterNames.LocalRateLimit} is";
        }

        foreach (var (k, v) in valueNode.Children)
        {
            var key = ScalarValue(k, path + ".patch.value");
            if (key is not ("name" or "typed_config" or "typedConfig") && !IsNull(v))
            {
                return $"patch.value.{key} is not supported (only name and typed_config are)";
            }
        }

        var typedConfig = Get(valueNode, "typed_config") ?? Get(valueNode, "typedConfig");
        var config = typedConfig is null || IsNull(typedConfig)
            ? throw Error(valueNode, $"'{path}.patch.value.typed_config' is required: a LocalRateLimit")
            : ParseLocalRateLimit(typedConfig, path + ".patch.value.typed_config", perRoute: false, out var skip);
        if (config is null)
        {
            return skip;
        }

        filters.Add(new EnvoyFilterHttpFilterPatch(op.Value, port, subFilter, new HttpFilter { Name = HttpFilterNames.LocalRateLimit, TypedConfig = Any.Pack(config) }, line));
        return null;
    }

    private static string? ParseRoutePatch(YamlMappingNode match, YamlMappingNode patchNode, string operation, string path, int line, List<EnvoyFilterRoutePatch> routes)
    {
        if (operation != "MERGE")
        {
            return $"patch.operation {operation} is not applied to HTTP_ROUTE: only MERGE is";
        }

        if (Get(match, "routeConfiguration") is not { } rcNode || IsNull(rcNode))
        {
            return "an HTTP_ROUTE patch must match a route configuration (match.routeConfiguration)";
        }

        var rc = AsMap(rcNode, path + ".match.routeConfiguration");
        uint port = 0;
        if (Get(rc, "portNumber") is { } pn && !IsNull(pn))
        {
            port = PortValue(pn, path + ".match.routeConfiguration.portNumber");
        }

        foreach (var key in new[] { "portName", "gateway", "name" })
        {
            if (Get(rc, key) is { } v && !IsNull(v))
            {
                return $"match.routeConfiguration.{key} is not supported (inbound routes are matched by portNumber and vhost)";
            }
        }

        string? vhostName = null, routeName = null;
        if (Get(rc, "vhost") is { } vhNode && !IsNull(vhNode))
        {
            var vh = AsMap(vhNode, path + ".match.routeConfiguration.vhost");
            vhostName = OptionalString(vh, "name");
            if (Get(vh, "route") is { } rNode && !IsNull(rNode))
            {
                var route = AsMap(rNode, path + ".match.routeConfiguration.vhost.route");
                routeName = OptionalString(route, "name");
                var action = OptionalString(route, "action") ?? "ANY";
                if (action is not ("ANY" or "ROUTE"))
                {
                    return $"match.routeConfiguration.vhost.route.action {action} never matches an inbound route (they forward to the workload)";
                }
            }
        }

        var valueNode = AsMap(Required(patchNode, "value", path + ".patch"), path + ".patch.value");
        YamlNode? perRoute = null;
        var rateLimits = new List<Envoy.Config.Route.V3.RateLimit>();
        foreach (var (k, v) in valueNode.Children)
        {
            var key = ScalarValue(k, path + ".patch.value");
            if (key == "route" && !IsNull(v))
            {
                var route = AsMap(v, path + ".patch.value.route");
                foreach (var (rk, rv) in route.Children)
                {
                    var routeKey = ScalarValue(rk, path + ".patch.value.route");
                    if (routeKey is not ("rate_limits" or "rateLimits") && !IsNull(rv))
                    {
                        return $"patch.value.route.{routeKey} is not applied: an HTTP_ROUTE patch may only merge route.rate_limits and typed_per_filter_config for {HttpFilterNames.LocalRateLimit}";
                    }
                }

                Envoy.Config.Route.V3.RouteAction action;
                try
                {
                    action = StrictJson.Parse<Envoy.Config.Route.V3.RouteAction>(ToJson(route, skipKey: null));
                }
                catch (InvalidProtocolBufferException ex) when (ex.Message.StartsWith("Unknown field", StringComparison.Ordinal))
                {
                    return $"patch.value.route.rate_limits uses a field this control plane does not support ({ex.Message.TrimEnd('.')}): "
                        + "actions may be request_headers, remote_address, generic_key and header_value_match";
                }
                catch (Exception ex) when (ex is InvalidProtocolBufferException or InvalidJsonException)
                {
                    throw Error(route, $"'{path}.patch.value.route' is not a valid route: {ex.Message}");
                }

                for (var i = 0; i < action.RateLimits.Count; i++)
                {
                    if (action.RateLimits[i].Actions.Count == 0)
                    {
                        throw Error(route, $"'{path}.patch.value.route.rate_limits[{i}].actions' needs at least one action");
                    }

                    if (action.RateLimits[i].Actions.Any(static a => a.ActionSpecifierCase == Envoy.Config.Route.V3.RateLimit.Types.Action.ActionSpecifierOneofCase.None))
                    {
                        throw Error(route, $"'{path}.patch.value.route.rate_limits[{i}].actions' has an empty action");
                    }
                }

                rateLimits.AddRange(action.RateLimits);
            }
            else if (key is "typed_per_filter_config" or "typedPerFilterConfig")
            {
                foreach (var (fk, fv) in AsMap(v, path + ".patch.value." + key).Children)
                {
                    var filterName = ScalarValue(fk, path + ".patch.value." + key);
                    if (filterName != HttpFilterNames.LocalRateLimit)
                    {
                        return $"typed_per_filter_config '{filterName}' is not applied: only {HttpFilterNames.LocalRateLimit} is";
                    }

                    perRoute = fv;
                }
            }
            else if (!IsNull(v))
            {
                return $"patch.value.{key} is not applied: an HTTP_ROUTE patch may only merge route.rate_limits and typed_per_filter_config for {HttpFilterNames.LocalRateLimit}";
            }
        }

        if (perRoute is null && rateLimits.Count == 0)
        {
            return $"patch.value has neither typed_per_filter_config for {HttpFilterNames.LocalRateLimit} nor route.rate_limits";
        }

        LocalRateLimit? config = null;
        if (perRoute is not null)
        {
            config = ParseLocalRateLimit(perRoute, $"{path}.patch.value.typed_per_filter_config.{HttpFilterNames.LocalRateLimit}", perRoute: true, out var skip);
            if (config is null)
            {
                return skip;
            }
        }

        routes.Add(new EnvoyFilterRoutePatch(port, vhostName, routeName, config, rateLimits, line));
        return null;
    }

    /// <summary>
    /// Reads a LocalRateLimit typed config (a <c>udpa.type.v1.TypedStruct</c> or the message itself) and validates it as
    /// Envoy does; throws <see cref="ConfigException"/> when Envoy would reject it, returns null with
    /// <paramref name="skip"/> set when it uses fields this control plane does not apply.
    /// </summary>
    private static LocalRateLimit? ParseLocalRateLimit(YamlNode node, string path, bool perRoute, out string? skip)
    {
        skip = null;
        var map = AsMap(node, path);
        var type = OptionalString(map, "@type");
        YamlMappingNode body;
        string bodyPath;
        if (type is TypedStructTypeUrl or XdsTypedStructTypeUrl)
        {
            var typeUrl = OptionalString(map, "type_url") ?? OptionalString(map, "typeUrl");
            if (typeUrl != XdsTypeUrls.LocalRateLimit)
            {
                throw Error(map, $"'{path}.type_url' must be {XdsTypeUrls.LocalRateLimit}, got '{typeUrl}'");
            }

            body = Get(map, "value") is { } v && !IsNull(v) ? AsMap(v, path + ".value") : new YamlMappingNode();
            bodyPath = path + ".value";
        }
        else if (type == XdsTypeUrls.LocalRateLimit)
        {
            body = map;
            bodyPath = path;
        }
        else
        {
            throw Error(map, $"'{path}.@type' must be {TypedStructTypeUrl} (with type_url {XdsTypeUrls.LocalRateLimit}) or {XdsTypeUrls.LocalRateLimit}, got '{type}'");
        }

        LocalRateLimit config;
        try
        {
            config = StrictJson.Parse<LocalRateLimit>(ToJson(body, skipKey: body == map ? "@type" : null));
        }
        catch (InvalidProtocolBufferException ex) when (ex.Message.StartsWith("Unknown field", StringComparison.Ordinal))
        {
            var field = ex.Message["Unknown field".Length..].TrimStart(':', ' ').TrimEnd('.');
            skip = $"the LocalRateLimit field '{field}' is not supported by this control plane (it applies token_bucket, filter_enabled, "
                + "filter_enforced, status, response_headers_to_add, request_headers_to_add_when_not_enforced, descriptors, stage, "
                + "vh_rate_limits, always_consume_default_token_bucket, local_rate_limit_per_downstream_connection and "
                + "rate_limited_as_resource_exhausted)";
            return null;
        }
        catch (InvalidProtocolBufferException ex)
        {
            // Envoy reads the same protobuf JSON mapping, where a Duration is seconds only ("60s", "0.5s").
            var hint = ex.Message.Contains("Duration", StringComparison.Ordinal) ? " (durations are written in seconds, for example 60s or 0.05s)" : string.Empty;
            throw Error(body, $"'{bodyPath}' is not a valid LocalRateLimit: {ex.Message}{hint}");
        }
        catch (InvalidJsonException ex)
        {
            throw Error(body, $"'{bodyPath}' is not a valid LocalRateLimit: {ex.Message}");
        }

        ValidateLocalRateLimit(config, body, bodyPath, perRoute);
        return config;
    }

    /// <summary>Envoy's checks of a LocalRateLimit (the proto's validation rules and the filter's own).</summary>
    private static void ValidateLocalRateLimit(LocalRateLimit config, YamlMappingNode body, string path, bool perRoute)
    {
        YamlNode At(params string[] keys)
        {
            YamlNode current = body;
            foreach (var key in keys)
            {
                if (current is YamlMappingNode m && Get(m, key) is { } next)
                {
                    current = next;
                }
                else
                {
                    break;
                }
            }

            return current;
        }

        if (string.IsNullOrEmpty(config.StatPrefix))
        {
            throw Error(At("stat_prefix"), $"'{path}.stat_prefix' is required (Envoy rejects an empty stat prefix)");
        }

        if (config.TokenBucket is null)
        {
            if (perRoute)
            {
                throw Error(body, $"'{path}.token_bucket' is required: Envoy rejects a per-route local rate limit without a token bucket");
            }
        }
        else
        {
            var tb = config.TokenBucket;
            if (tb.MaxTokens == 0)
            {
                throw Error(At("token_bucket", "max_tokens"), $"'{path}.token_bucket.max_tokens' must be greater than 0");
            }

            if (tb.TokensPerFill is 0)
            {
                throw Error(At("token_bucket", "tokens_per_fill"), $"'{path}.token_bucket.tokens_per_fill' must be greater than 0");
            }

            if (tb.FillInterval is null)
            {
                throw Error(At("token_bucket"), $"'{path}.token_bucket.fill_interval' is required");
            }

            if (tb.FillInterval.ToTimeSpan() < MinFillInterval)
            {
                throw Error(At("token_bucket", "fill_interval"),
                    $"'{path}.token_bucket.fill_interval' must be at least 50ms (Envoy refuses faster refills), got {tb.FillInterval.ToTimeSpan().TotalMilliseconds.ToString(CultureInfo.InvariantCulture)}ms");
            }
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < config.Descriptors.Count; i++)
        {
            var d = config.Descriptors[i];
            var where = At("descriptors");
            if (config.TokenBucket is null)
            {
                throw Error(where, $"'{path}.descriptors' need a token_bucket: descriptor fill intervals are multiples of its fill_interval");
            }

            if (d.Entries.Count == 0 || d.Entries.Any(static e => e.Key.Length == 0 || e.Value.Length == 0))
            {
                throw Error(where, $"'{path}.descriptors[{i}]' needs at least one entry, each with a key and a value");
            }

            if (d.TokenBucket is not { MaxTokens: > 0, FillInterval: not null } dtb || dtb.TokensPerFill is 0)
            {
                throw Error(where, $"'{path}.descriptors[{i}].token_bucket' needs max_tokens and tokens_per_fill above 0 and a fill_interval");
            }

            var ms = (long)dtb.FillInterval.ToTimeSpan().TotalMilliseconds;
            var baseMs = (long)config.TokenBucket.FillInterval.ToTimeSpan().TotalMilliseconds;
            if (ms == 0 || ms % baseMs != 0)
            {
                throw Error(where, $"'{path}.descriptors[{i}].token_bucket.fill_interval' must be a multiple of token_bucket.fill_interval ({baseMs}ms): Envoy refills descriptors on the same timer");
            }

            if (!seen.Add(string.Join('\0', d.Entries.Select(static e => e.Key + "=" + e.Value))))
            {
                throw Error(where, $"'{path}.descriptors[{i}]' repeats the entries of an earlier descriptor (Envoy rejects duplicates)");
            }
        }

        if (config.Stage > 10)
        {
            throw Error(At("stage"), $"'{path}.stage' must be from 0 to 10");
        }

        if (config.ResponseHeadersToAdd.Count > 10 || config.RequestHeadersToAddWhenNotEnforced.Count > 10)
        {
            throw Error(body, $"'{path}': at most 10 headers may be added (response_headers_to_add, request_headers_to_add_when_not_enforced)");
        }

        foreach (var option in config.ResponseHeadersToAdd.Concat(config.RequestHeadersToAddWhenNotEnforced))
        {
            if (string.IsNullOrEmpty(option.Header?.Key))
            {
                throw Error(body, $"'{path}': every header to add needs a header.key");
            }
        }

        if (config.Status is { } status && !System.Enum.IsDefined(status.Code))
        {
            throw Error(At("status"), $"'{path}.status.code' {(int)status.Code} is not an HTTP status Envoy knows");
        }
    }

    /// <summary>
    /// Writes a YAML node as JSON for the protobuf JSON parser: plain scalars that read as booleans, numbers or null
    /// become JSON literals, everything else a string.
    /// </summary>
    private static string ToJson(YamlNode node, string? skipKey)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            Write(writer, node, skipKey);
        }

        return Encoding.UTF8.GetString(stream.ToArray());

        static void Write(Utf8JsonWriter writer, YamlNode node, string? skipKey)
        {
            switch (node)
            {
                case YamlMappingNode map:
                    writer.WriteStartObject();
                    foreach (var (k, v) in map.Children)
                    {
                        if (k is not YamlScalarNode keyNode)
                        {
                            throw Error(k, "a mapping key must be a field name, not a list or a map");
                        }

                        var key = keyNode.Value ?? string.Empty;
                        if (key == skipKey)
                        {
                            continue;
                        }

                        writer.WritePropertyName(key);
                        Write(writer, v, null);
                    }

                    writer.WriteEndObject();
                    break;
                case YamlSequenceNode seq:
                    writer.WriteStartArray();
                    foreach (var item in seq.Children)
                    {
                        Write(writer, item, null);
                    }

                    writer.WriteEndArray();
                    break;
                case YamlScalarNode scalar:
                    var text = scalar.Value ?? string.Empty;
                    if (scalar.Style != ScalarStyle.Plain)
                    {
                        writer.WriteStringValue(text);
                    }
                    else if (IsNull(scalar))
                    {
                        writer.WriteNullValue();
                    }
                    else if (text is "true" or "True" or "TRUE" or "false" or "False" or "FALSE")
                    {
                        writer.WriteBooleanValue(text[0] is 't' or 'T');
                    }
                    else if (decimal.TryParse(text, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
                    {
                        writer.WriteNumberValue(number);
                    }
                    else
                    {
                        writer.WriteStringValue(text);
                    }

                    break;
                default:
                    writer.WriteNullValue();
                    break;
            }
        }
    }
}

using System.Net;
using YamlDotNet.RepresentationModel;

namespace Mesh.ControlPlane.Config;

/// <summary>PeerAuthentication and AuthorizationPolicy (<c>security.istio.io</c>).</summary>
internal static partial class IstioYamlParser
{
    private const string SecurityGroup = "security.istio.io/";
    private static readonly HashSet<string> SecurityVersions = ["v1", "v1beta1"];

    private static bool IsSecurityKind(string apiVersion, string kind) =>
        kind is "PeerAuthentication" or "AuthorizationPolicy"
        && apiVersion.StartsWith(SecurityGroup, StringComparison.Ordinal)
        && SecurityVersions.Contains(apiVersion[SecurityGroup.Length..]);

    /// <summary>The spec, or an empty mapping when there is none (<c>spec: {}</c> and no spec mean the same to Istio).</summary>
    private static YamlMappingNode SpecOrEmpty(YamlMappingNode map) =>
        Get(map, "spec") is { } spec && !IsNull(spec) ? AsMap(spec, "spec") : new YamlMappingNode();

    private static IReadOnlyDictionary<string, string>? Selector(YamlMappingNode spec)
    {
        if (Get(spec, "selector") is not { } node || IsNull(node))
        {
            return null;
        }

        var labels = StringMap(AsMap(node, "spec.selector"), "matchLabels", "spec.selector");
        return labels.Count == 0 ? null : labels;
    }

    private static void RejectTargetRefs(YamlMappingNode spec)
    {
        foreach (var key in new[] { "targetRef", "targetRefs" })
        {
            if (Get(spec, key) is { } t && !IsNull(t))
            {
                throw Error(t, $"'spec.{key}' (policy attachment to gateways and services) is not supported by this control plane; use 'spec.selector'");
            }
        }
    }

    // ---- PeerAuthentication ----

    private static readonly string[] MtlsModes = ["UNSET", "DISABLE", "PERMISSIVE", "STRICT"];

    private static PeerAuthentication ParsePeerAuthentication(YamlMappingNode spec)
    {
        RejectTargetRefs(spec);
        var selector = Selector(spec);
        var ports = new Dictionary<uint, MtlsMode>();
        if (Get(spec, "portLevelMtls") is { } pl && !IsNull(pl))
        {
            var plm = AsMap(pl, "spec.portLevelMtls");
            if (selector is null)
            {
                // Istio's validation: port-level settings need a workload selector.
                throw Error(plm, "'spec.portLevelMtls' requires 'spec.selector': port-level mTLS applies to selected workloads only");
            }

            foreach (var (k, v) in plm.Children)
            {
                var port = PortValue(k, "spec.portLevelMtls");
                ports[port] = MtlsModeOf(AsMap(v, $"spec.portLevelMtls.{port}"), $"spec.portLevelMtls.{port}");
            }

            if (ports.Count == 0)
            {
                throw Error(plm, "'spec.portLevelMtls' is empty: list at least one port or leave it out");
            }
        }

        var mode = Get(spec, "mtls") is { } m && !IsNull(m) ? MtlsModeOf(AsMap(m, "spec.mtls"), "spec.mtls") : MtlsMode.Unset;
        return new PeerAuthentication
        {
            Selector = selector,
            Mode = mode,
            PortLevelMtls = ports,
            Kind = "", ApiVersion = "", Name = "", Namespace = "", Source = null!,
        };
    }

    private static MtlsMode MtlsModeOf(YamlMappingNode mtls, string path)
    {
        if (Get(mtls, "mode") is not { } node || IsNull(node))
        {
            return MtlsMode.Unset;
        }

        return ScalarValue(node, path + ".mode") switch
        {
            "UNSET" => MtlsMode.Unset,
            "DISABLE" => MtlsMode.Disable,
            "PERMISSIVE" => MtlsMode.Permissive,
            "STRICT" => MtlsMode.Strict,
            var other => throw Error(node, $"unknown mTLS mode '{other}' in '{path}.mode' (expected {string.Join(", ", MtlsModes)})"),
        };
    }

    // ---- AuthorizationPolicy ----

    private static AuthorizationPolicy ParseAuthorizationPolicy(YamlMappingNode spec)
    {
        RejectTargetRefs(spec);
        var actionNode = Get(spec, "action");
        var action = actionNode is null || IsNull(actionNode) ? "ALLOW" : ScalarValue(actionNode, "spec.action");
        var parsedAction = action switch
        {
            "ALLOW" => AuthorizationAction.Allow,
            "DENY" => AuthorizationAction.Deny,
            "AUDIT" => AuthorizationAction.Audit,
            "CUSTOM" => AuthorizationAction.Custom,
            _ => throw Error(actionNode!, $"unknown action '{action}' in 'spec.action' (expected ALLOW, DENY, AUDIT or CUSTOM)"),
        };

        var rules = new List<AuthorizationRule>();
        var rulesNode = Get(spec, "rules");
        foreach (var item in Sequence(spec, "rules", "spec"))
        {
            rules.Add(ParseRule(item, parsedAction));
        }

        if (parsedAction == AuthorizationAction.Deny && rules.Count == 0 && rulesNode is not null)
        {
            // Istio's validation accepts it; it denies nothing.
            Note(rulesNode, "'spec.rules' of a DENY policy is empty: the policy denies nothing");
        }

        return new AuthorizationPolicy
        {
            Selector = Selector(spec),
            Action = parsedAction,
            Rules = rules,
            Kind = "", ApiVersion = "", Name = "", Namespace = "", Source = null!,
        };
    }

    private static readonly (string Field, string Key)[] SourceFields =
    [
        // istiod's order of the generated conditions.
        ("principals", AuthorizationAttributes.SourcePrincipal),
        ("requestPrincipals", AuthorizationAttributes.RequestPrincipal),
        ("serviceAccounts", AuthorizationAttributes.SourceServiceAccount),
        ("namespaces", AuthorizationAttributes.SourceNamespace),
        ("remoteIpBlocks", AuthorizationAttributes.RemoteIp),
        ("ipBlocks", AuthorizationAttributes.SourceIp),
    ];

    private static readonly (string Field, string Key)[] OperationFields =
    [
        ("hosts", AuthorizationAttributes.Host),
        ("methods", AuthorizationAttributes.Method),
        ("paths", AuthorizationAttributes.Path),
        ("ports", AuthorizationAttributes.DestinationPort),
    ];

    private static AuthorizationRule ParseRule(YamlNode node, AuthorizationAction action)
    {
        // A null entry ("- ") is Istio's nil rule: it matches every request, like {}.
        var rule = IsNull(node) ? new YamlMappingNode() : AsMap(node, "spec.rules[]");
        var from = new List<IReadOnlyList<AuthorizationCondition>>();
        foreach (var f in Sequence(rule, "from", "spec.rules[]"))
        {
            var fm = AsMap(f, "spec.rules[].from[]");
            var source = AsMap(Required(fm, "source", "spec.rules[].from[]"), "spec.rules[].from[].source");
            from.Add(Fields(source, SourceFields, "spec.rules[].from[].source", action));
        }

        var to = new List<IReadOnlyList<AuthorizationCondition>>();
        foreach (var t in Sequence(rule, "to", "spec.rules[]"))
        {
            var tm = AsMap(t, "spec.rules[].to[]");
            var operation = AsMap(Required(tm, "operation", "spec.rules[].to[]"), "spec.rules[].to[].operation");
            to.Add(Fields(operation, OperationFields, "spec.rules[].to[].operation", action));
        }

        var when = new List<AuthorizationCondition>();
        foreach (var w in Sequence(rule, "when", "spec.rules[]"))
        {
            var wm = AsMap(w, "spec.rules[].when[]");
            var keyNode = Required(wm, "key", "spec.rules[].when[]");
            var key = ScalarValue(keyNode, "spec.rules[].when[].key");
            var values = StringList(wm, "values", "spec.rules[].when[]");
            var notValues = StringList(wm, "notValues", "spec.rules[].when[]");
            if (values.Count == 0 && notValues.Count == 0)
            {
                throw Error(wm, $"condition '{key}' in 'spec.rules[].when[]' needs 'values' or 'notValues'");
            }

            CheckConditionKey(keyNode, key);
            var condition = new AuthorizationCondition(key, values, notValues, (int)wm.Start.Line);
            CheckValues(wm, condition, action);
            when.Add(condition);
        }

        return new AuthorizationRule(from, to, when, (int)rule.Start.Line);
    }

    private static List<AuthorizationCondition> Fields(YamlMappingNode map, (string Field, string Key)[] fields, string path, AuthorizationAction action)
    {
        var known = new HashSet<string>(StringComparer.Ordinal);
        var conditions = new List<AuthorizationCondition>();
        foreach (var (field, key) in fields)
        {
            var notField = "not" + char.ToUpperInvariant(field[0]) + field[1..];
            known.Add(field);
            known.Add(notField);
            var values = StringList(map, field, path);
            var notValues = StringList(map, notField, path);
            if (values.Count == 0 && notValues.Count == 0)
            {
                continue;
            }

            var at = Get(map, field) ?? Get(map, notField)!;
            var condition = new AuthorizationCondition(key, values, notValues, (int)at.Start.Line);
            CheckValues(at, condition, action);
            conditions.Add(condition);
        }

        foreach (var (k, _) in map.Children)
        {
            var name = ScalarValue(k, path);
            if (!known.Contains(name))
            {
                throw IstioFields.Unknown(k, name, path, known);
            }
        }

        if (conditions.Count == 0)
        {
            throw Error(map, $"'{path}' is empty: set at least one field (Istio rejects an empty {path[(path.LastIndexOf('.') + 1)..]})");
        }

        return conditions;
    }

    private static void CheckConditionKey(YamlNode node, string key)
    {
        var known = key is AuthorizationAttributes.SourceIp or AuthorizationAttributes.RemoteIp or AuthorizationAttributes.SourceNamespace
            or AuthorizationAttributes.SourcePrincipal or AuthorizationAttributes.SourceServiceAccount or AuthorizationAttributes.RequestPrincipal
            or AuthorizationAttributes.RequestAudiences or AuthorizationAttributes.RequestPresenter or AuthorizationAttributes.DestinationIp
            or AuthorizationAttributes.DestinationPort or AuthorizationAttributes.ConnectionSni;
        if (known)
        {
            return;
        }

        foreach (var prefix in new[] { AuthorizationAttributes.RequestHeaderPrefix, AuthorizationAttributes.RequestClaimsPrefix })
        {
            if (key.StartsWith(prefix, StringComparison.Ordinal))
            {
                var rest = key[prefix.Length..];
                if (rest.Length < 3 || rest[0] != '[' || rest[^1] != ']')
                {
                    throw Error(node, $"condition key '{key}' must name its item in brackets, e.g. '{prefix}[x-user]'");
                }

                return;
            }
        }

        throw Error(node, $"unknown attribute '{key}' in 'spec.rules[].when[].key' (see Istio's authorization policy conditions)");
    }

    /// <summary>Validates values that have a format (IPs, ports) and reports what proxyless gRPC cannot check.</summary>
    private static void CheckValues(YamlNode node, AuthorizationCondition condition, AuthorizationAction action)
    {
        foreach (var value in condition.Values.Concat(condition.NotValues))
        {
            switch (condition.Key)
            {
                case AuthorizationAttributes.SourceIp or AuthorizationAttributes.RemoteIp or AuthorizationAttributes.DestinationIp:
                    if (!TryParseCidr(value, out _, out _))
                    {
                        throw Error(node, $"'{value}' of '{condition.Key}' is not an IP address or CIDR range");
                    }

                    break;
                case AuthorizationAttributes.DestinationPort:
                    if (!uint.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) || port > 65535)
                    {
                        throw Error(node, $"'{value}' of '{condition.Key}' is not a port (0 to 65535)");
                    }

                    break;
                case AuthorizationAttributes.Path when value.Contains('{', StringComparison.Ordinal):
                    Warn(node, $"path template '{value}' cannot be checked by proxyless gRPC servers; "
                        + (action == AuthorizationAction.Allow ? "the ALLOW rule holding it matches nothing" : "the condition is left out, so the DENY rule matches more"));
                    break;
            }
        }

        if (IsJwtAttribute(condition.Key))
        {
            // Translated as istiod does (metadata matchers on the JWT filter's payload), which nothing in-process writes.
            var effect = (condition.Values.Count > 0, condition.NotValues.Count > 0) switch
            {
                (true, true) => "its values never match and its not-values match every request",
                (true, false) => "its values never match, so the source or condition holding them matches no request",
                _ => "its not-values match every request",
            };
            Warn(node, $"'{condition.Key}' (request authentication, JWT): the SDK and proxyless gRPC servers apply no RequestAuthentication, "
                + $"so no request has a request principal or JWT claims; as under Istio without a RequestAuthentication, {effect}");
        }
    }

    internal static bool IsJwtAttribute(string key) =>
        key is AuthorizationAttributes.RequestPrincipal or AuthorizationAttributes.RequestAudiences or AuthorizationAttributes.RequestPresenter
        || key.StartsWith(AuthorizationAttributes.RequestClaimsPrefix, StringComparison.Ordinal);

    /// <summary>Parses <c>10.1.2.3</c> (a /32 or /128) or <c>10.1.0.0/16</c>.</summary>
    internal static bool TryParseCidr(string text, out string address, out uint prefixLength)
    {
        address = string.Empty;
        prefixLength = 0;
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        var ipText = slash < 0 ? text : text[..slash];
        if (!IPAddress.TryParse(ipText, out var ip))
        {
            return false;
        }

        var max = ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? 128u : 32u;
        prefixLength = max;
        if (slash >= 0 && (!uint.TryParse(text.AsSpan(slash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out prefixLength)
            || prefixLength > max))
        {
            return false;
        }

        address = ipText;
        return true;
    }
}

using System.Globalization;
using System.Text;
using Mesh.Xds.Re2;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Mesh.ControlPlane.Config;

/// <summary>
/// A document of a file that is accepted but has no effect: a kind the control plane does not implement, or a
/// VirtualService bound only to gateways. Reported once per file (see <see cref="ConfigStore"/>).
/// </summary>
/// <param name="ApiVersion">The document's apiVersion.</param>
/// <param name="Kind">The document's kind.</param>
/// <param name="Namespace">metadata.namespace, or the default namespace.</param>
/// <param name="Name">metadata.name, or null when the document has none.</param>
/// <param name="Line">The document's first line.</param>
/// <param name="Reason">Why it is not applied and what that means.</param>
/// <param name="Severe">True when leaving it out changes what Istio would enforce (security policies): logged as a warning.</param>
/// <param name="Column">The document's first column.</param>
internal sealed record UnappliedResource(string ApiVersion, string Kind, string Namespace, string? Name, int Line, string Reason, bool Severe, int Column = 1)
{
    /// <summary>Identity of the report within one file, independent of the line (an edit that moves it is not reported again).</summary>
    public string Key => $"{ApiVersion} {Kind}/{Namespace}/{Name}: {Reason}";
}

/// <summary>What one file parsed into: the resources we handle and the documents we accept without applying them.</summary>
internal sealed record ParsedFile(IReadOnlyList<IstioResource> Resources, IReadOnlyList<UnappliedResource> Unapplied)
{
    /// <summary>Fields that were read and validated but are not translated (logged at information level).</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>
    /// Parts that Istio's validation accepts but that are left out of the translation because clients would reject
    /// them (logged as warnings, "line:column: ..."); the rest of the file applies.
    /// </summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
}

/// <summary>
/// Parses Istio YAML (multi-document) into <see cref="IstioModel"/> records, validating as it goes.
/// The first problem aborts the file with a <see cref="ConfigException"/> carrying the node's line.
/// </summary>
internal static partial class IstioYamlParser
{
    private const string NetworkingGroup = "networking.istio.io/";
    private static readonly HashSet<string> NetworkingVersions = ["v1", "v1beta1", "v1alpha3"];

    public static ParsedFile Parse(string text, string defaultNamespace)
    {
        var notes = new List<string>();
        var warnings = new List<string>();
        t_notes = notes;
        t_warnings = warnings;
        try
        {
            return ParseCore(text, defaultNamespace) with { Notes = notes, Warnings = warnings };
        }
        finally
        {
            t_notes = null;
            t_warnings = null;
        }
    }

    private static ParsedFile ParseCore(string text, string defaultNamespace)
    {
        var stream = LoadYaml(text, string.Empty, 0);

        var resources = new List<IstioResource>();
        var unapplied = new List<UnappliedResource>();
        foreach (var doc in stream.Documents)
        {
            var root = doc.RootNode;
            if (IsNull(root))
            {
                continue;
            }

            var map = AsMap(root, "document");
            var apiVersion = RequiredString(map, "apiVersion", "document");
            var kind = RequiredString(map, "kind", "document");
            var line = (int)root.Start.Line;
            var column = (int)root.Start.Column;
            var isNetworking = apiVersion.StartsWith(NetworkingGroup, StringComparison.Ordinal)
                && NetworkingVersions.Contains(apiVersion[NetworkingGroup.Length..]);
            var isSecurity = IsSecurityKind(apiVersion, kind);
            var isEnvoyFilter = kind == "EnvoyFilter" && apiVersion == NetworkingGroup + "v1alpha3";
            var isTelemetry = IsTelemetryKind(apiVersion, kind);
            if (IsConfigMap(apiVersion, kind))
            {
                var cmMetadata = AsMap(Required(map, "metadata", kind), "metadata");
                var cmName = RequiredString(cmMetadata, "name", "metadata");
                var cmNs = OptionalString(cmMetadata, "namespace") ?? defaultNamespace;
                var notesAt = t_notes?.Count ?? 0;
                var warningsAt = t_warnings?.Count ?? 0;
                if (ParseConfigMap(map, apiVersion, cmName, cmNs, line, unapplied) is { } meshConfig)
                {
                    resources.Add(meshConfig with { Kind = kind, ApiVersion = apiVersion, Name = cmName, Namespace = cmNs, Source = new SourceLocation(string.Empty, line, column) });
                    NameResource(t_notes, notesAt, "mesh config ConfigMap", cmNs, cmName);
                    NameResource(t_warnings, warningsAt, "mesh config ConfigMap", cmNs, cmName);
                }

                continue;
            }

            if (!isSecurity && !isEnvoyFilter && !isTelemetry && (!isNetworking || !SupportedKinds.Contains(kind)))
            {
                // Accepted without being applied; the rest of the file still applies. The name is read leniently:
                // only the kinds we implement are validated.
                var (otherName, otherNs) = LenientMetadata(map, defaultNamespace);
                var (reason, severe) = UnsupportedReason(apiVersion, kind, isNetworking);
                unapplied.Add(new UnappliedResource(apiVersion, kind, otherNs, otherName, line, reason, severe, column));
                continue;
            }

            // As Istio does, a field its API does not have rejects the resource (before a typo can read as a missing field).
            IstioFields.Check(map, kind);
            var metadata = AsMap(Required(map, "metadata", kind), "metadata");
            var name = RequiredString(metadata, "name", "metadata");
            var ns = OptionalString(metadata, "namespace") ?? defaultNamespace;
            var source = new SourceLocation(string.Empty, line, column);
            var notesBefore = t_notes?.Count ?? 0;
            var warningsBefore = t_warnings?.Count ?? 0;
            IstioResource resource = kind switch
            {
                "ServiceEntry" => ParseServiceEntry(SpecOf(map, kind)) with { Kind = kind, ApiVersion = apiVersion, Name = name, Namespace = ns, Source = source },
                "WorkloadEntry" => new WorkloadEntry { Spec = ParseWorkload(SpecOf(map, kind), "spec"), Kind = kind, ApiVersion = apiVersion, Name = name, Namespace = ns, Source = source },
                "DestinationRule" => ParseDestinationRule(SpecOf(map, kind)) with { Kind = kind, ApiVersion = apiVersion, Name = name, Namespace = ns, Source = source },
                "PeerAuthentication" => ParsePeerAuthentication(SpecOrEmpty(map)) with { Kind = kind, ApiVersion = apiVersion, Name = name, Namespace = ns, Source = source },
                "AuthorizationPolicy" => ParseAuthorizationPolicy(SpecOrEmpty(map)) with { Kind = kind, ApiVersion = apiVersion, Name = name, Namespace = ns, Source = source },
                "Telemetry" => ParseTelemetry(SpecOrEmpty(map)) with { Kind = kind, ApiVersion = apiVersion, Name = name, Namespace = ns, Source = source },
                "EnvoyFilter" => ParseEnvoyFilter(SpecOrEmpty(map), apiVersion, ns, name, unapplied) with { Kind = kind, ApiVersion = apiVersion, Name = name, Namespace = ns, Source = source },
                _ => ParseVirtualService(SpecOf(map, kind)) with { Kind = kind, ApiVersion = apiVersion, Name = name, Namespace = ns, Source = source },
            };
            resources.Add(resource);
            // Name the resource in its notes and warnings ("12:8: DestinationRule 'default/ratings': ...").
            NameResource(t_notes, notesBefore, kind, ns, name);
            NameResource(t_warnings, warningsBefore, kind, ns, name);
            if (resource is AuthorizationPolicy { Action: AuthorizationAction.Audit or AuthorizationAction.Custom } unsupportedAction)
            {
                unapplied.Add(new UnappliedResource(apiVersion, kind, ns, name, line,
                    $"action {unsupportedAction.Action.ToString().ToUpperInvariant()} is not supported by proxyless gRPC servers (only ALLOW and DENY are); "
                    + "the policy is not part of any inbound listener", Severe: true, column));
            }

            if (resource is VirtualService { AppliesToMesh: false } gatewayOnly)
            {
                unapplied.Add(new UnappliedResource(apiVersion, kind, ns, name, line,
                    $"it is bound to gateways [{string.Join(", ", gatewayOnly.Gateways)}] only, and this control plane serves the mesh "
                    + "(clients calling services), not gateways; add 'mesh' to 'spec.gateways' to apply it to the mesh", Severe: false, column));
            }
        }

        return new ParsedFile(resources, unapplied);
    }

    /// <summary>
    /// Loads YAML text; every way YamlDotNet refuses it becomes a <see cref="ConfigException"/> "YAML syntax error" at a
    /// line of the file (<paramref name="lineOffset"/> for text embedded in a file, <paramref name="where"/> naming it).
    /// </summary>
    private static YamlStream LoadYaml(string text, string where, int lineOffset)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException ex)
        {
            throw new ConfigException($"YAML syntax error{where}: {Innermost(ex).Message.TrimEnd('.')}", (int)ex.Start.Line + lineOffset, (int)ex.Start.Column);
        }
        catch (ArgumentException ex)
        {
            // YamlDotNet refuses a tag that is not a valid URI, or an event it cannot build a node of, this way, without a
            // position: point at the first tag.
            var (tagLine, tagColumn) = FirstTag(text);
            throw new ConfigException($"YAML syntax error{where}: {ex.Message.Split(" (Parameter", 2)[0].TrimEnd('.')} (a tag such as '!!str' must be a valid URI)", tagLine + lineOffset, tagColumn);
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet's scanner gives up this way when input ends inside a construct.
            throw new ConfigException($"YAML syntax error{where}: unexpected end of file (an unclosed '[', '{{' or quote?)", text.TrimEnd('\n').Split('\n').Length + lineOffset, 1);
        }

        return stream;
    }

    private static (int Line, int Column) FirstTag(string text)
    {
        var lines = text.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            for (var j = 0; j < lines[i].Length; j++)
            {
                if (lines[i][j] == '!' && (j == 0 || lines[i][j - 1] is ' ' or '[' or '{' or ',' or ':' or '-'))
                {
                    return (i + 1, j + 1);
                }
            }
        }

        return (1, 1);
    }

    private static void NameResource(List<string>? messages, int from, string kind, string ns, string name)
    {
        for (var i = from; i < (messages?.Count ?? 0); i++)
        {
            var colon = messages![i].IndexOf(": ", StringComparison.Ordinal);
            messages[i] = $"{messages[i][..colon]}: {kind} '{ns}/{name}': {messages[i][(colon + 2)..]}";
        }
    }

    private static readonly HashSet<string> SupportedKinds = ["ServiceEntry", "WorkloadEntry", "DestinationRule", "VirtualService"];

    /// <summary>Every kind of Istio's networking, security, telemetry and extensions APIs (for naming the likely one of a misspelled kind).</summary>
    private static readonly string[] IstioKinds =
    [
        "VirtualService", "DestinationRule", "ServiceEntry", "WorkloadEntry", "WorkloadGroup", "Gateway", "Sidecar", "EnvoyFilter", "ProxyConfig",
        "AuthorizationPolicy", "PeerAuthentication", "RequestAuthentication", "Telemetry", "WasmPlugin", "TrafficExtension",
    ];

    /// <summary>metadata.name and metadata.namespace of a document that is not validated (null name when absent or not a string).</summary>
    private static (string? Name, string Namespace) LenientMetadata(YamlMappingNode map, string defaultNamespace)
    {
        if (Get(map, "metadata") is not YamlMappingNode metadata)
        {
            return (null, defaultNamespace);
        }

        static string? Scalar(YamlMappingNode m, string key) => Get(m, key) is YamlScalarNode { Value: { Length: > 0 } v } && !IsNull(Get(m, key)!) ? v : null;
        return (Scalar(metadata, "name"), Scalar(metadata, "namespace") ?? defaultNamespace);
    }

    /// <summary>Why a document of a kind the control plane does not implement has no effect, and whether that matters for security.</summary>
    private static (string Reason, bool Severe) UnsupportedReason(string apiVersion, string kind, bool isNetworkingVersion)
    {
        var group = apiVersion.Contains('/', StringComparison.Ordinal) ? apiVersion[..apiVersion.IndexOf('/', StringComparison.Ordinal)] : string.Empty;
        if (!IstioKinds.Contains(kind) && kind != "ConfigMap" && Suggest.Closest(kind, IstioKinds) is { } likely)
        {
            // A misspelled kind (VirtualSevice) would otherwise pass as "some other resource": say which one it most likely is.
            return ($"unknown kind '{kind}'; did you mean '{likely}'?", true);
        }

        return (group, kind) switch
        {
            ("networking.istio.io", "Gateway") =>
                ("Gateway configures ingress/egress gateway proxies, which the embedded control plane does not serve; "
                 + "VirtualServices bound only to it are not applied either", false),
            ("networking.istio.io", _) when !isNetworkingVersion =>
                ($"API version '{apiVersion}' is not one of networking.istio.io/v1, v1beta1, v1alpha3", false),
            ("networking.istio.io", "EnvoyFilter") => ($"EnvoyFilter is served as networking.istio.io/v1alpha3 only, not '{apiVersion}'", true),
            ("networking.istio.io", _) => ($"the kind '{kind}' is not implemented (supported: ServiceEntry, WorkloadEntry, DestinationRule, VirtualService, EnvoyFilter)", false),
            ("security.istio.io", "PeerAuthentication" or "AuthorizationPolicy") =>
                ($"API version '{apiVersion}' is not one of security.istio.io/v1, v1beta1", true),
            ("security.istio.io", "RequestAuthentication") =>
                ("request authentication (JWT) is not implemented: tokens are not validated", true),
            ("security.istio.io", _) => ("security policies are not implemented and not enforced", true),
            ("telemetry.istio.io", "Telemetry") => ($"API version '{apiVersion}' is not one of telemetry.istio.io/v1, v1alpha1", false),
            ("telemetry.istio.io", _) => ($"the kind '{kind}' of telemetry.istio.io is not implemented (supported: Telemetry)", false),
            ("", "ConfigMap") => ($"a ConfigMap must be apiVersion v1, not '{apiVersion}'", false),
            _ => ("not an Istio networking resource", false),
        };
    }

    private static Exception Innermost(Exception ex)
    {
        while (ex.InnerException is not null)
        {
            ex = ex.InnerException;
        }

        return ex;
    }

    private static YamlMappingNode SpecOf(YamlMappingNode map, string kind) => AsMap(Required(map, "spec", kind), "spec");

    // ---- ServiceEntry / WorkloadEntry ----

    private static ServiceEntry ParseServiceEntry(YamlMappingNode spec)
    {
        var hosts = StringList(spec, "hosts", "spec");
        if (hosts.Count == 0)
        {
            throw Error(Get(spec, "hosts") ?? spec, "'spec.hosts' is required and must list at least one host");
        }

        var ports = new List<ServicePort>();
        var portNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in Sequence(spec, "ports", "spec"))
        {
            var p = AsMap(node, "spec.ports[]");
            var number = RequiredPort(p, "number", "spec.ports[]");
            var name = RequiredString(p, "name", "spec.ports[]");
            if (!portNames.Add(name))
            {
                throw Error(p, $"duplicate port name '{name}'");
            }

            uint? target = Get(p, "targetPort") is { } t ? PortValue(t, "spec.ports[].targetPort") : null;
            ports.Add(new ServicePort(number, name, OptionalString(p, "protocol")?.ToUpperInvariant(), target));
        }

        var location = Enum(spec, "location", ["MESH_EXTERNAL", "MESH_INTERNAL"]);
        var resolution = Enum(spec, "resolution", ["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"]);
        var endpoints = Sequence(spec, "endpoints", "spec").Select(n => ParseWorkload(AsMap(n, "spec.endpoints[]"), "spec.endpoints[]")).ToList();
        IReadOnlyDictionary<string, string>? selector = null;
        if (Get(spec, "workloadSelector") is { } ws && !IsNull(ws))
        {
            selector = StringMap(AsMap(ws, "spec.workloadSelector"), "labels", "spec.workloadSelector");
            if (endpoints.Count > 0)
            {
                throw Error(ws, "'spec.workloadSelector' and 'spec.endpoints' cannot both be set");
            }
        }

        if (resolution is "DNS" or "DNS_ROUND_ROBIN" && endpoints.Count == 0 && selector is null)
        {
            // Istio resolves the hosts themselves; this control plane sends IP endpoints only.
            Note(Get(spec, "resolution")!, $"'spec.resolution: {resolution}' without endpoints: the hosts are not resolved, so the service has no endpoints; "
                + "list 'spec.endpoints' with IP addresses");
        }

        return new ServiceEntry
        {
            Hosts = hosts,
            Addresses = StringList(spec, "addresses", "spec"),
            Ports = ports,
            Location = location,
            Resolution = resolution,
            Endpoints = endpoints,
            WorkloadSelector = selector,
            SubjectAltNames = StringList(spec, "subjectAltNames", "spec"),
            Kind = "", ApiVersion = "", Name = "", Namespace = "", Source = null!,
        };
    }

    private static WorkloadEntrySpec ParseWorkload(YamlMappingNode spec, string path)
    {
        var address = RequiredString(spec, "address", path);
        var ports = new Dictionary<string, uint>(StringComparer.Ordinal);
        if (Get(spec, "ports") is { } pn && !IsNull(pn))
        {
            foreach (var (k, v) in AsMap(pn, path + ".ports").Children)
            {
                ports[ScalarValue(k, path + ".ports")] = PortValue(v, $"{path}.ports.{ScalarValue(k, path)}");
            }
        }

        uint? weight = Get(spec, "weight") is { } w ? UIntValue(w, path + ".weight", 0, uint.MaxValue) : null;
        return new WorkloadEntrySpec
        {
            Address = address,
            Ports = ports,
            Labels = StringMap(spec, "labels", path),
            Locality = OptionalString(spec, "locality"),
            Weight = weight,
            ServiceAccount = OptionalString(spec, "serviceAccount"),
            Network = OptionalString(spec, "network"),
        };
    }

    // ---- DestinationRule ----

    private static DestinationRule ParseDestinationRule(YamlMappingNode spec)
    {
        var host = RequiredString(spec, "host", "spec");
        var subsets = new List<Subset>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in Sequence(spec, "subsets", "spec"))
        {
            var s = AsMap(node, "spec.subsets[]");
            var name = RequiredString(s, "name", "spec.subsets[]");
            if (!names.Add(name))
            {
                throw Error(s, $"duplicate subset name '{name}'");
            }

            subsets.Add(new Subset(name, StringMap(s, "labels", "spec.subsets[]"), OptionalTrafficPolicy(s, "spec.subsets[].trafficPolicy")));
        }

        return new DestinationRule
        {
            Host = host,
            TrafficPolicy = OptionalTrafficPolicy(spec, "spec.trafficPolicy"),
            Subsets = subsets,
            Kind = "", ApiVersion = "", Name = "", Namespace = "", Source = null!,
        };
    }

    private static TrafficPolicy? OptionalTrafficPolicy(YamlMappingNode parent, string path)
    {
        if (Get(parent, "trafficPolicy") is not { } node || IsNull(node))
        {
            return null;
        }

        var tp = AsMap(node, path);
        var ports = new List<PortTrafficPolicy>();
        var seen = new HashSet<uint>();
        foreach (var item in Sequence(tp, "portLevelSettings", path))
        {
            var pm = AsMap(item, path + ".portLevelSettings[]");
            var portMap = AsMap(Required(pm, "port", path + ".portLevelSettings[]"), path + ".portLevelSettings[].port");
            var number = RequiredPort(portMap, "number", path + ".portLevelSettings[].port");
            if (!seen.Add(number))
            {
                throw Error(portMap, $"duplicate port {number} in '{path}.portLevelSettings'");
            }

            ports.Add(ReadSections(pm, $"{path}.portLevelSettings[{number}]", new PortTrafficPolicy(number)));
        }

        return ReadSections(tp, path, new TrafficPolicy()) with { PortLevelSettings = ports };
    }

    /// <summary>Reads loadBalancer, connectionPool, outlierDetection and tls into <paramref name="target"/>.</summary>
    private static T ReadSections<T>(YamlMappingNode tp, string path, T target)
        where T : PolicySections
    {
        string? tlsMode = null;
        if (Get(tp, "tls") is { } tlsNode && !IsNull(tlsNode))
        {
            tlsMode = Enum(AsMap(tlsNode, path + ".tls"), "mode", ["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"]);
            if (tlsMode is "SIMPLE" or "MUTUAL")
            {
                // istiod's proxyless generator leaves these out too (only ISTIO_MUTUAL becomes an UpstreamTlsContext).
                Note(tlsNode, $"'{path}.tls.mode: {tlsMode}' is parsed but not applied: only ISTIO_MUTUAL and DISABLE are served to proxyless clients, connections stay plaintext");
            }
        }

        return target with
        {
            LoadBalancer = ParseLoadBalancer(tp, path),
            ConnectionPool = ParseConnectionPool(tp, path),
            OutlierDetection = ParseOutlierDetection(tp, path),
            TlsMode = tlsMode,
        };
    }

    private static LoadBalancerSettings? ParseLoadBalancer(YamlMappingNode tp, string path)
    {
        if (Get(tp, "loadBalancer") is not { } lbNode || IsNull(lbNode))
        {
            return null;
        }

        var lbPath = path + ".loadBalancer";
        var lbMap = AsMap(lbNode, lbPath);
        var simpleNode = Get(lbMap, "simple");
        var hashNode = Get(lbMap, "consistentHash");
        if (simpleNode is not null && hashNode is not null)
        {
            throw Error(lbMap, $"'{lbPath}' sets both 'simple' and 'consistentHash'");
        }

        var simple = SimpleLb.Unspecified;
        if (simpleNode is not null)
        {
            var text = ScalarValue(simpleNode, lbPath + ".simple");
            simple = text switch
            {
                "UNSPECIFIED" => SimpleLb.Unspecified,
                "ROUND_ROBIN" => SimpleLb.RoundRobin,
                "LEAST_REQUEST" or "LEAST_CONN" => SimpleLb.LeastRequest,
                "RANDOM" => SimpleLb.Random,
                "PASSTHROUGH" => throw Error(simpleNode, $"load balancer 'PASSTHROUGH' in '{lbPath}.simple' is not supported by proxyless clients (use ROUND_ROBIN, LEAST_REQUEST or RANDOM)"),
                _ => throw Error(simpleNode, $"unknown load balancer '{text}' in '{lbPath}.simple' (expected ROUND_ROBIN, LEAST_REQUEST, RANDOM or PASSTHROUGH)"),
            };
        }

        ConsistentHash? hash = null;
        if (hashNode is not null)
        {
            hash = ParseConsistentHash(AsMap(hashNode, lbPath + ".consistentHash"), lbPath + ".consistentHash");
        }

        LocalityLbSetting? locality = null;
        if (Get(lbMap, "localityLbSetting") is { } ll && !IsNull(ll))
        {
            var lm = AsMap(ll, lbPath + ".localityLbSetting");
            var distribute = Sequence(lm, "distribute", lbPath + ".localityLbSetting").ToList();
            var failover = Sequence(lm, "failover", lbPath + ".localityLbSetting").ToList();
            if (distribute.Count > 0 && failover.Count > 0)
            {
                throw Error(lm, $"'{lbPath}.localityLbSetting' cannot set both 'distribute' and 'failover'");
            }

            foreach (var f in failover)
            {
                var fm = AsMap(f, lbPath + ".localityLbSetting.failover[]");
                var from = RequiredString(fm, "from", lbPath + ".localityLbSetting.failover[]");
                var to = RequiredString(fm, "to", lbPath + ".localityLbSetting.failover[]");
                if (from == to)
                {
                    throw Error(fm, $"'{lbPath}.localityLbSetting.failover[]' fails over from '{from}' to itself");
                }
            }

            foreach (var d in distribute)
            {
                var dm = AsMap(d, lbPath + ".localityLbSetting.distribute[]");
                RequiredString(dm, "from", lbPath + ".localityLbSetting.distribute[]");
                long sum = 0;
                if (Get(dm, "to") is { } toNode && !IsNull(toNode))
                {
                    foreach (var (_, w) in AsMap(toNode, lbPath + ".localityLbSetting.distribute[].to").Children)
                    {
                        sum += UIntValue(w, lbPath + ".localityLbSetting.distribute[].to", 0, 100);
                    }
                }

                if (sum != 100)
                {
                    throw Error(dm, $"'{lbPath}.localityLbSetting.distribute[].to' weights sum to {sum}, they must sum to 100");
                }
            }

            locality = new LocalityLbSetting(OptionalBool(lm, "enabled"), distribute.Count, failover.Count,
                StringList(lm, "failoverPriority", lbPath + ".localityLbSetting"));
            Note(lm, $"'{lbPath}.localityLbSetting' is parsed but not applied (endpoints keep priority 0)");
        }

        var warmup = OptionalDuration(lbMap, "warmupDurationSecs");
        if (warmup is not null)
        {
            Note(lbMap, $"'{lbPath}.warmupDurationSecs' is parsed but not applied (no slow start)");
        }

        return new LoadBalancerSettings(simple, hash) { LocalityLbSetting = locality, WarmupDuration = warmup };
    }

    private static ConsistentHash ParseConsistentHash(YamlMappingNode h, string path)
    {
        if (Get(h, "maglev") is { } mg)
        {
            throw Error(mg, $"'{path}.maglev' is not supported: proxyless clients implement only ring hash (use 'ringHash')");
        }

        var keys = new[] { "httpHeaderName", "httpCookie", "useSourceIp", "httpQueryParameterName" }.Where(k => Get(h, k) is { } n && !IsNull(n)).ToList();
        if (keys.Count == 0)
        {
            throw Error(h, $"'{path}' needs one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName");
        }

        if (keys.Count > 1)
        {
            throw Error(h, $"'{path}' sets {string.Join(" and ", keys)}; set exactly one hash key");
        }

        HttpCookie? cookie = null;
        if (Get(h, "httpCookie") is { } c && !IsNull(c))
        {
            var cm = AsMap(c, path + ".httpCookie");
            var attributes = new List<KeyValuePair<string, string>>();
            foreach (var an in Sequence(cm, "attributes", path + ".httpCookie"))
            {
                var am = AsMap(an, path + ".httpCookie.attributes[]");
                attributes.Add(new(RequiredString(am, "name", path + ".httpCookie.attributes[]"), OptionalString(am, "value") ?? string.Empty));
            }

            cookie = new HttpCookie(RequiredString(cm, "name", path + ".httpCookie"), OptionalString(cm, "path"), OptionalDuration(cm, "ttl")) { Attributes = attributes };
        }

        var useSourceIp = OptionalBool(h, "useSourceIp") ?? false;
        if (keys[0] == "useSourceIp" && !useSourceIp)
        {
            throw Error(Get(h, "useSourceIp")!, $"'{path}.useSourceIp' is false and no other hash key is set");
        }

        ulong ring = 0;
        var explicitRing = false;
        if (Get(h, "ringHash") is { } rh && !IsNull(rh))
        {
            explicitRing = true;
            ring = Get(AsMap(rh, path + ".ringHash"), "minimumRingSize") is { } mrs ? UIntValue(mrs, path + ".ringHash.minimumRingSize", 0, uint.MaxValue) : 0;
            if (Get(h, "minimumRingSize") is { } both)
            {
                throw Error(both, $"'{path}' sets both 'ringHash' and the deprecated 'minimumRingSize'");
            }
        }
        else if (Get(h, "minimumRingSize") is { } mrs2)
        {
            ring = UIntValue(mrs2, path + ".minimumRingSize", 0, uint.MaxValue);
        }

        return new ConsistentHash
        {
            HttpHeaderName = OptionalString(h, "httpHeaderName"),
            HttpCookie = cookie,
            UseSourceIp = useSourceIp,
            HttpQueryParameterName = OptionalString(h, "httpQueryParameterName"),
            MinimumRingSize = ring,
            ExplicitRingHash = explicitRing,
        };
    }

    private static ConnectionPoolSettings? ParseConnectionPool(YamlMappingNode tp, string path)
    {
        if (Get(tp, "connectionPool") is not { } cpNode || IsNull(cpNode))
        {
            return null;
        }

        var cpPath = path + ".connectionPool";
        var cp = AsMap(cpNode, cpPath);
        var tcp = Get(cp, "tcp") is { } tn && !IsNull(tn) ? AsMap(tn, cpPath + ".tcp") : null;
        var http = Get(cp, "http") is { } hn && !IsNull(hn) ? AsMap(hn, cpPath + ".http") : null;
        string? h2 = null;
        if (http is not null)
        {
            h2 = Enum(http, "h2UpgradePolicy", ["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"]);
            if (h2 is not null)
            {
                Note(http, $"'{cpPath}.http.h2UpgradePolicy' is parsed but not applied (the client picks the HTTP version)");
            }

            if (Get(http, "useClientProtocol") is not null)
            {
                Note(http, $"'{cpPath}.http.useClientProtocol' is parsed but not applied");
            }
        }

        var keepalive = false;
        if (tcp is not null && Get(tcp, "tcpKeepalive") is { } ka && !IsNull(ka))
        {
            var km = AsMap(ka, cpPath + ".tcp.tcpKeepalive");
            _ = OptionalInt(km, "probes");
            _ = OptionalDuration(km, "time");
            _ = OptionalDuration(km, "interval");
            keepalive = true;
            Note(km, $"'{cpPath}.tcp.tcpKeepalive' is parsed but not applied");
        }

        return new ConnectionPoolSettings
        {
            MaxConnections = tcp is null ? null : OptionalInt(tcp, "maxConnections"),
            ConnectTimeout = tcp is null ? null : OptionalDuration(tcp, "connectTimeout"),
            MaxConnectionDuration = tcp is null ? null : OptionalDuration(tcp, "maxConnectionDuration"),
            TcpIdleTimeout = tcp is null ? null : OptionalDuration(tcp, "idleTimeout"),
            HasTcpKeepalive = keepalive,
            Http1MaxPendingRequests = http is null ? null : OptionalInt(http, "http1MaxPendingRequests"),
            Http2MaxRequests = http is null ? null : OptionalInt(http, "http2MaxRequests"),
            MaxRequestsPerConnection = http is null ? null : OptionalInt(http, "maxRequestsPerConnection"),
            MaxRetries = http is null ? null : OptionalInt(http, "maxRetries"),
            IdleTimeout = http is null ? null : OptionalDuration(http, "idleTimeout"),
            H2UpgradePolicy = h2,
        };
    }

    private static OutlierDetection? ParseOutlierDetection(YamlMappingNode tp, string path)
    {
        if (Get(tp, "outlierDetection") is not { } odNode || IsNull(odNode))
        {
            return null;
        }

        var o = AsMap(odNode, path + ".outlierDetection");
        var maxEjection = Get(o, "maxEjectionPercent") is { } mep && !IsNull(mep) ? (int)UIntValue(mep, path + ".outlierDetection.maxEjectionPercent", 0, 100) : (int?)null;
        var minHealth = Get(o, "minHealthPercent") is { } mhp && !IsNull(mhp) ? (int)UIntValue(mhp, path + ".outlierDetection.minHealthPercent", 0, 100) : 0;
        return new OutlierDetection
        {
            Consecutive5xxErrors = OptionalInt(o, "consecutive5xxErrors"),
            ConsecutiveGatewayErrors = OptionalInt(o, "consecutiveGatewayErrors"),
            ConsecutiveErrors = OptionalInt(o, "consecutiveErrors"),
            ConsecutiveLocalOriginFailures = OptionalInt(o, "consecutiveLocalOriginFailures"),
            SplitExternalLocalOriginErrors = OptionalBool(o, "splitExternalLocalOriginErrors") ?? false,
            Interval = OptionalDuration(o, "interval"),
            BaseEjectionTime = OptionalDuration(o, "baseEjectionTime"),
            MaxEjectionPercent = maxEjection,
            MinHealthPercent = minHealth,
        };
    }

    // ---- VirtualService ----

    private static VirtualService ParseVirtualService(YamlMappingNode spec)
    {
        var hosts = StringList(spec, "hosts", "spec");
        if (hosts.Count == 0)
        {
            throw Error(Get(spec, "hosts") ?? spec, "'spec.hosts' is required and must list at least one host");
        }

        var routes = new List<HttpRoute>();
        foreach (var node in Sequence(spec, "http", "spec"))
        {
            routes.Add(ParseHttpRoute(AsMap(node, "spec.http[]")));
        }

        foreach (var key in (string[])["tcp", "tls"])
        {
            if (Get(spec, key) is { } l4 && !IsNull(l4))
            {
                Note(l4, $"'spec.{key}' routes are parsed but not applied: the embedded control plane serves HTTP routes only");
            }
        }

        var gateways = StringList(spec, "gateways", "spec");
        if (gateways.Count == 0 || gateways.Contains(VirtualService.MeshGateway))
        {
            // Istio's validation: routing on JWT claims (@request.auth.claims...) needs a gateway's JWT filter.
            foreach (var node in Sequence(spec, "http", "spec"))
            {
                foreach (var matchNode in Sequence(AsMap(node, "spec.http[]"), "match", "spec.http[]"))
                {
                    foreach (var key in (string[])["headers", "withoutHeaders"])
                    {
                        if (Get(AsMap(matchNode, "spec.http[].match[]"), key) is YamlMappingNode headers
                            && headers.Children.Keys.FirstOrDefault(k => k is YamlScalarNode { Value: { } v } && IsJwtClaim(v)) is { } claim)
                        {
                            throw Error(claim, $"'spec.http[].match[].{key}.{((YamlScalarNode)claim).Value}': routing on JWT claims is only supported for gateways "
                                + "(Istio's validation); this VirtualService applies to the mesh");
                        }
                    }
                }
            }
        }

        if ((gateways.Count == 0 || gateways.Contains(VirtualService.MeshGateway)) && hosts.Contains("*"))
        {
            // Istio's validation: a wildcard for every host would capture all the mesh's traffic.
            throw Error(Get(spec, "hosts")!, "wildcard host '*' is not allowed for a VirtualService bound to the mesh (no 'spec.gateways', or 'mesh' among them); "
                + "bind it to its gateways only, or name the hosts");
        }

        return new VirtualService
        {
            Hosts = hosts,
            Gateways = gateways,
            Http = routes,
            Kind = "", ApiVersion = "", Name = "", Namespace = "", Source = null!,
        };
    }

    /// <summary>Istio's routing-claim header form: <c>@request.auth.claims.</c> or <c>@request.auth.claims[</c>.</summary>
    private static bool IsJwtClaim(string name) =>
        name.StartsWith("@request.auth.claims.", StringComparison.Ordinal) || name.StartsWith("@request.auth.claims[", StringComparison.Ordinal);

    private static HttpRoute ParseHttpRoute(YamlMappingNode r)
    {
        const string P = "spec.http[]";
        var matches = Sequence(r, "match", P).Select(n => ParseMatch(AsMap(n, P + ".match[]"))).ToList();

        var destinations = new List<HttpRouteDestination>();
        var weightNodes = new List<(YamlNode Node, uint Weight)>();
        foreach (var node in Sequence(r, "route", P))
        {
            var d = AsMap(node, P + ".route[]");
            var dest = ParseDestination(AsMap(Required(d, "destination", P + ".route[]"), P + ".route[].destination"), P + ".route[].destination");
            var weightNode = Get(d, "weight");
            // Istio's validation: a weight is not negative; weights are relative (Envoy sums them), not percentages.
            var weight = weightNode is null ? 0 : UIntValue(weightNode, P + ".route[].weight", 0, int.MaxValue);
            weightNodes.Add((weightNode ?? d, weight));
            destinations.Add(new HttpRouteDestination(dest, weight, ParseHeaders(d, P + ".route[].headers")));
        }

        if (Get(r, "corsPolicy") is { } cors && !IsNull(cors))
        {
            // Not applied, but validated as Istio validates it: an allowOrigins regex must be RE2.
            foreach (var origin in Sequence(AsMap(cors, P + ".corsPolicy"), "allowOrigins", P + ".corsPolicy"))
            {
                if (origin is YamlMappingNode om && Get(om, "regex") is YamlScalarNode { Value: { } originRegex } originNode)
                {
                    CheckRegex(originNode, originRegex, P + ".corsPolicy.allowOrigins[].regex", fullMatch: true);
                }
            }

            Note(cors, $"'{P}.corsPolicy' is parsed but not applied: CORS is not implemented (istiod sends it to Envoy's CORS filter, which proxyless gRPC clients do not have)");
        }

        HttpRedirect? redirect = null;
        if (Get(r, "redirect") is { } rn)
        {
            var m = AsMap(rn, P + ".redirect");
            var portNode = Get(m, "port");
            var deriveNode = Get(m, "derivePort");
            if (portNode is not null && deriveNode is not null)
            {
                throw Error(m, $"'{P}.redirect' cannot set both 'port' and 'derivePort'");
            }

            var (kind, port) = (RedirectPortKind.None, 0u);
            if (portNode is not null)
            {
                (kind, port) = (RedirectPortKind.Port, PortValue(portNode, P + ".redirect.port"));
            }
            else if (deriveNode is not null)
            {
                kind = ScalarValue(deriveNode, P + ".redirect.derivePort") switch
                {
                    "FROM_PROTOCOL_DEFAULT" => RedirectPortKind.FromProtocolDefault,
                    "FROM_REQUEST_PORT" => RedirectPortKind.FromRequestPort,
                    var other => throw Error(deriveNode, $"unknown value '{other}' for '{P}.redirect.derivePort' (expected FROM_PROTOCOL_DEFAULT or FROM_REQUEST_PORT)"),
                };
            }

            var codeNode = Get(m, "redirectCode") is { } rc && !IsNull(rc) ? rc : null;
            var code = codeNode is null ? 301 : UIntValue(codeNode, P + ".redirect.redirectCode", 0, 399);
            if (code is > 0 and < 300)
            {
                throw Error(codeNode!, $"'{P}.redirect.redirectCode' {code} is not a valid redirect code, it must be 3xx");
            }

            redirect = new HttpRedirect(OptionalString(m, "uri"), OptionalString(m, "authority"), code == 0 ? 301 : code)
            {
                Scheme = OptionalString(m, "scheme"),
                PortKind = kind,
                Port = port,
                PrefixRewrite = OptionalString(m, "prefixRewrite"),
            };
            if (!string.IsNullOrEmpty(redirect.Uri) && !string.IsNullOrEmpty(redirect.PrefixRewrite))
            {
                throw Error(m, $"'{P}.redirect' may set only one of 'uri' and 'prefixRewrite'");
            }

            if (!string.IsNullOrEmpty(redirect.PrefixRewrite) && matches.Any(x => x.Uri is { Kind: not StringMatchKind.Prefix }))
            {
                throw Error(m, $"'{P}.redirect.prefixRewrite' needs every uri match of the route to be a prefix match");
            }

            if (string.IsNullOrEmpty(redirect.Uri) && string.IsNullOrEmpty(redirect.PrefixRewrite) && string.IsNullOrEmpty(redirect.Authority)
                && kind == RedirectPortKind.None && string.IsNullOrEmpty(redirect.Scheme))
            {
                throw Error(m, $"'{P}.redirect' must set uri, prefixRewrite, authority, scheme, port or derivePort");
            }

            if (redirect.Scheme is not (null or "http" or "https"))
            {
                throw Error(Get(m, "scheme")!, $"'{P}.redirect.scheme' must be \"http\" or \"https\", got '{redirect.Scheme}'");
            }

            if (!redirect.IsSupportedCode)
            {
                // Istio's validation accepts any 3xx; istiod then writes the route with no action at all, which Envoy
                // and gRPC clients reject (with the whole route configuration). Leave the route out, keep the rest.
                Warn(codeNode!, $"'{P}.redirect.redirectCode' {code} is not a redirect code Envoy supports (301, 302, 303, 307, 308); "
                    + "the route is left out (istiod would send it without its redirect, which clients reject together with the whole route table)");
            }
        }

        HttpDirectResponse? direct = null;
        if (Get(r, "directResponse") is { } drn)
        {
            var m = AsMap(drn, P + ".directResponse");
            var status = UIntValue(Required(m, "status", P + ".directResponse"), P + ".directResponse.status", 200, 599);
            string? body = null;
            if (Get(m, "body") is { } bn && !IsNull(bn))
            {
                var bm = AsMap(bn, P + ".directResponse.body");
                if (Get(bm, "bytes") is { } bytesNode)
                {
                    throw Error(bytesNode, $"'{P}.directResponse.body.bytes' is not supported (use 'string')");
                }

                body = Get(bm, "string") is { } sn ? ScalarValue(sn, P + ".directResponse.body.string") : throw Error(bm, $"'{P}.directResponse.body' needs 'string'");
                if (System.Text.Encoding.UTF8.GetByteCount(body) > MaxDirectResponseBody)
                {
                    throw Error(sn, $"'{P}.directResponse.body.string' is larger than {MaxDirectResponseBody} bytes");
                }
            }

            direct = new HttpDirectResponse(status, body);
        }

        var actions = (destinations.Count > 0 ? 1 : 0) + (redirect is null ? 0 : 1) + (direct is null ? 0 : 1);
        if (actions == 0)
        {
            throw Error(r, $"'{P}' needs a 'route' with at least one destination (or a 'redirect' or 'directResponse')");
        }

        if (actions > 1)
        {
            throw Error(r, $"'{P}' can set only one of 'route', 'redirect' and 'directResponse'");
        }

        if (destinations.Count == 1 && weightNodes[0].Weight == 0)
        {
            destinations[0] = destinations[0] with { Weight = 100 };
        }
        else if (destinations.Count > 1)
        {
            // Istio's validation rejects only a total of 0 (and negative weights); any other weights are relative.
            var sum = destinations.Sum(d => (long)d.Weight);
            if (sum == 0)
            {
                throw Error(Get(r, "route")!, $"'{P}.route' has {destinations.Count} destinations and their weights total 0; give at least one a weight above 0 (weights are relative)");
            }

            if (sum > uint.MaxValue)
            {
                throw Error(Get(r, "route")!, $"'{P}.route' weights total {sum}, more than Envoy's limit of {uint.MaxValue}");
            }
        }

        if (redirect is not null && (Get(r, "fault") is not null || Get(r, "rewrite") is not null))
        {
            throw Error(r, $"'{P}' cannot set {(Get(r, "fault") is not null ? "'fault'" : "'rewrite'")} together with 'redirect'");
        }

        if (direct is not null && (Get(r, "fault") is not null || Get(r, "rewrite") is not null))
        {
            throw Error(r, $"'{P}' cannot set {(Get(r, "fault") is not null ? "'fault'" : "'rewrite'")} together with 'directResponse'");
        }

        HttpRetry? retries = null;
        if (Get(r, "retries") is { } retNode)
        {
            var m = AsMap(retNode, P + ".retries");
            var retryOn = OptionalString(m, "retryOn");
            if (retryOn is not null)
            {
                ValidateRetryOn(Get(m, "retryOn")!, retryOn);
            }

            retries = new HttpRetry(OptionalInt(m, "attempts") ?? 0, OptionalDuration(m, "perTryTimeout"), retryOn)
            {
                RetryIgnorePreviousHosts = OptionalBool(m, "retryIgnorePreviousHosts"),
                RetryRemoteLocalities = OptionalBool(m, "retryRemoteLocalities"),
                Backoff = OptionalDuration(m, "backoff"),
            };
            if (retries.Attempts == 0 && (retries.PerTryTimeout is not null || !string.IsNullOrEmpty(retryOn) || retries.RetryRemoteLocalities is not null))
            {
                // Istio's validation: attempts 0 (or unset) disables retries, so retry settings beside it are an error.
                throw Error(m, $"'{P}.retries' sets perTryTimeout, retryOn or retryRemoteLocalities while attempts is 0 or unset (retries disabled); set attempts");
            }

            if (retries.RetryRemoteLocalities is true)
            {
                Note(m, $"'{P}.retries.retryRemoteLocalities' is parsed but not applied");
            }
        }

        HttpFault? fault = null;
        if (Get(r, "fault") is { } fNode)
        {
            var f = AsMap(fNode, P + ".fault");
            FaultDelay? delay = null;
            if (Get(f, "delay") is { } dn)
            {
                var dm = AsMap(dn, "fault.delay");
                if (Get(dm, "exponentialDelay") is { } ed)
                {
                    throw Error(ed, "'fault.delay.exponentialDelay' is not supported (use 'fixedDelay')");
                }

                var fixedDelay = OptionalDuration(dm, "fixedDelay") ?? throw Error(dm, "'fault.delay.fixedDelay' is required");

                // Neither percentage nor the deprecated integer percent: no request is delayed (Istio's API, Envoy's default).
                var percent = Get(dm, "percent") is { } pn && !IsNull(pn) ? UIntValue(pn, "fault.delay.percent", 0, 100) : 0;
                delay = new FaultDelay(OptionalPercentage(dm, "fault.delay"), percent, fixedDelay);
            }

            FaultAbort? abort = null;
            if (Get(f, "abort") is { } an)
            {
                var am = AsMap(an, "fault.abort");
                uint? http = Get(am, "httpStatus") is { } hs ? UIntValue(hs, "fault.abort.httpStatus", 200, 599) : null;
                int? grpc = null;
                if (Get(am, "grpcStatus") is { } gs)
                {
                    grpc = ParseGrpcStatus(gs);
                }

                if (Get(am, "http2Error") is { } h2)
                {
                    throw Error(h2, "'fault.abort.http2Error' is not supported (Istio's validation refuses HTTP/2 abort faults; use 'httpStatus' or 'grpcStatus')");
                }

                // No percentage: no request is aborted (Istio's API; istiod writes no percentage and Envoy's default is 0).
                var percentage = OptionalPercentage(am, "fault.abort");
                if (http is null && grpc is null)
                {
                    // Istio's validation only warns ("abort configured, but error type not set") and istiod drops the abort.
                    Warn(am, "'fault.abort' sets neither 'httpStatus' nor 'grpcStatus'; the abort is left out (as istiod does)");
                }
                else
                {
                    abort = new FaultAbort(percentage, http, grpc);
                }
            }

            if (Get(f, "delay") is null && Get(f, "abort") is null)
            {
                throw Error(f, "'fault' must set 'delay' and/or 'abort'");
            }

            fault = new HttpFault(delay, abort);
        }

        HttpRewrite? rewrite = null;
        if (Get(r, "rewrite") is { } rwNode)
        {
            var m = AsMap(rwNode, P + ".rewrite");
            RegexRewrite? regexRewrite = null;
            if (Get(m, "uriRegexRewrite") is { } rr && !IsNull(rr))
            {
                var rm = AsMap(rr, P + ".rewrite.uriRegexRewrite");
                var pattern = RequiredString(rm, "match", P + ".rewrite.uriRegexRewrite");
                CheckRegex(Get(rm, "match")!, pattern, P + ".rewrite.uriRegexRewrite.match", fullMatch: false);
                // Istio's validation: uriRegexRewrite needs both match and rewrite.
                regexRewrite = new RegexRewrite(pattern, RequiredString(rm, "rewrite", P + ".rewrite.uriRegexRewrite"));
                if (Get(m, "uri") is not null)
                {
                    throw Error(rr, $"'{P}.rewrite' cannot set both 'uri' and 'uriRegexRewrite'");
                }
            }

            rewrite = new HttpRewrite(OptionalString(m, "uri"), OptionalString(m, "authority")) { UriRegexRewrite = regexRewrite };
        }

        // Istio's validation: the route's authority is rewritten in one place only (rewrite.authority, or once in
        // headers.request set/add); destinations' headers are not counted.
        var routeHeaders = ParseHeaders(r, P + ".headers");
        var authorities = (string.IsNullOrEmpty(rewrite?.Authority) ? 0 : 1)
            + (routeHeaders?.Request?.Set.Keys.Count(IsAuthorityHeader) ?? 0) + (routeHeaders?.Request?.Add.Keys.Count(IsAuthorityHeader) ?? 0);
        if (authorities > 1)
        {
            throw Error(Get(r, "headers") ?? r, $"'{P}': the authority header cannot be set multiple times (rewrite.authority, headers.request set and add: one of them)");
        }

        Destination? mirror = Get(r, "mirror") is { } mn ? ParseDestination(AsMap(mn, P + ".mirror"), P + ".mirror") : null;
        double? mirrorPct = Get(r, "mirrorPercentage") is { } mp && !IsNull(mp) ? Percentage(AsMap(mp, P + ".mirrorPercentage"), P + ".mirrorPercentage", own: true) : null;
        uint? mirrorPercent = Get(r, "mirrorPercent") is { } mpi && !IsNull(mpi) ? UIntValue(mpi, P + ".mirrorPercent", 0, 100) : null;
        var mirrors = new List<HttpMirror>();
        foreach (var node in Sequence(r, "mirrors", P))
        {
            var mm = AsMap(node, P + ".mirrors[]");
            var destination = ParseDestination(AsMap(Required(mm, "destination", P + ".mirrors[]"), P + ".mirrors[].destination"), P + ".mirrors[].destination");
            double? pct = Get(mm, "percentage") is { } pn && !IsNull(pn) ? Percentage(AsMap(pn, P + ".mirrors[].percentage"), P + ".mirrors[]", own: true) : null;
            mirrors.Add(new HttpMirror(destination, pct));
        }

        if (mirror is not null && mirrors.Count > 0)
        {
            throw Error(Get(r, "mirrors")!, $"'{P}' cannot set both 'mirror' and 'mirrors'");
        }

        return new HttpRoute
        {
            Name = OptionalString(r, "name"),
            Match = matches,
            Route = destinations,
            Timeout = OptionalDuration(r, "timeout"),
            Retries = retries,
            Fault = fault,
            Redirect = redirect,
            DirectResponse = direct,
            Rewrite = rewrite,
            Headers = routeHeaders,
            Mirror = mirror,
            MirrorPercentage = mirrorPct,
            MirrorPercent = mirrorPercent,
            Mirrors = mirrors,
            Source = new SourceLocation(string.Empty, (int)r.Start.Line, (int)r.Start.Column),
        };
    }

    private static int ParseGrpcStatus(YamlNode node)
    {
        var text = ScalarValue(node, "fault.abort.grpcStatus");
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n <= 16)
        {
            return n;
        }

        string[] names = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED",
            "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"];
        var index = Array.IndexOf(names, text);
        return index >= 0 ? index : throw Error(node, $"unknown gRPC status '{text}' in 'fault.abort.grpcStatus'");
    }

    /// <summary><c>percentage.value</c> of <paramref name="parent"/>, or null when <c>percentage</c> is not written.</summary>
    private static double? OptionalPercentage(YamlMappingNode parent, string path) =>
        Get(parent, "percentage") is { } pn && !IsNull(pn) ? Percentage(parent, path) : null;

    private static double Percentage(YamlMappingNode parent, string path, bool own = false)
    {
        YamlNode? valueNode;
        if (own)
        {
            valueNode = Get(parent, "value");
        }
        else
        {
            valueNode = Get(parent, "percentage") is { } pn ? Get(AsMap(pn, path + ".percentage"), "value") : null;
        }

        if (valueNode is null)
        {
            return 100;
        }

        var text = ScalarValue(valueNode, path + ".percentage.value");
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || v < 0 || v > 100)
        {
            throw Error(valueNode, $"'{path}.percentage.value' must be a number from 0 to 100, got '{text}'");
        }

        if (v is > 0 and < 0.0001)
        {
            // Istio's validation: 0, or from 0.0001 (one per million).
            throw Error(valueNode, $"'{path}.percentage.value' {text} is below 0.0001, the smallest percentage (one request per million); use 0 or at least 0.0001");
        }

        return v;
    }

    private static Headers? ParseHeaders(YamlMappingNode parent, string path)
    {
        if (Get(parent, "headers") is not { } node || IsNull(node))
        {
            return null;
        }

        var m = AsMap(node, path);
        return new Headers(Ops(m, "request"), Ops(m, "response"));

        HeaderOperations? Ops(YamlMappingNode h, string key)
        {
            if (Get(h, key) is not { } n)
            {
                return null;
            }

            var om = AsMap(n, $"{path}.{key}");
            var ops = new HeaderOperations
            {
                Set = StringMap(om, "set", $"{path}.{key}"),
                Add = StringMap(om, "add", $"{path}.{key}"),
                Remove = StringList(om, "remove", $"{path}.{key}"),
            };

            // Istio's validation: a request's set/add may name :authority (or host), no other pseudo-header; nothing
            // else (request remove, response set/add/remove) may name host or a pseudo-header.
            var request = key == "request";
            foreach (var (op, names) in (ReadOnlySpan<(string, IEnumerable<string>)>)[("set", ops.Set.Keys), ("add", ops.Add.Keys), ("remove", ops.Remove)])
            {
                foreach (var name in names)
                {
                    var authorityAllowed = request && op != "remove" && IsAuthorityHeader(name);
                    if (name.Length == 0 || (!authorityAllowed && (name.StartsWith(':') || name.Equals("host", StringComparison.OrdinalIgnoreCase))))
                    {
                        throw Error(Get(om, op)!, $"invalid header '{name}' in '{path}.{key}.{op}': "
                            + (request && op != "remove" ? "only ':authority' (or 'host') may be set among pseudo-headers" : "'host' and ':' pseudo-headers cannot be changed here"));
                    }
                }
            }

            return ops;
        }
    }

    private static bool IsAuthorityHeader(string name) =>
        name.Equals(":authority", StringComparison.OrdinalIgnoreCase) || name.Equals("host", StringComparison.OrdinalIgnoreCase);

    private static Destination ParseDestination(YamlMappingNode d, string path)
    {
        var host = RequiredString(d, "host", path);
        uint? port = null;
        if (Get(d, "port") is { } pn)
        {
            port = RequiredPort(AsMap(pn, path + ".port"), "number", path + ".port");
        }

        return new Destination(host, OptionalString(d, "subset"), port);
    }

    private static HttpMatchRequest ParseMatch(YamlMappingNode m)
    {
        const string P = "spec.http[].match[]";
        return new HttpMatchRequest
        {
            Name = OptionalString(m, "name"),
            Uri = OptionalStringMatch(m, "uri", P),
            Method = OptionalStringMatch(m, "method", P),
            Authority = OptionalStringMatch(m, "authority", P),
            Headers = MatchMap(m, "headers", P),
            QueryParams = MatchMap(m, "queryParams", P),
            WithoutHeaders = MatchMap(m, "withoutHeaders", P),
            Scheme = OptionalStringMatch(m, "scheme", P),
            IgnoreUriCase = OptionalBool(m, "ignoreUriCase") ?? false,
            Port = Get(m, "port") is { } pn ? PortValue(pn, P + ".port") : null,
            StatPrefix = OptionalString(m, "statPrefix"),
            SourceLabels = StringMap(m, "sourceLabels", P),
            SourceNamespace = OptionalString(m, "sourceNamespace"),
            Gateways = StringList(m, "gateways", P),
        };
    }

    private static Dictionary<string, StringMatch> MatchMap(YamlMappingNode parent, string key, string path)
    {
        var result = new Dictionary<string, StringMatch>(StringComparer.Ordinal);
        if (Get(parent, key) is not { } node || IsNull(node))
        {
            return result;
        }

        foreach (var (k, v) in AsMap(node, $"{path}.{key}").Children)
        {
            var name = ScalarValue(k, $"{path}.{key}");
            var where = $"{path}.{key}.{name}";
            StringMatch match;
            if (IsNull(v))
            {
                // Istio's validation: a null header match is refused, a null withoutHeaders entry is the inverted presence match.
                match = key == "withoutHeaders" ? StringMatch.Presence
                    : throw Error(v, $"'{where}' cannot be null (Istio's validation refuses it); write '{{}}' to match the {(key == "headers" ? "header's" : "parameter's")} presence");
            }
            else if (key == "withoutHeaders" && v is YamlMappingNode { Children.Count: 1 } wm && Get(wm, "regex") is YamlScalarNode { Value: "*" })
            {
                // Istio takes regex "*" in withoutHeaders as "the header is present" (its validation skips the regex check there only).
                match = StringMatch.Presence;
            }
            else
            {
                match = ParseStringMatch(v, where);
            }

            result[key == "queryParams" ? name : name.ToLowerInvariant()] = match;
        }

        return result;
    }

    private static StringMatch? OptionalStringMatch(YamlMappingNode parent, string key, string path) =>
        Get(parent, key) is { } node && !IsNull(node) ? ParseStringMatch(node, $"{path}.{key}") : null;

    private static StringMatch ParseStringMatch(YamlNode node, string path)
    {
        var m = AsMap(node, path);
        if (m.Children.Count == 0)
        {
            // An empty StringMatch: istiod writes present_match (uri: no path condition, prefix "/").
            return StringMatch.Presence;
        }

        if (m.Children.Count != 1)
        {
            throw Error(m, $"'{path}' must set one of exact, prefix, regex (or be {{}} to match presence)");
        }

        var (k, v) = m.Children.First();
        var kind = ScalarValue(k, path) switch
        {
            "exact" => StringMatchKind.Exact,
            "prefix" => StringMatchKind.Prefix,
            "regex" => StringMatchKind.Regex,
            var other => throw Error(k, $"unknown string match '{other}' in '{path}' (expected exact, prefix or regex)"),
        };
        var value = ScalarValue(v, $"{path}.{k}");
        if (kind == StringMatchKind.Regex && value == "*")
        {
            throw Error(v, $"regex '*' in '{path}' is not a valid RE2 regex (Istio's validation refuses it; only 'withoutHeaders' takes '*' as presence); "
                + "write '{}' to match presence, or '.*'");
        }

        if (kind == StringMatchKind.Regex && value.Length == 0)
        {
            throw Error(v, $"'{path}.regex' must not be empty");
        }

        if (kind == StringMatchKind.Prefix && value.Length == 0 && !path.EndsWith(".uri", StringComparison.Ordinal))
        {
            // Envoy's StringMatcher refuses an empty prefix (a uri prefix may be empty).
            throw Error(v, $"'{path}.prefix' must not be empty");
        }

        if (kind == StringMatchKind.Regex)
        {
            CheckRegex(v, value, $"{path}.regex", fullMatch: true);
        }

        return new StringMatch(kind, value);
    }

    // Istio's validation: at most 1024 bytes (its stand-in for Envoy's RE2 program size limit).
    private const int MaxRegexBytes = 1024;

    /// <summary>
    /// Istio compiles its regexes with Go's regexp (RE2 syntax); the SDK and Envoy read them as RE2 too. The
    /// pattern is compiled with the same RE2 translation the SDK uses, so what the control plane accepts the SDK
    /// accepts: valid RE2 (<c>\p{Greek}</c>, <c>(?P&lt;n&gt;..)</c>, <c>\Q..\E</c>, <c>[[:alpha:]]</c>) passes, .NET-only
    /// or Perl-only syntax (lookarounds, backreferences, atomic groups) is refused with the translator's message.
    /// </summary>
    private static void CheckRegex(YamlNode node, string value, string path, bool fullMatch)
    {
        var bytes = Encoding.UTF8.GetByteCount(value);
        if (bytes > MaxRegexBytes)
        {
            throw Error(node, $"regex in '{path}' is too large: {bytes} bytes, Istio's validation allows at most {MaxRegexBytes}");
        }

        var ok = fullMatch
            ? Re2Regex.TryCompileFullMatch(value, out _, out var error)
            : Re2Regex.TryCompileSearch(value, out _, out error);
        if (!ok)
        {
            throw Error(node, $"invalid regex in '{path}': {error}; Istio uses RE2 syntax (https://github.com/google/re2/wiki/Syntax)");
        }
    }

    // Istio's accepted retryOn policies: Envoy's HTTP and gRPC conditions; HTTP status codes are also allowed.
    private static readonly HashSet<string> RetryOnPolicies = new(StringComparer.Ordinal)
    {
        "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "envoy-ratelimited", "retriable-4xx", "refused-stream",
        "retriable-status-codes", "retriable-headers", "http3-post-connect-failure",
        "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
    };

    private static void ValidateRetryOn(YamlNode node, string retryOn)
    {
        foreach (var raw in retryOn.Split(','))
        {
            var token = raw.Trim();
            if (token.Length == 0 || RetryOnPolicies.Contains(token))
            {
                continue;
            }

            if (!int.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var code) || !IsKnownHttpStatus(code))
            {
                throw Error(node, $"unknown retryOn policy '{token}' (expected HTTP status codes or {string.Join(", ", RetryOnPolicies)})");
            }
        }
    }

    /// <summary>
    /// The HTTP status codes Go's <c>net/http.StatusText</c> knows: Istio's validation accepts only these in retryOn,
    /// and istiod moves only these to retriable_status_codes.
    /// </summary>
    internal static bool IsKnownHttpStatus(int code) => code switch
    {
        >= 100 and <= 103 => true,
        >= 200 and <= 208 or 226 => true,
        >= 300 and <= 308 and not 306 => true,
        >= 400 and <= 418 or >= 421 and <= 426 or 428 or 429 or 431 or 451 => true,
        >= 500 and <= 508 or 510 or 511 => true,
        _ => false,
    };

    /// <summary>Istio's limit on a direct response body (istiod raises Envoy's limit to it).</summary>
    public const int MaxDirectResponseBody = 1024 * 1024;

    [ThreadStatic]
    private static List<string>? t_notes;

    [ThreadStatic]
    private static List<string>? t_warnings;

    /// <summary>Records a part that is accepted but left out of the translation (logged as a warning).</summary>
    private static void Warn(YamlNode node, string message) => t_warnings?.Add($"{node.Start.Line}:{node.Start.Column}: {message}");

    /// <summary>Records a field that is read and validated but has no effect on the translation.</summary>
    private static void Note(YamlNode node, string message) => t_notes?.Add($"{node.Start.Line}:{node.Start.Column}: {message}");

    // ---- node helpers ----

    private static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain, Value: null or "" or "~" or "null" or "Null" or "NULL" };

    private static YamlNode? Get(YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var v) ? v : null;

    private static YamlNode Required(YamlMappingNode map, string key, string path) =>
        Get(map, key) is { } v && !IsNull(v) ? v : throw Error(map, $"'{path}.{key}' is required");

    private static YamlMappingNode AsMap(YamlNode node, string path) =>
        node as YamlMappingNode ?? throw Error(node, $"'{path}' must be a mapping, got {Describe(node)}");

    private static string ScalarValue(YamlNode node, string path) =>
        node is YamlScalarNode s ? s.Value ?? string.Empty : throw Error(node, $"'{path}' must be a scalar, got {Describe(node)}");

    private static string RequiredString(YamlMappingNode map, string key, string path)
    {
        var value = ScalarValue(Required(map, key, path), $"{path}.{key}");
        return value.Length > 0 ? value : throw Error(map, $"'{path}.{key}' is required");
    }

    private static string? OptionalString(YamlMappingNode map, string key) =>
        Get(map, key) is { } v && !IsNull(v) ? ScalarValue(v, key) : null;

    private static bool? OptionalBool(YamlMappingNode map, string key)
    {
        if (Get(map, key) is not { } v || IsNull(v))
        {
            return null;
        }

        return ScalarValue(v, key) switch
        {
            "true" or "True" or "TRUE" => true,
            "false" or "False" or "FALSE" => false,
            var other => throw Error(v, $"'{key}' must be true or false, got '{other}'"),
        };
    }

    private static int? OptionalInt(YamlMappingNode map, string key) =>
        Get(map, key) is { } v && !IsNull(v) ? (int)UIntValue(v, key, 0, int.MaxValue) : null;

    private static uint UIntValue(YamlNode node, string path, uint min, uint max)
    {
        var text = ScalarValue(node, path);
        if (!uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
        {
            throw Error(node, $"'{path}' must be an integer from {min} to {max}, got '{text}'");
        }

        return value;
    }

    private static uint PortValue(YamlNode node, string path) => UIntValue(node, path, 1, 65535);

    private static uint RequiredPort(YamlMappingNode map, string key, string path) => PortValue(Required(map, key, path), $"{path}.{key}");

    private static string? Enum(YamlMappingNode map, string key, string[] allowed)
    {
        if (Get(map, key) is not { } v || IsNull(v))
        {
            return null;
        }

        var text = ScalarValue(v, key);
        return allowed.Contains(text, StringComparer.Ordinal)
            ? text
            : throw Error(v, $"unknown value '{text}' for '{key}' (expected {string.Join(", ", allowed)})");
    }

    private static IEnumerable<YamlNode> Sequence(YamlMappingNode map, string key, string path)
    {
        if (Get(map, key) is not { } v || IsNull(v))
        {
            return [];
        }

        return v as YamlSequenceNode ?? throw Error(v, $"'{path}.{key}' must be a list, got {Describe(v)}");
    }

    private static List<string> StringList(YamlMappingNode map, string key, string path) =>
        Sequence(map, key, path).Select(n => ScalarValue(n, $"{path}.{key}[]")).ToList();

    private static Dictionary<string, string> StringMap(YamlMappingNode map, string key, string path)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (Get(map, key) is not { } v || IsNull(v))
        {
            return result;
        }

        foreach (var (k, val) in AsMap(v, $"{path}.{key}").Children)
        {
            var name = ScalarValue(k, $"{path}.{key}");
            result[name] = ScalarValue(val, $"{path}.{key}.{name}");
        }

        return result;
    }

    private static TimeSpan? OptionalDuration(YamlMappingNode map, string key)
    {
        if (Get(map, key) is not { } v || IsNull(v))
        {
            return null;
        }

        var text = ScalarValue(v, key);
        return TryParseDuration(text, out var d) ? d : throw Error(v, $"'{key}' must be a duration such as 1.5s, 500ms, 2m or 1h, got '{text}'");
    }

    internal static bool TryParseDuration(string text, out TimeSpan value)
    {
        value = default;
        (string Suffix, double Ticks)[] units = [("ms", TimeSpan.TicksPerMillisecond), ("us", TimeSpan.TicksPerMicrosecond), ("h", TimeSpan.TicksPerHour), ("m", TimeSpan.TicksPerMinute), ("s", TimeSpan.TicksPerSecond)];
        foreach (var (suffix, ticks) in units)
        {
            if (text.EndsWith(suffix, StringComparison.Ordinal)
                && double.TryParse(text.AsSpan(0, text.Length - suffix.Length), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var n))
            {
                value = TimeSpan.FromTicks((long)(n * ticks));
                return true;
            }
        }

        return false;
    }

    private static string Describe(YamlNode node) => node switch
    {
        YamlScalarNode s => $"'{s.Value}'",
        YamlSequenceNode => "a list",
        YamlMappingNode => "a mapping",
        _ => node.NodeType.ToString(),
    };

    private static ConfigException Error(YamlNode node, string reason) => new(reason, (int)node.Start.Line, (int)node.Start.Column);
}

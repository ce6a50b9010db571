using System.Globalization;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Mesh.ControlPlane.Config;

/// <summary>What one file parsed into: the resources we handle and the documents we skip.</summary>
internal sealed record ParsedFile(IReadOnlyList<IstioResource> Resources, IReadOnlyList<string> Ignored);

/// <summary>
/// Parses Istio YAML (multi-document) into <see cref="IstioModel"/> records, validating as it goes.
/// The first problem aborts the file with a <see cref="ConfigException"/> carrying the node's line.
/// </summary>
internal static class IstioYamlParser
{
    private const string NetworkingGroup = "networking.istio.io/";
    private static readonly HashSet<string> NetworkingVersions = ["v1", "v1beta1", "v1alpha3"];

    public static ParsedFile Parse(string text, string defaultNamespace)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlException ex)
        {
            throw new ConfigException($"YAML syntax error: {Innermost(ex).Message.TrimEnd('.')}", (int)ex.Start.Line, (int)ex.Start.Column);
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet's scanner gives up this way when input ends inside a construct.
            throw new ConfigException("YAML syntax error: unexpected end of file (an unclosed '[', '{' or quote?)", text.TrimEnd('\n').Split('\n').Length, 1);
        }

        var resources = new List<IstioResource>();
        var ignored = new List<string>();
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
            if (!apiVersion.StartsWith(NetworkingGroup, StringComparison.Ordinal)
                || !NetworkingVersions.Contains(apiVersion[NetworkingGroup.Length..]))
            {
                ignored.Add($"{apiVersion} {kind} (line {root.Start.Line})");
                continue;
            }

            var metadata = AsMap(Required(map, "metadata", kind), "metadata");
            var name = RequiredString(metadata, "name", "metadata");
            var ns = OptionalString(metadata, "namespace") ?? defaultNamespace;
            var source = new SourceLocation(string.Empty, (int)root.Start.Line);
            IstioResource? resource = kind switch
            {
                "ServiceEntry" => ParseServiceEntry(SpecOf(map, kind)) with { Kind = kind, ApiVersion = apiVersion, Name = name, Namespace = ns, Source = source },
                "WorkloadEntry" => new WorkloadEntry { Spec = ParseWorkload(SpecOf(map, kind), "spec"), Kind = kind, ApiVersion = apiVersion, Name = name, Namespace = ns, Source = source },
                "DestinationRule" => ParseDestinationRule(SpecOf(map, kind)) with { Kind = kind, ApiVersion = apiVersion, Name = name, Namespace = ns, Source = source },
                "VirtualService" => ParseVirtualService(SpecOf(map, kind)) with { Kind = kind, ApiVersion = apiVersion, Name = name, Namespace = ns, Source = source },
                _ => null,
            };
            if (resource is null)
            {
                ignored.Add($"{apiVersion} {kind} (line {root.Start.Line})");
            }
            else
            {
                resources.Add(resource);
            }
        }

        return new ParsedFile(resources, ignored);
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

        return new ServiceEntry
        {
            Hosts = hosts,
            Addresses = StringList(spec, "addresses", "spec"),
            Ports = ports,
            Location = location,
            Resolution = resolution,
            Endpoints = endpoints,
            WorkloadSelector = selector,
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
        LoadBalancerSettings? lb = null;
        if (Get(tp, "loadBalancer") is { } lbNode && !IsNull(lbNode))
        {
            var lbMap = AsMap(lbNode, path + ".loadBalancer");
            var simpleNode = Get(lbMap, "simple");
            var hashNode = Get(lbMap, "consistentHash");
            if (simpleNode is not null && hashNode is not null)
            {
                throw Error(lbMap, $"'{path}.loadBalancer' sets both 'simple' and 'consistentHash'");
            }

            var simple = SimpleLb.Unspecified;
            if (simpleNode is not null)
            {
                var text = ScalarValue(simpleNode, path + ".loadBalancer.simple");
                simple = text switch
                {
                    "UNSPECIFIED" => SimpleLb.Unspecified,
                    "ROUND_ROBIN" => SimpleLb.RoundRobin,
                    "LEAST_REQUEST" or "LEAST_CONN" => SimpleLb.LeastRequest,
                    "RANDOM" => SimpleLb.Random,
                    "PASSTHROUGH" => throw Error(simpleNode, $"load balancer 'PASSTHROUGH' in '{path}.loadBalancer.simple' is not supported by proxyless clients (use ROUND_ROBIN, LEAST_REQUEST or RANDOM)"),
                    _ => throw Error(simpleNode, $"unknown load balancer '{text}' in '{path}.loadBalancer.simple' (expected ROUND_ROBIN, LEAST_REQUEST, RANDOM or PASSTHROUGH)"),
                };
            }

            ConsistentHash? hash = null;
            if (hashNode is not null)
            {
                var h = AsMap(hashNode, path + ".loadBalancer.consistentHash");
                HttpCookie? cookie = null;
                if (Get(h, "httpCookie") is { } c)
                {
                    var cm = AsMap(c, "httpCookie");
                    cookie = new HttpCookie(RequiredString(cm, "name", "httpCookie"), OptionalString(cm, "path"), OptionalDuration(cm, "ttl"));
                }

                ulong? ring = null;
                if (Get(h, "ringHash") is { } rh)
                {
                    ring = Get(AsMap(rh, "ringHash"), "minimumRingSize") is { } mrs ? UIntValue(mrs, "ringHash.minimumRingSize", 1, uint.MaxValue) : null;
                }
                else if (Get(h, "minimumRingSize") is { } mrs2)
                {
                    ring = UIntValue(mrs2, "consistentHash.minimumRingSize", 1, uint.MaxValue);
                }

                hash = new ConsistentHash
                {
                    HttpHeaderName = OptionalString(h, "httpHeaderName"),
                    HttpCookie = cookie,
                    UseSourceIp = OptionalBool(h, "useSourceIp") ?? false,
                    HttpQueryParameterName = OptionalString(h, "httpQueryParameterName"),
                    MinimumRingSize = ring,
                };
                if (hash.HttpHeaderName is null && cookie is null && !hash.UseSourceIp && hash.HttpQueryParameterName is null)
                {
                    throw Error(h, $"'{path}.loadBalancer.consistentHash' needs one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName");
                }
            }

            lb = new LoadBalancerSettings(simple, hash);
        }

        ConnectionPoolSettings? pool = null;
        if (Get(tp, "connectionPool") is { } cpNode && !IsNull(cpNode))
        {
            var cp = AsMap(cpNode, path + ".connectionPool");
            var tcp = Get(cp, "tcp") is { } tn ? AsMap(tn, "connectionPool.tcp") : null;
            var http = Get(cp, "http") is { } hn ? AsMap(hn, "connectionPool.http") : null;
            pool = new ConnectionPoolSettings
            {
                MaxConnections = tcp is null ? null : OptionalInt(tcp, "maxConnections"),
                ConnectTimeout = tcp is null ? null : OptionalDuration(tcp, "connectTimeout"),
                Http1MaxPendingRequests = http is null ? null : OptionalInt(http, "http1MaxPendingRequests"),
                Http2MaxRequests = http is null ? null : OptionalInt(http, "http2MaxRequests"),
                MaxRequestsPerConnection = http is null ? null : OptionalInt(http, "maxRequestsPerConnection"),
                MaxRetries = http is null ? null : OptionalInt(http, "maxRetries"),
                IdleTimeout = http is null ? null : OptionalDuration(http, "idleTimeout"),
            };
        }

        OutlierDetection? od = null;
        if (Get(tp, "outlierDetection") is { } odNode && !IsNull(odNode))
        {
            var o = AsMap(odNode, path + ".outlierDetection");
            od = new OutlierDetection
            {
                Consecutive5xxErrors = OptionalInt(o, "consecutive5xxErrors"),
                ConsecutiveGatewayErrors = OptionalInt(o, "consecutiveGatewayErrors"),
                Interval = OptionalDuration(o, "interval"),
                BaseEjectionTime = OptionalDuration(o, "baseEjectionTime"),
                MaxEjectionPercent = OptionalInt(o, "maxEjectionPercent"),
            };
        }

        string? tlsMode = null;
        if (Get(tp, "tls") is { } tlsNode && !IsNull(tlsNode))
        {
            tlsMode = Enum(AsMap(tlsNode, path + ".tls"), "mode", ["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"]);
        }

        return new TrafficPolicy { LoadBalancer = lb, ConnectionPool = pool, OutlierDetection = od, TlsMode = tlsMode };
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

        return new VirtualService
        {
            Hosts = hosts,
            Gateways = StringList(spec, "gateways", "spec"),
            Http = routes,
            Kind = "", ApiVersion = "", Name = "", Namespace = "", Source = null!,
        };
    }

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
            var weight = weightNode is null ? 0 : UIntValue(weightNode, P + ".route[].weight", 0, 100);
            weightNodes.Add((weightNode ?? d, weight));
            destinations.Add(new HttpRouteDestination(dest, weight, ParseHeaders(d, P + ".route[].headers")));
        }

        HttpRedirect? redirect = null;
        if (Get(r, "redirect") is { } rn)
        {
            var m = AsMap(rn, P + ".redirect");
            redirect = new HttpRedirect(OptionalString(m, "uri"), OptionalString(m, "authority"),
                Get(m, "redirectCode") is { } rc ? UIntValue(rc, P + ".redirect.redirectCode", 300, 399) : 301);
        }

        if (destinations.Count == 0 && redirect is null)
        {
            throw Error(r, $"'{P}' needs a 'route' with at least one destination (or a 'redirect')");
        }

        if (destinations.Count > 0 && redirect is not null)
        {
            throw Error(r, $"'{P}' cannot set both 'route' and 'redirect'");
        }

        if (destinations.Count == 1 && weightNodes[0].Weight == 0)
        {
            destinations[0] = destinations[0] with { Weight = 100 };
        }
        else if (destinations.Count > 1)
        {
            var sum = destinations.Sum(d => (long)d.Weight);
            if (sum != 100)
            {
                throw Error(Get(r, "route")!, $"route weights sum to {sum}, they must sum to 100");
            }
        }

        HttpRetry? retries = null;
        if (Get(r, "retries") is { } retNode)
        {
            var m = AsMap(retNode, P + ".retries");
            retries = new HttpRetry(OptionalInt(m, "attempts") ?? 0, OptionalDuration(m, "perTryTimeout"), OptionalString(m, "retryOn"));
        }

        HttpFault? fault = null;
        if (Get(r, "fault") is { } fNode)
        {
            var f = AsMap(fNode, P + ".fault");
            FaultDelay? delay = null;
            if (Get(f, "delay") is { } dn)
            {
                var dm = AsMap(dn, "fault.delay");
                var fixedDelay = OptionalDuration(dm, "fixedDelay") ?? throw Error(dm, "'fault.delay.fixedDelay' is required");
                delay = new FaultDelay(Percentage(dm, "fault.delay"), fixedDelay);
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

                if (http is null && grpc is null)
                {
                    throw Error(am, "'fault.abort' needs 'httpStatus' or 'grpcStatus'");
                }

                abort = new FaultAbort(Percentage(am, "fault.abort"), http, grpc);
            }

            fault = new HttpFault(delay, abort);
        }

        HttpRewrite? rewrite = null;
        if (Get(r, "rewrite") is { } rwNode)
        {
            var m = AsMap(rwNode, P + ".rewrite");
            rewrite = new HttpRewrite(OptionalString(m, "uri"), OptionalString(m, "authority"));
        }

        Destination? mirror = Get(r, "mirror") is { } mn ? ParseDestination(AsMap(mn, P + ".mirror"), P + ".mirror") : null;
        double? mirrorPct = Get(r, "mirrorPercentage") is { } mp ? Percentage(AsMap(mp, P + ".mirrorPercentage"), P + ".mirrorPercentage", own: true) : null;

        return new HttpRoute
        {
            Name = OptionalString(r, "name"),
            Match = matches,
            Route = destinations,
            Timeout = OptionalDuration(r, "timeout"),
            Retries = retries,
            Fault = fault,
            Redirect = redirect,
            Rewrite = rewrite,
            Headers = ParseHeaders(r, P + ".headers"),
            Mirror = mirror,
            MirrorPercentage = mirrorPct,
            Source = new SourceLocation(string.Empty, (int)r.Start.Line),
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
            return new HeaderOperations
            {
                Set = StringMap(om, "set", $"{path}.{key}"),
                Add = StringMap(om, "add", $"{path}.{key}"),
                Remove = StringList(om, "remove", $"{path}.{key}"),
            };
        }
    }

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
            IgnoreUriCase = OptionalBool(m, "ignoreUriCase") ?? false,
            Port = Get(m, "port") is { } pn ? PortValue(pn, P + ".port") : null,
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
            result[key == "queryParams" ? name : name.ToLowerInvariant()] = ParseStringMatch(v, $"{path}.{key}.{name}");
        }

        return result;
    }

    private static StringMatch? OptionalStringMatch(YamlMappingNode parent, string key, string path) =>
        Get(parent, key) is { } node && !IsNull(node) ? ParseStringMatch(node, $"{path}.{key}") : null;

    private static StringMatch ParseStringMatch(YamlNode node, string path)
    {
        var m = AsMap(node, path);
        if (m.Children.Count != 1)
        {
            throw Error(m, $"'{path}' must set exactly one of exact, prefix, regex");
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
        if (kind == StringMatchKind.Regex)
        {
            try
            {
                _ = new Regex(value, RegexOptions.None, TimeSpan.FromSeconds(1));
            }
            catch (ArgumentException ex)
            {
                throw Error(v, $"invalid regex in '{path}': {ex.Message}");
            }
        }

        return new StringMatch(kind, value);
    }

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

using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Mesh.ControlPlane.Monitoring;

/// <summary>One series' traffic over the window: its labels, how much it grew, and that growth per second.</summary>
internal sealed record SeriesIncrease(IReadOnlyDictionary<string, string> Labels, double Increase, double Rate);

/// <summary>A workload the registry knows, drawn as a node even before it has traffic.</summary>
internal sealed record KnownWorkload(string Namespace, string Service, string Version, string Workload);

/// <summary>What a graph is computed from: <c>istio_requests_total</c> and duration bucket increases over a window.</summary>
internal sealed record GraphInput(string Source, double WindowSeconds, IReadOnlyList<SeriesIncrease> Requests, IReadOnlyList<SeriesIncrease> DurationBuckets,
    IReadOnlyList<KnownWorkload> Known);

/// <summary>A service at one version (the workloads labelled with it), with the golden signals of its inbound traffic.</summary>
internal sealed record GraphNode(string Id, string Namespace, string Service, string Version, IReadOnlyList<string> Workloads, double Requests, double Rps,
    double ErrorRate, double P50, double P99);

/// <summary>Traffic from one node to another over the window; <see cref="Mtls"/> is <see langword="null"/> when the callee reported none of it.</summary>
internal sealed record GraphEdge(string Source, string Target, double Requests, double Rps, double Errors, double ErrorRate, double P50, double P99, bool? Mtls,
    string Reporter);

/// <summary>
/// The service graph: nodes per service and version, edges from a calling node to a called one with request rate,
/// 5xx share, p50/p99 latency (from the duration histogram, as <c>histogram_quantile</c>) and whether the calls came
/// over mTLS (<c>connection_security_policy</c> as the callee reports it). An edge's numbers come from the caller's
/// reports (<c>reporter="source"</c>), which include calls that never reached the callee (fault aborts, no route);
/// from the callee's when no caller reported it (an unmeshed caller: source <c>unknown</c>).
/// </summary>
internal sealed class ServiceGraph
{
    public const string Unknown = "unknown";

    public ServiceGraph(string source, DateTimeOffset time, double windowSeconds, IReadOnlyList<GraphNode> nodes, IReadOnlyList<GraphEdge> edges)
    {
        Source = source;
        Time = time;
        WindowSeconds = windowSeconds;
        Nodes = nodes;
        Edges = edges;
    }

    public string Source { get; }

    public DateTimeOffset Time { get; }

    public double WindowSeconds { get; }

    public IReadOnlyList<GraphNode> Nodes { get; }

    public IReadOnlyList<GraphEdge> Edges { get; }

    private readonly record struct NodeKey(string Namespace, string Service, string Version)
    {
        public string Id => Service == Unknown && Namespace == Unknown ? Unknown : $"{Namespace}/{Service}/{Version}";
    }

    private sealed class Traffic
    {
        public double Requests;
        public double Rate;
        public double Errors;
        public double Mutual;
        public double Plain;
        public readonly Dictionary<double, double> Buckets = [];

        public void AddBuckets(Dictionary<double, double> buckets)
        {
            foreach (var (le, count) in buckets)
            {
                Buckets[le] = Buckets.GetValueOrDefault(le) + count;
            }
        }
    }

    public static ServiceGraph Build(GraphInput input, DateTimeOffset time)
    {
        // Per edge and reporter: requests, errors, mTLS shares and latency buckets.
        var traffic = new Dictionary<(NodeKey From, NodeKey To, string Reporter), Traffic>();
        var workloads = new Dictionary<NodeKey, SortedSet<string>>();
        foreach (var series in input.Requests)
        {
            var (from, to, reporter) = EdgeOf(series.Labels, workloads);
            var t = Get(traffic, (from, to, reporter));
            t.Requests += series.Increase;
            t.Rate += series.Rate;
            if (Label(series.Labels, "response_code") is [ '5', _, _ ])
            {
                t.Errors += series.Increase;
            }

            switch (Label(series.Labels, "connection_security_policy"))
            {
                case "mutual_tls":
                    t.Mutual += series.Increase;
                    break;
                case "none":
                    t.Plain += series.Increase;
                    break;
            }
        }

        foreach (var series in input.DurationBuckets)
        {
            if (!series.Labels.TryGetValue("le", out var leText) || !PrometheusTextParser.TryParseValue(leText, out var le))
            {
                continue;
            }

            var (from, to, reporter) = EdgeOf(series.Labels, workloads);
            var t = Get(traffic, (from, to, reporter));
            t.Buckets[le] = t.Buckets.GetValueOrDefault(le) + series.Increase;
        }

        foreach (var known in input.Known)
        {
            AddWorkload(workloads, new NodeKey(known.Namespace, known.Service, known.Version), known.Workload);
        }

        var edges = new List<GraphEdge>();
        var inbound = new Dictionary<NodeKey, Traffic>();
        foreach (var ((from, to, reporter), t) in traffic.OrderBy(static e => e.Key.From.Id, StringComparer.Ordinal).ThenBy(static e => e.Key.To.Id, StringComparer.Ordinal))
        {
            if (reporter == "destination" && traffic.ContainsKey((from, to, "source")))
            {
                continue; // the caller's report of this edge is used; the callee's only gives it its mTLS state
            }

            traffic.TryGetValue((from, to, "destination"), out var callee);
            bool? mtls = callee is null || callee.Mutual + callee.Plain == 0 ? null : callee.Plain == 0;
            edges.Add(new GraphEdge(from.Id, to.Id, t.Requests, t.Rate, t.Errors, t.Requests > 0 ? t.Errors / t.Requests : 0,
                HistogramQuantile.Compute(0.5, t.Buckets), HistogramQuantile.Compute(0.99, t.Buckets), mtls, reporter));
            workloads.TryAdd(from, []);
            workloads.TryAdd(to, []);
            var into = Get(inbound, to);
            into.Requests += t.Requests;
            into.Rate += t.Rate;
            into.Errors += t.Errors;
            into.AddBuckets(t.Buckets);
        }

        var nodes = new List<GraphNode>();
        foreach (var (key, names) in workloads.OrderBy(static n => n.Key.Id, StringComparer.Ordinal))
        {
            inbound.TryGetValue(key, out var t);
            t ??= new Traffic();
            nodes.Add(new GraphNode(key.Id, key.Namespace, key.Service, key.Version, names.ToList(), t.Requests, t.Rate,
                t.Requests > 0 ? t.Errors / t.Requests : 0, HistogramQuantile.Compute(0.5, t.Buckets), HistogramQuantile.Compute(0.99, t.Buckets)));
        }

        return new ServiceGraph(input.Source, time, input.WindowSeconds, nodes, edges);
    }

    private static (NodeKey From, NodeKey To, string Reporter) EdgeOf(IReadOnlyDictionary<string, string> labels, Dictionary<NodeKey, SortedSet<string>> workloads)
    {
        var sourceWorkload = Label(labels, "source_workload");
        var sourceApp = Label(labels, "source_app");
        var from = sourceWorkload == Unknown && sourceApp == Unknown
            ? new NodeKey(Unknown, Unknown, Unknown)
            : new NodeKey(Label(labels, "source_workload_namespace"), sourceApp != Unknown ? sourceApp : sourceWorkload, Label(labels, "source_version"));
        var service = Label(labels, "destination_service_name");
        var ns = Label(labels, "destination_service_namespace");
        var to = new NodeKey(ns != Unknown ? ns : Label(labels, "destination_workload_namespace"), service != Unknown ? service : Label(labels, "destination_app"),
            Label(labels, "destination_version"));
        AddWorkload(workloads, from, sourceWorkload);
        AddWorkload(workloads, to, Label(labels, "destination_workload"));
        return (from, to, Label(labels, "reporter"));
    }

    private static void AddWorkload(Dictionary<NodeKey, SortedSet<string>> workloads, NodeKey node, string workload)
    {
        if (!workloads.TryGetValue(node, out var set))
        {
            set = new SortedSet<string>(StringComparer.Ordinal);
            workloads[node] = set;
        }

        if (workload != Unknown)
        {
            set.Add(workload);
        }
    }

    private static string Label(IReadOnlyDictionary<string, string> labels, string name)
        => labels.TryGetValue(name, out var value) && value.Length > 0 ? value : Unknown;

    private static TValue Get<TKey, TValue>(Dictionary<TKey, TValue> map, TKey key)
        where TKey : notnull
        where TValue : new()
    {
        if (!map.TryGetValue(key, out var value))
        {
            value = new TValue();
            map[key] = value;
        }

        return value;
    }

    /// <summary>The graph as JSON (the shape docs/telemetry.md describes); numbers that cannot be known (a quantile without traffic) are <c>null</c>.</summary>
    public byte[] ToJson()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteString("source", Source);
            json.WriteString("time", Time);
            json.WriteNumber("window_seconds", Math.Round(WindowSeconds, 3));
            json.WriteStartArray("nodes");
            foreach (var node in Nodes)
            {
                json.WriteStartObject();
                json.WriteString("id", node.Id);
                json.WriteString("namespace", node.Namespace);
                json.WriteString("service", node.Service);
                json.WriteString("version", node.Version);
                json.WriteStartArray("workloads");
                foreach (var workload in node.Workloads)
                {
                    json.WriteStringValue(workload);
                }

                json.WriteEndArray();
                Number(json, "requests", node.Requests);
                Number(json, "rps", node.Rps);
                Number(json, "error_rate", node.ErrorRate);
                Number(json, "p50_ms", node.P50);
                Number(json, "p99_ms", node.P99);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteStartArray("edges");
            foreach (var edge in Edges)
            {
                json.WriteStartObject();
                json.WriteString("source", edge.Source);
                json.WriteString("target", edge.Target);
                Number(json, "requests", edge.Requests);
                Number(json, "rps", edge.Rps);
                Number(json, "errors", edge.Errors);
                Number(json, "error_rate", edge.ErrorRate);
                Number(json, "p50_ms", edge.P50);
                Number(json, "p99_ms", edge.P99);
                if (edge.Mtls is { } mtls)
                {
                    json.WriteBoolean("mtls", mtls);
                }
                else
                {
                    json.WriteNull("mtls");
                }

                json.WriteString("reporter", edge.Reporter);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
        }

        return buffer.ToArray();
    }

    private static void Number(Utf8JsonWriter json, string name, double value)
    {
        if (double.IsFinite(value))
        {
            json.WriteNumber(name, Math.Round(value, 6));
        }
        else
        {
            json.WriteNull(name);
        }
    }

    /// <summary>
    /// The graph in Graphviz DOT as the original ServiceGraph add-on wrote it: <c>digraph "istio-servicegraph"</c>, one
    /// line per edge between services (<c>"front" -> "web" [label="reqs/sec: …"];</c>, versions summed), then one line
    /// per service labelled <c>service (workload, …)</c>. A service is named by itself when every node is in one
    /// namespace, else as <c>service.namespace</c>.
    /// </summary>
    public string ToDot()
    {
        var oneNamespace = Nodes.Where(static n => n.Id != Unknown).Select(static n => n.Namespace).Distinct().Count() <= 1;
        var byId = Nodes.ToDictionary(static n => n.Id, StringComparer.Ordinal);
        string Name(string id) => byId.TryGetValue(id, out var n) && n.Id != Unknown ? (oneNamespace ? n.Service : $"{n.Service}.{n.Namespace}") : Unknown;

        var text = new StringBuilder("digraph \"istio-servicegraph\" {\n");
        foreach (var group in Edges.GroupBy(e => (From: Name(e.Source), To: Name(e.Target))).OrderBy(static g => g.Key.From, StringComparer.Ordinal)
            .ThenBy(static g => g.Key.To, StringComparer.Ordinal))
        {
            var requests = group.Sum(static e => e.Requests);
            var errors = group.Sum(static e => e.Errors);
            var label = string.Create(CultureInfo.InvariantCulture,
                $"reqs/sec: {group.Sum(static e => e.Rps):0.000000}, errors: {(requests > 0 ? errors / requests * 100 : 0):0.0}%");
            text.Append(CultureInfo.InvariantCulture, $"{Quote(group.Key.From)} -> {Quote(group.Key.To)} [label={Quote(label)}];\n");
        }

        foreach (var service in Nodes.GroupBy(n => Name(n.Id)).OrderBy(static g => g.Key, StringComparer.Ordinal))
        {
            var names = service.SelectMany(static n => n.Workloads).Distinct().Order(StringComparer.Ordinal).ToList();
            var label = names.Count == 0 ? service.Key : $"{service.Key} ({string.Join(", ", names)})";
            text.Append(CultureInfo.InvariantCulture, $"{Quote(service.Key)} [label={Quote(label)}];\n");
        }

        return text.Append("}\n").ToString();
    }

    private static string Quote(string text) => "\"" + text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";
}

using System.Text.Json;
using Mesh.ControlPlane.Monitoring;

namespace Mesh.ControlPlane.Tests.Monitoring;

public sealed class ServiceGraphTests
{
    private static Dictionary<string, string> Labels(string reporter, string sourceApp, string sourceVersion, string service, string version, string code,
        string security, string? le = null)
    {
        var labels = new Dictionary<string, string>
        {
            ["reporter"] = reporter,
            ["source_workload"] = sourceApp == "unknown" ? "unknown" : $"{sourceApp}-{sourceVersion}",
            ["source_workload_namespace"] = sourceApp == "unknown" ? "unknown" : "default",
            ["source_app"] = sourceApp,
            ["source_version"] = sourceVersion,
            ["destination_workload"] = version == "unknown" ? "unknown" : $"{service}-{version}",
            ["destination_workload_namespace"] = "default",
            ["destination_service_name"] = service,
            ["destination_service_namespace"] = "default",
            ["destination_app"] = service,
            ["destination_version"] = version,
            ["response_code"] = code,
            ["connection_security_policy"] = security,
        };
        if (le is not null)
        {
            labels["le"] = le;
        }

        return labels;
    }

    private static IEnumerable<SeriesIncrease> Buckets(string reporter, string version, params (string Le, double Count)[] buckets)
        => buckets.Select(b => new SeriesIncrease(Labels(reporter, "front", "v1", "web", version, "200", reporter == "source" ? "unknown" : "mutual_tls", b.Le), b.Count, b.Count / 10));

    private static ServiceGraph Sample()
    {
        SeriesIncrease Requests(Dictionary<string, string> labels, double increase) => new(labels, increase, increase / 10);
        var requests = new List<SeriesIncrease>
        {
            // front v1 → web v1: 30 calls, 3 of them 503; web v1 reports them over mTLS.
            Requests(Labels("source", "front", "v1", "web", "v1", "200", "unknown"), 27),
            Requests(Labels("source", "front", "v1", "web", "v1", "503", "unknown"), 3),
            Requests(Labels("destination", "front", "v1", "web", "v1", "200", "mutual_tls"), 27),
            Requests(Labels("destination", "front", "v1", "web", "v1", "503", "mutual_tls"), 3),

            // front v1 → web v2: 10 calls, web v2 reports part of them in plaintext.
            Requests(Labels("source", "front", "v1", "web", "v2", "200", "unknown"), 10),
            Requests(Labels("destination", "front", "v1", "web", "v2", "200", "mutual_tls"), 6),
            Requests(Labels("destination", "front", "v1", "web", "v2", "200", "none"), 4),

            // An unmeshed caller reaches front: only front reports it.
            Requests(Labels("destination", "unknown", "unknown", "front", "v1", "200", "none"), 40),

            // An abort before any endpoint was picked: the caller's report only, destination version unknown.
            Requests(Labels("source", "front", "v1", "web", "unknown", "500", "unknown"), 2),
        };
        var buckets = Buckets("source", "v1", ("1", 0), ("5", 10), ("10", 30), ("+Inf", 30))
            .Concat(Buckets("destination", "v1", ("1", 30), ("+Inf", 30))).ToList();
        return ServiceGraph.Build(new GraphInput("test", 10, requests, buckets, [new KnownWorkload("default", "idle", "v3", "idle-v3")]), DateTimeOffset.UnixEpoch);
    }

    [Fact]
    public void Build_EdgesFromTheCallersReports_WithTheCalleesMtlsState()
    {
        var graph = Sample();
        var toV1 = Assert.Single(graph.Edges, e => e.Source == "default/front/v1" && e.Target == "default/web/v1");
        Assert.Equal(30, toV1.Requests);
        Assert.Equal(3, toV1.Rps, 9);
        Assert.Equal(3, toV1.Errors);
        Assert.Equal(0.1, toV1.ErrorRate, 9);
        Assert.Equal("source", toV1.Reporter);
        Assert.True(toV1.Mtls);

        // The caller's buckets: 10 of 30 in (1, 5], 20 in (5, 10].
        Assert.Equal(5 + (5 * 5.0 / 20), toV1.P50, 9);
        Assert.Equal(5 + (5 * 19.7 / 20), toV1.P99, 9);

        var toV2 = Assert.Single(graph.Edges, e => e.Target == "default/web/v2");
        Assert.Equal(10, toV2.Requests);
        Assert.False(toV2.Mtls);
        Assert.True(double.IsNaN(toV2.P50));

        var unmeshed = Assert.Single(graph.Edges, e => e.Source == "unknown");
        Assert.Equal("default/front/v1", unmeshed.Target);
        Assert.Equal("destination", unmeshed.Reporter);
        Assert.Equal(40, unmeshed.Requests);
        Assert.False(unmeshed.Mtls);

        var aborted = Assert.Single(graph.Edges, e => e.Target == "default/web/unknown");
        Assert.Equal(1, aborted.ErrorRate);
        Assert.Null(aborted.Mtls);
        Assert.Equal(4, graph.Edges.Count);
    }

    [Fact]
    public void Build_NodesPerServiceAndVersion_WithInboundGoldenSignals_AndKnownIdleWorkloads()
    {
        var graph = Sample();
        Assert.Equal(["default/front/v1", "default/idle/v3", "default/web/unknown", "default/web/v1", "default/web/v2", "unknown"], graph.Nodes.Select(n => n.Id));
        var webV1 = Assert.Single(graph.Nodes, n => n.Id == "default/web/v1");
        Assert.Equal(("web", "v1", "default"), (webV1.Service, webV1.Version, webV1.Namespace));
        Assert.Equal(["web-v1"], webV1.Workloads);
        Assert.Equal(3, webV1.Rps, 9);
        Assert.Equal(0.1, webV1.ErrorRate, 9);
        var front = Assert.Single(graph.Nodes, n => n.Service == "front");
        Assert.Equal(4, front.Rps, 9);
        Assert.Equal(["front-v1"], front.Workloads);
        var idle = Assert.Single(graph.Nodes, n => n.Service == "idle");
        Assert.Equal(0, idle.Rps);
        Assert.Equal(["idle-v3"], idle.Workloads);
    }

    [Fact]
    public void ToJson_WritesTheDocumentedShape_WithNullForUnknownNumbers()
    {
        using var json = JsonDocument.Parse(Sample().ToJson());
        var root = json.RootElement;
        Assert.Equal("test", root.GetProperty("source").GetString());
        Assert.Equal(10, root.GetProperty("window_seconds").GetDouble());
        var node = root.GetProperty("nodes").EnumerateArray().Single(n => n.GetProperty("id").GetString() == "default/web/v1");
        Assert.Equal("web", node.GetProperty("service").GetString());
        Assert.Equal("v1", node.GetProperty("version").GetString());
        Assert.Equal("web-v1", node.GetProperty("workloads")[0].GetString());
        foreach (var name in new[] { "requests", "rps", "error_rate", "p50_ms", "p99_ms" })
        {
            Assert.Equal(JsonValueKind.Number, node.GetProperty(name).ValueKind);
        }

        var edge = root.GetProperty("edges").EnumerateArray().Single(e => e.GetProperty("target").GetString() == "default/web/v2");
        Assert.Equal("default/front/v1", edge.GetProperty("source").GetString());
        Assert.Equal(1, edge.GetProperty("rps").GetDouble());
        Assert.Equal(JsonValueKind.Null, edge.GetProperty("p99_ms").ValueKind);
        Assert.Equal(JsonValueKind.False, edge.GetProperty("mtls").ValueKind);
        Assert.Equal("source", edge.GetProperty("reporter").GetString());
    }

    [Fact]
    public void ToDot_OneLinePerServiceEdge_AsTheServiceGraphAddOnWroteIt()
    {
        var dot = Sample().ToDot();
        var lines = dot.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("digraph \"istio-servicegraph\" {", lines[0]);
        Assert.Equal("}", lines[^1]);

        // Versions summed: 30 + 10 + 2 calls in 10 s, 5 of them 5xx.
        Assert.Contains("\"front\" -> \"web\" [label=\"reqs/sec: 4.200000, errors: 11.9%\"];", lines);
        Assert.Contains("\"unknown\" -> \"front\" [label=\"reqs/sec: 4.000000, errors: 0.0%\"];", lines);
        Assert.Contains("\"web\" [label=\"web (web-v1, web-v2)\"];", lines);
        Assert.Contains("\"front\" [label=\"front (front-v1)\"];", lines);
        Assert.Contains("\"idle\" [label=\"idle (idle-v3)\"];", lines);
    }
}

using System.Globalization;
using System.Net;
using System.Text.Json;
using Mesh.ControlPlane;
using Mesh.Sdk.AspNetCore.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Mesh.Sdk.AspNetCore.Tests.Telemetry;

/// <summary>The control plane with a monitoring port, scraping its registered workloads every 300 ms.</summary>
public sealed class MonitoredControlPlaneFixture : ControlPlaneFixture
{
    protected override void Configure(MeshControlPlaneOptions options)
    {
        options.MonitoringPort = 0;
        options.ScrapeInterval = TimeSpan.FromMilliseconds(300);
        options.GraphWindow = TimeSpan.FromMinutes(10);
    }
}

/// <summary>
/// The service graph end to end: real meshed apps with only <c>builder.AddMesh()</c> (front v1 calling web v1/v2
/// through <c>IHttpClientFactory</c>; web v2 with its metrics on <c>Mesh:Telemetry:MetricsPort</c>), registered with the
/// real control plane, which scrapes them and serves <c>/graph</c>, <c>/dotviz</c>, <c>/metrics</c> and the dashboard
/// on its monitoring port.
/// </summary>
public sealed class ServiceGraphEndToEndTests(MonitoredControlPlaneFixture mesh) : IClassFixture<MonitoredControlPlaneFixture>
{
    private const int Calls = 30;
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(15) };

    /// <summary>The lint promtool draws from istiod's counter names (no <c>_total</c>), which the control plane keeps.</summary>
    internal static readonly string[] IstiodCounterLints =
    [
        "pilot_xds_pushes counter metrics should have \"_total\" suffix",
        "pilot_total_xds_rejects counter metrics should have \"_total\" suffix",
        "pilot_xds_expired_nonce counter metrics should have \"_total\" suffix",
    ];

    internal static Task<MeshWebApp> StartWebAsync(ControlPlaneFixture mesh, string service, string version, Dictionary<string, string?>? extra = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Mesh:ServiceName"] = service,
            ["Mesh:ServicePort"] = "9080",
            ["Mesh:WorkloadName"] = $"{service}-{version}",
            ["Mesh:Labels:app"] = service,
            ["Mesh:Labels:version"] = version,
        };
        foreach (var (key, value) in extra ?? [])
        {
            settings[key] = value;
        }

        return MeshWebApp.StartAsync(mesh, settings, app =>
        {
            app.MapGet("/hello", () => version);
            app.MapGet("/call", async (IHttpClientFactory factory, string target, CancellationToken cancellationToken) =>
            {
                using var response = await factory.CreateClient("mesh").GetAsync(target, cancellationToken);
                return Results.Text($"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(cancellationToken)}");
            });
        }, builder => builder.Services.AddHttpClient("mesh", c => c.Timeout = TimeSpan.FromSeconds(20)));
    }

    /// <summary>Calls front until it has reached both versions of web (those calls are counted too).</summary>
    internal static async Task WarmUpAsync(MeshWebApp front, Func<string> dump)
    {
        var seen = new HashSet<string>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (seen.Count < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, $"front reached {string.Join(",", seen)} of web\n{dump()}");
            var reply = await Http.GetStringAsync(new Uri(front.BaseAddress, "/call?target=http://web:9080/hello"));
            if (reply.StartsWith("200 ", StringComparison.Ordinal))
            {
                seen.Add(reply[4..]);
            }
        }
    }

    internal static async Task<Dictionary<string, int>> CallAsync(MeshWebApp front, int calls)
    {
        var replies = new Dictionary<string, int>();
        for (var i = 0; i < calls; i++)
        {
            var reply = await Http.GetStringAsync(new Uri(front.BaseAddress, "/call?target=http://web:9080/hello"));
            replies[reply] = replies.GetValueOrDefault(reply) + 1;
        }

        return replies;
    }

    private async Task<JsonElement> GraphAsync()
    {
        using var response = await Http.GetAsync(new Uri(mesh.ControlPlane.MonitoringUri!, "graph"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
    }

    private static JsonElement? Edge(JsonElement graph, string source, string target)
        => graph.GetProperty("edges").EnumerateArray().Where(e => e.GetProperty("source").GetString() == source && e.GetProperty("target").GetString() == target)
            .Select(static e => (JsonElement?)e).SingleOrDefault();

    private static double Requests(JsonElement graph, string target) => Edge(graph, "default/front/v1", target)?.GetProperty("requests").GetDouble() ?? 0;

    [Fact]
    public async Task FrontCallsWebV1AndV2_GraphDotvizMetricsAndDashboard_ShowTheTraffic()
    {
        await using var webV1 = await StartWebAsync(mesh, "web", "v1");
        await using var webV2 = await StartWebAsync(mesh, "web", "v2", new() { ["Mesh:Telemetry:MetricsPort"] = "0" });
        await using var front = await StartWebAsync(mesh, "front", "v1");
        await WarmUpAsync(front, mesh.Dump);

        // Settle: the graph has seen the whole warm-up (unchanged over 2 s, some 7 scrapes), then the calls are made.
        var before = await GraphAsync();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        var unchanged = 0;
        while (unchanged < 3)
        {
            await Task.Delay(700);
            var next = await GraphAsync();
            var settled = Requests(next, "default/web/v1") + Requests(next, "default/web/v2");
            // Both edges present (front scraped after it reached both versions; a first scrape that came after the whole
            // warm-up is the baseline and counts 0) and the count unchanged.
            var present = Edge(next, "default/front/v1", "default/web/v1") is not null && Edge(next, "default/front/v1", "default/web/v2") is not null;
            unchanged = present && settled == Requests(before, "default/web/v1") + Requests(before, "default/web/v2") ? unchanged + 1 : 0;
            Assert.True(DateTime.UtcNow < deadline, $"the graph never settled: {next}\n{mesh.Dump()}");
            before = next;
        }

        var replies = await CallAsync(front, Calls);
        Assert.Equal(Calls, replies.GetValueOrDefault("200 v1") + replies.GetValueOrDefault("200 v2"));

        // The scrapes after the calls count exactly the calls, per version as web replied.
        JsonElement graph;
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            graph = await GraphAsync();
            if (Requests(graph, "default/web/v1") + Requests(graph, "default/web/v2") >= Requests(before, "default/web/v1") + Requests(before, "default/web/v2") + Calls)
            {
                break;
            }

            Assert.True(DateTime.UtcNow < deadline, $"the graph did not count the calls: {graph}\n{mesh.Dump()}");
            await Task.Delay(300);
        }

        Assert.Equal("scrape", graph.GetProperty("source").GetString());
        var window = graph.GetProperty("window_seconds").GetDouble();
        Assert.True(window > 0, graph.ToString());
        foreach (var version in new[] { "v1", "v2" })
        {
            var target = $"default/web/{version}";
            Assert.Equal(replies.GetValueOrDefault("200 " + version), Requests(graph, target) - Requests(before, target));
            var edge = Edge(graph, "default/front/v1", target)!.Value;
            Assert.Equal("source", edge.GetProperty("reporter").GetString());
            Assert.Equal(0, edge.GetProperty("error_rate").GetDouble());

            // The rate is the count over the time between the caller's first and newest scrape: at most the window.
            var rps = edge.GetProperty("rps").GetDouble();
            Assert.True(rps > 0 && edge.GetProperty("requests").GetDouble() / rps <= window + 0.01, $"{edge} in a {window} s window");
            var p50 = edge.GetProperty("p50_ms").GetDouble();
            var p99 = edge.GetProperty("p99_ms").GetDouble();
            Assert.True(p50 > 0 && p50 <= p99, $"p50 {p50}, p99 {p99}");

            // Plaintext calls: web reports connection_security_policy="none".
            Assert.Equal(JsonValueKind.False, edge.GetProperty("mtls").ValueKind);
        }

        // The test's own calls to front come from outside the mesh: front reports them from an unknown source.
        var unmeshed = Edge(graph, "unknown", "default/front/v1")!.Value;
        Assert.Equal("destination", unmeshed.GetProperty("reporter").GetString());
        Assert.True(unmeshed.GetProperty("requests").GetDouble() >= Calls);

        var nodes = graph.GetProperty("nodes").EnumerateArray().ToDictionary(n => n.GetProperty("id").GetString()!);
        foreach (var (id, workload) in new[] { ("default/front/v1", "front-v1"), ("default/web/v1", "web-v1"), ("default/web/v2", "web-v2") })
        {
            Assert.True(nodes.TryGetValue(id, out var node), $"no node {id}: {graph}");
            Assert.Equal(workload, Assert.Single(node.GetProperty("workloads").EnumerateArray()).GetString());
            Assert.True(node.GetProperty("rps").GetDouble() > 0, node.ToString());
        }

        Assert.Equal(Requests(graph, "default/web/v1"), nodes["default/web/v1"].GetProperty("requests").GetDouble());

        // /dotviz: the add-on's DOT, front -> web on one line, rendered by Graphviz.
        var dot = await Http.GetStringAsync(new Uri(mesh.ControlPlane.MonitoringUri!, "dotviz"));
        Assert.StartsWith("digraph \"istio-servicegraph\" {\n", dot, StringComparison.Ordinal);
        Assert.Contains("\n\"front\" -> \"web\" [label=\"reqs/sec: ", dot, StringComparison.Ordinal);
        Assert.Contains("\n\"web\" [label=\"web (web-v1, web-v2)\"];\n", dot, StringComparison.Ordinal);
        var (exitCode, svg, error) = await ExternalTool.RunAsync(ExternalTool.Find("dot", "graphviz"), "-Tsvg", dot, TimeSpan.FromSeconds(30));
        Assert.True(exitCode == 0, $"dot -Tsvg exited {exitCode}: {error}\n{dot}");
        Assert.Contains("<svg", svg, StringComparison.Ordinal);
        Assert.Contains("<title>front&#45;&gt;web</title>", svg, StringComparison.Ordinal);
        Assert.Contains(">front (front&#45;v1)</text>", svg, StringComparison.Ordinal);
        Assert.Contains(">web (web&#45;v1, web&#45;v2)</text>", svg, StringComparison.Ordinal);

        // The control plane's own metrics: three workloads connected, pushes of every type they subscribe to.
        using var metricsResponse = await Http.GetAsync(new Uri(mesh.ControlPlane.MonitoringUri!, "metrics"));
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", metricsResponse.Content.Headers.ContentType?.ToString());
        var exposition = await metricsResponse.Content.ReadAsStringAsync();
        await ExternalTool.PromtoolCheckMetricsAsync(exposition, IstiodCounterLints);
        var samples = PrometheusSample.Parse(exposition);
        Assert.Equal(3, samples.Where(s => s.Name == "pilot_xds").Sum(s => s.Value));
        foreach (var type in new[] { "lds", "rds", "cds", "eds" })
        {
            var pushes = samples.Where(s => s.Name == "pilot_xds_pushes" && s.Labels["type"] == type).Sum(s => s.Value);
            Assert.True(pushes >= 3, $"pilot_xds_pushes{{type=\"{type}\"}} = {pushes}\n{exposition}");
            Assert.Equal(pushes, samples.Single(s => s.Name == "pilot_xds_push_time_count" && s.Labels["type"] == type).Value);
        }

        Assert.Contains(samples, s => s.Name == "pilot_proxy_convergence_time_count");
        Assert.Equal(2, samples.Single(s => s.Name == "pilot_services").Value);

        // The dashboard: one self-contained page that draws /graph (no external scripts or styles).
        using var page = await Http.GetAsync(mesh.ControlPlane.MonitoringUri!);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        var html = await page.Content.ReadAsStringAsync();
        Assert.Contains("fetch(\"graph\"", html, StringComparison.Ordinal);
        Assert.Contains("\"data-service\": n.service", html, StringComparison.Ordinal);
        Assert.DoesNotContain("src=\"http", html, StringComparison.Ordinal);
        Assert.DoesNotContain("href=\"http", html, StringComparison.Ordinal);
        Assert.Equal(html, await Http.GetStringAsync(new Uri(mesh.ControlPlane.MonitoringUri!, "dashboard")));
    }
}

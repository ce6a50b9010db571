using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Mesh.ControlPlane;
using Mesh.Sdk.AspNetCore.Security;
using Mesh.Sdk.AspNetCore.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.Extensions.DependencyInjection;

namespace Mesh.Sdk.AspNetCore.Tests.Telemetry;

/// <summary>
/// The service graph from a real Prometheus (Debian's <c>prometheus</c>, started here on 127.0.0.1 scraping the meshed
/// apps every second): a control plane given <see cref="MeshControlPlaneOptions.PrometheusUrl"/> computes the graph
/// from Prometheus' HTTP API, and agrees with Prometheus' own <c>histogram_quantile</c>.
/// </summary>
public sealed class ServiceGraphPrometheusTests(ControlPlaneFixture mesh) : IClassFixture<ControlPlaneFixture>
{
    private const int Calls = 40;
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(15) };

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task<JsonElement> QueryAsync(Uri prometheus, string query)
    {
        var body = await Http.GetStringAsync(new Uri(prometheus, "api/v1/query?query=" + Uri.EscapeDataString(query)));
        using var json = JsonDocument.Parse(body);
        Assert.Equal("success", json.RootElement.GetProperty("status").GetString());
        return json.RootElement.GetProperty("data").GetProperty("result").Clone();
    }

    private static double Scalar(JsonElement result)
        => result.GetArrayLength() == 0 ? double.NaN : double.Parse(result[0].GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture);

    [Fact]
    public async Task GraphFromPrometheus_SplitsTheCallsAsTheRepliesWere_AndMatchesPromQLsQuantile()
    {
        await using var webV1 = await ServiceGraphEndToEndTests.StartWebAsync(mesh, "web", "v1");
        await using var webV2 = await ServiceGraphEndToEndTests.StartWebAsync(mesh, "web", "v2", new() { ["Mesh:Telemetry:MetricsPort"] = "0" });
        await using var front = await ServiceGraphEndToEndTests.StartWebAsync(mesh, "front", "v1");
        await ServiceGraphEndToEndTests.WarmUpAsync(front, mesh.Dump);
        var webV2Metrics = ((MeshHealthServer)webV2.Services.GetRequiredService<IServer>()).MetricsBoundPort!.Value;

        var prometheusBinary = ExternalTool.Find("prometheus", "prometheus");
        var folder = Directory.CreateTempSubdirectory("mesh-prometheus-").FullName;
        var port = FreePort();
        var config = Path.Combine(folder, "prometheus.yml");
        await File.WriteAllTextAsync(config, $"""
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: mesh
                metrics_path: /metrics
                static_configs:
                  - targets: ['127.0.0.1:{front.Port}', '127.0.0.1:{webV1.Port}', '127.0.0.1:{webV2Metrics}']
            """);
        var start = new ProcessStartInfo(prometheusBinary)
        {
            ArgumentList =
            {
                $"--config.file={config}", $"--storage.tsdb.path={Path.Combine(folder, "data")}", $"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h", "--log.level=warn",
            },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var prometheus = Process.Start(start)!;
        var log = new System.Text.StringBuilder();
        prometheus.OutputDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        prometheus.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        prometheus.BeginOutputReadLine();
        prometheus.BeginErrorReadLine();
        var prometheusUrl = new Uri($"http://127.0.0.1:{port}/");
        try
        {
            // Ready, and every target scraped a few times before the calls.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (true)
            {
                Assert.False(prometheus.HasExited, $"prometheus exited {(prometheus.HasExited ? prometheus.ExitCode : 0)}: {log}");
                Assert.True(DateTime.UtcNow < deadline, $"prometheus never scraped the three workloads: {log}");
                try
                {
                    if (Scalar(await QueryAsync(prometheusUrl, "count(count_over_time(up[1m]) >= 3 and up == 1)")) == 3)
                    {
                        break;
                    }
                }
                catch (HttpRequestException)
                {
                    // Not listening yet.
                }

                await Task.Delay(500);
            }

            var replies = await ServiceGraphEndToEndTests.CallAsync(front, Calls);
            Assert.Equal(Calls, replies.GetValueOrDefault("200 v1") + replies.GetValueOrDefault("200 v2"));

            // Until Prometheus has scraped front after the calls (its total is front's own), and a few scrapes more.
            deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            const string sent = "sum(istio_requests_total{reporter=\"source\", source_app=\"front\", destination_service_name=\"web\"})";
            var total = PrometheusSample.Parse(await Http.GetStringAsync(new Uri(front.BaseAddress, "/metrics")))
                .Where(s => s.Name == "istio_requests_total" && s.Labels.GetValueOrDefault("reporter") == "source" && s.Labels.GetValueOrDefault("destination_service_name") == "web")
                .Sum(s => s.Value);
            while (Scalar(await QueryAsync(prometheusUrl, sent)) != total)
            {
                Assert.True(DateTime.UtcNow < deadline, $"prometheus did not see the calls: {log}");
                await Task.Delay(500);
            }

            await Task.Delay(2500);

            await using var monitoring = new MeshControlPlane(new MeshControlPlaneOptions
            {
                XdsAddress = "127.0.0.1",
                XdsPort = 0,
                MonitoringPort = 0,
                PrometheusUrl = prometheusUrl,
                GraphWindow = TimeSpan.FromMinutes(2),
            });
            await monitoring.StartAsync();
            var body = await Http.GetStringAsync(new Uri(monitoring.MonitoringUri!, "graph"));
            using var json = JsonDocument.Parse(body);
            var graph = json.RootElement;
            Assert.Equal("prometheus", graph.GetProperty("source").GetString());
            Assert.Equal(120, graph.GetProperty("window_seconds").GetDouble());
            var edges = graph.GetProperty("edges").EnumerateArray().Where(e => e.GetProperty("source").GetString() == "default/front/v1").ToList();
            double EdgeRequests(string version) => edges.Single(e => e.GetProperty("target").GetString() == $"default/web/{version}").GetProperty("requests").GetDouble();

            // increase() extrapolates a little past the first and last samples; the versions share the scrapes, so their split is exact.
            var v1 = EdgeRequests("v1");
            var v2 = EdgeRequests("v2");
            Assert.InRange(v1 + v2, Calls, Calls * 1.3);
            Assert.Equal(replies.GetValueOrDefault("200 v1") / (double)Calls, v1 / (v1 + v2), 2);
            foreach (var edge in edges)
            {
                Assert.Equal("source", edge.GetProperty("reporter").GetString());
                Assert.Equal(JsonValueKind.False, edge.GetProperty("mtls").ValueKind);
                Assert.Equal(edge.GetProperty("requests").GetDouble() / 120, edge.GetProperty("rps").GetDouble(), 4);
            }

            // The graph's p99 is PromQL's histogram_quantile of the same buckets. Evaluated a moment later: increase()
            // extrapolates a bucket that started at 0 less than one that did not, so the two drift apart by a little as
            // the window's samples grow.
            var p99 = edges.Single(e => e.GetProperty("target").GetString() == "default/web/v1").GetProperty("p99_ms").GetDouble();
            var promql = Scalar(await QueryAsync(prometheusUrl,
                "histogram_quantile(0.99, sum by (le) (increase(istio_request_duration_milliseconds_bucket{reporter=\"source\", source_app=\"front\", destination_version=\"v1\"}[120s])))"));
            Assert.InRange(p99, promql * 0.98, promql * 1.02);

            var dot = await Http.GetStringAsync(new Uri(monitoring.MonitoringUri!, "dotviz"));
            Assert.Contains("\n\"front\" -> \"web\" [label=\"reqs/sec: ", dot, StringComparison.Ordinal);

            // Prometheus gone: /graph says so instead of drawing an empty mesh.
            prometheus.Kill(entireProcessTree: true);
            await prometheus.WaitForExitAsync();
            using var failed = await Http.GetAsync(new Uri(monitoring.MonitoringUri!, "graph"));
            Assert.Equal(HttpStatusCode.BadGateway, failed.StatusCode);
            Assert.StartsWith("The service graph's data source failed: ", await failed.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        finally
        {
            if (!prometheus.HasExited)
            {
                prometheus.Kill(entireProcessTree: true);
                await prometheus.WaitForExitAsync();
            }

            try
            {
                Directory.Delete(folder, recursive: true);
            }
            catch (IOException)
            {
                // A temp folder left behind is harmless.
            }
        }
    }
}

using System.Diagnostics;
using System.Security.Cryptography;
using Mesh.Bookinfo.Tests.Infrastructure;
using Mesh.Testing;

namespace Mesh.Bookinfo.Tests;

/// <summary>
/// The walkthrough's "Distributed tracing" part: <c>telemetry/tracing.yaml</c> (the mesh config's Zipkin provider, its
/// ServiceEntry, a mesh-wide Telemetry at 100 % and reviews' custom tags) pointed at a Zipkin v2 test collector.
/// </summary>
public sealed partial class BookinfoScenarioTests
{
    [Fact]
    [Step(10)]
    public async Task Tracing_ThroughTheMeshConfigAndTelemetry_OnePagesCallsAreOneTrace_WithReviewsCustomTags()
    {
        await bookinfo.ResetToDefaultAsync();
        await using var zipkin = await ZipkinReceiver.StartAsync();
        var yaml = (await File.ReadAllTextAsync(Paths.RuleFile("tracing.yaml"))).Replace("http-zipkin: 9411", $"http-zipkin: {zipkin.Port}", StringComparison.Ordinal);
        Assert.Contains($"http-zipkin: {zipkin.Port}", yaml, StringComparison.Ordinal);
        await bookinfo.ApplyTextAsync("tracing.yaml", yaml);
        try
        {
            // A page load as jason, continuing a trace the test starts (sampled), until the workloads' listeners carry
            // the tracer and the page's spans arrive: productpage's server span under the test's span, its client spans
            // under it, details' and reviews' server spans under those.
            var clock = Stopwatch.StartNew();
            IReadOnlyList<ZipkinSpan> spans = [];
            string traceId = "", parentId = "";
            while (clock.Elapsed < TimeSpan.FromSeconds(40))
            {
                traceId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
                parentId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
                using var request = new HttpRequestMessage(HttpMethod.Get, bookinfo.Launcher.ProductPage);
                request.Headers.Add("Cookie", "user=jason");
                request.Headers.Add("traceparent", $"00-{traceId}-{parentId}-01");
                using var response = await bookinfo.Http.SendAsync(request);
                Assert.Equal(200, (int)response.StatusCode);
                await Task.Delay(1500);
                spans = zipkin.Spans.Where(s => s.TraceId == traceId).ToList();
                if (spans.Any(static s => s.Kind == "SERVER" && s.ServiceName == "reviews.default"))
                {
                    await Task.Delay(500);
                    spans = zipkin.Spans.Where(s => s.TraceId == traceId).ToList();
                    break;
                }
            }

            var all = string.Join("\n", spans.Select(static s => $"{s.Kind} {s.ServiceName} {s.Name} id={s.Id} parent={s.ParentId}"));
            var page = Assert.Single(spans, static s => s.Kind == "SERVER" && s.ServiceName == "productpage.default");
            Assert.Equal(parentId, page.ParentId);
            var pageClients = spans.Where(s => s.Kind == "CLIENT" && s.ServiceName == "productpage.default").ToList();
            Assert.True(pageClients.Count >= 2, "productpage made client spans to details and reviews:\n" + all);
            Assert.All(pageClients, c => Assert.Equal(page.Id, c.ParentId));
            foreach (var service in new[] { "details.default", "reviews.default" })
            {
                var server = Assert.Single(spans, s => s.Kind == "SERVER" && s.ServiceName == service);
                Assert.Contains(pageClients, c => c.Id == server.ParentId);
            }

            // Reviews' spans carry the workload Telemetry's custom tags; productpage's do not.
            var reviews = spans.Single(static s => s.Kind == "SERVER" && s.ServiceName == "reviews.default");
            Assert.Equal("middle", reviews.Tags["bookinfo_tier"]);
            Assert.Equal("jason", reviews.Tags["end_user"]);
            Assert.False(page.Tags.ContainsKey("bookinfo_tier"), "productpage's span has reviews' tag:\n" + all);
            Assert.Equal(0, zipkin.BadRequests);

            // The service graph of the same traffic, as Graphviz DOT: the page's calls are edges, and Debian's dot renders it.
            var dot = await bookinfo.Http.GetStringAsync(new Uri(bookinfo.Launcher.Dashboard, "dotviz"));
            Assert.Contains("\"productpage\" -> \"details\"", dot, StringComparison.Ordinal);
            Assert.Contains("\"productpage\" -> \"reviews\"", dot, StringComparison.Ordinal);
            Assert.Contains("\"reviews\" -> \"ratings\"", dot, StringComparison.Ordinal);
            var svg = await RenderDotAsync(dot);
            Assert.Contains("<svg", svg, StringComparison.Ordinal);
            Assert.Contains(">reviews", svg, StringComparison.Ordinal);
        }
        finally
        {
            await bookinfo.RemoveAsync("tracing.yaml");
        }
    }

    /// <summary>Runs Debian's <c>dot -Tsvg</c> over <paramref name="dot"/>; a missing binary is a failure naming the package.</summary>
    private static async Task<string> RenderDotAsync(string dot)
    {
        var start = new ProcessStartInfo("dot", "-Tsvg") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            Assert.Fail($"Graphviz's dot is missing ({ex.Message}); install it with: apt-get install -y graphviz");
            throw;
        }

        using (process)
        {
            await process.StandardInput.WriteAsync(dot);
            process.StandardInput.Close();
            var svg = process.StandardOutput.ReadToEndAsync();
            var errors = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await process.WaitForExitAsync(timeout.Token);
            Assert.True(process.ExitCode == 0, $"dot -Tsvg failed ({process.ExitCode}): {await errors}");
            return await svg;
        }
    }
}

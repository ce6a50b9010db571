using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using Mesh.Bookinfo.Tests.Infrastructure;

namespace Mesh.Bookinfo.Tests;

/// <summary>
/// The walkthrough's "Telemetry" part: a real Prometheus (Debian's <c>prometheus</c>) scrapes every workload's
/// plaintext metrics port from the targets file the launcher wrote, also under STRICT mTLS, and its HTTP API shows
/// what the calls did: the fault rules' response flags, then the reviews split and both reporters' totals under load.
/// </summary>
public sealed partial class BookinfoScenarioTests
{
    private const string Job = "bookinfo";

    /// <summary>Every label the deltas below are compared by; everything else (instance, app, version of the target) is summed away.</summary>
    private const string ByLabels = "reporter, source_app, source_version, destination_service_name, destination_version, response_code, response_flags, connection_security_policy";

    private static readonly TimeSpan ScrapeTimeout = TimeSpan.FromSeconds(15);

    [Fact]
    [Step(9)]
    public async Task Prometheus_ScrapesEveryWorkload_ReviewsSplitBothReportersAndFaultFlagsMatchThePages()
    {
        var clock = Stopwatch.StartNew();
        await bookinfo.ResetToDefaultAsync();
        var launcher = bookinfo.Launcher;

        // The launcher's own files: the targets file lists every workload's metrics port with its app, version and
        // namespace; the prometheus.yml beside it passes promtool.
        var expected = launcher.Workloads.Values
            .Select(static w => (Target: w.Metrics.Authority, App: w.Name[..w.Name.LastIndexOf('-')], Version: w.Name[(w.Name.LastIndexOf('-') + 1)..]))
            .OrderBy(static t => t.Target, StringComparer.Ordinal)
            .ToList();
        Assert.Equal(6, expected.Count);
        Assert.Equal(Path.Combine(launcher.PrometheusDirectory, "bookinfo-targets.json"), launcher.PrometheusTargetsFile);
        Assert.Equal(expected, ReadTargetsFile(launcher.PrometheusTargetsFile));
        var (checkCode, checkOutput) = await RunAsync(PrometheusProcess.Binary("promtool"), ["check", "config", Path.Combine(launcher.PrometheusDirectory, "prometheus.yml")], stdin: null);
        Assert.True(checkCode == 0, $"promtool check config rejected the launcher's prometheus.yml:{Environment.NewLine}{checkOutput}");

        // The test's Prometheus: the launcher's targets file, scraped every second.
        await using var prometheus = await PrometheusProcess.StartAsync($"""
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
            scrape_configs:
              - job_name: {Job}
                file_sd_configs:
                  - files:
                      - {JsonSerializer.Serialize(launcher.PrometheusTargetsFile)}
            """, TimeSpan.FromSeconds(30));

        // Fault injection, delay: reviews v2 waits up to 10 s for ratings, held 7 s by the rule for jason; it reports
        // that call as response_flags="DI" with ratings' 200. (Through the page productpage gives up on reviews after
        // 3 s and the call is cancelled, so reviews v2 is asked directly, as productpage would ask it for jason; the
        // mesh is still PERMISSIVE, so plaintext gets in.)
        await bookinfo.ApplyAsync(DestinationRules, "virtual-service-ratings-test-delay.yaml");
        var before = await QuiescentTotalsAsync(prometheus);
        var targets = await prometheus.QueryAsync($"up{{job=\"{Job}\"}}");
        Assert.Equal(
            expected.Select(static t => (t.Target, t.App, t.Version, Namespace: "default", Up: 1.0)),
            targets.Select(static s => (Target: s["instance"], App: s["app"], Version: s["version"], Namespace: s["namespace"], Up: s.Value)).OrderBy(static t => t.Target, StringComparer.Ordinal));
        var delayed = 0;
        var reviewsV2 = launcher.Workloads["reviews-v2"].Url;
        var delayClock = Stopwatch.StartNew();
        while (delayed == 0)
        {
            Assert.True(delayClock.Elapsed < BookinfoFixture.ApplyTimeout, $"reviews v2's call to ratings for jason was not delayed within {BookinfoFixture.ApplyTimeout.TotalSeconds} s");
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(reviewsV2, "/reviews/0"));
            request.Headers.Add("end-user", "jason");
            var call = Stopwatch.StartNew();
            using var response = await bookinfo.Http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("200", Assert.Single(response.Headers.GetValues("x-bookinfo-ratings-status")));
            // Until the rule reaches reviews v2 ratings answers at once; the delay holds the call 7 s.
            if (call.Elapsed > TimeSpan.FromSeconds(6))
            {
                delayed++;
            }
        }

        var held = Delta(await QuiescentTotalsAsync(prometheus), before);
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: delay; increases:{Environment.NewLine}{string.Join(Environment.NewLine, held)}");
        var di = Assert.Single(held, static s => s["response_flags"] == "DI");
        Assert.Equal(("source", "reviews", "v2", "ratings", "v1", "200", delayed), (di["reporter"], di["source_app"], di["source_version"], di["destination_service_name"], di["destination_version"], di["response_code"], (int)di.Value));
        Assert.Equal(
            Sum(held, ("reporter", "source"), ("source_app", "reviews"), ("source_version", "v2"), ("destination_service_name", "ratings")),
            Sum(held, ("reporter", "destination"), ("source_app", "reviews"), ("source_version", "v2"), ("destination_service_name", "ratings")));

        // Fault injection, abort: jason's pages come from reviews v2, whose calls to ratings the mesh answers 500
        // itself; reviews v2 reports each as response_flags="FI", and ratings sees none of them.
        await bookinfo.RemoveAsync("virtual-service-ratings-test-delay.yaml");
        await bookinfo.ApplyAsync("virtual-service-reviews-test-v2.yaml", "virtual-service-ratings-test-abort.yaml");
        await bookinfo.WaitForPagesAsync(static p => p.Version == "v2" && p.RatingsErrors == 2, user: "jason", what: "reviews v2 with ratings unavailable for jason");
        before = await QuiescentTotalsAsync(prometheus);
        const int JasonPages = 20;
        Assert.All(await bookinfo.GetPagesAsync(JasonPages, user: "jason"), static p => Assert.Equal(("v2", 2), (p.Version, p.RatingsErrors)));
        var aborted = Delta(await QuiescentTotalsAsync(prometheus), before);
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: abort; increases:{Environment.NewLine}{string.Join(Environment.NewLine, aborted)}");
        var fi = Assert.Single(aborted, static s => s["destination_service_name"] == "ratings");
        Assert.Equal(("source", "reviews", "v2", "500", "FI", "unknown", JasonPages), (fi["reporter"], fi["source_app"], fi["source_version"], fi["response_code"], fi["response_flags"], fi["destination_version"], (int)fi.Value));

        // STRICT mTLS and the 50/50 reviews rule: the app ports of the backends refuse plaintext, the metrics ports
        // are still scraped (every target up, below).
        await bookinfo.RemoveAsync("virtual-service-reviews-test-v2.yaml", "virtual-service-ratings-test-abort.yaml");
        await bookinfo.ApplyAsync("peer-authentication-strict.yaml", "virtual-service-reviews-50-v3.yaml");
        await WaitAsync(async () => await PlaintextAnswerAsync(reviewsV2) == 0, "reviews v2 to close plaintext connections under STRICT");
        // Round robin answers v2 every third page; six pages in a row from v1 or v3 means the rule is in force.
        await bookinfo.WaitForPagesAsync(static p => p.Version is "v1" or "v3", consecutive: 6, what: "reviews v1 or v3");
        before = await QuiescentTotalsAsync(prometheus);

        // A bounded load: 300 pages, six at a time.
        const int Pages = 300;
        var pages = new ConcurrentBag<ProductPageView>();
        using (var load = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
        {
            await Parallel.ForEachAsync(Enumerable.Range(0, Pages), new ParallelOptions { MaxDegreeOfParallelism = 6, CancellationToken = load.Token }, async (_, _) => pages.Add(await bookinfo.GetPageAsync()));
        }

        var loaded = Delta(await QuiescentTotalsAsync(prometheus), before);
        output.WriteLine($"{clock.Elapsed.TotalSeconds:0.0} s: {Pages} pages loaded; increases:{Environment.NewLine}{string.Join(Environment.NewLine, loaded)}");
        Assert.All(pages, static p => Assert.Equal(200, p.Status));
        Assert.All(pages, static p => Assert.Contains(p.Version, new[] { "v1", "v3" }));
        var v1 = pages.Count(static p => p.Version == "v1");
        var v3 = pages.Count(static p => p.Version == "v3");

        // productpage counts exactly the pages (reporter="destination"; the test is no meshed caller, so nothing reports them as source).
        Assert.Equal(Pages, Sum(loaded, ("reporter", "destination"), ("destination_service_name", "productpage")));
        Assert.Equal(0, Sum(loaded, ("reporter", "source"), ("destination_service_name", "productpage")));

        // The configured split: productpage's answered calls to reviews per version are the pages' versions, exactly,
        // and 50/50 within tolerance; v2 gets nothing.
        Assert.Equal(v1, Sum(loaded, ("reporter", "source"), ("source_app", "productpage"), ("destination_service_name", "reviews"), ("destination_version", "v1"), ("response_code", "200")));
        Assert.Equal(v3, Sum(loaded, ("reporter", "source"), ("source_app", "productpage"), ("destination_service_name", "reviews"), ("destination_version", "v3"), ("response_code", "200")));
        Assert.Equal(0, Sum(loaded, ("destination_service_name", "reviews"), ("destination_version", "v2")));
        Assert.InRange(v3 / (double)Pages, 0.35, 0.65);

        // Both reporters agree, per service and per version: every call the callers report, the callees report too,
        // all of them over mutual TLS.
        foreach (var service in new[] { "details", "reviews", "ratings" })
        {
            foreach (var version in new[] { "v1", "v2", "v3" })
            {
                Assert.True(
                    Sum(loaded, ("reporter", "source"), ("destination_service_name", service), ("destination_version", version))
                        == Sum(loaded, ("reporter", "destination"), ("destination_service_name", service), ("destination_version", version), ("connection_security_policy", "mutual_tls")),
                    $"{service} {version}: source and destination (mutual_tls) totals differ");
            }

            Assert.True(Sum(loaded, ("reporter", "destination"), ("destination_service_name", service)) > 0, service + " reported no calls");
        }

        Assert.Equal(Pages, Sum(loaded, ("reporter", "destination"), ("source_app", "productpage"), ("destination_service_name", "details"), ("connection_security_policy", "mutual_tls")));
        // Only reviews v3 asks ratings (v1 shows no stars): one call per v3 page.
        Assert.Equal(v3, Sum(loaded, ("reporter", "source"), ("source_app", "reviews"), ("source_version", "v3"), ("destination_service_name", "ratings")));
        Assert.Equal(0, Sum(loaded, ("source_app", "reviews"), ("source_version", "v1")));

        // promtool accepts every workload's exposition (now holding FI and DI series too).
        var promtool = PrometheusProcess.Binary("promtool");
        foreach (var workload in launcher.Workloads.Values)
        {
            var exposition = await bookinfo.Http.GetStringAsync(workload.Metrics);
            Assert.Contains("istio_requests_total{", exposition, StringComparison.Ordinal);
            var (code, lint) = await RunAsync(promtool, ["check", "metrics"], exposition);
            // Exit code 3: lint problems only (1 would be a parse error); the only one is the unit in Istio's own name.
            Assert.True(code is 0 or 3, $"promtool check metrics exited {code} for {workload.Name}: {lint}");
            Assert.All(
                lint.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                static line => Assert.Equal("istio_request_duration_milliseconds use base unit \"seconds\" instead of \"milliseconds\"", line));
        }

        output.WriteLine($"done in {clock.Elapsed.TotalSeconds:0.0} s");
    }

    /// <summary>
    /// Waits a moment for the last responses' metrics to be recorded, then for a scrape of every target that started
    /// after that, and returns <c>istio_requests_total</c> summed by <see cref="ByLabels"/>: nothing is in flight, so
    /// the totals are exact.
    /// </summary>
    private static async Task<IReadOnlyList<PromSample>> QuiescentTotalsAsync(PrometheusProcess prometheus)
    {
        await Task.Delay(300);
        await prometheus.WaitForScrapeAfterAsync(Job, 6, DateTimeOffset.UtcNow, ScrapeTimeout);
        return await prometheus.QueryAsync($"sum by ({ByLabels}) (istio_requests_total{{job=\"{Job}\"}})");
    }

    /// <summary>The increase of each series from <paramref name="before"/> to <paramref name="after"/> (a series new since is counted from 0); unchanged ones are left out.</summary>
    private static List<PromSample> Delta(IReadOnlyList<PromSample> after, IReadOnlyList<PromSample> before)
    {
        static string Key(PromSample s) => s.ToString()[..s.ToString().LastIndexOf('}')];
        var was = before.ToDictionary(Key, static s => s.Value, StringComparer.Ordinal);
        return [.. after
            .Select(s => s with { Value = s.Value - was.GetValueOrDefault(Key(s)) })
            .Where(static s => s.Value != 0)];
    }

    private static int Sum(IEnumerable<PromSample> samples, params (string Label, string Value)[] where) =>
        (int)samples.Where(s => where.All(w => s[w.Label] == w.Value)).Sum(static s => s.Value);

    /// <summary>The launcher's file_sd document as (target, app, version) per group; every group's namespace must be default.</summary>
    private static List<(string Target, string App, string Version)> ReadTargetsFile(string path)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(path));
        var groups = new List<(string, string, string)>();
        foreach (var group in json.RootElement.EnumerateArray())
        {
            var labels = group.GetProperty("labels");
            Assert.Equal("default", labels.GetProperty("namespace").GetString());
            groups.Add((Assert.Single(group.GetProperty("targets").EnumerateArray()).GetString()!, labels.GetProperty("app").GetString()!, labels.GetProperty("version").GetString()!));
        }

        return [.. groups.OrderBy(static g => g.Item1, StringComparer.Ordinal)];
    }

    /// <summary>Runs a tool to completion (30 s at most); returns its exit code and its output.</summary>
    private static async Task<(int Code, string Output)> RunAsync(string file, string[] args, string? stdin)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
        }

        process.StandardInput.Close();
        try
        {
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (TimeoutException)
        {
            process.Kill();
            throw new TimeoutException($"{file} {string.Join(' ', args)} did not finish within 30 s");
        }

        return (process.ExitCode, (await stdout + await stderr).Trim());
    }
}

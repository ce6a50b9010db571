using System.Net;
using Mesh.Sdk.AspNetCore.Security;
using Mesh.Sdk.AspNetCore.Tests.Infrastructure;
using Mesh.Sdk.Security;
using Mesh.Sdk.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Mesh.Sdk.AspNetCore.Tests.Telemetry;

/// <summary>
/// Istio's standard metrics end to end: real meshed apps with only <c>builder.AddMesh()</c> (front v1 calling web v1/v2
/// through <c>IHttpClientFactory</c>), registered with the real control plane, scraped at <c>/metrics</c> as Prometheus
/// would scrape them.
/// </summary>
public sealed class MeshMetricsTests(ControlPlaneFixture mesh) : IClassFixture<ControlPlaneFixture>
{
    private const int Calls = 20;

    /// <summary>Every label Istio's standard request metrics carry.</summary>
    private static readonly string[] IstioLabels =
    [
        "reporter", "source_workload", "source_workload_namespace", "source_principal", "source_app", "source_version", "source_cluster",
        "destination_workload", "destination_workload_namespace", "destination_principal", "destination_app", "destination_version",
        "destination_service", "destination_service_name", "destination_service_namespace", "destination_cluster",
        "request_protocol", "response_code", "grpc_response_status", "response_flags", "connection_security_policy",
    ];

    private static readonly HttpClient Scraper = new() { Timeout = TimeSpan.FromSeconds(15) };

    private Task<MeshWebApp> StartWebAsync(string service, string version, Dictionary<string, string?>? extra = null)
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

    private static async Task<List<PrometheusSample>> ScrapeAsync(Uri metrics)
    {
        using var response = await Scraper.GetAsync(metrics);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        return PrometheusSample.Parse(await response.Content.ReadAsStringAsync());
    }

    /// <summary>
    /// Runs Debian's <c>promtool check metrics</c> on <paramref name="exposition"/>: it must parse, and the only lint it may
    /// report is the one Istio's own metric name draws (milliseconds rather than the base unit).
    /// </summary>
    internal static async Task PromtoolCheckAsync(string exposition)
    {
        var promtool = new[] { "/usr/bin/promtool", "/usr/local/bin/promtool" }.FirstOrDefault(File.Exists);
        Assert.True(promtool is not null, "promtool is missing: install Debian's prometheus package (scripts/test.sh installs it)");
        var start = new System.Diagnostics.ProcessStartInfo(promtool!, "check metrics")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(exposition);
        process.StandardInput.Close();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var output = (await stdout + await stderr).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

        // Exit code 3: lint problems only (1 would be a parse error).
        Assert.True(process.ExitCode is 0 or 3, $"promtool check metrics exited {process.ExitCode}: {string.Join("\n", output)}");
        Assert.All(output, line => Assert.Equal("istio_request_duration_milliseconds use base unit \"seconds\" instead of \"milliseconds\"", line));
    }

    private static double Sum(List<PrometheusSample> samples, string name, params (string Label, string Value)[] where)
        => samples.Where(s => s.Name == name && where.All(w => s.Labels.TryGetValue(w.Label, out var v) && v == w.Value)).Sum(s => s.Value);

    [Fact]
    public async Task FrontCallsWebV1AndV2_BothSidesReportExactlyTheCalls_WithIstiosLabels()
    {
        await using var webV1 = await StartWebAsync("web", "v1");

        // web v2 serves its metrics on a separate plaintext port instead of its app port.
        await using var webV2 = await StartWebAsync("web", "v2", new() { ["Mesh:Telemetry:MetricsPort"] = "0" });
        await using var front = await StartWebAsync("front", "v1");
        var frontMetrics = new Uri(front.BaseAddress, "/metrics");
        var webV1Metrics = new Uri(webV1.BaseAddress, "/metrics");
        var metricsPort = ((MeshHealthServer)webV2.Services.GetRequiredService<IServer>()).MetricsBoundPort;
        Assert.NotNull(metricsPort);
        var webV2Metrics = new Uri($"http://127.0.0.1:{metricsPort}/metrics");

        // Until front has both web endpoints; those calls are counted too, so the assertions below take differences.
        var seen = new HashSet<string>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (seen.Count < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, $"front reached {string.Join(",", seen)} of web\n{mesh.Dump()}");
            var reply = await Scraper.GetStringAsync(new Uri(front.BaseAddress, "/call?target=http://web:9080/hello"));
            if (reply.StartsWith("200 ", StringComparison.Ordinal))
            {
                seen.Add(reply[4..]);
            }
        }

        var frontBefore = await ScrapeAsync(frontMetrics);
        var v1Before = await ScrapeAsync(webV1Metrics);
        var v2Before = await ScrapeAsync(webV2Metrics);
        var replies = new Dictionary<string, int>();
        for (var i = 0; i < Calls; i++)
        {
            var reply = await Scraper.GetStringAsync(new Uri(front.BaseAddress, "/call?target=http://web:9080/hello"));
            replies[reply] = replies.GetValueOrDefault(reply) + 1;
        }

        Assert.Equal(Calls, replies.GetValueOrDefault("200 v1") + replies.GetValueOrDefault("200 v2"));
        await PromtoolCheckAsync(await Scraper.GetStringAsync(frontMetrics));
        await PromtoolCheckAsync(await Scraper.GetStringAsync(webV2Metrics));
        var frontAfter = await ScrapeAsync(frontMetrics);
        var v1After = await ScrapeAsync(webV1Metrics);
        var v2After = await ScrapeAsync(webV2Metrics);

        // Caller: exactly the calls, split over both versions as the replies were, and the histograms counted as often.
        (string, string)[] toWeb = [("reporter", "source"), ("destination_service", "web.default.svc.cluster.local")];
        Assert.Equal(Calls, Sum(frontAfter, "istio_requests_total", toWeb) - Sum(frontBefore, "istio_requests_total", toWeb));
        foreach (var version in new[] { "v1", "v2" })
        {
            (string, string)[] toVersion = [.. toWeb, ("destination_version", version), ("response_code", "200")];
            var count = Sum(frontAfter, "istio_requests_total", toVersion) - Sum(frontBefore, "istio_requests_total", toVersion);
            Assert.Equal(replies.GetValueOrDefault("200 " + version), count);
        }

        Assert.Equal(Calls, Sum(frontAfter, "istio_request_duration_milliseconds_count", toWeb) - Sum(frontBefore, "istio_request_duration_milliseconds_count", toWeb));
        Assert.Equal(Calls, Sum(frontAfter, "istio_request_bytes_count", toWeb) - Sum(frontBefore, "istio_request_bytes_count", toWeb));
        Assert.Equal(Calls, Sum(frontAfter, "istio_response_bytes_count", toWeb) - Sum(frontBefore, "istio_response_bytes_count", toWeb));

        // Callees: the calls from front, counted by each version; together exactly the calls.
        (string, string)[] fromFront = [("reporter", "destination"), ("source_app", "front")];
        var v1Count = Sum(v1After, "istio_requests_total", fromFront) - Sum(v1Before, "istio_requests_total", fromFront);
        var v2Count = Sum(v2After, "istio_requests_total", fromFront) - Sum(v2Before, "istio_requests_total", fromFront);
        Assert.Equal(replies.GetValueOrDefault("200 v1"), v1Count);
        Assert.Equal(replies.GetValueOrDefault("200 v2"), v2Count);
        Assert.Equal(Calls, v1Count + v2Count);
        Assert.Equal(Calls, Sum(v1After, "istio_request_duration_milliseconds_count", fromFront) - Sum(v1Before, "istio_request_duration_milliseconds_count", fromFront)
            + Sum(v2After, "istio_request_duration_milliseconds_count", fromFront) - Sum(v2Before, "istio_request_duration_milliseconds_count", fromFront));

        // Both sides agree on the totals since the start, warm-up included.
        Assert.Equal(Sum(frontAfter, "istio_requests_total", toWeb), Sum(v1After, "istio_requests_total", fromFront) + Sum(v2After, "istio_requests_total", fromFront));

        // Every label of every series, with the values Istio gives them.
        var source = Assert.Single(frontAfter, s => s.Name == "istio_requests_total" && s.Labels.GetValueOrDefault("destination_version") == "v2" && s.Labels.GetValueOrDefault("reporter") == "source");
        Assert.Equal(IstioLabels, source.Labels.Keys);
        Assert.Equal(new Dictionary<string, string>
        {
            ["reporter"] = "source",
            ["source_workload"] = "front-v1",
            ["source_workload_namespace"] = "default",
            ["source_principal"] = "unknown",
            ["source_app"] = "front",
            ["source_version"] = "v1",
            ["source_cluster"] = "Kubernetes",
            ["destination_workload"] = "web-v2",
            ["destination_workload_namespace"] = "default",
            ["destination_principal"] = "unknown",
            ["destination_app"] = "web",
            ["destination_version"] = "v2",
            ["destination_service"] = "web.default.svc.cluster.local",
            ["destination_service_name"] = "web",
            ["destination_service_namespace"] = "default",
            ["destination_cluster"] = "Kubernetes",
            ["request_protocol"] = "http",
            ["response_code"] = "200",
            ["grpc_response_status"] = "",
            ["response_flags"] = "-",
            ["connection_security_policy"] = "unknown",
        }, source.Labels);

        var destination = Assert.Single(v1After, s => s.Name == "istio_requests_total" && s.Labels.GetValueOrDefault("source_app") == "front");
        Assert.Equal(IstioLabels, destination.Labels.Keys);
        Assert.Equal(new Dictionary<string, string>
        {
            ["reporter"] = "destination",
            ["source_workload"] = "front-v1",
            ["source_workload_namespace"] = "default",
            ["source_principal"] = "unknown",
            ["source_app"] = "front",
            ["source_version"] = "v1",
            ["source_cluster"] = "Kubernetes",
            ["destination_workload"] = "web-v1",
            ["destination_workload_namespace"] = "default",
            ["destination_principal"] = "unknown",
            ["destination_app"] = "web",
            ["destination_version"] = "v1",
            ["destination_service"] = "web.default.svc.cluster.local",
            ["destination_service_name"] = "web",
            ["destination_service_namespace"] = "default",
            ["destination_cluster"] = "Kubernetes",
            ["request_protocol"] = "http",
            ["response_code"] = "200",
            ["grpc_response_status"] = "",
            ["response_flags"] = "-",
            ["connection_security_policy"] = "none",
        }, destination.Labels);

        // The histograms: cumulative buckets up to +Inf, Istio's bounds, every bucket series with the labels and le.
        var buckets = frontAfter.Where(s => s.Name == "istio_request_duration_milliseconds_bucket" && s.Labels.GetValueOrDefault("destination_version") == "v2").ToList();
        Assert.Equal(["0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000", "30000", "60000", "300000", "600000", "1800000", "3600000", "+Inf"],
            buckets.Select(b => b["le"]));
        Assert.Equal(buckets.Select(b => b.Value).Order(), buckets.Select(b => b.Value));
        Assert.Equal(source.Value, buckets[^1].Value);

        // Front's own inbound calls (from this test, with no peer metadata) are the destination side's "unknown" source.
        Assert.Contains(frontAfter, s => s.Name == "istio_requests_total" && s["reporter"] == "destination" && s["source_workload"] == "unknown" && s["destination_workload"] == "front-v1");

        // With a metrics port, the app's own port does not serve them; scraping is not itself counted.
        using (var onAppPort = await Scraper.GetAsync(new Uri(webV2.BaseAddress, "/metrics")))
        {
            Assert.Equal(HttpStatusCode.NotFound, onAppPort.StatusCode);
        }

        Assert.DoesNotContain(v1After, s => s.Name == "istio_requests_total" && s["source_workload"] == "unknown");
    }

    [Fact]
    public async Task Strict_IdentityLabelsFromTheCertificate_MetricsOnlyOnTheMetricsPortInPlaintext()
    {
        Dictionary<string, string?> Secure(string account) => new()
        {
            ["Mesh:Security:Enabled"] = "true",
            ["Mesh:ServiceAccount"] = account,
        };

        var callee = Secure("secure-web-sa");
        callee["Mesh:Telemetry:MetricsPort"] = "0";
        await using var web = await StartWebAsync("secure-web", "v1", callee);
        await using var front = await StartWebAsync("secure-front", "v1", Secure("secure-front-sa"));
        using var certificates = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await web.Services.GetRequiredService<WorkloadCertificateSource>().WaitForCertificateAsync(certificates.Token);
        await front.Services.GetRequiredService<WorkloadCertificateSource>().WaitForCertificateAsync(certificates.Token);
        mesh.WriteConfig("secure-web.yaml", """
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: secure-web, namespace: default}
            spec:
              selector: {matchLabels: {app: secure-web}}
              mtls: {mode: STRICT}
            """);
        var policies = web.Services.GetRequiredService<Mesh.Sdk.Security.Inbound.InboundPolicies>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (policies.Get(web.Port).Mode != Mesh.Sdk.Security.Inbound.InboundMtlsMode.Strict)
        {
            Assert.True(DateTime.UtcNow < deadline, $"secure-web never became STRICT\n{mesh.Dump()}");
            await Task.Delay(50);
        }

        // Front reaches web over mesh mTLS (auto-mTLS to a workload with a certificate).
        var last = "no attempt";
        while (!last.StartsWith("200 ", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, $"front never reached secure-web: {last}\n{mesh.Dump()}");
            last = await Scraper.GetStringAsync(new Uri(front.BaseAddress, "/call?target=http://secure-web:9080/hello"));
        }

        // A plaintext scraper gets nothing from the STRICT app port, and the metrics from the metrics port.
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => Scraper.GetAsync(new Uri(web.BaseAddress, "/metrics")));
        var port = ((MeshHealthServer)web.Services.GetRequiredService<IServer>()).MetricsBoundPort;
        var samples = await ScrapeAsync(new Uri($"http://127.0.0.1:{port}/metrics"));

        // The callee labels the caller with its verified identity; the header only adds workload, app and version.
        var inbound = Assert.Single(samples, s => s.Name == "istio_requests_total" && s["response_code"] == "200");
        Assert.Equal(
            ("destination", "spiffe://cluster.local/ns/default/sa/secure-front-sa", "default", "secure-front-v1", "secure-front", "mutual_tls", "spiffe://cluster.local/ns/default/sa/secure-web-sa"),
            (inbound["reporter"], inbound["source_principal"], inbound["source_workload_namespace"], inbound["source_workload"], inbound["source_app"], inbound["connection_security_policy"], inbound["destination_principal"]));

        // The caller reports its own principal, and the callee's as its certificate proved it; the policy stays unknown.
        var outbound = Assert.Single(await ScrapeAsync(new Uri(front.BaseAddress, "/metrics")),
            s => s.Name == "istio_requests_total" && s["reporter"] == "source" && s["response_code"] == "200");
        Assert.Equal(
            ("spiffe://cluster.local/ns/default/sa/secure-front-sa", "secure-web-v1", "spiffe://cluster.local/ns/default/sa/secure-web-sa", "unknown"),
            (outbound["source_principal"], outbound["destination_workload"], outbound["destination_principal"], outbound["connection_security_policy"]));
    }

    [Fact]
    public async Task Faults_AndNoRoute_ReportedWithEnvoysResponseFlags()
    {
        await using var flaky = await StartWebAsync("flaky", "v1");
        mesh.WriteConfig("flaky-faults.yaml", """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: flaky, namespace: default}
            spec:
              hosts: [flaky.default.svc.cluster.local]
              http:
              - match: [{uri: {prefix: /abort}}]
                fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
                route: [{destination: {host: flaky.default.svc.cluster.local}}]
              - match: [{uri: {prefix: /delay}}]
                fault: {delay: {fixedDelay: 5ms, percentage: {value: 100}}}
                route: [{destination: {host: flaky.default.svc.cluster.local}}]
              - match: [{uri: {prefix: /hello}}]
                route: [{destination: {host: flaky.default.svc.cluster.local}}]
            """);
        await using var caller = MeshClient.Create(mesh, o =>
        {
            o.WorkloadName = "caller-v1";
            o.Labels["app"] = "caller";
            o.Labels["version"] = "v1";
        });
        var http = caller.Http();

        // Until the fault rules are in force at the caller.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        var last = "no attempt";
        while (true)
        {
            try
            {
                using var probe = await http.GetAsync("http://flaky:9080/abort");
                if (probe.StatusCode == HttpStatusCode.ServiceUnavailable)
                {
                    break;
                }

                last = ((int)probe.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (HttpRequestException error)
            {
                // flaky is not in the caller's mesh view yet.
                last = error.Message;
            }

            Assert.True(DateTime.UtcNow < deadline, $"the abort rule never applied: {last}\n{mesh.Dump()}");
            await Task.Delay(50);
        }

        var metrics = caller.GetRequiredService<MeshMetrics>();
        var before = PrometheusSample.Parse(await metrics.ToTextAsync());
        for (var i = 0; i < 3; i++)
        {
            using var aborted = await http.GetAsync("http://flaky:9080/abort");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, aborted.StatusCode);
            using var late = await http.GetAsync("http://flaky:9080/delay");
            Assert.Equal(HttpStatusCode.NotFound, late.StatusCode);
            using var noRoute = await http.GetAsync("http://flaky:9080/nowhere");
            Assert.Equal(HttpStatusCode.NotFound, noRoute.StatusCode);
        }

        var exposition = await metrics.ToTextAsync();
        await PromtoolCheckAsync(exposition);
        var after = PrometheusSample.Parse(exposition);
        double Count(string code, string flags) =>
            after.Where(s => s.Name == "istio_requests_total" && s["response_code"] == code && s["response_flags"] == flags).Sum(s => s.Value)
            - before.Where(s => s.Name == "istio_requests_total" && s["response_code"] == code && s["response_flags"] == flags).Sum(s => s.Value);

        Assert.Equal(3, Count("503", "FI"));
        Assert.Equal(3, Count("404", "DI"));
        Assert.Equal(3, Count("404", "NR"));

        var fault = Assert.Single(after, s => s.Name == "istio_requests_total" && s["response_flags"] == "FI");
        Assert.Equal(("source", "caller-v1", "caller", "flaky.default.svc.cluster.local", "flaky", "default"),
            (fault["reporter"], fault["source_workload"], fault["source_app"], fault["destination_service"], fault["destination_service_name"], fault["destination_service_namespace"]));

        // A fault answers before an endpoint is chosen: the destination workload is unknown, as Istio reports it.
        Assert.Equal("unknown", fault["destination_workload"]);

        // The delayed requests went on to an endpoint (which answered 404: it has no /delay), so its workload is known.
        var delayed = Assert.Single(after, s => s.Name == "istio_requests_total" && s["response_flags"] == "DI");
        Assert.Equal(("flaky-v1", "v1"), (delayed["destination_workload"], delayed["destination_version"]));
    }

    [Fact]
    public void PeerMetadata_RoundTripsAsIstiosStruct_AndGarbageIsUnknown()
    {
        var self = new WorkloadLabels("front-v1", "shop", "spiffe://cluster.local/ns/shop/sa/front", "front", "v1", "east");
        var header = self.ToPeerMetadata();
        var node = Google.Protobuf.WellKnownTypes.Struct.Parser.ParseFrom(Convert.FromBase64String(header));
        Assert.Equal("front-v1", node.Fields["WORKLOAD_NAME"].StringValue);
        Assert.Equal("shop", node.Fields["NAMESPACE"].StringValue);
        Assert.Equal("east", node.Fields["CLUSTER_ID"].StringValue);
        Assert.Equal("v1", node.Fields["LABELS"].StructValue.Fields["version"].StringValue);

        // The principal never travels in the header; the callee takes it from the verified certificate only.
        Assert.Equal(self with { Principal = "unknown" }, WorkloadLabels.FromPeerMetadata(header));
        Assert.Null(WorkloadLabels.FromPeerMetadata("not base64!"));
        Assert.Null(WorkloadLabels.FromPeerMetadata(Convert.ToBase64String([0xff, 0xff, 0xff])));
    }

    [Fact]
    public void Outbound_EndpointRemadeByAnEdsUpdate_KeepsItsSeries()
    {
        using var metrics = new MeshMetrics(WorkloadLabels.None, ServiceLabels.Unknown, nodeId: null, meterFactory: null);
        var metadata = new Envoy.Config.Core.V3.Metadata
        {
            FilterMetadata =
            {
                ["istio"] = new Google.Protobuf.WellKnownTypes.Struct { Fields = { ["workload"] = Google.Protobuf.WellKnownTypes.Value.ForString("web-v1;shop;web;v1;east") } },
            },
        };
        Mesh.Sdk.LoadBalancing.MeshEndpoint Endpoint() => new("10.0.0.1", 8080, 1, Envoy.Config.Core.V3.HealthStatus.Healthy, "", metadata, new Envoy.Config.Core.V3.Locality(), 0, new Mesh.Sdk.LoadBalancing.EndpointState());
        const string Cluster = "outbound|9080|v1|web.shop.svc.cluster.local";

        var first = metrics.Outbound(Cluster, Endpoint());
        Assert.Equal(("web-v1", "shop", "web", "v1", "east"), (first.Destination.Workload, first.Destination.Namespace, first.Destination.App, first.Destination.Version, first.Destination.Cluster));
        Assert.Equal(("web.shop.svc.cluster.local", "web", "shop"), (first.Service.Host, first.Service.Name, first.Service.Namespace));
        var series = first.Get("http", 200, "", "-");
        metrics.Record(series, 3, 0, 0);
        var again = metrics.Outbound(Cluster, Endpoint()).Get("http", 200, "", "-");
        metrics.Record(again, 4, 0, 0);

        Assert.Same(series, again);
        Assert.Equal(2, Assert.Single(metrics.Snapshot()).Requests);
    }

    [Fact]
    public void Inbound_VerifiedIdentityWinsOverThePeerHeader()
    {
        using var metrics = new MeshMetrics(
            new WorkloadLabels("web-v1", "default", "spiffe://cluster.local/ns/default/sa/web", "web", "v1", "Kubernetes"),
            ServiceLabels.FromHost("web.default.svc.cluster.local"), nodeId: null, meterFactory: null);
        var claimed = new WorkloadLabels("front-v1", "prod", "unknown", "front", "v1", "Kubernetes");

        var mtls = metrics.Inbound(claimed, "spiffe://cluster.local/ns/staging/sa/front", "staging");
        Assert.Equal(("spiffe://cluster.local/ns/staging/sa/front", "staging", "front-v1"), (mtls.Source.Principal, mtls.Source.Namespace, mtls.Source.Workload));
        Assert.Equal(("mutual_tls", "spiffe://cluster.local/ns/default/sa/web"), (mtls.SecurityPolicy, mtls.Destination.Principal));

        var plain = metrics.Inbound(claimed, null, null);
        Assert.Equal(("unknown", "prod", "none", "unknown"), (plain.Source.Principal, plain.Source.Namespace, plain.SecurityPolicy, plain.Destination.Principal));

        // Label sets and series are made once and then reused.
        Assert.Same(mtls, metrics.Inbound(claimed, "spiffe://cluster.local/ns/staging/sa/front", "staging"));
        Assert.Same(plain.Get("http", 200, "", "-"), plain.Get("http", 200, "", "-"));
    }
}

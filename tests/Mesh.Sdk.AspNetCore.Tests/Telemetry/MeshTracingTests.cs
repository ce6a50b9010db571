using System.Net.Http.Json;
using System.Text.Json;
using Mesh.Sdk.AspNetCore.Tests.Infrastructure;
using Mesh.Sdk.Telemetry.Tracing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Mesh.Sdk.AspNetCore.Tests.Telemetry;

/// <summary>
/// Traces end to end: real meshed apps (front v1 calling web v1 through <c>IHttpClientFactory</c>, registered with the
/// real control plane), a Zipkin v2 collector registered in the mesh as <c>zipkin.istio-system</c>, and the tracing
/// policy Istio's zipkin provider gives the workloads' HttpConnectionManagers.
/// </summary>
public sealed class MeshTracingTests(ControlPlaneFixture mesh) : IClassFixture<ControlPlaneFixture>
{
    private static readonly HttpClient Client = new() { Timeout = TimeSpan.FromSeconds(20) };

    private static readonly string[] EchoedHeaders =
        ["traceparent", "tracestate", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "b3", "x-request-id"];

    private static TracingPolicy Zipkin(double sampling) => new()
    {
        Provider = TraceProviderKind.Zipkin,
        CollectorHost = ZipkinReceiver.Host,
        CollectorPort = ZipkinReceiver.Port,
        CollectorPath = "/api/v2/spans",
        RandomSampling = sampling,
        CustomTags =
        [
            new CustomTag("team", CustomTagKind.Literal, "blue"),
            new CustomTag("user", CustomTagKind.RequestHeader, "end-user", "anonymous"),
        ],
    };

    private Task<MeshWebApp> StartAsync(string service, string version) => MeshWebApp.StartAsync(mesh, new Dictionary<string, string?>
    {
        ["Mesh:ServiceName"] = service,
        ["Mesh:ServicePort"] = "9080",
        ["Mesh:WorkloadName"] = $"{service}-{version}",
        ["Mesh:Labels:app"] = service,
        ["Mesh:Labels:version"] = version,
    }, app =>
    {
        // web echoes the trace headers it received.
        app.MapGet("/hello", (HttpRequest request) => Results.Json(EchoedHeaders.ToDictionary(h => h, h => request.Headers[h].ToString())));
        app.MapGet("/call", async (IHttpClientFactory factory, CancellationToken cancellationToken) =>
            await factory.CreateClient("mesh").GetStringAsync("http://web:9080/hello", cancellationToken));
    }, builder => builder.Services.AddHttpClient("mesh", c => c.Timeout = TimeSpan.FromSeconds(20)));

    private sealed class Mesh3 : IAsyncDisposable
    {
        public required ZipkinReceiver Zipkin { get; init; }

        public required MeshWebApp Front { get; init; }

        public required MeshWebApp Web { get; init; }

        public MeshTracer FrontTracer => Front.Services.GetRequiredService<MeshTracer>();

        public MeshTracer WebTracer => Web.Services.GetRequiredService<MeshTracer>();

        public void Apply(TracingPolicy? policy)
        {
            FrontTracer.Apply(policy);
            WebTracer.Apply(policy);
        }

        /// <summary>Exports what both workloads have queued; the collector has every span once this returns.</summary>
        public async Task FlushAsync()
        {
            Assert.True(await Task.Run(() => FrontTracer.Export?.Flush(10_000) ?? true), "front's exporter did not flush within 10 s");
            Assert.True(await Task.Run(() => WebTracer.Export?.Flush(10_000) ?? true), "web's exporter did not flush within 10 s");
        }

        /// <summary>
        /// The spans the collector has once it has at least <paramref name="expected"/> (the callee's server span ends
        /// just after its response went out), and half a second later, so that extra spans would show; without the
        /// client spans of attempts that got no response. Those happen when the control plane still lists an endpoint
        /// of an earlier test's web (connection refused, retried): each is checked to be a failed attempt of the same
        /// request, a sibling of the attempt that succeeded.
        /// </summary>
        public async Task<List<ZipkinSpan>> SpansAsync(int expected)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (Zipkin.Spans.Count(s => !s.FailedAttempt) < expected && DateTime.UtcNow < deadline)
            {
                await FlushAsync();
                await Task.Delay(50);
            }

            await Task.Delay(500);
            await FlushAsync();
            var all = Zipkin.Spans.ToList();
            foreach (var failed in all.Where(s => s.FailedAttempt))
            {
                Assert.Equal("UF", failed.Tags["response_flags"]);
                Assert.Equal("true", failed.Tags["error"]);
                Assert.Contains(all, s => s.TraceId == failed.TraceId && s.Kind == "CLIENT" && !s.FailedAttempt && s.ParentId == failed.ParentId);
            }

            return [.. all.Where(s => !s.FailedAttempt)];
        }

        public async Task<Dictionary<string, string>> CallAsync(params (string Name, string Value)[] headers)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(Front.BaseAddress, "/call"));
            foreach (var (name, value) in headers)
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }

            using var response = await Client.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, $"front answered {(int)response.StatusCode}: {body}");
            return JsonSerializer.Deserialize<Dictionary<string, string>>(body)!;
        }

        public async ValueTask DisposeAsync()
        {
            await Front.DisposeAsync();
            await Web.DisposeAsync();
            await Zipkin.DisposeAsync();
        }
    }

    private async Task<Mesh3> StartMeshAsync()
    {
        var zipkin = await ZipkinReceiver.StartAsync(mesh);
        var web = await StartAsync("web", "v1");
        var front = await StartAsync("front", "v1");
        var apps = new Mesh3 { Zipkin = zipkin, Front = front, Web = web };

        // Until front reaches web (untraced: no policy yet).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            using var response = await Client.GetAsync(new Uri(front.BaseAddress, "/call"));
            if (response.IsSuccessStatusCode)
            {
                break;
            }

            Assert.True(DateTime.UtcNow < deadline, $"front never reached web\n{mesh.Dump()}");
            await Task.Delay(100);
        }

        return apps;
    }

    private static string TraceIdOf(string traceparent) => traceparent.Split('-')[1];

    private static string SpanIdOf(string traceparent) => traceparent.Split('-')[2];

    [Fact]
    public async Task FrontCallsWeb_EachCallIsOneTrace_FrontServerAndClientAndWebServerLinkedByParentIds()
    {
        await using var apps = await StartMeshAsync();
        apps.Apply(Zipkin(100));
        const int Calls = 5;
        var received = new List<Dictionary<string, string>>();
        for (var i = 0; i < Calls; i++)
        {
            received.Add(await apps.CallAsync(("end-user", "jason")));
        }

        var spans = await apps.SpansAsync(Calls * 3);
        Assert.True(Calls * 3 == spans.Count, string.Join("\n", spans));
        Assert.Equal(Calls, spans.Select(s => s.TraceId).Distinct().Count());
        foreach (var headers in received)
        {
            var traceId = TraceIdOf(headers["traceparent"]);
            Assert.Equal(traceId, headers["x-b3-traceid"]);
            Assert.Equal("1", headers["x-b3-sampled"]);
            Assert.EndsWith("-01", headers["traceparent"]);
            Assert.Equal(string.Empty, headers["b3"]);

            var trace = spans.Where(s => s.TraceId == traceId).ToList();
            Assert.Equal(3, trace.Count);
            var frontServer = Assert.Single(trace, s => s.ServiceName == "front.default" && s.Kind == "SERVER");
            var frontClient = Assert.Single(trace, s => s.ServiceName == "front.default" && s.Kind == "CLIENT");
            var webServer = Assert.Single(trace, s => s.ServiceName == "web.default" && s.Kind == "SERVER");

            // The chain: front's server span is the root, its client span its child, web's server span the client's child.
            Assert.Null(frontServer.ParentId);
            Assert.Equal(frontServer.Id, frontClient.ParentId);
            Assert.Equal(frontClient.Id, webServer.ParentId);

            // What web received names front's client span, in both formats.
            Assert.Equal(frontClient.Id, SpanIdOf(headers["traceparent"]));
            Assert.Equal(frontClient.Id, headers["x-b3-spanid"]);
            Assert.Equal(frontServer.Id, headers["x-b3-parentspanid"]);

            // Names and tags as Istio's sidecars write them.
            Assert.Equal("front.default.svc.cluster.local:9080/*", frontServer.Name);
            Assert.Equal("web.default.svc.cluster.local:9080/*", frontClient.Name);
            Assert.Equal("web.default.svc.cluster.local:9080/*", webServer.Name);
            Assert.Equal("proxy", frontClient.Tags["component"]);
            Assert.Equal("GET", frontClient.Tags["http.method"]);
            Assert.Equal("200", frontClient.Tags["http.status_code"]);
            Assert.Equal("http://web:9080/hello", frontClient.Tags["http.url"]);
            Assert.Equal("outbound|9080||web.default.svc.cluster.local", frontClient.Tags["upstream_cluster"]);
            Assert.Equal("-", frontClient.Tags["response_flags"]);
            Assert.Equal("front", frontClient.Tags["istio.canonical_service"]);
            Assert.Equal("v1", frontClient.Tags["istio.canonical_revision"]);
            Assert.Equal("default", frontClient.Tags["istio.namespace"]);
            Assert.Equal(headers["x-request-id"], frontClient.Tags["guid:x-request-id"]);
            Assert.Equal(headers["x-request-id"], webServer.Tags["guid:x-request-id"]);
            Assert.Equal(headers["x-request-id"], frontServer.Tags["guid:x-request-id"]);
            Assert.Equal("web", webServer.Tags["istio.canonical_service"]);
            Assert.Equal("127.0.0.1", webServer.Tags["peer.address"]);
            Assert.Equal("200", webServer.Tags["http.status_code"]);
            Assert.EndsWith("/hello", webServer.Tags["http.url"]);
            Assert.Equal("blue", webServer.Tags["team"]);
            Assert.Equal("jason", frontServer.Tags["user"]);
            Assert.Equal("jason", frontClient.Tags["user"]);
            Assert.Equal("jason", webServer.Tags["user"]);
        }
    }

    [Fact]
    public async Task InboundB3MultiHeaderOrSingleOrW3C_IsContinued_AndXRequestIdKept()
    {
        await using var apps = await StartMeshAsync();
        apps.Apply(Zipkin(100));

        // B3 multi-header only.
        const string MultiTrace = "463ac35c9f6413ad48485a3953bb6124";
        const string MultiSpan = "a2fb4a1d1a96d312";
        var multi = await apps.CallAsync(("x-b3-traceid", MultiTrace), ("x-b3-spanid", MultiSpan), ("x-b3-sampled", "1"), ("x-request-id", "req-multi"));

        // B3 single header only, with a 64-bit trace id (Zipkin pads it to 128 bits).
        const string SingleTrace = "80f198ee56343ba8";
        const string SingleSpan = "e457b5a2e4d86bd1";
        var single = await apps.CallAsync(("b3", $"{SingleTrace}-{SingleSpan}-1"));

        // W3C only.
        const string W3cTrace = "0af7651916cd43dd8448eb211c80319c";
        const string W3cSpan = "b7ad6b7169203331";
        var w3c = await apps.CallAsync(("traceparent", $"00-{W3cTrace}-{W3cSpan}-01"));

        // Both, disagreeing: traceparent wins.
        var both = await apps.CallAsync(("traceparent", $"00-{W3cTrace}-{W3cSpan}-01"), ("x-b3-traceid", MultiTrace), ("x-b3-spanid", MultiSpan));

        var spans = await apps.SpansAsync(4 * 3);
        Assert.Equal(4 * 3, spans.Count);
        foreach (var (headers, trace, parent) in new[]
        {
            (multi, MultiTrace, MultiSpan),
            (single, "0000000000000000" + SingleTrace, SingleSpan),
            (w3c, W3cTrace, W3cSpan),
            (both, W3cTrace, W3cSpan),
        })
        {
            Assert.Equal(trace, TraceIdOf(headers["traceparent"]));
            Assert.Equal(trace, headers["x-b3-traceid"]);
            var frontServer = Assert.Single(spans, s => s.ServiceName == "front.default" && s.Kind == "SERVER" && s.ParentId == parent && s.Tags["guid:x-request-id"] == headers["x-request-id"]);
            Assert.Equal(trace, frontServer.TraceId);
        }

        Assert.Equal("req-multi", multi["x-request-id"]);
        Assert.True(Guid.TryParse(single["x-request-id"], out _), $"x-request-id generated at the first hop: '{single["x-request-id"]}'");
    }

    [Fact]
    public async Task Sampling_ZeroExportsNothing_HundredExportsEverything_IncomingDecisionHonoured()
    {
        await using var apps = await StartMeshAsync();
        const int Calls = 10;

        apps.Apply(Zipkin(0));
        for (var i = 0; i < Calls; i++)
        {
            var headers = await apps.CallAsync();

            // Not sampled, but the context still travels, with the decision.
            Assert.Equal("0", headers["x-b3-sampled"]);
            Assert.EndsWith("-00", headers["traceparent"]);
            Assert.Equal(TraceIdOf(headers["traceparent"]), headers["x-b3-traceid"]);
        }

        Assert.Empty(await apps.SpansAsync(0));

        // An incoming sampled flag is honoured even at 0 %.
        var forced = await apps.CallAsync(("x-b3-sampled", "1"));
        Assert.Equal("1", forced["x-b3-sampled"]);
        Assert.Equal(3, (await apps.SpansAsync(3)).Count);
        Assert.All(apps.Zipkin.Spans, s => Assert.Equal(TraceIdOf(forced["traceparent"]), s.TraceId));
        apps.Zipkin.Clear();

        // Changed live: 100 %.
        var exporter = apps.FrontTracer.Export;
        apps.Apply(Zipkin(100));
        Assert.Same(exporter, apps.FrontTracer.Export);
        for (var i = 0; i < Calls; i++)
        {
            await apps.CallAsync();
        }

        Assert.Equal(Calls * 3, (await apps.SpansAsync(Calls * 3)).Count);
        Assert.Equal(Calls, apps.Zipkin.Spans.Select(s => s.TraceId).Distinct().Count());

        // Off: no spans, and trace headers are only forwarded as they came.
        apps.Zipkin.Clear();
        apps.Apply(null);
        var off = await apps.CallAsync();
        Assert.Equal(string.Empty, off["x-b3-traceid"]);
        Assert.Empty(await apps.SpansAsync(0));
    }
}

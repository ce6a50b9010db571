using System.Diagnostics;
using System.Globalization;
using Mesh.EndToEnd.Tests.Infrastructure;
using Mesh.Testing;

namespace Mesh.EndToEnd.Tests;

/// <summary>
/// Telemetry as a user runs it: the standalone control plane (<c>--config DIR --monitoring-port 0</c>) and three
/// meshed apps with only <c>builder.AddMesh()</c> (front v1 calling web v1 and v2 through <c>IHttpClientFactory</c>),
/// every option from <c>Mesh__*</c> variables. Traces go to a Zipkin v2 receiver configured only through Istio's mesh
/// config (an <c>extensionProviders</c> entry) and a root-namespace <c>Telemetry</c> resource at 100 % sampling.
/// </summary>
public sealed class TelemetryEndToEndTests : IAsyncLifetime
{
    private const int Calls = 20;

    private const string MeshConfig = """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: istio
          namespace: istio-system
        data:
          mesh: |-
            extensionProviders:
            - name: zipkin
              zipkin:
                service: zipkin.istio-system.svc.cluster.local
                port: 9411
        """;

    private const string Telemetry = """
        apiVersion: telemetry.istio.io/v1
        kind: Telemetry
        metadata:
          name: mesh-default
          namespace: istio-system
        spec:
          tracing:
          - providers:
            - name: zipkin
            randomSamplingPercentage: 100
        """;

    private static readonly string[] IstioLabels =
    [
        "reporter", "source_workload", "source_workload_namespace", "source_principal", "source_app", "source_version",
        "source_cluster", "destination_workload", "destination_workload_namespace", "destination_principal",
        "destination_app", "destination_version", "destination_service", "destination_service_name",
        "destination_service_namespace", "destination_cluster", "request_protocol", "response_code",
        "grpc_response_status", "response_flags", "connection_security_policy",
    ];

    private readonly ProcessGroup _processes = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(20) };
    private ZipkinReceiver _zipkin = null!;
    private int _monitoringPort;
    private int _frontPort;
    private int _webV1Port;
    private int _webV2Port;

    public async Task InitializeAsync()
    {
        _zipkin = await ZipkinReceiver.StartAsync();
        await _processes.WriteConfigAsync("mesh.yaml", MeshConfig);
        await _processes.WriteConfigAsync("telemetry.yaml", Telemetry);
        await _processes.WriteConfigAsync("zipkin.yaml", $$"""
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata:
              name: zipkin
              namespace: istio-system
            spec:
              hosts: [zipkin.istio-system.svc.cluster.local]
              location: MESH_INTERNAL
              ports: [{number: 9411, name: http, protocol: HTTP}]
              resolution: STATIC
              endpoints:
              - address: 127.0.0.1
                ports:
                  http: {{_zipkin.Port}}
            """);
        var controlPlane = await _processes.StartControlPlaneAsync("--monitoring-port", "0");
        var monitoring = await controlPlane.WaitForLineAsync(@"Monitoring listening on .* \(port (\d+)\)", ProcessGroup.StartTimeout);
        _monitoringPort = int.Parse(monitoring.Groups[1].Value, CultureInfo.InvariantCulture);

        var front = StartApp("front", "front", "v1");
        var webV1 = StartApp("web-v1", "web", "v1");
        var webV2 = StartApp("web-v2", "web", "v2");
        _frontPort = await front.WaitForListeningPortAsync(ProcessGroup.StartTimeout);
        _webV1Port = await webV1.WaitForListeningPortAsync(ProcessGroup.StartTimeout);
        _webV2Port = await webV2.WaitForListeningPortAsync(ProcessGroup.StartTimeout);
    }

    [Fact]
    public async Task MetricsTracesAndGraph_ForFrontCallingWebV1AndV2()
    {
        // Both versions of web registered and reached through front.
        var seen = new HashSet<string>();
        var clock = Stopwatch.StartNew();
        while (seen.Count < 2 && clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            var answer = await CallAsync("http://web:8080/");
            if (answer.StartsWith("200 ", StringComparison.Ordinal))
            {
                seen.Add(answer);
            }
            else
            {
                await Task.Delay(250);
            }
        }

        Assert.True(seen.Count == 2, $"front never reached both versions of web within 30 s: {string.Join(", ", seen)}\n{_processes.Logs()}");

        var frontBefore = await RequestsAsync(_frontPort, "source");
        var webBefore = (await RequestsAsync(_webV1Port, "destination")) + (await RequestsAsync(_webV2Port, "destination"));
        var frontDurationBefore = await CountOfAsync(_frontPort, "istio_request_duration_milliseconds_count", "source");

        // N calls, each echoing the trace headers web received.
        var traces = new List<(string TraceId, string B3TraceId, string ParentSpanId)>();
        for (var i = 0; i < Calls; i++)
        {
            var answer = await CallAsync("http://web:8080/trace-headers");
            Assert.StartsWith("200 ", answer);
            var headers = answer[4..].Split('\n').Select(static l => l.Split('=', 2)).ToDictionary(static p => p[0], static p => p[1]);
            var traceparent = headers["traceparent"].Split('-');
            Assert.Equal(4, traceparent.Length);
            traces.Add((traceparent[1], headers["x-b3-traceid"], traceparent[2]));
            Assert.Equal(traceparent[2], headers["x-b3-spanid"]);
            Assert.False(string.IsNullOrEmpty(headers["x-request-id"]), "web received no x-request-id");
        }

        // Metrics: exactly N more source-reported by front, over both versions; N more destination-reported by web.
        var frontAfter = await RequestsAsync(_frontPort, "source");
        Assert.Equal(Calls, frontAfter - frontBefore);
        var frontSamples = await SamplesAsync(_frontPort);
        var toWeb = frontSamples.Where(static s => s.Name == "istio_requests_total" && s["reporter"] == "source" && s["destination_service_name"] == "web").ToList();
        Assert.Equal(["v1", "v2"], toWeb.Select(static s => s["destination_version"]).Distinct().Order());
        foreach (var sample in toWeb)
        {
            Assert.All(IstioLabels, label => Assert.True(sample.Labels.ContainsKey(label), $"front's series has no {label}"));
            Assert.Equal("front", sample["source_app"]);
            Assert.Equal("web.default.svc.cluster.local", sample["destination_service"]);
        }

        Assert.Equal(Calls, await CountOfAsync(_frontPort, "istio_request_duration_milliseconds_count", "source") - frontDurationBefore);
        var webAfter = (await RequestsAsync(_webV1Port, "destination")) + (await RequestsAsync(_webV2Port, "destination"));
        Assert.Equal(Calls, webAfter - webBefore);
        foreach (var port in new[] { _webV1Port, _webV2Port })
        {
            var fromFront = (await SamplesAsync(port)).Where(static s => s.Name == "istio_requests_total" && s["reporter"] == "destination").ToList();
            Assert.NotEmpty(fromFront);
            Assert.All(fromFront, static s => Assert.Equal("front", s["source_app"]));
            Assert.All(fromFront, static s => Assert.All(IstioLabels, label => Assert.True(s.Labels.ContainsKey(label), $"web's series has no {label}")));
        }

        // Traces: for each call one trace: front's server span, its client span under it, web's server span under that.
        foreach (var (traceId, b3TraceId, clientSpanId) in traces)
        {
            Assert.Equal(traceId, b3TraceId);
            var spans = await SpansOfAsync(traceId, 3);
            Assert.True(spans.Count == 3, $"trace {traceId} has {spans.Count} spans, not 3: {string.Join("; ", spans)}\n{_processes.Logs()}");
            var frontServer = Assert.Single(spans, static s => s.Kind == "SERVER" && s.ServiceName == "front.default");
            var frontClient = Assert.Single(spans, static s => s.Kind == "CLIENT" && s.ServiceName == "front.default");
            var webServer = Assert.Single(spans, static s => s.Kind == "SERVER" && s.ServiceName == "web.default");
            Assert.Null(frontServer.ParentId);
            Assert.Equal(frontServer.Id, frontClient.ParentId);
            Assert.Equal(clientSpanId, frontClient.Id);
            Assert.Equal(frontClient.Id, webServer.ParentId);
        }

        Assert.Equal(0, _zipkin.BadRequests);

        // The exporter's calls to the collector are not the app's traffic: not counted, as Envoy's tracer cluster is not.
        Assert.DoesNotContain(await SamplesAsync(_frontPort), static s => s.Name == "istio_requests_total" && s["destination_service_name"] == "zipkin");

        // The service graph shows the edge.
        var dot = "";
        clock.Restart();
        while (!dot.Contains("\"front\" -> \"web\"", StringComparison.Ordinal) && clock.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(500);
            dot = await _http.GetStringAsync($"http://127.0.0.1:{_monitoringPort}/dotviz");
        }

        Assert.True(dot.Contains("\"front\" -> \"web\"", StringComparison.Ordinal), dot);
    }

    private DotnetProcess StartApp(string workload, string service, string version) => _processes.StartApp(workload, Paths.TestServer, new Dictionary<string, string>
    {
        ["Mesh__ServiceName"] = service,
        ["Mesh__ServicePort"] = "8080",
        ["Mesh__WorkloadName"] = workload,
        ["Mesh__ServiceAccount"] = workload,
        ["Mesh__Labels__app"] = service,
        ["Mesh__Labels__version"] = version,
    });

    private async Task<string> CallAsync(string url)
    {
        using var response = await _http.GetAsync($"http://127.0.0.1:{_frontPort}/call?url={Uri.EscapeDataString(url)}");
        return await response.Content.ReadAsStringAsync();
    }

    private async Task<IReadOnlyList<PrometheusSample>> SamplesAsync(int port) =>
        PrometheusSamples.Parse(await _http.GetStringAsync($"http://127.0.0.1:{port}/metrics"));

    private async Task<double> RequestsAsync(int port, string reporter) => await CountOfAsync(port, "istio_requests_total", reporter);

    private async Task<double> CountOfAsync(int port, string metric, string reporter) =>
        (await SamplesAsync(port)).Where(s => s.Name == metric && s["reporter"] == reporter && (reporter == "destination" || s["destination_service_name"] == "web")).Sum(static s => s.Value);

    private async Task<IReadOnlyList<ZipkinSpan>> SpansOfAsync(string traceId, int expected)
    {
        var clock = Stopwatch.StartNew();
        IReadOnlyList<ZipkinSpan> spans;
        do
        {
            spans = _zipkin.Spans.Where(s => s.TraceId == traceId).ToList();
            if (spans.Count >= expected)
            {
                // A little longer: a fourth span would be a duplicate.
                await Task.Delay(100);
                return _zipkin.Spans.Where(s => s.TraceId == traceId).ToList();
            }

            await Task.Delay(100);
        }
        while (clock.Elapsed < TimeSpan.FromSeconds(15));

        return spans;
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _processes.DisposeAsync();
        await _zipkin.DisposeAsync();
    }
}

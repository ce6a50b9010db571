using System.Text.Json;
using System.Text.RegularExpressions;
using Mesh.Sdk.AspNetCore.Tests.Infrastructure;
using Mesh.Sdk.Telemetry.AccessLog;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Mesh.Sdk.AspNetCore.Tests.Telemetry;

/// <summary>Access log lines of a real meshed app for requests over loopback, in Istio's default text format and in JSON.</summary>
public sealed class MeshAccessLogTests(ControlPlaneFixture mesh) : IClassFixture<ControlPlaneFixture>
{
    [Fact]
    public async Task InboundRequest_WritesOneLinePerLogger_IstioTextAndJson_UnknownOperatorAsDash()
    {
        var folder = Directory.CreateTempSubdirectory("mesh-accesslog-").FullName;
        try
        {
            await using var web = await MeshWebApp.StartAsync(mesh, new Dictionary<string, string?>
            {
                ["Mesh:ServiceName"] = "web",
                ["Mesh:ServicePort"] = "9080",
                ["Mesh:Labels:app"] = "web",
            }, app => app.MapGet("/hello", (HttpResponse response) =>
            {
                response.Headers["x-envoy-upstream-service-time"] = "3";
                response.ContentLength = 5;
                return response.WriteAsync("hello");
            }));

            var text = Path.Combine(folder, "text.log");
            var json = Path.Combine(folder, "json.log");
            var log = web.Services.GetRequiredService<MeshAccessLog>();
            log.Apply(
            [
                new AccessLogSink(text, AccessLogFormat.Text(AccessLogFormat.IstioDefault.TrimEnd('\n') + " %NOT_AN_OPERATOR%\n")),
                new AccessLogSink(json, AccessLogFormat.Json(
                    [
                        new("method", "%REQ(:METHOD)%"), new("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"), new("code", "%RESPONSE_CODE%"),
                        new("sent", "%BYTES_SENT%"), new("id", "%REQ(X-REQUEST-ID)%"), new("agent", "%REQ(USER-AGENT):3%"), new("missing", "%REQ(X-NONE)%"),
                    ],
                    omitEmpty: false)),
            ]);

            using var client = new HttpClient();
            for (var i = 0; i < 2; i++)
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(web.BaseAddress, $"/hello?n={i}"));
                request.Headers.TryAddWithoutValidation("x-request-id", $"req-{i}");
                request.Headers.TryAddWithoutValidation("user-agent", "curl/8.0");
                using var response = await client.SendAsync(request);
                Assert.Equal("hello", await response.Content.ReadAsStringAsync());
            }

            // A line is written when the request's pipeline has finished, which may be just after the client has the response.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
            while ((!File.Exists(text) || File.ReadAllLines(text).Length < 2 || !File.Exists(json) || File.ReadAllLines(json).Length < 2) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(20);
            }

            var lines = await File.ReadAllLinesAsync(text);
            Assert.Equal(2, lines.Length);
            var port = web.Port;
            var pattern = new Regex(
                @"^\[(?<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\] ""GET /hello\?n=0 HTTP/1\.1"" 200 - - - ""-"" 0 5 (?<duration>\d+) 3 ""-"" ""curl/8\.0"" ""req-0"" "
                + $@"""127\.0\.0\.1:{port}"" ""127\.0\.0\.1:{port}"" inbound\|{port}\|\| - 127\.0\.0\.1:{port} 127\.0\.0\.1:\d+ - default -$");
            Assert.Matches(pattern, lines[0]);
            var time = DateTimeOffset.Parse(pattern.Match(lines[0]).Groups["time"].Value, System.Globalization.CultureInfo.InvariantCulture);
            Assert.InRange(DateTimeOffset.UtcNow - time, TimeSpan.Zero, TimeSpan.FromMinutes(1));
            Assert.Contains("\"req-1\"", lines[1], StringComparison.Ordinal);

            var records = (await File.ReadAllLinesAsync(json)).Select(l => JsonDocument.Parse(l).RootElement).ToList();
            Assert.Equal(2, records.Count);
            Assert.Equal("GET", records[1].GetProperty("method").GetString());
            Assert.Equal("/hello?n=1", records[1].GetProperty("path").GetString());
            Assert.Equal(200, records[1].GetProperty("code").GetInt32());
            Assert.Equal(5, records[1].GetProperty("sent").GetInt32());
            Assert.Equal("req-1", records[1].GetProperty("id").GetString());
            Assert.Equal("cur", records[1].GetProperty("agent").GetString());
            Assert.Equal(JsonValueKind.Null, records[1].GetProperty("missing").ValueKind);

            // The unknown operator is known as such (reported when the format is applied) and written as '-' (the line's end).
            Assert.Equal(["NOT_AN_OPERATOR"], AccessLogFormat.Text("%REQ(:METHOD)% %NOT_AN_OPERATOR%").Unknown);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}

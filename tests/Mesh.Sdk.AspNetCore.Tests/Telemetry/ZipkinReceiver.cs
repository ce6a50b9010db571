using System.Collections.Concurrent;
using System.Text.Json;
using Mesh.Sdk.AspNetCore.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Mesh.Sdk.AspNetCore.Tests.Telemetry;

/// <summary>One span as a Zipkin v2 collector receives it.</summary>
internal sealed record ZipkinSpan(string TraceId, string Id, string? ParentId, string Name, string Kind, string ServiceName, IReadOnlyDictionary<string, string> Tags)
{
    /// <summary>A client span of an attempt that got no response (a retried connection failure, say).</summary>
    public bool FailedAttempt => Kind == "CLIENT" && Tags.GetValueOrDefault("http.status_code") == "0";

    public override string ToString()
        => $"{Kind} {ServiceName} {Name} trace {TraceId} id {Id} parent {ParentId} [{string.Join(", ", Tags.Select(t => $"{t.Key}={t.Value}"))}]";
}

/// <summary>
/// A Zipkin v2 collector: a real Kestrel app answering <c>POST /api/v2/spans</c> (a JSON array of spans), registered in
/// the mesh as <c>zipkin.istio-system</c> port 9411 like Istio's Zipkin add-on, so exporters reach it by that name.
/// </summary>
internal sealed class ZipkinReceiver : IAsyncDisposable
{
    private readonly ConcurrentQueue<ZipkinSpan> _spans = new();
    private MeshWebApp _app = null!;

    public const string Host = "zipkin.istio-system.svc.cluster.local";

    public const int Port = 9411;

    public IReadOnlyCollection<ZipkinSpan> Spans => _spans;

    public int Posts;

    public static async Task<ZipkinReceiver> StartAsync(ControlPlaneFixture mesh)
    {
        var receiver = new ZipkinReceiver();
        receiver._app = await MeshWebApp.StartAsync(mesh, new Dictionary<string, string?>
        {
            ["Mesh:ServiceName"] = "zipkin",
            ["Mesh:Namespace"] = "istio-system",
            ["Mesh:ServicePort"] = Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Mesh:Labels:app"] = "zipkin",
        }, app => app.MapPost("/api/v2/spans", async (HttpRequest request) =>
        {
            using var json = await JsonDocument.ParseAsync(request.Body);
            Interlocked.Increment(ref receiver.Posts);
            foreach (var span in json.RootElement.EnumerateArray())
            {
                var tags = new Dictionary<string, string>();
                if (span.TryGetProperty("tags", out var t))
                {
                    foreach (var tag in t.EnumerateObject())
                    {
                        tags[tag.Name] = tag.Value.ToString();
                    }
                }

                receiver._spans.Enqueue(new ZipkinSpan(
                    span.GetProperty("traceId").GetString()!,
                    span.GetProperty("id").GetString()!,
                    span.TryGetProperty("parentId", out var p) ? p.GetString() : null,
                    span.GetProperty("name").GetString()!,
                    span.TryGetProperty("kind", out var k) ? k.GetString()! : string.Empty,
                    span.GetProperty("localEndpoint").GetProperty("serviceName").GetString()!,
                    tags));
            }

            return Results.Accepted();
        }));
        return receiver;
    }

    public void Clear() => _spans.Clear();

    public ValueTask DisposeAsync() => _app.DisposeAsync();
}

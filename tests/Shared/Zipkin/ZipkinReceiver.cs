using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Mesh.Testing;

/// <summary>One span as a Zipkin v2 collector receives it.</summary>
internal sealed record ZipkinSpan(string TraceId, string Id, string? ParentId, string Kind, string Name, string ServiceName, IReadOnlyDictionary<string, string> Tags);

/// <summary>
/// A Zipkin v2 collector on 127.0.0.1 (the stand-in for a Zipkin server): <c>POST /api/v2/spans</c> with a JSON array
/// of spans, kept for the test to read. Anything else is answered 404 and counted as a bad request.
/// </summary>
internal sealed class ZipkinReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<ZipkinSpan> _spans = new();
    private int _badRequests;

    private ZipkinReceiver(WebApplication app) => _app = app;

    public int Port { get; private set; }

    public IReadOnlyList<ZipkinSpan> Spans => [.. _spans];

    public int BadRequests => _badRequests;

    public static async Task<ZipkinReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var receiver = new ZipkinReceiver(app);
        app.MapPost("/api/v2/spans", (Delegate)receiver.ReceiveAsync);
        app.MapFallback(context =>
        {
            Interlocked.Increment(ref receiver._badRequests);
            context.Response.StatusCode = 404;
            return Task.CompletedTask;
        });
        await app.StartAsync();
        receiver.Port = new Uri(app.Urls.First()).Port;
        return receiver;
    }

    private async Task<IResult> ReceiveAsync(HttpContext context)
    {
        using var document = await JsonDocument.ParseAsync(context.Request.Body);
        foreach (var span in document.RootElement.EnumerateArray())
        {
            var tags = new Dictionary<string, string>();
            if (span.TryGetProperty("tags", out var tagElement))
            {
                foreach (var tag in tagElement.EnumerateObject())
                {
                    tags[tag.Name] = tag.Value.GetString() ?? "";
                }
            }

            _spans.Enqueue(new ZipkinSpan(
                span.GetProperty("traceId").GetString()!,
                span.GetProperty("id").GetString()!,
                span.TryGetProperty("parentId", out var parent) ? parent.GetString() : null,
                span.TryGetProperty("kind", out var kind) ? kind.GetString()! : "",
                span.TryGetProperty("name", out var name) ? name.GetString()! : "",
                span.TryGetProperty("localEndpoint", out var local) && local.TryGetProperty("serviceName", out var service) ? service.GetString()! : "",
                tags));
        }

        return Results.Accepted();
    }

    public ValueTask DisposeAsync() => _app.DisposeAsync();
}

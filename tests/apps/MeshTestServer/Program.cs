var builder = WebApplication.CreateBuilder(args);
builder.AddMesh();
builder.Services.AddHttpClient("mesh");
var app = builder.Build();

// GET /call?url=http://web:8080/x makes that call through the mesh (a meshed app calling another) and answers
// "<status> <body>", or 502 with the error when the call failed before a response.
app.MapGet("/call", async (string url, IHttpClientFactory clients, CancellationToken cancellationToken) =>
{
    try
    {
        using var response = await clients.CreateClient("mesh").GetAsync(url, cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        return Results.Text($"{(int)response.StatusCode} {body}");
    }
    catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
    {
        return Results.Text($"error {ex.GetType().Name}: {ex.Message}", statusCode: 502);
    }
});

// GET /trace-headers answers the trace context headers this request arrived with, one "name=value" per line.
app.MapGet("/trace-headers", (HttpContext context) => string.Join('\n',
    new[] { "traceparent", "x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "x-request-id" }
        .Select(name => $"{name}={context.Request.Headers[name]}")));

// Every other path answers with the path and the protocol, so a test sees which request arrived and how.
app.MapGet("/{**path}", (HttpContext context) => $"{Environment.GetEnvironmentVariable("Mesh__ServiceAccount")} {context.Request.Path} {context.Request.Protocol}");
app.Run();

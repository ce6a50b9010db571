var builder = WebApplication.CreateBuilder(args);
builder.Services.AddMesh();
builder.Services.AddHttpClient("mesh");
var app = builder.Build();

// GET /call?url=http://web:8080/x makes that call through the mesh and answers "<status> <body>", or 502 with the
// error when the call failed before a response.
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
app.Run();

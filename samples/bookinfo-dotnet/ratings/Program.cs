using System.Collections.Concurrent;
using System.Globalization;
using Bookinfo.Shared;

// Bookinfo's ratings service: the stars each reviewer gave a book. Reviews v2 and v3 call it as
// http://ratings:9080; the mesh maps that to this process.
var builder = WebApplication.CreateBuilder(args);
builder.AddMesh();
builder.Services.AddHostedService<LauncherWatch>();
var app = builder.Build();
app.UseCallerIdentityHeader();

// Product id -> reviewer -> stars. Every product starts with the original's two ratings.
var ratings = new ConcurrentDictionary<int, IReadOnlyDictionary<string, int>>();

app.MapGet("/health", () => Results.Json(new { status = "Ratings is healthy" }));

app.MapGet("/ratings/{id}", (string id) =>
{
    if (!int.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var productId))
    {
        return Results.Json(new { error = "please provide numeric product ID" }, statusCode: 400);
    }

    var stars = ratings.GetValueOrDefault(productId) ?? DefaultRatings();
    return Results.Json(new { id = productId, ratings = stars });
});

app.MapPost("/ratings/{id}", (string id, Dictionary<string, int>? body) =>
{
    if (!int.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var productId))
    {
        return Results.Json(new { error = "please provide numeric product ID" }, statusCode: 400);
    }

    if (body is null || body.Count == 0 || body.Values.Any(static s => s is < 1 or > 5))
    {
        return Results.Json(new { error = "please provide valid ratings JSON: reviewer names mapped to 1 to 5 stars" }, statusCode: 400);
    }

    ratings[productId] = body;
    return Results.Json(new { id = productId, ratings = body });
});

app.Run();

static Dictionary<string, int> DefaultRatings() => new(StringComparer.Ordinal) { ["Reviewer1"] = 5, ["Reviewer2"] = 4 };

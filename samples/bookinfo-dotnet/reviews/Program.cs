using System.Globalization;
using Bookinfo.Reviews;
using Bookinfo.Shared;

// Bookinfo's reviews service, one program for the three versions (configuration key Bookinfo:Version):
// v1 shows no ratings, v2 black stars, v3 red stars. v2 and v3 ask the ratings service, http://ratings:9080,
// through a client the mesh routes. builder.AddMesh() carries the incoming request's end-user, x-request-id
// and tracing headers on to that call, so routing rules on end-user hold at this hop too.
var builder = WebApplication.CreateBuilder(args);
builder.AddMesh();
var settings = ReviewsSettings.From(builder.Configuration);
builder.Services.AddSingleton(settings);
builder.Services.AddHttpClient<RatingsClient>(client =>
{
    client.BaseAddress = new Uri("http://ratings:9080");
    client.Timeout = settings.RatingsTimeout;
});
builder.Services.AddHostedService<LauncherWatch>();
var app = builder.Build();
app.UseCallerIdentityHeader();

app.MapGet("/health", () => Results.Json(new { status = "Reviews is healthy" }));

app.MapGet("/reviews/{id}", async (string id, RatingsClient ratingsClient, HttpContext context, CancellationToken cancellationToken) =>
{
    if (!int.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var productId))
    {
        return Results.Json(new { error = "please provide numeric product id" }, statusCode: 400);
    }

    IReadOnlyDictionary<string, int>? stars = null;
    if (settings.RatingsEnabled)
    {
        var answer = await ratingsClient.GetRatingsAsync(productId, cancellationToken);
        stars = answer.Stars;
        // Productpage shows who ratings saw this call come from, or why it refused it.
        RatingsClient.Describe(answer, context.Response.Headers);
    }

    return Results.Json(ReviewsResponse.Create(productId, settings, stars));
});

app.Run();

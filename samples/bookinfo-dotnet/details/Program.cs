using System.Globalization;
using Bookinfo.Shared;

// Bookinfo's details service: the book's type, pages, publisher, language and ISBNs. Productpage calls it as
// http://details:9080; the mesh maps that to this process.
var builder = WebApplication.CreateBuilder(args);
builder.AddMesh();
builder.Services.AddHostedService<LauncherWatch>();
var app = builder.Build();
app.UseCallerIdentityHeader();

app.MapGet("/health", () => Results.Json(new { status = "Details is healthy" }));

app.MapGet("/details/{id}", (string id) =>
{
    if (!int.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var productId))
    {
        return Results.Json(new { error = "please provide numeric product id" }, statusCode: 400);
    }

    // One book, as in the original: every id answers with it.
    return Results.Json(new Dictionary<string, object>
    {
        ["id"] = productId,
        ["author"] = "William Shakespeare",
        ["year"] = 1595,
        ["type"] = "paperback",
        ["pages"] = 200,
        ["publisher"] = "PublisherA",
        ["language"] = "English",
        ["ISBN-10"] = "1234567890",
        ["ISBN-13"] = "123-1234567890",
    });
});

app.Run();

using System.Globalization;
using Bookinfo.ProductPage;
using Bookinfo.Shared;

// Bookinfo's product page: the book, its details (from details) and its reviews (from reviews, which asks
// ratings), as a server-rendered page and a JSON API. Upstreams are addressed by service name only
// (http://details:9080, http://reviews:9080, http://ratings:9080); the mesh routes every call.
var builder = WebApplication.CreateBuilder(args);
builder.AddMesh();
foreach (var upstream in Upstreams.All)
{
    builder.Services.AddHttpClient(upstream.Name, client =>
    {
        client.BaseAddress = upstream.BaseAddress;
        client.Timeout = Upstreams.Timeout;
    });
}

builder.Services.AddSingleton<Upstreams>();
builder.Services.AddHostedService<LauncherWatch>();
var app = builder.Build();
app.UseCallerIdentityHeader();

app.MapGet("/", () => Results.Content(Page.Index(), "text/html; charset=utf-8"));
app.MapGet("/index.html", () => Results.Content(Page.Index(), "text/html; charset=utf-8"));
app.MapGet("/health", () => Results.Text("Product page is healthy"));

app.MapPost("/login", async (HttpContext context) =>
{
    var form = await context.Request.ReadFormAsync(context.RequestAborted);
    var user = form["username"].ToString().Trim();
    if (user.Length > 0)
    {
        context.Response.Cookies.Append(SignIn.CookieName, user, new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Lax, Path = "/" });
    }

    return Results.Redirect(SignIn.BackTo(context.Request));
});

app.MapGet("/logout", (HttpContext context) =>
{
    context.Response.Cookies.Delete(SignIn.CookieName, new CookieOptions { Path = "/" });
    return Results.Redirect(SignIn.BackTo(context.Request));
});

app.MapGet("/productpage", async (HttpContext context, Upstreams upstreams) =>
{
    const int productId = 0;
    var user = SignIn.UserOf(context.Request);
    var cancellationToken = context.RequestAborted;
    var details = upstreams.GetDetailsAsync(productId, user, cancellationToken);
    var reviews = upstreams.GetReviewsAsync(productId, user, cancellationToken);
    var html = Page.ProductPage(Products.All[productId], user, await details, await reviews);
    return Results.Content(html, "text/html; charset=utf-8");
});

app.MapGet("/api/v1/products", () => Results.Json(Products.All));

app.MapGet("/api/v1/products/{id}", async (string id, HttpContext context, Upstreams upstreams) =>
    ToJson(await upstreams.GetDetailsAsync(ParseId(id), SignIn.UserOf(context.Request), context.RequestAborted)));

app.MapGet("/api/v1/products/{id}/reviews", async (string id, HttpContext context, Upstreams upstreams) =>
    ToJson(await upstreams.GetReviewsAsync(ParseId(id), SignIn.UserOf(context.Request), context.RequestAborted)));

app.MapGet("/api/v1/products/{id}/ratings", async (string id, HttpContext context, Upstreams upstreams) =>
    ToJson(await upstreams.GetRatingsAsync(ParseId(id), SignIn.UserOf(context.Request), context.RequestAborted)));

app.Run();

// The original passes the id on as written; a non-numeric id goes upstream as is and gets the upstream's 400.
static string ParseId(string id) => int.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var n)
    ? n.ToString(CultureInfo.InvariantCulture)
    : Uri.EscapeDataString(id);

static IResult ToJson(UpstreamResult result) => Results.Content(result.Json, "application/json", statusCode: result.Status);

using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Bookinfo.ProductPage;

/// <summary>
/// The HTML pages. Element ids and classes are a contract with the browser tests and the walkthrough
/// (samples/bookinfo-dotnet/README.md): book-title, book-summary, details, details-error, reviews, review,
/// reviewer, stars (data-color, data-count), ratings-error, reviews-version (data-version), reviews-error,
/// sign-in, signed-in-user, sign-out; identities with details-caller, reviews-caller and ratings-caller (data-caller:
/// the SPIFFE id the callee saw, or "none (plaintext)"; data-status: the callee's answer, or "none"; ratings-caller
/// also data-rate-limited).
/// </summary>
internal static class Page
{
    private const string Style = """
        body { font-family: system-ui, sans-serif; margin: 0; color: #1f2937; }
        nav { background: #1f2937; color: #fff; display: flex; justify-content: space-between; align-items: center; padding: 0.75rem 2rem; }
        nav a.brand { color: #fff; font-size: 1.2rem; text-decoration: none; font-weight: 600; }
        nav form { display: flex; gap: 0.5rem; align-items: center; margin: 0; }
        nav input { padding: 0.3rem 0.5rem; border-radius: 4px; border: 1px solid #9ca3af; }
        nav button, nav a.button { background: #2563eb; color: #fff; border: 0; border-radius: 4px; padding: 0.4rem 0.9rem; font-size: 0.9rem; text-decoration: none; cursor: pointer; }
        main { max-width: 64rem; margin: 0 auto; padding: 1rem 2rem; }
        h1 { color: #1e3a8a; font-size: 2.6rem; margin-bottom: 0.5rem; }
        table { border-collapse: collapse; margin-top: 0.5rem; }
        th, td { text-align: left; padding: 0.3rem 1.2rem 0.3rem 0; border-bottom: 1px solid #e5e7eb; }
        .reviews-list { display: flex; gap: 2rem; flex-wrap: wrap; }
        .review { flex: 1 1 20rem; background: #eff6ff; border-radius: 8px; padding: 1rem 1.5rem; }
        .review blockquote { font-size: 1.15rem; font-weight: 600; margin: 0.8rem 0; }
        .stars, .stars-empty { font-size: 1.4rem; letter-spacing: 0.1rem; }
        .stars-empty { color: #9ca3af; }
        .error, .ratings-error { color: #dc2626; }
        .served-by { font-family: ui-monospace, monospace; color: #4b5563; font-size: 0.9rem; }
        #identities { margin-top: 2rem; color: #4b5563; font-size: 0.85rem; }
        #identities h2 { font-size: 1rem; }
        #identities code { font-family: ui-monospace, monospace; }
        """;

    private static readonly HtmlEncoder Html = HtmlEncoder.Default;

    /// <summary>The start page: links to the product page, signed out or signed in.</summary>
    public static string Index()
    {
        var html = new StringBuilder();
        Begin(html, "Simple Bookstore App", user: null, signInForm: false);
        html.Append("""
            <main>
            <h1>Hello! This is a simple bookstore application consisting of three services as shown below</h1>
            <p>productpage calls details and reviews; reviews v2 and v3 call ratings. Every call goes through the mesh.</p>
            <p><a id="productpage-link" href="/productpage">Open the product page</a></p>
            </main>
            """);
        return End(html);
    }

    /// <summary>The product page for <paramref name="product"/>.</summary>
    public static string ProductPage(Product product, string? user, UpstreamResult details, UpstreamResult reviews)
    {
        var html = new StringBuilder();
        Begin(html, "Simple Bookstore App", user, signInForm: true);
        html.Append("<main>\n");
        html.Append(CultureInfo.InvariantCulture, $"<h1 id=\"book-title\">{Html.Encode(product.Title)}</h1>\n");
        // The description is the catalogue's own HTML (a link and bold text), as the original renders it unescaped.
        html.Append(CultureInfo.InvariantCulture, $"<p id=\"book-summary\">{product.DescriptionHtml}</p>\n");
        AppendDetails(html, details);
        AppendReviews(html, reviews);
        AppendIdentities(html, details, reviews);
        html.Append("</main>\n");
        return End(html);
    }

    private static void Begin(StringBuilder html, string title, string? user, bool signInForm)
    {
        html.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
            .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1.0\">\n")
            .Append(CultureInfo.InvariantCulture, $"<title>{Html.Encode(title)}</title>\n<style>\n{Style}</style>\n</head>\n<body>\n")
            .Append("<nav>\n<a class=\"brand\" href=\"/productpage\">BookInfo Sample</a>\n");
        if (user is not null)
        {
            html.Append(CultureInfo.InvariantCulture, $"<div><span id=\"signed-in-user\">{Html.Encode(user)}</span> ")
                .Append("<a id=\"sign-out\" class=\"button\" href=\"/logout\">Sign out</a></div>\n");
        }
        else if (signInForm)
        {
            html.Append("""
                <form id="login-form" method="post" action="/login">
                <input id="username" name="username" placeholder="Username" required>
                <input id="password" name="passwd" type="password" placeholder="Password">
                <button id="sign-in" type="submit">Sign in</button>
                </form>

                """);
        }

        html.Append("</nav>\n");
    }

    private static string End(StringBuilder html) => html.Append("</body>\n</html>\n").ToString();

    private static void AppendDetails(StringBuilder html, UpstreamResult details)
    {
        html.Append("<section>\n");
        if (details.Ok)
        {
            using var document = JsonDocument.Parse(details.Json);
            var root = document.RootElement;
            html.Append("<h2>Book Details</h2>\n<table id=\"details\">\n");
            foreach (var (label, key) in new[] { ("Type", "type"), ("Pages", "pages"), ("Publisher", "publisher"), ("Language", "language"), ("ISBN-10", "ISBN-10"), ("ISBN-13", "ISBN-13") })
            {
                html.Append(CultureInfo.InvariantCulture, $"<tr><th>{label}:</th><td data-field=\"{key}\">{Html.Encode(Text(root, key))}</td></tr>\n");
            }

            html.Append("</table>\n");
        }
        else
        {
            html.Append("<h2 class=\"error\">Error fetching product details</h2>\n")
                .Append(CultureInfo.InvariantCulture, $"<p id=\"details-error\">{Html.Encode(ErrorOf(details))}</p>\n");
        }

        html.Append("</section>\n");
    }

    private static void AppendReviews(StringBuilder html, UpstreamResult reviews)
    {
        html.Append("<section id=\"reviews\">\n");
        if (!reviews.Ok)
        {
            html.Append("<h2 class=\"error\">Error fetching product reviews</h2>\n")
                .Append(CultureInfo.InvariantCulture, $"<p id=\"reviews-error\">{Html.Encode(ErrorOf(reviews))}</p>\n</section>\n");
            return;
        }

        using var document = JsonDocument.Parse(reviews.Json);
        var root = document.RootElement;
        var podname = Text(root, "podname");
        var version = Text(root, "version");
        html.Append("<h2>Book Reviews</h2>\n<div class=\"reviews-list\">\n");
        if (root.TryGetProperty("reviews", out var list) && list.ValueKind == JsonValueKind.Array)
        {
            foreach (var review in list.EnumerateArray())
            {
                html.Append("<div class=\"review\">\n");
                if (review.TryGetProperty("rating", out var rating) && rating.ValueKind == JsonValueKind.Object)
                {
                    if (rating.TryGetProperty("stars", out var stars) && stars.TryGetInt32(out var count))
                    {
                        count = Math.Clamp(count, 0, 5);
                        var color = Text(rating, "color") == "red" ? "red" : "black";
                        html.Append(CultureInfo.InvariantCulture, $"<span class=\"stars\" data-color=\"{color}\" data-count=\"{count}\" style=\"color:{color}\">")
                            .Append('★', count)
                            .Append("</span>");
                        if (count < 5)
                        {
                            html.Append("<span class=\"stars-empty\" aria-hidden=\"true\">").Append('☆', 5 - count).Append("</span>");
                        }

                        html.Append('\n');
                    }
                    else if (rating.TryGetProperty("error", out var error))
                    {
                        html.Append(CultureInfo.InvariantCulture, $"<p class=\"ratings-error\">{Html.Encode(error.GetString() ?? string.Empty)}</p>\n");
                    }
                }

                html.Append(CultureInfo.InvariantCulture, $"<blockquote>\"{Html.Encode(Text(review, "text"))}\"</blockquote>\n")
                    .Append(CultureInfo.InvariantCulture, $"<small class=\"reviewer\">{Html.Encode(Text(review, "reviewer"))}</small>\n")
                    .Append("</div>\n");
            }
        }

        html.Append("</div>\n")
            .Append(CultureInfo.InvariantCulture, $"<p id=\"reviews-version\" class=\"served-by\" data-version=\"{Html.Encode(version)}\">Reviews served by: {Html.Encode(podname)}</p>\n")
            .Append("</section>\n");
    }

    /// <summary>
    /// Who each service saw its caller as, from the callee's x-bookinfo-caller header (reviews passes on what ratings
    /// saw): a SPIFFE id over mutual TLS, plaintext, or the status the callee refused the call with.
    /// </summary>
    private static void AppendIdentities(StringBuilder html, UpstreamResult details, UpstreamResult reviews)
    {
        html.Append("<section id=\"identities\">\n<h2>Who called whom</h2>\n<ul>\n");
        AppendHop(html, "details-caller", "details", "productpage", details.Header(CallerHeader), details.Answered?.ToString(CultureInfo.InvariantCulture), details.Header("x-local-rate-limit"));
        AppendHop(html, "reviews-caller", "reviews", "productpage", reviews.Header(CallerHeader), reviews.Answered?.ToString(CultureInfo.InvariantCulture), reviews.Header("x-local-rate-limit"));
        if (!reviews.Ok)
        {
            html.Append("<li id=\"ratings-caller\" data-caller=\"\" data-status=\"unknown\" data-rate-limited=\"\">ratings: unknown (reviews did not answer)</li>\n");
        }
        else
        {
            using var document = JsonDocument.Parse(reviews.Json);
            var podname = Text(document.RootElement, "podname");
            if (reviews.Header("x-bookinfo-ratings-status") is { } status)
            {
                AppendHop(html, "ratings-caller", "ratings", podname, reviews.Header("x-bookinfo-ratings-caller"), status == "none" ? null : status, reviews.Header("x-bookinfo-ratings-rate-limited"));
            }
            else
            {
                html.Append(CultureInfo.InvariantCulture, $"<li id=\"ratings-caller\" data-caller=\"\" data-status=\"not-called\" data-rate-limited=\"\">{Html.Encode(podname)} does not call ratings</li>\n");
            }
        }

        html.Append("</ul>\n</section>\n");
    }

    private const string CallerHeader = "x-bookinfo-caller";

    private static void AppendHop(StringBuilder html, string id, string callee, string caller, string? seenAs, string? status, string? rateLimited)
    {
        html.Append(CultureInfo.InvariantCulture, $"<li id=\"{id}\" data-caller=\"{Html.Encode(seenAs ?? string.Empty)}\" data-status=\"{Html.Encode(status ?? "none")}\" data-rate-limited=\"{Html.Encode(rateLimited ?? string.Empty)}\">");
        if (status is null)
        {
            html.Append(CultureInfo.InvariantCulture, $"{callee} did not answer {Html.Encode(caller)}");
        }
        else if (seenAs is null)
        {
            html.Append(CultureInfo.InvariantCulture, $"{callee} refused {Html.Encode(caller)}: {Html.Encode(status)}");
            if (rateLimited is not null)
            {
                html.Append(CultureInfo.InvariantCulture, $" (x-local-rate-limit: {Html.Encode(rateLimited)})");
            }
        }
        else if (seenAs == "none (plaintext)")
        {
            html.Append(CultureInfo.InvariantCulture, $"{callee} saw {Html.Encode(caller)} in plaintext (no identity)");
        }
        else
        {
            html.Append(CultureInfo.InvariantCulture, $"{callee} saw {Html.Encode(caller)} as <code>{Html.Encode(seenAs)}</code> (mutual TLS)");
        }

        html.Append("</li>\n");
    }

    private static string ErrorOf(UpstreamResult result)
    {
        using var document = JsonDocument.Parse(result.Json);
        return Text(document.RootElement, "error");
    }

    private static string Text(JsonElement element, string property)
    {
        if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(property, out var value))
        {
            return string.Empty;
        }

        return value.ValueKind switch
        {
            JsonValueKind.String => value.GetString() ?? string.Empty,
            JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => value.GetRawText(),
            _ => string.Empty,
        };
    }
}

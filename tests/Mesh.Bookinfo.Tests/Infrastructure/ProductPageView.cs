using System.Text.RegularExpressions;

namespace Mesh.Bookinfo.Tests.Infrastructure;

/// <summary>Stars shown for one review.</summary>
public sealed record Stars(string Color, int Count, int Glyphs);

/// <summary>One line of the page's "who called whom" section: the caller the callee saw (a SPIFFE id, "none (plaintext)", or empty when it refused), its answer's status, its x-local-rate-limit header, and the line's text.</summary>
public sealed record Hop(string Caller, string Status, string RateLimited, string Text);

/// <summary>What one GET /productpage showed, read from the page's contract ids and classes (BOOKINFO.md).</summary>
public sealed partial record ProductPageView(
    int Status,
    string Title,
    bool HasDetails,
    int Reviews,
    string? Version,
    IReadOnlyList<Stars> Stars,
    int RatingsErrors,
    bool ReviewsUnavailable,
    string? SignedInUser,
    string Html)
{
    public const string ReviewsUnavailableText = "Sorry, product reviews are currently unavailable for this book.";
    public const string RatingsUnavailableText = "Ratings service is currently unavailable";
    public const string DetailsUnavailableText = "Sorry, product details are currently unavailable for this book.";

    /// <summary>The details-error message is shown in place of the details table.</summary>
    public bool DetailsUnavailable => Html.Contains("<p id=\"details-error\">" + DetailsUnavailableText + "</p>", StringComparison.Ordinal);

    /// <summary>What details saw productpage as (the page's "who called whom" section).</summary>
    public Hop? DetailsHop => HopOf("details-caller");

    /// <summary>What reviews saw productpage as.</summary>
    public Hop? ReviewsHop => HopOf("reviews-caller");

    /// <summary>What ratings saw the reviews version as (status "not-called" for v1).</summary>
    public Hop? RatingsHop => HopOf("ratings-caller");

    private Hop? HopOf(string id) =>
        HopRegex().Matches(Html).FirstOrDefault(m => m.Groups[1].Value == id) is { } m
            ? new Hop(System.Net.WebUtility.HtmlDecode(m.Groups[2].Value), m.Groups[3].Value, m.Groups[4].Value, System.Net.WebUtility.HtmlDecode(m.Groups[5].Value))
            : null;

    public static ProductPageView Parse(int status, string html) => new(
        status,
        TitleRegex().Match(html) is { Success: true } t ? t.Groups[1].Value : string.Empty,
        html.Contains("<table id=\"details\">", StringComparison.Ordinal),
        ReviewRegex().Count(html),
        VersionRegex().Match(html) is { Success: true } v ? v.Groups[1].Value : null,
        [.. StarsRegex().Matches(html).Select(static m => new Stars(m.Groups[1].Value, int.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture), m.Groups[3].Value.Length))],
        RatingsErrorRegex().Count(html),
        html.Contains("<p id=\"reviews-error\">" + ReviewsUnavailableText + "</p>", StringComparison.Ordinal),
        UserRegex().Match(html) is { Success: true } u ? u.Groups[1].Value : null,
        html);

    public override string ToString() =>
        $"status {Status}, version {Version ?? "none"}, {Reviews} reviews, stars [{string.Join(", ", Stars.Select(static s => $"{s.Count} {s.Color}"))}], "
        + $"{RatingsErrors} ratings errors, reviews unavailable {ReviewsUnavailable}, user {SignedInUser ?? "none"}";

    [GeneratedRegex("<li id=\"([a-z]+-caller)\" data-caller=\"([^\"]*)\" data-status=\"([^\"]*)\" data-rate-limited=\"([^\"]*)\">(.*)</li>")]
    private static partial Regex HopRegex();

    [GeneratedRegex("<h1 id=\"book-title\">([^<]*)</h1>")]
    private static partial Regex TitleRegex();

    [GeneratedRegex("<div class=\"review\">")]
    private static partial Regex ReviewRegex();

    [GeneratedRegex("id=\"reviews-version\"[^>]*data-version=\"([^\"]*)\"")]
    private static partial Regex VersionRegex();

    [GeneratedRegex("<span class=\"stars\" data-color=\"([a-z]+)\" data-count=\"(\\d+)\"[^>]*>(★*)</span>")]
    private static partial Regex StarsRegex();

    [GeneratedRegex("class=\"ratings-error\">Ratings service is currently unavailable<")]
    private static partial Regex RatingsErrorRegex();

    [GeneratedRegex("<span id=\"signed-in-user\">([^<]*)</span>")]
    private static partial Regex UserRegex();
}

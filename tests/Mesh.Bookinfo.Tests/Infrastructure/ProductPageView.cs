using System.Text.RegularExpressions;

namespace Mesh.Bookinfo.Tests.Infrastructure;

/// <summary>Stars shown for one review.</summary>
public sealed record Stars(string Color, int Count, int Glyphs);

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

namespace Bookinfo.Reviews;

/// <summary>The JSON the reviews service answers with (the original's shape, plus the version that answered).</summary>
internal sealed record ReviewsResponse(int Id, string Podname, string Clustername, string Version, IReadOnlyList<Review> Reviews)
{
    public const string RatingsUnavailable = "Ratings service is currently unavailable";

    public static ReviewsResponse Create(int productId, ReviewsSettings settings, IReadOnlyDictionary<string, int>? stars)
    {
        return new ReviewsResponse(productId, settings.WorkloadName, "null", settings.Version,
        [
            new Review("Reviewer1", "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!", RatingOf("Reviewer1")),
            new Review("Reviewer2", "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.", RatingOf("Reviewer2")),
        ]);

        Rating? RatingOf(string reviewer)
        {
            if (!settings.RatingsEnabled)
            {
                return null;
            }

            return stars is not null && stars.TryGetValue(reviewer, out var count)
                ? new Rating(count, settings.StarColor, null)
                : new Rating(null, null, RatingsUnavailable);
        }
    }
}

/// <summary>One review; <see cref="Rating"/> is absent in v1.</summary>
internal sealed record Review(string Reviewer, string Text, [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] Rating? Rating);

/// <summary>Stars and their colour, or the error shown instead of them.</summary>
internal sealed record Rating(
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] int? Stars,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? Color,
    [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? Error);

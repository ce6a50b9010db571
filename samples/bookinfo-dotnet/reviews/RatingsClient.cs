using System.Net.Http.Json;
using Bookinfo.Shared;

namespace Bookinfo.Reviews;

/// <summary>
/// What ratings answered: the stars per reviewer (<see langword="null"/> when it did not answer 200 in time), its
/// status (<see langword="null"/> when it did not answer), who it saw the call come from (its <c>x-bookinfo-caller</c>)
/// and its <c>x-local-rate-limit</c> header when a local rate limit refused the call.
/// </summary>
internal sealed record RatingsAnswer(IReadOnlyDictionary<string, int>? Stars, int? Status, string? Caller, string? RateLimited);

/// <summary>Calls the ratings service (http://ratings:9080) with the version's timeout.</summary>
internal sealed partial class RatingsClient(HttpClient http, ILogger<RatingsClient> logger)
{
    /// <summary>Response headers of reviews that pass on how ratings answered (shown on the product page).</summary>
    public const string CallerHeader = "x-bookinfo-ratings-caller";
    public const string StatusHeader = "x-bookinfo-ratings-status";
    public const string RateLimitedHeader = "x-bookinfo-ratings-rate-limited";

    private const string LocalRateLimitHeader = "x-local-rate-limit";

    /// <summary>Asks ratings for the stars of <paramref name="productId"/>.</summary>
    public async Task<RatingsAnswer> GetRatingsAsync(int productId, CancellationToken cancellationToken)
    {
        var path = "ratings/" + productId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        try
        {
            using var response = await http.GetAsync(path, cancellationToken);
            var status = (int)response.StatusCode;
            var caller = response.Headers.TryGetValues(CallerIdentity.HeaderName, out var callers) ? string.Join(",", callers) : null;
            var limited = response.Headers.TryGetValues(LocalRateLimitHeader, out var limits) ? string.Join(",", limits) : null;
            if (!response.IsSuccessStatusCode)
            {
                Log.RatingsStatus(logger, http.BaseAddress + path, status);
                return new RatingsAnswer(null, status, caller, limited);
            }

            var body = await response.Content.ReadFromJsonAsync<RatingsBody>(cancellationToken);
            return new RatingsAnswer(body?.Ratings, status, caller, limited);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException && !cancellationToken.IsCancellationRequested)
        {
            Log.RatingsFailed(logger, http.BaseAddress + path, ex.Message);
            return new RatingsAnswer(null, null, null, null);
        }
    }

    /// <summary>Passes on how ratings answered in reviews' own response headers.</summary>
    public static void Describe(RatingsAnswer answer, IHeaderDictionary headers)
    {
        headers[StatusHeader] = answer.Status is { } status ? status.ToString(System.Globalization.CultureInfo.InvariantCulture) : "none";
        if (answer.Caller is { } caller)
        {
            headers[CallerHeader] = caller;
        }

        if (answer.RateLimited is { } limited)
        {
            headers[RateLimitedHeader] = limited;
        }
    }

    private sealed record RatingsBody(int Id, Dictionary<string, int>? Ratings);

    private static partial class Log
    {
        [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "Ratings at '{Url}' answered {Status}; reviews go out without stars.")]
        public static partial void RatingsStatus(ILogger logger, string url, int status);

        [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Ratings at '{Url}' failed: {Reason}; reviews go out without stars.")]
        public static partial void RatingsFailed(ILogger logger, string url, string reason);
    }
}

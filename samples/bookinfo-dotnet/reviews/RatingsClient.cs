using System.Net.Http.Json;

namespace Bookinfo.Reviews;

/// <summary>Calls the ratings service (http://ratings:9080) with the version's timeout.</summary>
internal sealed partial class RatingsClient(HttpClient http, ILogger<RatingsClient> logger)
{
    /// <summary>The stars per reviewer, or <see langword="null"/> when ratings did not answer 200 in time.</summary>
    public async Task<IReadOnlyDictionary<string, int>?> GetRatingsAsync(int productId, CancellationToken cancellationToken)
    {
        var path = "ratings/" + productId.ToString(System.Globalization.CultureInfo.InvariantCulture);
        try
        {
            using var response = await http.GetAsync(path, cancellationToken);
            if (!response.IsSuccessStatusCode)
            {
                Log.RatingsStatus(logger, http.BaseAddress + path, (int)response.StatusCode);
                return null;
            }

            var body = await response.Content.ReadFromJsonAsync<RatingsBody>(cancellationToken);
            return body?.Ratings;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or System.Text.Json.JsonException && !cancellationToken.IsCancellationRequested)
        {
            Log.RatingsFailed(logger, http.BaseAddress + path, ex.Message);
            return null;
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

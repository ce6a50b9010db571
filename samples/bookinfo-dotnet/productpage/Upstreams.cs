using System.Globalization;
using System.Text.Json;

namespace Bookinfo.ProductPage;

/// <summary>An upstream's answer as productpage passes it on: the status and a JSON body (the upstream's, or an error).</summary>
internal sealed record UpstreamResult(int Status, string Json)
{
    public bool Ok => Status == 200;

    /// <summary>The status of the upstream's last answer; <see langword="null"/> when it never answered (connect failure, timeout).</summary>
    public int? Answered { get; init; }

    /// <summary>The bookinfo headers (<c>x-bookinfo-*</c>, <c>x-local-rate-limit</c>) of the upstream's last answer, by lower-case name.</summary>
    public IReadOnlyDictionary<string, string> Headers { get; init; } = new Dictionary<string, string>();

    /// <summary>A header of the last answer, or <see langword="null"/>.</summary>
    public string? Header(string name) => Headers.GetValueOrDefault(name);
}

/// <summary>One upstream service: its client name, mesh address, path, attempts and the error shown when it fails.</summary>
internal sealed record Upstream(string Name, Uri BaseAddress, string Path, int Attempts, string Error);

/// <summary>
/// Calls details, reviews and ratings the way the original product page does: each attempt has a 3 s timeout,
/// details and reviews get one retry (two attempts), and when nothing answers 200 the caller gets the upstream's
/// status (500 when there was no answer) with a fixed error message. Signed-in users are named upstream in
/// <c>end-user</c>, which routing rules such as "jason sees reviews v2" match on.
/// </summary>
internal sealed partial class Upstreams(IHttpClientFactory clients, ILogger<Upstreams> logger)
{
    public const string EndUserHeader = "end-user";

    /// <summary>Timeout of one attempt (the original's <c>timeout=3.0</c>).</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);

    public static readonly Upstream Details = new("details", new Uri("http://details:9080/"), "details/", 2,
        "Sorry, product details are currently unavailable for this book.");

    public static readonly Upstream Reviews = new("reviews", new Uri("http://reviews:9080/"), "reviews/", 2,
        "Sorry, product reviews are currently unavailable for this book.");

    public static readonly Upstream Ratings = new("ratings", new Uri("http://ratings:9080/"), "ratings/", 1,
        "Sorry, product ratings are currently unavailable for this book.");

    public static readonly IReadOnlyList<Upstream> All = [Details, Reviews, Ratings];

    public Task<UpstreamResult> GetDetailsAsync(object productId, string? user, CancellationToken cancellationToken) =>
        GetAsync(Details, productId, user, cancellationToken);

    public Task<UpstreamResult> GetReviewsAsync(object productId, string? user, CancellationToken cancellationToken) =>
        GetAsync(Reviews, productId, user, cancellationToken);

    public Task<UpstreamResult> GetRatingsAsync(object productId, string? user, CancellationToken cancellationToken) =>
        GetAsync(Ratings, productId, user, cancellationToken);

    private async Task<UpstreamResult> GetAsync(Upstream upstream, object productId, string? user, CancellationToken cancellationToken)
    {
        var http = clients.CreateClient(upstream.Name);
        var path = upstream.Path + Convert.ToString(productId, CultureInfo.InvariantCulture);
        int? lastStatus = null;
        IReadOnlyDictionary<string, string> lastHeaders = new Dictionary<string, string>();
        for (var attempt = 1; attempt <= upstream.Attempts; attempt++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            if (user is not null)
            {
                request.Headers.TryAddWithoutValidation(EndUserHeader, user);
            }

            try
            {
                using var response = await http.SendAsync(request, cancellationToken);
                var body = await response.Content.ReadAsStringAsync(cancellationToken);
                lastHeaders = BookinfoHeaders(response);
                if ((int)response.StatusCode == 200 && IsJson(body))
                {
                    return new UpstreamResult(200, body) { Answered = 200, Headers = lastHeaders };
                }

                lastStatus = (int)response.StatusCode;
                Log.UpstreamStatus(logger, upstream.Name, upstream.BaseAddress + path, attempt, lastStatus.Value);
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                lastStatus = null;
                lastHeaders = new Dictionary<string, string>();
                Log.UpstreamFailed(logger, upstream.Name, upstream.BaseAddress + path, attempt,
                    ex is TaskCanceledException ? $"no answer within {Timeout.TotalSeconds:0} s" : ex.Message);
            }
        }

        var error = JsonSerializer.Serialize(new Dictionary<string, string> { ["error"] = upstream.Error });
        return new UpstreamResult(lastStatus is { } status and not 200 ? status : 500, error) { Answered = lastStatus, Headers = lastHeaders };
    }

    /// <summary>The headers the page's "who called whom" section reads: x-bookinfo-* and the rate limit's x-local-rate-limit.</summary>
    private static Dictionary<string, string> BookinfoHeaders(HttpResponseMessage response)
    {
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, values) in response.Headers)
        {
            if (name.StartsWith("x-bookinfo-", StringComparison.OrdinalIgnoreCase) || name.Equals("x-local-rate-limit", StringComparison.OrdinalIgnoreCase))
            {
                headers[name.ToLowerInvariant()] = string.Join(",", values);
            }
        }

        return headers;
    }

    private static bool IsJson(string body)
    {
        try
        {
            using var document = JsonDocument.Parse(body);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1, Level = LogLevel.Warning, Message = "Upstream '{Upstream}' at '{Url}' answered {Status} (attempt {Attempt}).")]
        public static partial void UpstreamStatus(ILogger logger, string upstream, string url, int attempt, int status);

        [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Upstream '{Upstream}' at '{Url}' failed (attempt {Attempt}): {Reason}.")]
        public static partial void UpstreamFailed(ILogger logger, string upstream, string url, int attempt, string reason);
    }
}

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Mesh.Bookinfo.Tests.Infrastructure;

namespace Mesh.Bookinfo.Tests;

/// <summary>
/// The walkthrough's "Security" part: mutual TLS migration (PERMISSIVE, then STRICT), the ratings denial, the
/// authorization steps and the ratings rate limit, with the rule files of samples/bookinfo-dotnet/security. Every
/// workload runs with Mesh:Security:Enabled (the launcher sets it), so the identities on the page are the
/// certificates' SPIFFE ids.
/// </summary>
public sealed partial class BookinfoScenarioTests
{
    private const string ProductPageId = "spiffe://cluster.local/ns/default/sa/bookinfo-productpage";
    private const string ReviewsId = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";
    private const string Denied = "RBAC: access denied";

    private static readonly string[] Backends = ["details-v1", "ratings-v1", "reviews-v1", "reviews-v2", "reviews-v3"];

    [Fact]
    [Step(20)]
    public async Task MutualTls_PermissiveThenStrict_PageShowsSpiffeIdsAndPlaintextToABackendGetsNoAnswer()
    {
        await bookinfo.ResetToDefaultAsync();

        await bookinfo.ApplyAsync("peer-authentication-permissive.yaml");
        // PERMISSIVE: a plaintext caller is served on the same port, and seen as no identity.
        var details = bookinfo.Launcher.Workloads["details-v1"].Url;
        using (var plaintext = await bookinfo.Http.GetAsync(new Uri(details, "/details/0")))
        {
            Assert.Equal(HttpStatusCode.OK, plaintext.StatusCode);
            Assert.Equal("none (plaintext)", Assert.Single(plaintext.Headers.GetValues("x-bookinfo-caller")));
        }

        AssertMeshIdentities(await bookinfo.GetPagesAsync(3));

        await bookinfo.ApplyAsync("peer-authentication-strict.yaml");
        await WaitAsync(async () => await PlaintextAnswerAsync(details) == 0, "details to close plaintext connections under STRICT");

        foreach (var backend in Backends)
        {
            Assert.True(await PlaintextAnswerAsync(bookinfo.Launcher.Workloads[backend].Url) == 0, $"{backend} answered plaintext under STRICT");
        }

        // productpage is kept PERMISSIVE by its workload policy (the browser is outside the mesh): the page works.
        var pages = await bookinfo.GetPagesAsync(6);
        AssertMeshIdentities(pages);
        Assert.All(pages, static p =>
        {
            Assert.Equal(200, p.Status);
            Assert.True(p.HasDetails, p.ToString());
            Assert.Equal(2, p.Reviews);
            Assert.False(p.ReviewsUnavailable);
            Assert.Equal(0, p.RatingsErrors);
        });
        Assert.Equal(["v1", "v2", "v3"], pages.Select(static p => p.Version).Distinct().Order());
    }

    [Fact]
    [Step(21)]
    public async Task DenyRatingsToReviews_ReviewsV2AndV3ShowTheRatingsErrorAndV1IsUnchanged()
    {
        await bookinfo.ResetToDefaultAsync();

        await bookinfo.ApplyAsync("peer-authentication-strict.yaml", "authorization-deny-ratings-to-reviews.yaml");
        await bookinfo.WaitForPagesAsync(static p => p.Version == "v1" || p.RatingsErrors == 2, consecutive: 3, what: "the ratings error on reviews v2 and v3");

        var pages = await bookinfo.GetPagesAsync(9);
        Assert.Equal(["v1", "v2", "v3"], pages.Select(static p => p.Version).Distinct().Order());
        Assert.All(pages, static p =>
        {
            Assert.Equal(2, p.Reviews);
            Assert.True(p.HasDetails);
            Assert.Empty(p.Stars);
            if (p.Version == "v1")
            {
                Assert.Equal(0, p.RatingsErrors);
                Assert.Equal("not-called", p.RatingsHop!.Status);
            }
            else
            {
                // The policy names the service account that v2 and v3 share: both lose their stars.
                Assert.Equal(2, p.RatingsErrors);
                Assert.Equal(new Hop(string.Empty, "403", string.Empty, $"ratings refused reviews-{p.Version}: 403"), p.RatingsHop);
            }
        });

        // The policy names reviews' identity only: productpage's own call to ratings (the JSON API) still works.
        Assert.Equal("{\"id\":0,\"ratings\":{\"Reviewer1\":5,\"Reviewer2\":4}}", await bookinfo.Http.GetStringAsync(new Uri(bookinfo.Launcher.ProductPage, "/api/v1/products/0/ratings")));
    }

    [Fact]
    [Step(22)]
    public async Task Authorization_AllowNothingThenProductpageViewerThenBackendsViewer_AndPostIsDenied()
    {
        await bookinfo.ResetToDefaultAsync();

        await bookinfo.ApplyAsync("peer-authentication-strict.yaml", "authorization-allow-nothing.yaml");
        await bookinfo.WaitForPagesAsync(static p => p.Status == 403, what: "403 for the page");
        var denied = await bookinfo.GetPageAsync();
        Assert.Equal(403, denied.Status);
        Assert.Equal(Denied, denied.Html);

        // GET on productpage allowed; details and reviews still allow nothing.
        await bookinfo.ApplyAsync("authorization-productpage-viewer.yaml");
        await bookinfo.WaitForPagesAsync(static p => p.Status == 200, what: "the page back");
        Assert.All(await bookinfo.GetPagesAsync(3), static p =>
        {
            Assert.Equal(200, p.Status);
            Assert.Equal("The Comedy of Errors", p.Title);
            Assert.True(p.DetailsUnavailable, p.ToString());
            Assert.True(p.ReviewsUnavailable, p.ToString());
            Assert.Equal(new Hop(string.Empty, "403", string.Empty, "details refused productpage: 403"), p.DetailsHop);
            Assert.Equal(new Hop(string.Empty, "403", string.Empty, "reviews refused productpage: 403"), p.ReviewsHop);
        });
        await AssertPostDeniedAsync();

        // details and reviews for productpage's identity, ratings for reviews': everything is back.
        await bookinfo.ApplyAsync("authorization-backends-viewer.yaml");
        await bookinfo.WaitForPagesAsync(static p => p.HasDetails && p.Reviews == 2, what: "details and reviews back");
        var pages = await bookinfo.GetPagesAsync(6);
        Assert.Equal(["v1", "v2", "v3"], pages.Select(static p => p.Version).Distinct().Order());
        Assert.All(pages, static p =>
        {
            Assert.True(p.HasDetails, p.ToString());
            Assert.Equal(2, p.Reviews);
            Assert.Equal(0, p.RatingsErrors);
            Assert.Equal(p.Version == "v1" ? 0 : 2, p.Stars.Count);
        });
        AssertMeshIdentities(pages);
        await AssertPostDeniedAsync();

        // ratings allows reviews only: productpage's own call to it (the JSON API) is refused, and productpage passes the 403 on.
        using var ratings = await bookinfo.Http.GetAsync(new Uri(bookinfo.Launcher.ProductPage, "/api/v1/products/0/ratings"));
        Assert.Equal(HttpStatusCode.Forbidden, ratings.StatusCode);
        Assert.Equal("{\"error\":\"Sorry, product ratings are currently unavailable for this book.\"}", await ratings.Content.ReadAsStringAsync());
    }

    [Fact]
    [Step(23)]
    public async Task RatingsLocalRateLimit_TheBucketPassesThenRatingsAnswers429WithTheHeaderAndReviewsShowTheRatingsError()
    {
        await bookinfo.ResetToDefaultAsync();
        var tokens = MaxTokens("ratings-local-ratelimit.yaml");

        await bookinfo.ApplyAsync("peer-authentication-permissive.yaml", "peer-authentication-strict.yaml", "ratings-local-ratelimit.yaml");
        // The control plane loaded the file; ratings gets its listener within the push delay. Nothing else calls
        // ratings meanwhile (no page loads), so the bucket is full when the first call below arrives.
        await Task.Delay(TimeSpan.FromSeconds(3));

        // productpage's JSON API calls ratings directly (over mutual TLS) and passes its status on.
        var ratingsApi = new Uri(bookinfo.Launcher.ProductPage, "/api/v1/products/0/ratings");
        var statuses = new List<int>();
        for (var i = 0; i < tokens + 2; i++)
        {
            using var response = await bookinfo.Http.GetAsync(ratingsApi);
            statuses.Add((int)response.StatusCode);
            if (i == tokens)
            {
                Assert.Equal("{\"error\":\"Sorry, product ratings are currently unavailable for this book.\"}", await response.Content.ReadAsStringAsync());
            }
        }

        output.WriteLine("ratings API: " + string.Join(", ", statuses));
        Assert.Equal([.. Enumerable.Repeat(200, tokens), 429, 429], statuses);

        // The bucket is shared by every caller: reviews v2 and v3 get 429 too, and the page says so.
        var pages = await bookinfo.GetPagesAsync(6);
        Assert.Equal(["v1", "v2", "v3"], pages.Select(static p => p.Version).Distinct().Order());
        Assert.All(pages, static p =>
        {
            Assert.Equal(2, p.Reviews);
            Assert.Empty(p.Stars);
            if (p.Version == "v1")
            {
                Assert.Equal(0, p.RatingsErrors);
            }
            else
            {
                Assert.Equal(2, p.RatingsErrors);
                Assert.Equal(new Hop(string.Empty, "429", "true", $"ratings refused reviews-{p.Version}: 429 (x-local-rate-limit: true)"), p.RatingsHop);
            }
        });

        // On the wire: with STRICT removed (PERMISSIVE stays), a plaintext call to ratings reaches the limiter, which
        // runs before authorization and the app: 429, its header and Envoy's body.
        var ratings = bookinfo.Launcher.Workloads["ratings-v1"].Url;
        File.Delete(Path.Combine(bookinfo.Launcher.ConfigDirectory, "peer-authentication-strict.yaml"));
        await WaitAsync(async () => await PlaintextAnswerAsync(ratings) > 0, "ratings to answer plaintext again under PERMISSIVE");
        HttpResponseMessage? limited = null;
        for (var i = 0; i <= tokens && limited is null; i++)
        {
            // Should the bucket have refilled meanwhile (once a minute), up to its size pass first.
            var response = await bookinfo.Http.GetAsync(new Uri(ratings, "/ratings/0"));
            if ((int)response.StatusCode == 429)
            {
                limited = response;
            }
            else
            {
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                response.Dispose();
            }
        }

        using (limited)
        {
            Assert.NotNull(limited);
            Assert.Equal("true", Assert.Single(limited.Headers.GetValues("x-local-rate-limit")));
            Assert.Equal("local_rate_limited", await limited.Content.ReadAsStringAsync());
            Assert.False(limited.Headers.Contains("x-bookinfo-caller"), "the app did not run");
        }

        // rm the rate limit: ratings answers everyone again at once.
        File.Delete(Path.Combine(bookinfo.Launcher.ConfigDirectory, "ratings-local-ratelimit.yaml"));
        await bookinfo.WaitForPagesAsync(static p => p.Version == "v1" || p.Stars.Count == 2, consecutive: 3, what: "stars back on v2 and v3");
        using var back = await bookinfo.Http.GetAsync(ratingsApi);
        Assert.Equal(HttpStatusCode.OK, back.StatusCode);
    }

    /// <summary>The bucket size of a rate limit file (token_bucket.max_tokens).</summary>
    private static int MaxTokens(string file)
    {
        var match = System.Text.RegularExpressions.Regex.Match(File.ReadAllText(Paths.RuleFile(file)), @"max_tokens:\s*(\d+)");
        Assert.True(match.Success, $"{file} has no max_tokens");
        return int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Every page's identities: details and reviews saw productpage's SPIFFE id, ratings saw reviews' (v1 does not call it).</summary>
    private static void AssertMeshIdentities(IEnumerable<ProductPageView> pages)
    {
        foreach (var page in pages)
        {
            var details = Assert.IsType<Hop>(page.DetailsHop);
            var reviews = Assert.IsType<Hop>(page.ReviewsHop);
            var ratings = Assert.IsType<Hop>(page.RatingsHop);
            Assert.Equal(new Hop(ProductPageId, "200", string.Empty, $"details saw productpage as {ProductPageId} (mutual TLS)"), details with { Text = StripTags(details.Text) });
            Assert.Equal(new Hop(ProductPageId, "200", string.Empty, $"reviews saw productpage as {ProductPageId} (mutual TLS)"), reviews with { Text = StripTags(reviews.Text) });
            ratings = ratings with { Text = StripTags(ratings.Text) };
            Assert.Equal(
                page.Version == "v1"
                    ? new Hop(string.Empty, "not-called", string.Empty, "reviews-v1 does not call ratings")
                    : new Hop(ReviewsId, "200", string.Empty, $"ratings saw reviews-{page.Version} as {ReviewsId} (mutual TLS)"),
                ratings);
        }
    }

    private static string StripTags(string html) => html.Replace("<code>", string.Empty, StringComparison.Ordinal).Replace("</code>", string.Empty, StringComparison.Ordinal);

    /// <summary>POST /login (the sign-in form) is not a GET: productpage-viewer does not allow it.</summary>
    private async Task AssertPostDeniedAsync()
    {
        using var form = new FormUrlEncodedContent([new("username", "jason"), new("passwd", "password")]);
        using var post = await bookinfo.Http.PostAsync(new Uri(bookinfo.Launcher.ProductPage, "/login"), form);
        Assert.Equal(HttpStatusCode.Forbidden, post.StatusCode);
        Assert.Equal(Denied, await post.Content.ReadAsStringAsync());
    }

    /// <summary>
    /// Sends a plaintext HTTP/1.1 request on a fresh connection and returns how many bytes came back before the
    /// connection closed (a STRICT port closes it without sending any).
    /// </summary>
    private static async Task<int> PlaintextAnswerAsync(Uri url)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(url.Host, url.Port);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET /health HTTP/1.1\r\nHost: {url.Authority}\r\nConnection: close\r\n\r\n"));
        var buffer = new byte[4096];
        var total = 0;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, timeout.Token)) > 0)
            {
                total += read;
            }
        }
        catch (IOException)
        {
            // Reset by the server: what arrived before counts.
        }

        return total;
    }

    private static async Task WaitAsync(Func<Task<bool>> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < BookinfoFixture.ApplyTimeout)
        {
            if (await condition())
            {
                return;
            }

            await Task.Delay(200);
        }

        Assert.Fail($"Waited {BookinfoFixture.ApplyTimeout.TotalSeconds} s for {what}.");
    }
}

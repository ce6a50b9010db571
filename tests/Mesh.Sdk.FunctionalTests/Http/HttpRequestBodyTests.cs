using System.Net;
using System.Security.Cryptography;
using Mesh.Sdk.FunctionalTests.Infrastructure;

namespace Mesh.Sdk.FunctionalTests.Http;

/// <summary>
/// Request bodies under retry policies, as Envoy's router handles them: streamed to the first attempt with a copy kept
/// up to the buffer limit (Mesh:RequestBufferLimitBytes, 1 MiB), replayed on retry when the whole body fit, and not
/// retried once it grew past the limit. Also Envoy's rule for <c>x-envoy-ratelimited</c> responses.
/// </summary>
public sealed class HttpRequestBodyTests(ReviewsFixture fixture) : IClassFixture<ReviewsFixture>
{
    private const int Limit = MeshOptions.DefaultRequestBufferLimitBytes;

    // istiod's default retry policy (attempts 2; retry_on connect-failure,refused-stream,unavailable,cancelled,
    // retriable-status-codes with 503).
    internal const string IstioDefaultRetries = """
          retries:
            attempts: 2
            retryOn: connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes,503
        """;

    private MeshHarness Mesh => fixture.Mesh;

    private Backend V2 => Mesh.Backend("reviews-v2-a");

    private Task ApplyUploadRouteAsync(string retries = IstioDefaultRetries) => Mesh.ApplyAsync($$"""
        - name: upload
          match:
          - uri:
              prefix: /upload
        {{retries}}
          route:
          - destination: {host: reviews.default.svc.cluster.local, subset: v2}
        """);

    [Fact]
    public async Task BodyPastTheLimit_AnsweredRetriably_IsNotRetried()
    {
        await ApplyUploadRouteAsync();
        V2.FailNext(1, 503);
        using var content = new GeneratedContent(Limit + 1, knownLength: true);
        using var response = await Mesh.Http.PostAsync(MeshHarness.BaseUrl + "/upload/over", content);

        // One byte past the limit: the copy was dropped, so the 503 (retriable under this policy) is the answer.
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var upload = Assert.Single(V2.Uploads);
        Assert.Equal((Limit + 1L, content.Sha256), (upload.Bytes, upload.Sha256));
    }

    [Fact]
    public async Task BodyOfExactlyTheLimit_AnsweredRetriably_IsRetriedWithTheIdenticalBody()
    {
        await ApplyUploadRouteAsync();
        V2.FailNext(1, 503);
        using var content = new GeneratedContent(Limit, knownLength: true);
        using var response = await Mesh.Http.PostAsync(MeshHarness.BaseUrl + "/upload/fits", content);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, content.Serializations);
        Assert.Equal(
            [((long)Limit, content.Sha256, Limit.ToString(System.Globalization.CultureInfo.InvariantCulture)), ((long)Limit, content.Sha256, Limit.ToString(System.Globalization.CultureInfo.InvariantCulture))],
            V2.Uploads.Select(u => (u.Bytes, u.Sha256, u.Headers["Content-Length"])).ToArray());
    }

    [Fact]
    public async Task ChunkedBody_StreamsAndIsReplayedOnRetry()
    {
        await ApplyUploadRouteAsync();
        V2.FailNext(1, 503);

        // No Content-Length: sent chunked. The generator waits after 64 KiB until the server has seen bytes.
        using var content = new GeneratedContent(300 * 1024, knownLength: false, pauseAfter: 64 * 1024, resume: V2.UploadStarted);
        using var response = await Mesh.Http.PostAsync(MeshHarness.BaseUrl + "/upload/chunked", content);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(content.ResumedBy is 64 * 1024, $"resumed by {content.ResumedBy}");
        Assert.Equal(1, content.Serializations);
        var uploads = V2.Uploads;
        Assert.Equal(2, uploads.Count);
        Assert.All(uploads, u => Assert.Equal((300 * 1024L, content.Sha256, "chunked"), (u.Bytes, u.Sha256, u.Headers["Transfer-Encoding"])));
    }

    [Fact]
    public async Task Mirror_GetsAStreamedBodyWithinTheLimit_AndIsNotSentPastIt()
    {
        await Mesh.ApplyAsync("""
            - name: mirrored-upload
              match:
              - uri:
                  prefix: /upload
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v2}
              mirror: {host: reviews.default.svc.cluster.local, subset: v3}
              mirrorPercentage: {value: 100}
            """);
        var shadow = Mesh.Backend("reviews-v3-a");

        // Within the limit: the shadow gets the whole body once it has been read (Envoy's buffered shadow).
        using var small = new GeneratedContent(200 * 1024, knownLength: false);
        using var first = await Mesh.Http.PostAsync(MeshHarness.BaseUrl + "/upload/mirrored", small);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        await Mesh.WaitUntilAsync(() => shadow.Uploads.Count == 1, "the mirror of the body within the limit");
        Assert.Equal((200 * 1024L, small.Sha256, "reviews-shadow:9080"), (shadow.Uploads[0].Bytes, shadow.Uploads[0].Sha256, shadow.Uploads[0].Headers["Host"]));

        // Past the limit: the main request is sent whole, the mirror is dropped (and says so at Debug).
        using var big = new GeneratedContent(Limit + 1, knownLength: true);
        using var second = await Mesh.Http.PostAsync(MeshHarness.BaseUrl + "/upload/mirrored", big);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);
        Assert.Equal((Limit + 1L, big.Sha256), (V2.Uploads[^1].Bytes, V2.Uploads[^1].Sha256));
        await Mesh.WaitUntilAsync(
            () => Mesh.Dump().Contains("Mirror to cluster 'outbound|9080|v3|reviews.default.svc.cluster.local' of route 'mirrored-upload' not sent", StringComparison.Ordinal),
            "the dropped mirror's log");
        Assert.Single(shadow.Uploads);
    }

    [Fact]
    public async Task RateLimitedResponse_IsNotRetriedUnder5xx()
    {
        await ApplyUploadRouteAsync("""
              retries:
                attempts: 2
                retryOn: 5xx,gateway-error,retriable-status-codes,503
            """);
        V2.FailNext(10, 503, ("x-envoy-ratelimited", "true"));
        using var response = await Mesh.Http.PostAsync(MeshHarness.BaseUrl + "/upload/limited", new StringContent("x"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Single(V2.Uploads);

        // The same 503 without the header is retried: 1 + 2 attempts.
        V2.Reset();
        V2.FailNext(10, 503);
        using var plain = await Mesh.Http.PostAsync(MeshHarness.BaseUrl + "/upload/limited", new StringContent("x"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, plain.StatusCode);
        Assert.Equal(3, V2.Uploads.Count);
    }

    [Fact]
    public async Task RateLimitedResponse_IsRetriedUnderEnvoyRateLimited()
    {
        await ApplyUploadRouteAsync("""
              retries:
                attempts: 2
                retryOn: envoy-ratelimited
            """);
        V2.FailNext(10, 429, ("x-envoy-ratelimited", "true"));
        using var response = await Mesh.Http.PostAsync(MeshHarness.BaseUrl + "/upload/limited", new StringContent("x"));
        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.Equal(3, V2.Uploads.Count);
    }

    /// <summary>
    /// A body produced on the fly (never seekable, never buffered by itself), deterministic bytes hashed as they are
    /// produced. With <c>pauseAfter</c> it stops producing at that offset until <c>resume</c> completes (at most 30 s).
    /// </summary>
    internal sealed class GeneratedContent(long size, bool knownLength, long pauseAfter = -1, Task? resume = null) : HttpContent
    {
        private readonly byte[] _chunk = CreateChunk();
        private string? _sha256;
        private int _serializations;

        /// <summary>SHA-256 of the whole body (hex), once produced.</summary>
        public string Sha256 => _sha256 ?? throw new InvalidOperationException("The body was not produced.");

        /// <summary>How many times the body was produced.</summary>
        public int Serializations => Volatile.Read(ref _serializations);

        /// <summary>Bytes produced when <c>resume</c> completed; null when it never did.</summary>
        public long? ResumedBy { get; private set; }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            Interlocked.Increment(ref _serializations);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            long written = 0;
            var salt = 0;
            while (written < size)
            {
                if (written == pauseAfter && resume is not null)
                {
                    await resume.WaitAsync(TimeSpan.FromSeconds(30));
                    ResumedBy = written;
                }

                var count = (int)Math.Min(_chunk.Length, size - written);
                if (pauseAfter > written)
                {
                    count = (int)Math.Min(count, pauseAfter - written);
                }

                // Vary the bytes per chunk so a replay that reordered or repeated chunks would change the hash.
                _chunk[0] = (byte)salt++;
                hash.AppendData(_chunk, 0, count);
                await stream.WriteAsync(_chunk.AsMemory(0, count));
                written += count;
            }

            _sha256 = Convert.ToHexString(hash.GetHashAndReset());
        }

        protected override bool TryComputeLength(out long length)
        {
            length = size;
            return knownLength;
        }

        private static byte[] CreateChunk()
        {
            var chunk = new byte[64 * 1024];
            new Random(42).NextBytes(chunk);
            return chunk;
        }
    }
}

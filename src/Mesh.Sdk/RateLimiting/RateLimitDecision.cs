using Mesh.Sdk.Routing;

namespace Mesh.Sdk.RateLimiting;

/// <summary>What the local rate limit filter decided for one request.</summary>
internal enum RateLimitOutcome
{
    /// <summary>The request goes on: the filter is not enabled for it, or a token was available.</summary>
    Allowed,

    /// <summary>Over the limit but not enforced: the request goes on with <see cref="RateLimitDecision.RequestHeaders"/> added.</summary>
    LimitedNotEnforced,

    /// <summary>Over the limit and enforced: answer locally with the status, body and response headers.</summary>
    Limited,
}

/// <summary>
/// The local rate limit filter's answer for one request. Decisions are precomputed per compiled configuration, so
/// checking a request allocates nothing.
/// </summary>
internal sealed class RateLimitDecision
{
    /// <summary>The body Envoy sends with a rate-limited response.</summary>
    public const string LimitedBody = "local_rate_limited";

    /// <summary>The request goes on unchanged.</summary>
    public static RateLimitDecision Allowed { get; } = new(RateLimitOutcome.Allowed, 200, 0, HeaderMutations.Empty, HeaderMutations.Empty);

    /// <summary>Creates a decision.</summary>
    public RateLimitDecision(RateLimitOutcome outcome, int statusCode, int grpcStatusCode, HeaderMutations responseHeaders, HeaderMutations requestHeaders)
    {
        Outcome = outcome;
        StatusCode = statusCode;
        GrpcStatusCode = grpcStatusCode;
        ResponseHeaders = responseHeaders;
        RequestHeaders = requestHeaders;
    }

    /// <summary>What to do with the request.</summary>
    public RateLimitOutcome Outcome { get; }

    /// <summary>Whether to answer locally (<see cref="RateLimitOutcome.Limited"/>).</summary>
    public bool IsLimited => Outcome == RateLimitOutcome.Limited;

    /// <summary>The HTTP status of the local answer: <c>status</c> when it is 400 or more, else 429.</summary>
    public int StatusCode { get; }

    /// <summary>
    /// The <c>grpc-status</c> of the local answer to a gRPC request (HTTP 200 with the status in trailers-only):
    /// RESOURCE_EXHAUSTED under <c>rate_limited_as_resource_exhausted</c>, else Envoy's mapping of the HTTP status
    /// (UNAVAILABLE for 429).
    /// </summary>
    public int GrpcStatusCode { get; }

    /// <summary>The body of the local answer (<c>local_rate_limited</c>, <c>text/plain</c>), also the gRPC message.</summary>
    public string Body => LimitedBody;

    /// <summary>Headers added to the local answer (<c>response_headers_to_add</c>).</summary>
    public HeaderMutations ResponseHeaders { get; }

    /// <summary>Headers added to a request that goes on over the limit (<c>request_headers_to_add_when_not_enforced</c>).</summary>
    public HeaderMutations RequestHeaders { get; }
}

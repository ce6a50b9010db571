using System.Globalization;
using Mesh.Sdk.Routing;

namespace Mesh.Sdk.Http;

/// <summary>
/// The <c>x-envoy-*</c> request headers Envoy's router reads to override the route's retry policy and timeouts, read
/// here the same way: the application is a trusted internal caller, as a workload is to its own sidecar (Envoy strips
/// these headers only from external requests at an edge). Like Envoy's router, the handler consumes them: they are
/// removed from the request before it (or a mirror of it) goes upstream. Headers Envoy's router reads for features the
/// handler does not have (hedging, <c>x-envoy-retriable-header-names</c>, <c>x-envoy-upstream-stream-duration-ms</c>,
/// <c>x-envoy-expected-rq-timeout-ms</c>) are left alone and go upstream unchanged. See docs/http.md.
/// </summary>
internal static class EnvoyRequestHeaders
{
    /// <summary>Retry conditions added to the route's <c>retry_on</c> (HTTP tokens).</summary>
    public const string RetryOn = "x-envoy-retry-on";

    /// <summary>Retry conditions added to the route's <c>retry_on</c> (gRPC tokens).</summary>
    public const string RetryGrpcOn = "x-envoy-retry-grpc-on";

    /// <summary>Replaces <c>num_retries</c> when some retry condition is in force.</summary>
    public const string MaxRetries = "x-envoy-max-retries";

    /// <summary>Statuses added to <c>retriable_status_codes</c>.</summary>
    public const string RetriableStatusCodes = "x-envoy-retriable-status-codes";

    /// <summary>Replaces the route timeout, in milliseconds (0: none).</summary>
    public const string UpstreamRequestTimeoutMs = "x-envoy-upstream-rq-timeout-ms";

    /// <summary>Replaces the per-try timeout, in milliseconds; ignored when not below the route timeout.</summary>
    public const string UpstreamRequestPerTryTimeoutMs = "x-envoy-upstream-rq-per-try-timeout-ms";

    /// <summary>Present: a timeout is answered 204 instead of 504.</summary>
    public const string TimeoutAltResponse = "x-envoy-upstream-rq-timeout-alt-response";

    private const string Prefix = "x-envoy-";

    /// <summary>Whether the request carries any <c>x-envoy-</c> header (one pass over its header names, no allocation).</summary>
    public static bool MayHaveAny(HttpRequestMessage request)
    {
        foreach (var header in request.Headers.NonValidated)
        {
            if (header.Key.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Applies and removes the headers Envoy's router consumes: the route's <paramref name="policy"/>, route
    /// <paramref name="timeout"/> and the status a timeout is answered with are replaced by what they say. A value that
    /// does not parse is ignored (and still removed), as Envoy does without <c>strict_check_headers</c>.
    /// </summary>
    public static void Consume(HttpRequestMessage request, ref RetryPolicy? policy, ref TimeSpan timeout, ref int timeoutStatus)
    {
        var headers = request.Headers;
        var retryOn = Take(headers, RetryOn);
        var retryGrpcOn = Take(headers, RetryGrpcOn);
        var maxRetries = Take(headers, MaxRetries);
        var codes = Take(headers, RetriableStatusCodes);
        var routeTimeout = Take(headers, UpstreamRequestTimeoutMs);
        var perTryTimeout = Take(headers, UpstreamRequestPerTryTimeoutMs);
        if (headers.Remove(TimeoutAltResponse))
        {
            timeoutStatus = 204;
        }

        if (routeTimeout is not null && TryMilliseconds(routeTimeout, out var routeMs))
        {
            timeout = routeMs == TimeSpan.Zero ? Timeout.InfiniteTimeSpan : routeMs;
        }

        if (retryOn is null && retryGrpcOn is null && policy is null)
        {
            // Envoy creates no retry state: the other retry headers have nothing to change.
            return;
        }

        var updated = policy ?? new RetryPolicy
        {
            RetryOn = Routing.RetryOn.None,
            NumRetries = 1,
            BaseInterval = RetryPolicy.DefaultBaseInterval,
            MaxInterval = RetryPolicy.DefaultBaseInterval * 10,
        };
        var flags = updated.RetryOn | Parse(retryOn, grpc: false) | Parse(retryGrpcOn, grpc: true);
        var retries = updated.NumRetries;
        if (flags != Routing.RetryOn.None && maxRetries is not null
            && uint.TryParse(maxRetries, NumberStyles.None, CultureInfo.InvariantCulture, out var max))
        {
            retries = max;
        }

        var statusCodes = updated.RetriableStatusCodes;
        if (codes is not null)
        {
            var list = new List<int>(statusCodes);
            foreach (var range in codes.AsSpan().Split(','))
            {
                if (int.TryParse(codes.AsSpan()[range].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var code))
                {
                    list.Add(code);
                }
            }

            statusCodes = [.. list];
        }

        var perTry = updated.PerTryTimeout;
        if (perTryTimeout is not null && TryMilliseconds(perTryTimeout, out var perTryMs))
        {
            perTry = perTryMs == TimeSpan.Zero ? null : perTryMs;
        }

        if (perTry is { } p && timeout != Timeout.InfiniteTimeSpan && p >= timeout)
        {
            // Envoy ignores a per-try timeout that is not below the route timeout.
            perTry = null;
        }

        policy = updated with { RetryOn = flags, NumRetries = retries, RetriableStatusCodes = statusCodes, PerTryTimeout = perTry };
    }

    private static string? Take(System.Net.Http.Headers.HttpRequestHeaders headers, string name)
    {
        if (!headers.NonValidated.TryGetValues(name, out var values))
        {
            return null;
        }

        var value = values.ToString();
        headers.Remove(name);
        return value;
    }

    private static bool TryMilliseconds(string value, out TimeSpan duration)
    {
        if (ulong.TryParse(value.AsSpan().Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var ms) && ms <= (ulong)TimeSpan.MaxValue.TotalMilliseconds / 2)
        {
            duration = TimeSpan.FromMilliseconds(ms);
            return true;
        }

        duration = default;
        return false;
    }

    // Envoy's parseRetryOn / parseRetryGrpcOn: unknown tokens are skipped; each header takes its own token set.
    private static RetryOn Parse(string? value, bool grpc)
    {
        var flags = Routing.RetryOn.None;
        if (value is null)
        {
            return flags;
        }

        foreach (var range in value.AsSpan().Split(','))
        {
            var token = value.AsSpan()[range].Trim().ToString();
            if (RetryPolicy.TryParseRetryOn(token, out var flag, out _) && IsGrpc(flag) == grpc)
            {
                flags |= flag;
            }
        }

        return flags;
    }

    private static bool IsGrpc(RetryOn flag)
        => (flag & (Routing.RetryOn.GrpcCancelled | Routing.RetryOn.GrpcDeadlineExceeded | Routing.RetryOn.GrpcInternal
                    | Routing.RetryOn.GrpcResourceExhausted | Routing.RetryOn.GrpcUnavailable)) != 0;
}

using System.Collections.Frozen;
using Envoy.Config.Route.V3;
using Google.Protobuf.WellKnownTypes;

namespace Mesh.Sdk.Routing;

/// <summary>The conditions of <c>retry_on</c>, one flag per token.</summary>
[Flags]
internal enum RetryOn
{
    /// <summary>No condition.</summary>
    None = 0,

    /// <summary><c>5xx</c>: any 5xx response, or a reset, connect failure or refused stream.</summary>
    Http5xx = 1 << 0,

    /// <summary><c>gateway-error</c>: 502, 503 or 504.</summary>
    GatewayError = 1 << 1,

    /// <summary><c>reset</c>: the upstream did not respond (disconnect, reset, read timeout).</summary>
    Reset = 1 << 2,

    /// <summary><c>reset-before-request</c>: reset before any request bytes were sent.</summary>
    ResetBeforeRequest = 1 << 3,

    /// <summary><c>connect-failure</c>: the connection could not be made.</summary>
    ConnectFailure = 1 << 4,

    /// <summary><c>envoy-ratelimited</c>: the response carries <c>x-envoy-ratelimited</c>.</summary>
    EnvoyRateLimited = 1 << 5,

    /// <summary><c>retriable-4xx</c>: 409.</summary>
    Retriable4xx = 1 << 6,

    /// <summary><c>refused-stream</c>: HTTP/2 REFUSED_STREAM.</summary>
    RefusedStream = 1 << 7,

    /// <summary><c>retriable-status-codes</c>: a status listed in <c>retriable_status_codes</c>.</summary>
    RetriableStatusCodes = 1 << 8,

    /// <summary><c>retriable-headers</c>: the response matches one of <c>retriable_headers</c>.</summary>
    RetriableHeaders = 1 << 9,

    /// <summary><c>http3-post-connect-failure</c>.</summary>
    Http3PostConnectFailure = 1 << 10,

    /// <summary>gRPC <c>cancelled</c> (status 1).</summary>
    GrpcCancelled = 1 << 16,

    /// <summary>gRPC <c>deadline-exceeded</c> (status 4).</summary>
    GrpcDeadlineExceeded = 1 << 17,

    /// <summary>gRPC <c>resource-exhausted</c> (status 8).</summary>
    GrpcResourceExhausted = 1 << 18,

    /// <summary>gRPC <c>internal</c> (status 13).</summary>
    GrpcInternal = 1 << 19,

    /// <summary>gRPC <c>unavailable</c> (status 14).</summary>
    GrpcUnavailable = 1 << 20,
}

/// <summary>How an attempt ended without a response, as Envoy's stream reset reasons tell them apart for <c>retry_on</c>.</summary>
internal enum UpstreamReset
{
    /// <summary>The connection could not be made: nothing of the request left.</summary>
    ConnectFailure,

    /// <summary>HTTP/2 RST_STREAM or GOAWAY with REFUSED_STREAM: the upstream did not process the request.</summary>
    RefusedStream,

    /// <summary>Any other reset or disconnect after the connection was made.</summary>
    Reset,

    /// <summary>The per-try timeout elapsed (Envoy resets the attempt locally).</summary>
    PerTryTimeout,
}

/// <summary>
/// A compiled route <c>retry_policy</c>. Defaults follow Envoy: one retry, back-off from 25 ms up to ten times the
/// base interval, per-try timeout unset (the route timeout bounds all tries), one host selection attempt.
/// </summary>
internal sealed record RetryPolicy
{
    /// <summary>Envoy's default base back-off interval.</summary>
    public static readonly TimeSpan DefaultBaseInterval = TimeSpan.FromMilliseconds(25);

    /// <summary>The type URL of Envoy's previous-hosts retry host predicate.</summary>
    public const string PreviousHostsTypeUrl = "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate";

    /// <summary>The response header an Envoy answering for its rate limit sets; such responses are retried only under <c>envoy-ratelimited</c>.</summary>
    public const string RateLimitedHeader = "x-envoy-ratelimited";

    /// <summary>The name of Envoy's previous-hosts retry host predicate.</summary>
    public const string PreviousHostsName = "envoy.retry_host_predicates.previous_hosts";

    private static readonly FrozenDictionary<string, RetryOn> Tokens = new Dictionary<string, RetryOn>(StringComparer.Ordinal)
    {
        ["5xx"] = RetryOn.Http5xx,
        ["gateway-error"] = RetryOn.GatewayError,
        ["reset"] = RetryOn.Reset,
        ["reset-before-request"] = RetryOn.ResetBeforeRequest,
        ["connect-failure"] = RetryOn.ConnectFailure,
        ["envoy-ratelimited"] = RetryOn.EnvoyRateLimited,
        ["retriable-4xx"] = RetryOn.Retriable4xx,
        ["refused-stream"] = RetryOn.RefusedStream,
        ["retriable-status-codes"] = RetryOn.RetriableStatusCodes,
        ["retriable-headers"] = RetryOn.RetriableHeaders,
        ["http3-post-connect-failure"] = RetryOn.Http3PostConnectFailure,
        ["cancelled"] = RetryOn.GrpcCancelled,
        ["deadline-exceeded"] = RetryOn.GrpcDeadlineExceeded,
        ["resource-exhausted"] = RetryOn.GrpcResourceExhausted,
        ["internal"] = RetryOn.GrpcInternal,
        ["unavailable"] = RetryOn.GrpcUnavailable,
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>The retry conditions.</summary>
    public required RetryOn RetryOn { get; init; }

    /// <summary>Retries after the first attempt. <value>Default 1.</value></summary>
    public required uint NumRetries { get; init; }

    /// <summary>Timeout of each attempt; <see langword="null"/> when unset.</summary>
    public TimeSpan? PerTryTimeout { get; init; }

    /// <summary>Idle timeout of each attempt; <see langword="null"/> when unset.</summary>
    public TimeSpan? PerTryIdleTimeout { get; init; }

    /// <summary>Back-off base interval. <value>Default 25 ms.</value></summary>
    public required TimeSpan BaseInterval { get; init; }

    /// <summary>Back-off upper bound. <value>Default 10 × <see cref="BaseInterval"/>.</value></summary>
    public required TimeSpan MaxInterval { get; init; }

    /// <summary>HTTP statuses retried under <see cref="RetryOn.RetriableStatusCodes"/>.</summary>
    public int[] RetriableStatusCodes { get; init; } = [];

    /// <summary>Response header matchers under <see cref="RetryOn.RetriableHeaders"/>; any one matching makes a response retriable.</summary>
    public HeaderMatch[] RetriableHeaders { get; init; } = [];

    /// <summary>Request header matchers that must all match for the request to be retried at all.</summary>
    public HeaderMatch[] RetriableRequestHeaders { get; init; } = [];

    /// <summary>Whether retries avoid hosts already tried (<c>previous_hosts</c> retry host predicate).</summary>
    public bool RetryOnDifferentHost { get; init; }

    /// <summary>Host picks per retry when <see cref="RetryOnDifferentHost"/> rejects a host. <value>Default 1.</value></summary>
    public long HostSelectionRetryMaxAttempts { get; init; } = 1;

    /// <summary>The <c>retry_on</c> tokens of <paramref name="retryOn"/>, in flag order (for diagnostics).</summary>
    public static string[] TokensOf(RetryOn retryOn)
    {
        var tokens = new List<string>();
        foreach (var flag in System.Enum.GetValues<RetryOn>())
        {
            if (flag != RetryOn.None && (retryOn & flag) == flag)
            {
                foreach (var (token, value) in Tokens)
                {
                    if (value == flag)
                    {
                        tokens.Add(token);
                    }
                }
            }
        }

        return [.. tokens];
    }

    /// <summary>Parses a <c>retry_on</c> value (comma separated tokens, blanks ignored).</summary>
    public static bool TryParseRetryOn(string value, out RetryOn retryOn, out string? error)
    {
        retryOn = RetryOn.None;
        error = null;
        foreach (var range in value.AsSpan().Split(','))
        {
            var token = value.AsSpan()[range].Trim();
            if (token.IsEmpty)
            {
                continue;
            }

            if (!Tokens.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(token, out var flag))
            {
                error = $"retry_on token '{token}' is unknown (known: {string.Join(", ", Tokens.Keys.Order(StringComparer.Ordinal))})";
                return false;
            }

            retryOn |= flag;
        }

        return true;
    }

    /// <summary>Compiles a wire retry policy; on failure <paramref name="error"/> says why.</summary>
    public static bool TryCompile(Envoy.Config.Route.V3.RetryPolicy policy, out RetryPolicy? compiled, out string? error)
    {
        compiled = null;
        if (!TryParseRetryOn(policy.RetryOn, out var retryOn, out error))
        {
            return false;
        }

        if (policy.RetryPriority is not null)
        {
            error = $"retry_priority '{policy.RetryPriority.Name}' is not supported";
            return false;
        }

        if (policy.RetryOptionsPredicates.Count > 0)
        {
            error = "retry_options_predicates are not supported";
            return false;
        }

        if (policy.RateLimitedRetryBackOff is not null)
        {
            error = "rate_limited_retry_back_off is not supported";
            return false;
        }

        var differentHost = false;
        foreach (var predicate in policy.RetryHostPredicate)
        {
            if (predicate.Name == PreviousHostsName || predicate.TypedConfig?.TypeUrl == PreviousHostsTypeUrl)
            {
                differentHost = true;
            }
            else
            {
                error = $"retry_host_predicate '{predicate.Name}' is not supported (only '{PreviousHostsName}')";
                return false;
            }
        }

        if (!TryDuration(policy.PerTryTimeout, "per_try_timeout", out var perTry, out error)
            || !TryDuration(policy.PerTryIdleTimeout, "per_try_idle_timeout", out var perTryIdle, out error)
            || !TryDuration(policy.RetryBackOff?.BaseInterval, "retry_back_off.base_interval", out var baseInterval, out error)
            || !TryDuration(policy.RetryBackOff?.MaxInterval, "retry_back_off.max_interval", out var maxInterval, out error))
        {
            return false;
        }

        if (policy.RetryBackOff is not null && baseInterval is null)
        {
            error = "retry_back_off.base_interval is required when retry_back_off is set";
            return false;
        }

        if (baseInterval is { } b && b <= TimeSpan.Zero)
        {
            error = "retry_back_off.base_interval must be greater than zero";
            return false;
        }

        var effectiveBase = baseInterval ?? DefaultBaseInterval;
        var effectiveMax = maxInterval ?? effectiveBase * 10;
        if (effectiveMax < effectiveBase)
        {
            error = $"retry_back_off.max_interval {effectiveMax} is below base_interval {effectiveBase}";
            return false;
        }

        var codes = new int[policy.RetriableStatusCodes.Count];
        for (var i = 0; i < codes.Length; i++)
        {
            var code = policy.RetriableStatusCodes[i];
            if (code is < 100 or > 599)
            {
                error = $"retriable_status_codes contains {code}, which is not an HTTP status";
                return false;
            }

            codes[i] = (int)code;
        }

        if (!TryCompileHeaders(policy.RetriableHeaders, "retriable_headers", out var headers, out error)
            || !TryCompileHeaders(policy.RetriableRequestHeaders, "retriable_request_headers", out var requestHeaders, out error))
        {
            return false;
        }

        if (policy.HostSelectionRetryMaxAttempts < 0)
        {
            error = "host_selection_retry_max_attempts is negative";
            return false;
        }

        compiled = new RetryPolicy
        {
            RetryOn = retryOn,
            NumRetries = policy.NumRetries ?? 1,
            PerTryTimeout = perTry,
            PerTryIdleTimeout = perTryIdle,
            BaseInterval = effectiveBase,
            MaxInterval = effectiveMax,
            RetriableStatusCodes = codes,
            RetriableHeaders = headers,
            RetriableRequestHeaders = requestHeaders,
            RetryOnDifferentHost = differentHost,
            HostSelectionRetryMaxAttempts = policy.HostSelectionRetryMaxAttempts == 0 ? 1 : policy.HostSelectionRetryMaxAttempts,
        };
        return true;
    }

    /// <summary>Whether an HTTP response status is retriable under this policy.</summary>
    public bool IsRetriableStatus(int status)
    {
        if ((RetryOn & RetryOn.Http5xx) != 0 && status is >= 500 and <= 599)
        {
            return true;
        }

        if ((RetryOn & RetryOn.GatewayError) != 0 && status is 502 or 503 or 504)
        {
            return true;
        }

        if ((RetryOn & RetryOn.Retriable4xx) != 0 && status == 409)
        {
            return true;
        }

        return (RetryOn & RetryOn.RetriableStatusCodes) != 0 && Array.IndexOf(RetriableStatusCodes, status) >= 0;
    }

    /// <summary>Whether a gRPC status code (from <c>grpc-status</c>) is retriable under this policy.</summary>
    public bool IsRetriableGrpcStatus(int code) => code switch
    {
        1 => (RetryOn & RetryOn.GrpcCancelled) != 0,
        4 => (RetryOn & RetryOn.GrpcDeadlineExceeded) != 0,
        8 => (RetryOn & RetryOn.GrpcResourceExhausted) != 0,
        13 => (RetryOn & RetryOn.GrpcInternal) != 0,
        14 => (RetryOn & RetryOn.GrpcUnavailable) != 0,
        _ => false,
    };

    /// <summary>
    /// Whether a response carrying <c>x-envoy-ratelimited</c> (<see cref="RateLimitedHeader"/>) is retried: only under
    /// <c>envoy-ratelimited</c>, whatever its status and the other conditions (Envoy's <c>wouldRetryFromHeaders</c>
    /// decides on that header before anything else).
    /// </summary>
    public bool RetriesRateLimited => (RetryOn & RetryOn.EnvoyRateLimited) != 0;

    /// <summary>Whether a failure to connect is retriable (<c>connect-failure</c>, <c>5xx</c>, <c>gateway-error</c>, <c>reset</c>, <c>reset-before-request</c>).</summary>
    public bool IsRetriableConnectFailure => IsRetriableReset(UpstreamReset.ConnectFailure);

    /// <summary>
    /// Whether an attempt that ended without a response is retried, as Envoy's <c>wouldRetryFromReset</c> decides:
    /// <c>reset</c>, <c>5xx</c> and <c>gateway-error</c> retry every kind; <c>reset-before-request</c> only a failure before
    /// any request byte left (a connect failure); <c>refused-stream</c> only an HTTP/2 REFUSED_STREAM;
    /// <c>connect-failure</c> only a connect failure. A per-try timeout is Envoy's local reset: retried under
    /// <c>reset</c>, <c>5xx</c> and <c>gateway-error</c>, never because <c>retriable_status_codes</c> lists 504.
    /// </summary>
    public bool IsRetriableReset(UpstreamReset kind)
    {
        if ((RetryOn & (RetryOn.Reset | RetryOn.Http5xx | RetryOn.GatewayError)) != 0)
        {
            return true;
        }

        return kind switch
        {
            UpstreamReset.ConnectFailure => (RetryOn & (RetryOn.ConnectFailure | RetryOn.ResetBeforeRequest)) != 0,
            UpstreamReset.RefusedStream => (RetryOn & RetryOn.RefusedStream) != 0,
            _ => false,
        };
    }

    /// <summary>
    /// The back-off before retry <paramref name="retry"/> (1-based), Envoy's fully jittered exponential back-off
    /// (<c>JitteredExponentialBackOffStrategy</c>): uniformly random in [0, min(2^(retry-1) × base, max)), so
    /// [0, 25 ms), [0, 50 ms), [0, 100 ms), [0, 200 ms), then [0, 250 ms) with the defaults.
    /// </summary>
    public TimeSpan BackOff(int retry, Random random)
    {
        var exponent = Math.Clamp(retry - 1, 0, 40);
        var baseTicks = BaseInterval.Ticks;
        var interval = baseTicks > MaxInterval.Ticks >> exponent ? MaxInterval.Ticks : baseTicks << exponent;
        return TimeSpan.FromTicks(random.NextInt64(Math.Max(interval, 1)));
    }

    private static bool TryCompileHeaders(IList<HeaderMatcher> matchers, string field, out HeaderMatch[] compiled, out string? error)
    {
        compiled = new HeaderMatch[matchers.Count];
        error = null;
        for (var i = 0; i < matchers.Count; i++)
        {
            if (!HeaderMatch.TryCompile(matchers[i], out var match, out error))
            {
                error = $"{field}[{i}]: {error}";
                return false;
            }

            compiled[i] = match!;
        }

        return true;
    }

    internal static bool TryDuration(Duration? duration, string field, out TimeSpan? value, out string? error)
    {
        value = null;
        error = null;
        if (duration is null)
        {
            return true;
        }

        if (duration.Seconds < 0 || duration.Nanos < 0 || duration.Seconds > 315_576_000_000L)
        {
            error = $"{field} {duration.Seconds}s{duration.Nanos}ns is negative or out of range";
            return false;
        }

        value = duration.ToTimeSpan();
        return true;
    }
}

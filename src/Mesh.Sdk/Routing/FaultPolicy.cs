using System.Globalization;
using Envoy.Extensions.Filters.Common.Fault.V3;
using Envoy.Extensions.Filters.Http.Fault.V3;

namespace Mesh.Sdk.Routing;

/// <summary>How a fault's delay is chosen.</summary>
internal enum FaultDelayKind
{
    /// <summary>No delay.</summary>
    None,

    /// <summary>A fixed delay.</summary>
    Fixed,

    /// <summary>The delay in milliseconds from the <c>x-envoy-fault-delay-request</c> request header.</summary>
    Header,
}

/// <summary>How a fault's abort is chosen.</summary>
internal enum FaultAbortKind
{
    /// <summary>No abort.</summary>
    None,

    /// <summary>Abort with a fixed HTTP status.</summary>
    Http,

    /// <summary>Abort with a fixed gRPC status.</summary>
    Grpc,

    /// <summary>Abort with the status from <c>x-envoy-fault-abort-request</c> or <c>x-envoy-fault-abort-grpc-request</c>.</summary>
    Header,
}

/// <summary>What the fault filter decided for one request.</summary>
/// <param name="Delay">The delay to inject before forwarding, if any.</param>
/// <param name="HttpStatus">The HTTP status to answer with instead of forwarding, if any.</param>
/// <param name="GrpcStatus">The gRPC status to answer with instead of forwarding, if any.</param>
internal readonly record struct FaultDecision(TimeSpan? Delay, int? HttpStatus, int? GrpcStatus)
{
    /// <summary>Whether the request is aborted.</summary>
    public bool IsAbort => HttpStatus is not null || GrpcStatus is not null;
}

/// <summary>
/// The fault filter (<c>envoy.filters.http.fault</c>) configuration in force for a route: the most specific
/// per-route override (weighted cluster, route, virtual host, route configuration), else the listener's filter
/// config. Overrides replace, never merge field by field, as in Envoy and gRPC.
/// </summary>
internal sealed record FaultPolicy
{
    /// <summary>Request header carrying a header-controlled delay in milliseconds.</summary>
    public const string DelayHeader = "x-envoy-fault-delay-request";

    /// <summary>Request header lowering the percentage of a header-controlled delay.</summary>
    public const string DelayPercentageHeader = "x-envoy-fault-delay-request-percentage";

    /// <summary>Request header carrying a header-controlled HTTP abort status.</summary>
    public const string AbortHeader = "x-envoy-fault-abort-request";

    /// <summary>Request header carrying a header-controlled gRPC abort status.</summary>
    public const string AbortGrpcHeader = "x-envoy-fault-abort-grpc-request";

    /// <summary>Request header lowering the percentage of a header-controlled abort.</summary>
    public const string AbortPercentageHeader = "x-envoy-fault-abort-request-percentage";

    /// <summary>The delay kind.</summary>
    public FaultDelayKind DelayKind { get; init; }

    /// <summary>The fixed delay.</summary>
    public TimeSpan FixedDelay { get; init; }

    /// <summary>The share of requests delayed. <value>0 when the wire percentage is unset.</value></summary>
    public Fraction DelayPercentage { get; init; }

    /// <summary>The abort kind.</summary>
    public FaultAbortKind AbortKind { get; init; }

    /// <summary>The fixed HTTP abort status (200-599).</summary>
    public int AbortHttpStatus { get; init; }

    /// <summary>The fixed gRPC abort status.</summary>
    public int AbortGrpcStatus { get; init; }

    /// <summary>The share of requests aborted. <value>0 when the wire percentage is unset.</value></summary>
    public Fraction AbortPercentage { get; init; }

    /// <summary>Request header matchers that must all match for any fault to apply.</summary>
    public HeaderMatch[] Headers { get; init; } = [];

    /// <summary>When set, faults apply only to requests routed to this cluster.</summary>
    public string? UpstreamCluster { get; init; }

    /// <summary>The most faults active at once across the listener; <see langword="null"/> for no limit.</summary>
    public uint? MaxActiveFaults { get; init; }

    /// <summary>Compiles a wire fault config; on failure <paramref name="error"/> says why.</summary>
    public static bool TryCompile(HTTPFault fault, out FaultPolicy? compiled, out string? error)
    {
        compiled = null;
        error = null;
        if (fault.DownstreamNodes.Count > 0)
        {
            error = "fault downstream_nodes is not supported";
            return false;
        }

        if (fault.ResponseRateLimit is not null)
        {
            error = "fault response_rate_limit is not supported";
            return false;
        }

        var delayKind = FaultDelayKind.None;
        var fixedDelay = TimeSpan.Zero;
        if (fault.Delay is { } delay)
        {
            switch (delay.FaultDelaySecifierCase)
            {
                case FaultDelay.FaultDelaySecifierOneofCase.FixedDelay:
                    if (!RetryPolicy.TryDuration(delay.FixedDelay, "fault delay fixed_delay", out var value, out error))
                    {
                        return false;
                    }

                    delayKind = FaultDelayKind.Fixed;
                    fixedDelay = value!.Value;
                    break;
                case FaultDelay.FaultDelaySecifierOneofCase.HeaderDelay:
                    delayKind = FaultDelayKind.Header;
                    break;
                default:
                    error = "fault delay has neither fixed_delay nor header_delay";
                    return false;
            }
        }

        var abortKind = FaultAbortKind.None;
        var httpStatus = 0;
        var grpcStatus = 0;
        if (fault.Abort is { } abort)
        {
            switch (abort.ErrorTypeCase)
            {
                case FaultAbort.ErrorTypeOneofCase.HttpStatus:
                    if (abort.HttpStatus is < 200 or > 599)
                    {
                        error = $"fault abort http_status {abort.HttpStatus} is outside 200-599";
                        return false;
                    }

                    abortKind = FaultAbortKind.Http;
                    httpStatus = (int)abort.HttpStatus;
                    break;
                case FaultAbort.ErrorTypeOneofCase.GrpcStatus:
                    if (abort.GrpcStatus > 16)
                    {
                        error = $"fault abort grpc_status {abort.GrpcStatus} is not a gRPC status code (0-16)";
                        return false;
                    }

                    abortKind = FaultAbortKind.Grpc;
                    grpcStatus = (int)abort.GrpcStatus;
                    break;
                case FaultAbort.ErrorTypeOneofCase.HeaderAbort:
                    abortKind = FaultAbortKind.Header;
                    break;
                default:
                    error = "fault abort has no http_status, grpc_status or header_abort";
                    return false;
            }
        }

        var headers = new HeaderMatch[fault.Headers.Count];
        for (var i = 0; i < headers.Length; i++)
        {
            if (!HeaderMatch.TryCompile(fault.Headers[i], out var match, out error))
            {
                error = $"fault headers[{i}]: {error}";
                return false;
            }

            headers[i] = match!;
        }

        compiled = new FaultPolicy
        {
            DelayKind = delayKind,
            FixedDelay = fixedDelay,
            DelayPercentage = Fraction.From(fault.Delay?.Percentage),
            AbortKind = abortKind,
            AbortHttpStatus = httpStatus,
            AbortGrpcStatus = grpcStatus,
            AbortPercentage = Fraction.From(fault.Abort?.Percentage),
            Headers = headers,
            UpstreamCluster = string.IsNullOrEmpty(fault.UpstreamCluster) ? null : fault.UpstreamCluster,
            MaxActiveFaults = fault.MaxActiveFaults,
        };
        return true;
    }

    /// <summary>
    /// Decides the delay and abort for one request routed to <paramref name="cluster"/>. The caller enforces
    /// <see cref="MaxActiveFaults"/>, injects the delay, then the abort.
    /// </summary>
    public FaultDecision Evaluate<TRequest>(in TRequest request, string cluster, Random random)
        where TRequest : IRouteRequest
    {
        if ((UpstreamCluster is not null && !string.Equals(UpstreamCluster, cluster, StringComparison.Ordinal))
            || !HeaderMatch.All(Headers, in request))
        {
            return default;
        }

        TimeSpan? delay = null;
        switch (DelayKind)
        {
            case FaultDelayKind.Fixed:
                if (DelayPercentage.Sample(random))
                {
                    delay = FixedDelay;
                }

                break;
            case FaultDelayKind.Header:
                if (request.TryGetHeader(DelayHeader, out var ms)
                    && ulong.TryParse(ms, NumberStyles.None, CultureInfo.InvariantCulture, out var millis)
                    && HeaderPercentage(in request, DelayPercentageHeader, DelayPercentage).Sample(random))
                {
                    delay = TimeSpan.FromMilliseconds(Math.Min(millis, (ulong)int.MaxValue));
                }

                break;
        }

        int? http = null;
        int? grpc = null;
        switch (AbortKind)
        {
            case FaultAbortKind.Http:
                if (AbortPercentage.Sample(random))
                {
                    http = AbortHttpStatus;
                }

                break;
            case FaultAbortKind.Grpc:
                if (AbortPercentage.Sample(random))
                {
                    grpc = AbortGrpcStatus;
                }

                break;
            case FaultAbortKind.Header:
                int? headerHttp = request.TryGetHeader(AbortHeader, out var h) && int.TryParse(h, NumberStyles.None, CultureInfo.InvariantCulture, out var hs) && hs is >= 200 and <= 599 ? hs : null;
                int? headerGrpc = request.TryGetHeader(AbortGrpcHeader, out var g) && int.TryParse(g, NumberStyles.None, CultureInfo.InvariantCulture, out var gs) && gs <= 16 ? gs : null;
                if ((headerHttp is not null || headerGrpc is not null)
                    && HeaderPercentage(in request, AbortPercentageHeader, AbortPercentage).Sample(random))
                {
                    http = headerHttp;
                    grpc = headerHttp is null ? headerGrpc : null;
                }

                break;
        }

        return new FaultDecision(delay, http, grpc);
    }

    private static Fraction HeaderPercentage<TRequest>(in TRequest request, string header, Fraction configured)
        where TRequest : IRouteRequest
    {
        // The header may only lower the configured numerator; the denominator stays as configured.
        if (request.TryGetHeader(header, out var value) && uint.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var numerator))
        {
            return configured with { Numerator = Math.Min(numerator, configured.Numerator) };
        }

        return configured;
    }
}

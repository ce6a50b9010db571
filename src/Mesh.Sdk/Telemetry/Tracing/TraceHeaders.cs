using System.Diagnostics;
using System.Net.Http.Headers;

namespace Mesh.Sdk.Telemetry.Tracing;

/// <summary>The trace context a request arrived with: the caller's span (default when none) and its sampling decision, if it made one.</summary>
internal readonly record struct IncomingTrace(ActivityContext Parent, bool? Sampled)
{
    public bool HasParent => Parent != default;
}

/// <summary>
/// Reads and writes the trace context headers the mesh speaks: W3C trace context (<c>traceparent</c>, <c>tracestate</c>)
/// and Zipkin B3, multi-header (<c>x-b3-traceid</c>, <c>x-b3-spanid</c>, <c>x-b3-parentspanid</c>, <c>x-b3-sampled</c>,
/// <c>x-b3-flags</c>) and single (<c>b3</c>). Accepted in that order: a valid <c>traceparent</c> wins, then the B3
/// headers, then <c>b3</c>; a sampling decision alone (<c>x-b3-sampled</c>, <c>b3: 0</c>) is honoured without a parent.
/// Both W3C and B3 multi-header are sent on every attempt, with the same ids.
/// </summary>
internal static class TraceHeaders
{
    public const string TraceParent = "traceparent";
    public const string TraceState = "tracestate";
    public const string B3TraceId = "x-b3-traceid";
    public const string B3SpanId = "x-b3-spanid";
    public const string B3ParentSpanId = "x-b3-parentspanid";
    public const string B3Sampled = "x-b3-sampled";
    public const string B3Flags = "x-b3-flags";
    public const string B3Single = "b3";
    public const string RequestId = "x-request-id";
    public const string ClientTraceId = "x-client-trace-id";

    /// <summary>Reads an incoming trace from the header values (each <see langword="null"/> when absent).</summary>
    public static IncomingTrace Parse(string? traceparent, string? tracestate, string? b3TraceId, string? b3SpanId, string? b3Sampled, string? b3Flags, string? b3)
    {
        if (traceparent is { Length: > 0 } && ActivityContext.TryParse(traceparent, tracestate, isRemote: true, out var w3c))
        {
            return new IncomingTrace(w3c, (w3c.TraceFlags & ActivityTraceFlags.Recorded) != 0);
        }

        bool? sampled = b3Flags == "1" ? true : ParseSampled(b3Sampled);
        if (b3TraceId is { Length: > 0 } && b3SpanId is { Length: > 0 } && TryTraceId(b3TraceId, out var traceId) && TrySpanId(b3SpanId, out var spanId))
        {
            return new IncomingTrace(new ActivityContext(traceId, spanId, sampled == true ? ActivityTraceFlags.Recorded : ActivityTraceFlags.None, isRemote: true), sampled);
        }

        if (b3 is { Length: > 0 } && TryParseSingle(b3, out var single))
        {
            return single;
        }

        return new IncomingTrace(default, sampled);
    }

    /// <summary>Reads the trace headers of an outgoing request (one the app or its own instrumentation already set).</summary>
    public static IncomingTrace Parse(HttpRequestHeaders headers)
        => Parse(Get(headers, TraceParent), Get(headers, TraceState), Get(headers, B3TraceId), Get(headers, B3SpanId), Get(headers, B3Sampled), Get(headers, B3Flags), Get(headers, B3Single));

    /// <summary>
    /// <c>b3: {traceid}-{spanid}[-{sampled}[-{parentspanid}]]</c>, or the decision alone (<c>0</c>, <c>1</c>, <c>d</c>).
    /// </summary>
    public static bool TryParseSingle(string value, out IncomingTrace trace)
    {
        trace = default;
        var span = value.AsSpan().Trim();
        if (span.Length == 1)
        {
            var decision = ParseSampled(span);
            trace = new IncomingTrace(default, decision);
            return decision is not null;
        }

        var dash = span.IndexOf('-');
        if (dash < 0 || !TryTraceId(span[..dash], out var traceId))
        {
            return false;
        }

        var rest = span[(dash + 1)..];
        dash = rest.IndexOf('-');
        var spanPart = dash < 0 ? rest : rest[..dash];
        if (!TrySpanId(spanPart, out var spanId))
        {
            return false;
        }

        bool? sampled = null;
        if (dash >= 0)
        {
            rest = rest[(dash + 1)..];
            dash = rest.IndexOf('-');
            sampled = ParseSampled(dash < 0 ? rest : rest[..dash]);
            if (sampled is null)
            {
                return false;
            }
        }

        trace = new IncomingTrace(new ActivityContext(traceId, spanId, sampled == true ? ActivityTraceFlags.Recorded : ActivityTraceFlags.None, isRemote: true), sampled);
        return true;
    }

    /// <summary>
    /// Sets the trace headers of <paramref name="span"/> on an outgoing attempt, replacing whatever trace headers the
    /// request carried (the propagated ones of the incoming request, or an earlier attempt's): <c>traceparent</c> (and
    /// <c>tracestate</c> when the span has one) and B3 multi-header; <c>b3</c> and <c>x-b3-flags</c> are removed, so
    /// the callee sees one context.
    /// </summary>
    public static void Inject(HttpRequestHeaders headers, Activity span)
    {
        var traceId = span.TraceId.ToHexString();
        var spanId = span.SpanId.ToHexString();
        var sampled = span.Recorded;
        Set(headers, TraceParent, string.Concat("00-", traceId, "-", spanId, sampled ? "-01" : "-00"));
        headers.Remove(TraceState);
        if (span.TraceStateString is { Length: > 0 } state)
        {
            headers.TryAddWithoutValidation(TraceState, state);
        }

        Set(headers, B3TraceId, traceId);
        Set(headers, B3SpanId, spanId);
        headers.Remove(B3ParentSpanId);
        if (span.ParentSpanId != default)
        {
            headers.TryAddWithoutValidation(B3ParentSpanId, span.ParentSpanId.ToHexString());
        }

        Set(headers, B3Sampled, sampled ? "1" : "0");
        headers.Remove(B3Single);
        headers.Remove(B3Flags);
    }

    private static void Set(HttpRequestHeaders headers, string name, string value)
    {
        headers.Remove(name);
        headers.TryAddWithoutValidation(name, value);
    }

    private static string? Get(HttpRequestHeaders headers, string name)
        => headers.NonValidated.TryGetValues(name, out var values) ? values.ToString() : null;

    private static bool? ParseSampled(ReadOnlySpan<char> value) => value switch
    {
        "1" or "d" or "true" => true,
        "0" or "false" => false,
        _ => null,
    };

    private static bool? ParseSampled(string? value) => value is null ? null : ParseSampled(value.AsSpan().Trim());

    /// <summary>A 16- or 32-digit hex trace id (64-bit ids are zero-padded on the left, as Zipkin does); all zeros is invalid.</summary>
    private static bool TryTraceId(ReadOnlySpan<char> hex, out ActivityTraceId id)
    {
        id = default;
        if (!(hex.Length is 16 or 32) || !IsHex(hex) || IsZero(hex))
        {
            return false;
        }

        Span<char> lower = stackalloc char[32];
        lower[..(32 - hex.Length)].Fill('0');
        hex.ToLowerInvariant(lower[(32 - hex.Length)..]);
        id = ActivityTraceId.CreateFromString(lower);
        return true;
    }

    private static bool TrySpanId(ReadOnlySpan<char> hex, out ActivitySpanId id)
    {
        id = default;
        if (hex.Length != 16 || !IsHex(hex) || IsZero(hex))
        {
            return false;
        }

        Span<char> lower = stackalloc char[16];
        hex.ToLowerInvariant(lower);
        id = ActivitySpanId.CreateFromString(lower);
        return true;
    }

    private static bool IsHex(ReadOnlySpan<char> value) => !value.ContainsAnyExcept("0123456789abcdefABCDEF");

    private static bool IsZero(ReadOnlySpan<char> value) => !value.ContainsAnyExcept('0');
}

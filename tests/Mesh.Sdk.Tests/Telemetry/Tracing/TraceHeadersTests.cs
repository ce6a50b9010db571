using System.Diagnostics;
using Mesh.Sdk.Telemetry.Tracing;

namespace Mesh.Sdk.Tests.Telemetry.Tracing;

public sealed class TraceHeadersTests
{
    [Fact]
    public void Parse_W3C_B3Multi_B3Single_AndTheRuleWhenSeveral()
    {
        var w3c = TraceHeaders.Parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", null, null, null, null, null, null);
        Assert.Equal("0af7651916cd43dd8448eb211c80319c", w3c.Parent.TraceId.ToHexString());
        Assert.Equal("b7ad6b7169203331", w3c.Parent.SpanId.ToHexString());
        Assert.True(w3c.Sampled);

        var multi = TraceHeaders.Parse(null, null, "463AC35C9F6413AD48485A3953BB6124", "a2fb4a1d1a96d312", "0", null, null);
        Assert.Equal("463ac35c9f6413ad48485a3953bb6124", multi.Parent.TraceId.ToHexString());
        Assert.False(multi.Sampled);

        // 64-bit ids are left-padded; x-b3-flags: 1 (debug) means sampled.
        var shortId = TraceHeaders.Parse(null, null, "80f198ee56343ba8", "e457b5a2e4d86bd1", null, "1", null);
        Assert.Equal("000000000000000080f198ee56343ba8", shortId.Parent.TraceId.ToHexString());
        Assert.True(shortId.Sampled);

        var single = TraceHeaders.Parse(null, null, null, null, null, null, "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90");
        Assert.Equal("80f198ee56343ba864fe8b2a57d3eff7", single.Parent.TraceId.ToHexString());
        Assert.Equal("e457b5a2e4d86bd1", single.Parent.SpanId.ToHexString());
        Assert.True(single.Sampled);

        // Decision only.
        Assert.Equal(new IncomingTrace(default, false), TraceHeaders.Parse(null, null, null, null, null, null, "0"));
        Assert.Equal(new IncomingTrace(default, true), TraceHeaders.Parse(null, null, null, null, "1", null, null));

        // traceparent wins over B3, B3 multi over b3; an invalid traceparent falls through.
        var both = TraceHeaders.Parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", null, "463ac35c9f6413ad48485a3953bb6124", "a2fb4a1d1a96d312", "1", null, "80f198ee56343ba8-e457b5a2e4d86bd1-1");
        Assert.Equal("0af7651916cd43dd8448eb211c80319c", both.Parent.TraceId.ToHexString());
        Assert.False(both.Sampled);
        var invalid = TraceHeaders.Parse("garbage", null, "463ac35c9f6413ad48485a3953bb6124", "a2fb4a1d1a96d312", null, null, null);
        Assert.Equal("463ac35c9f6413ad48485a3953bb6124", invalid.Parent.TraceId.ToHexString());
        Assert.Null(invalid.Sampled);

        // Garbage and all-zero ids are no context.
        Assert.False(TraceHeaders.Parse(null, null, "00000000000000000000000000000000", "a2fb4a1d1a96d312", null, null, null).HasParent);
        Assert.False(TraceHeaders.Parse(null, null, null, null, null, null, "xyz-abc").HasParent);
    }

    [Fact]
    public void Inject_WritesW3CAndB3ForTheSpan_ReplacingWhatTheRequestCarried()
    {
        using var parent = new Activity("server").SetIdFormat(ActivityIdFormat.W3C).Start();
        using var span = new Activity("client").SetIdFormat(ActivityIdFormat.W3C).Start();
        span.ActivityTraceFlags = ActivityTraceFlags.Recorded;
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://web:9080/");
        request.Headers.TryAddWithoutValidation("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124");
        request.Headers.TryAddWithoutValidation("b3", "463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-1");
        request.Headers.TryAddWithoutValidation("traceparent", "00-463ac35c9f6413ad48485a3953bb6124-a2fb4a1d1a96d312-01");

        TraceHeaders.Inject(request.Headers, span);

        var traceId = span.TraceId.ToHexString();
        Assert.Equal([$"00-{traceId}-{span.SpanId.ToHexString()}-01"], request.Headers.GetValues("traceparent"));
        Assert.Equal([traceId], request.Headers.GetValues("x-b3-traceid"));
        Assert.Equal([span.SpanId.ToHexString()], request.Headers.GetValues("x-b3-spanid"));
        Assert.Equal([parent.SpanId.ToHexString()], request.Headers.GetValues("x-b3-parentspanid"));
        Assert.Equal(["1"], request.Headers.GetValues("x-b3-sampled"));
        Assert.False(request.Headers.Contains("b3"));
        Assert.False(request.Headers.Contains("tracestate"));
    }
}

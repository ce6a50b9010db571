using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.Routing;
using Wire = Envoy.Config.Route.V3;

namespace Mesh.Sdk.Tests.Routing;

public sealed class RetryPolicyTests
{
    private static RetryPolicy Compile(Wire.RetryPolicy policy)
    {
        Assert.True(RetryPolicy.TryCompile(policy, out var compiled, out var error), error);
        return compiled!;
    }

    [Theory]
    [InlineData("5xx", "Http5xx")]
    [InlineData("gateway-error", "GatewayError")]
    [InlineData("reset", "Reset")]
    [InlineData("reset-before-request", "ResetBeforeRequest")]
    [InlineData("connect-failure", "ConnectFailure")]
    [InlineData("envoy-ratelimited", "EnvoyRateLimited")]
    [InlineData("retriable-4xx", "Retriable4xx")]
    [InlineData("refused-stream", "RefusedStream")]
    [InlineData("retriable-status-codes", "RetriableStatusCodes")]
    [InlineData("retriable-headers", "RetriableHeaders")]
    [InlineData("http3-post-connect-failure", "Http3PostConnectFailure")]
    [InlineData("cancelled", "GrpcCancelled")]
    [InlineData("deadline-exceeded", "GrpcDeadlineExceeded")]
    [InlineData("internal", "GrpcInternal")]
    [InlineData("resource-exhausted", "GrpcResourceExhausted")]
    [InlineData("unavailable", "GrpcUnavailable")]
    public void TryParseRetryOn_EachToken(string token, string expected)
    {
        Assert.True(RetryPolicy.TryParseRetryOn(token, out var flags, out var error), error);
        Assert.Equal(expected, flags.ToString());
    }

    [Fact]
    public void TryParseRetryOn_IstioDefaultListWithBlanks()
    {
        Assert.True(RetryPolicy.TryParseRetryOn("connect-failure, refused-stream,,unavailable,cancelled,retriable-status-codes", out var flags, out _));
        Assert.Equal(RetryOn.ConnectFailure | RetryOn.RefusedStream | RetryOn.GrpcUnavailable | RetryOn.GrpcCancelled | RetryOn.RetriableStatusCodes, flags);
        Assert.True(RetryPolicy.TryParseRetryOn(string.Empty, out flags, out _));
        Assert.Equal(RetryOn.None, flags);
    }

    [Fact]
    public void TryParseRetryOn_UnknownTokenIsNamed()
    {
        Assert.False(RetryPolicy.TryParseRetryOn("5xx,5XX", out _, out var error));
        Assert.StartsWith("retry_on token '5XX' is unknown (known: ", error);
    }

    [Fact]
    public void TryCompile_AppliesEnvoyDefaults()
    {
        var policy = Compile(new Wire.RetryPolicy { RetryOn = "5xx" });
        Assert.Equal(1u, policy.NumRetries);
        Assert.Null(policy.PerTryTimeout);
        Assert.Equal(TimeSpan.FromMilliseconds(25), policy.BaseInterval);
        Assert.Equal(TimeSpan.FromMilliseconds(250), policy.MaxInterval);
        Assert.False(policy.RetryOnDifferentHost);
        Assert.Equal(1, policy.HostSelectionRetryMaxAttempts);
    }

    [Fact]
    public void TryCompile_ReadsEveryField()
    {
        var wire = new Wire.RetryPolicy
        {
            RetryOn = "retriable-status-codes,retriable-headers",
            NumRetries = 3,
            PerTryTimeout = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(200)),
            PerTryIdleTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
            RetryBackOff = new Wire.RetryPolicy.Types.RetryBackOff { BaseInterval = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(100)) },
            HostSelectionRetryMaxAttempts = 5,
        };
        wire.RetriableStatusCodes.Add([418, 503]);
        wire.RetryHostPredicate.Add(new Wire.RetryPolicy.Types.RetryHostPredicate { Name = "envoy.retry_host_predicates.previous_hosts" });
        wire.RetriableHeaders.Add(new Wire.HeaderMatcher { Name = "x-retry", PresentMatch = true });
        var policy = Compile(wire);
        Assert.Equal(3u, policy.NumRetries);
        Assert.Equal(TimeSpan.FromMilliseconds(200), policy.PerTryTimeout);
        Assert.Equal(TimeSpan.FromSeconds(1), policy.PerTryIdleTimeout);
        Assert.Equal(TimeSpan.FromMilliseconds(100), policy.BaseInterval);
        Assert.Equal(TimeSpan.FromSeconds(1), policy.MaxInterval);
        Assert.Equal([418, 503], policy.RetriableStatusCodes);
        Assert.True(policy.RetryOnDifferentHost);
        Assert.Equal(5, policy.HostSelectionRetryMaxAttempts);
        Assert.True(policy.RetriableHeaders[0].Matches("1"));
        Assert.False(policy.RetriableHeaders[0].Matches((string?)null));
    }

    [Fact]
    public void TryCompile_AcceptsPreviousHostsByTypeUrl()
    {
        var wire = new Wire.RetryPolicy { RetryOn = "5xx" };
        wire.RetryHostPredicate.Add(new Wire.RetryPolicy.Types.RetryHostPredicate { Name = "custom-name", TypedConfig = new Any { TypeUrl = RetryPolicy.PreviousHostsTypeUrl } });
        Assert.True(Compile(wire).RetryOnDifferentHost);
    }

    [Theory]
    [InlineData("5xx", 500, true)]
    [InlineData("5xx", 503, true)]
    [InlineData("5xx", 429, false)]
    [InlineData("gateway-error", 502, true)]
    [InlineData("gateway-error", 500, false)]
    [InlineData("retriable-4xx", 409, true)]
    [InlineData("retriable-4xx", 404, false)]
    [InlineData("retriable-status-codes", 418, true)]
    [InlineData("retriable-status-codes", 500, false)]
    [InlineData("connect-failure", 503, false)]
    public void IsRetriableStatus(string retryOn, int status, bool expected)
    {
        var wire = new Wire.RetryPolicy { RetryOn = retryOn };
        wire.RetriableStatusCodes.Add(418);
        Assert.Equal(expected, Compile(wire).IsRetriableStatus(status));
    }

    [Theory]
    [InlineData("cancelled", 1)]
    [InlineData("deadline-exceeded", 4)]
    [InlineData("resource-exhausted", 8)]
    [InlineData("internal", 13)]
    [InlineData("unavailable", 14)]
    public void IsRetriableGrpcStatus_OnlyTheConfiguredCode(string retryOn, int code)
    {
        var policy = Compile(new Wire.RetryPolicy { RetryOn = retryOn });
        for (var c = 0; c <= 16; c++)
        {
            Assert.Equal(c == code, policy.IsRetriableGrpcStatus(c));
        }
    }

    // Envoy's wouldRetryFromReset: reset, 5xx and gateway-error retry every reset; the others one kind each. A per-try
    // timeout is a local reset: 'retriable-status-codes' listing 504 does not retry it, nor does 'deadline-exceeded'.
    [Theory]
    [InlineData("connect-failure", true, false, false, false)]
    [InlineData("reset-before-request", true, false, false, false)]
    [InlineData("refused-stream", false, true, false, false)]
    [InlineData("reset", true, true, true, true)]
    [InlineData("5xx", true, true, true, true)]
    [InlineData("gateway-error", true, true, true, true)]
    [InlineData("retriable-status-codes", false, false, false, false)]
    [InlineData("deadline-exceeded,unavailable,cancelled", false, false, false, false)]
    [InlineData("connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes", true, true, false, false)]
    public void IsRetriableReset_TellsTheKindsApartAsEnvoy(string retryOn, bool connectFailure, bool refusedStream, bool reset, bool perTryTimeout)
    {
        var wire = new Wire.RetryPolicy { RetryOn = retryOn };
        wire.RetriableStatusCodes.Add([503, 504]);
        var policy = Compile(wire);
        Assert.Equal(
            (connectFailure, refusedStream, reset, perTryTimeout),
            (policy.IsRetriableReset(UpstreamReset.ConnectFailure), policy.IsRetriableReset(UpstreamReset.RefusedStream),
             policy.IsRetriableReset(UpstreamReset.Reset), policy.IsRetriableReset(UpstreamReset.PerTryTimeout)));
        Assert.Equal(connectFailure, policy.IsRetriableConnectFailure);
    }

    [Theory]
    [InlineData("envoy-ratelimited", true)]
    [InlineData("5xx,gateway-error,retriable-status-codes,retriable-headers", false)]
    public void RetriesRateLimited_OnlyUnderItsToken(string retryOn, bool expected)
        => Assert.Equal(expected, Compile(new Wire.RetryPolicy { RetryOn = retryOn }).RetriesRateLimited);

    [Fact]
    public void BackOff_IsEnvoysJitteredExponential_DoublingFromBaseAndCapped()
    {
        // JitteredExponentialBackOffStrategy: retry n waits uniformly in [0, min(2^(n-1) x base, max)), base 25 ms, max 250 ms.
        var policy = Compile(new Wire.RetryPolicy { RetryOn = "5xx" });
        var random = new Random(5);
        var expected = new[] { 25.0, 50, 100, 200, 250, 250, 250 };
        for (var retry = 1; retry <= expected.Length; retry++)
        {
            var max = TimeSpan.Zero;
            for (var i = 0; i < 4000; i++)
            {
                var backOff = policy.BackOff(retry, random);
                Assert.InRange(backOff, TimeSpan.Zero, TimeSpan.FromMilliseconds(expected[retry - 1]) - TimeSpan.FromTicks(1));
                max = backOff > max ? backOff : max;
            }

            // 4000 uniform draws: the largest lies within 1 % of the bound.
            Assert.InRange(max.TotalMilliseconds, expected[retry - 1] * 0.99, expected[retry - 1]);
        }
    }

    [Fact]
    public void BackOff_HonoursRetryBackOffSettings()
    {
        var policy = Compile(new Wire.RetryPolicy
        {
            RetryOn = "5xx",
            RetryBackOff = new Wire.RetryPolicy.Types.RetryBackOff
            {
                BaseInterval = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(100)),
                MaxInterval = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(300)),
            },
        });
        var random = new Random(9);
        var expected = new[] { 100.0, 200, 300, 300 };
        for (var retry = 1; retry <= expected.Length; retry++)
        {
            var max = TimeSpan.Zero;
            for (var i = 0; i < 4000; i++)
            {
                var backOff = policy.BackOff(retry, random);
                max = backOff > max ? backOff : max;
            }

            Assert.InRange(max.TotalMilliseconds, expected[retry - 1] * 0.99, expected[retry - 1] - 0.0001);
        }
    }
}

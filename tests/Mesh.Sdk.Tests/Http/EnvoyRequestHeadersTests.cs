using Mesh.Sdk.Http;
using Mesh.Sdk.Routing;
using Wire = Envoy.Config.Route.V3;

namespace Mesh.Sdk.Tests.Http;

public sealed class EnvoyRequestHeadersTests
{
    private static RetryPolicy Policy(string retryOn, uint retries = 2)
    {
        Assert.True(RetryPolicy.TryCompile(new Wire.RetryPolicy { RetryOn = retryOn, NumRetries = retries }, out var policy, out var error), error);
        return policy!;
    }

    private static HttpRequestMessage Request(params (string Name, string Value)[] headers)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, "http://reviews:9080/");
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        return request;
    }

    [Fact]
    public void RetryHeaders_AddConditionsAndCodes_ReplaceTheCount_AndAreRemoved()
    {
        using var request = Request(
            ("x-envoy-retry-on", "5xx, bogus ,reset"),
            ("x-envoy-retry-grpc-on", "unavailable,5xx"),
            ("x-envoy-max-retries", "4"),
            ("x-envoy-retriable-status-codes", "418,x"),
            ("x-other", "kept"));
        RetryPolicy? policy = Policy("connect-failure");
        var timeout = Timeout.InfiniteTimeSpan;
        var status = 504;
        Assert.True(EnvoyRequestHeaders.MayHaveAny(request));
        EnvoyRequestHeaders.Consume(request, ref policy, ref timeout, ref status);

        // Unknown tokens are skipped; each header takes only its own kind of token (Envoy's parseRetryOn / parseRetryGrpcOn).
        Assert.Equal(RetryOn.ConnectFailure | RetryOn.Http5xx | RetryOn.Reset | RetryOn.GrpcUnavailable, policy!.RetryOn);
        Assert.Equal(4u, policy.NumRetries);
        Assert.Equal([418], policy.RetriableStatusCodes);
        Assert.Equal(["x-other"], request.Headers.Select(h => h.Key));
        Assert.False(EnvoyRequestHeaders.MayHaveAny(request));
    }

    [Fact]
    public void RetryOnHeader_WithoutARoutePolicy_RetriesOnceByDefault()
    {
        using var request = Request(("x-envoy-retry-on", "gateway-error"));
        RetryPolicy? policy = null;
        var timeout = TimeSpan.FromSeconds(15);
        var status = 504;
        EnvoyRequestHeaders.Consume(request, ref policy, ref timeout, ref status);
        Assert.Equal((RetryOn.GatewayError, 1u), (policy!.RetryOn, policy.NumRetries));
        Assert.Equal((TimeSpan.FromMilliseconds(25), TimeSpan.FromMilliseconds(250)), (policy.BaseInterval, policy.MaxInterval));
    }

    [Fact]
    public void MaxRetries_WithoutAnyRetryCondition_ChangesNothing()
    {
        using var request = Request(("x-envoy-max-retries", "5"));
        RetryPolicy? policy = null;
        var timeout = Timeout.InfiniteTimeSpan;
        var status = 504;
        EnvoyRequestHeaders.Consume(request, ref policy, ref timeout, ref status);
        Assert.Null(policy);
        Assert.Empty(request.Headers);
    }

    [Fact]
    public void TimeoutHeaders_ReplaceTheRouteAndPerTryTimeouts()
    {
        using var request = Request(("x-envoy-upstream-rq-timeout-ms", "1500"), ("x-envoy-upstream-rq-per-try-timeout-ms", "200"), ("x-envoy-upstream-rq-timeout-alt-response", ""));
        RetryPolicy? policy = Policy("5xx");
        var timeout = TimeSpan.FromSeconds(15);
        var status = 504;
        EnvoyRequestHeaders.Consume(request, ref policy, ref timeout, ref status);
        Assert.Equal((TimeSpan.FromMilliseconds(1500), TimeSpan.FromMilliseconds(200), 204), (timeout, policy!.PerTryTimeout!.Value, status));

        // 0 means no timeout; a per-try timeout not below the route timeout is ignored; a bad value is ignored.
        using var second = Request(("x-envoy-upstream-rq-timeout-ms", "0"), ("x-envoy-upstream-rq-per-try-timeout-ms", "nope"));
        EnvoyRequestHeaders.Consume(second, ref policy, ref timeout, ref status);
        Assert.Equal(Timeout.InfiniteTimeSpan, timeout);
        Assert.Equal(TimeSpan.FromMilliseconds(200), policy!.PerTryTimeout);
        using var third = Request(("x-envoy-upstream-rq-timeout-ms", "100"), ("x-envoy-upstream-rq-per-try-timeout-ms", "100"));
        EnvoyRequestHeaders.Consume(third, ref policy, ref timeout, ref status);
        Assert.Equal((TimeSpan.FromMilliseconds(100), (TimeSpan?)null), (timeout, policy!.PerTryTimeout));
    }
}

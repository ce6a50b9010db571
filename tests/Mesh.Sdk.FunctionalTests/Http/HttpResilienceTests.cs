using System.Diagnostics;
using System.Net;
using Mesh.Sdk.FunctionalTests.Infrastructure;

namespace Mesh.Sdk.FunctionalTests.Http;

/// <summary>Faults, retries, timeouts, circuit breaking and outlier detection on HttpClient.</summary>
public sealed class HttpResilienceTests(ReviewsFixture fixture) : IClassFixture<ReviewsFixture>
{
    private MeshHarness Mesh => fixture.Mesh;

    [Fact]
    public async Task FaultDelay_DelaysEveryRequestAtLeastTheConfiguredTime()
    {
        await Mesh.ApplyAsync("""
            - name: delayed
              fault:
                delay:
                  fixedDelay: 300ms
                  percentage: {value: 100}
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v2}
            """);
        for (var i = 0; i < 3; i++)
        {
            var watch = Stopwatch.StartNew();
            var (response, reply) = await Mesh.GetAsync("/delayed");
            watch.Stop();
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("v2", reply!.Version);
            Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(295), $"elapsed {watch.Elapsed.TotalMilliseconds} ms");
        }
    }

    [Fact]
    public async Task FaultAbort_ReturnsTheStatusWithoutReachingTheBackend()
    {
        await Mesh.ApplyAsync("""
            - name: aborted
              fault:
                abort:
                  httpStatus: 418
                  percentage: {value: 100}
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v2}
            """);
        Mesh.ResetBackends();
        for (var i = 0; i < 5; i++)
        {
            var (response, _) = await Mesh.GetAsync("/aborted");
            Assert.Equal((HttpStatusCode)418, response.StatusCode);
            Assert.Equal("FI", string.Join(",", response.Headers.GetValues("x-mesh-response-flags")));
        }

        Assert.Equal(0, Mesh.Backends.Sum(b => b.Count));
    }

    [Fact]
    public async Task Retries_TwoFailuresThenSuccess_ThreeBackendHitsOneClientSuccess()
    {
        await Mesh.ApplyAsync("""
            - name: retried
              retries:
                attempts: 3
                retryOn: 5xx
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v2}
            """);
        Mesh.ResetBackends();
        var v2 = Mesh.Backend("reviews-v2-a");
        v2.FailNext(2, 503);
        var (response, reply) = await Mesh.GetAsync("/retried");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("v2", reply!.Version);
        Assert.Equal(3, v2.Count);

        // Attempts exhausted: 1 + 3 backend hits and the last upstream answer reaches the client.
        v2.Reset();
        v2.FailNext(10, 503);
        var (failed, _) = await Mesh.GetAsync("/retried");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, failed.StatusCode);
        Assert.Equal(4, v2.Count);
        Assert.Equal("reviews-v2-a", string.Join(",", failed.Headers.GetValues("x-backend-workload")));
        v2.Reset();
    }

    [Fact]
    public async Task Retries_OnDifferentHostAfterA5xx()
    {
        await Mesh.ApplyAsync("""
            - name: retried-v1
              retries:
                attempts: 1
                retryOn: 5xx
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v1}
            """);
        Mesh.ResetBackends();
        var a = Mesh.Backend("reviews-v1-a");
        var b = Mesh.Backend("reviews-v1-b");
        a.AlwaysAnswer(503);
        for (var i = 0; i < 10; i++)
        {
            var (response, reply) = await Mesh.GetAsync("/v1");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("reviews-v1-b", reply!.Workload);
        }

        // Round robin alternates, and a retry on 'b' moves the cursor back to 'a': after the first request every
        // first attempt lands on 'a' (503) and its one retry on 'b' (previous host excluded).
        Assert.Equal(10, b.Count);
        Assert.InRange(a.Count, 9, 10);
        a.Reset();
        b.Reset();
    }

    [Fact]
    public async Task PerTryTimeout_RetriesThenAnswers504()
    {
        await Mesh.ApplyAsync("""
            - name: slow
              timeout: 10s
              retries:
                attempts: 2
                perTryTimeout: 200ms
                retryOn: 5xx
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v2}
            """);
        Mesh.ResetBackends();
        var v2 = Mesh.Backend("reviews-v2-a");
        v2.Delay(TimeSpan.FromSeconds(2));
        var watch = Stopwatch.StartNew();
        var (response, _) = await Mesh.GetAsync("/slow");
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Equal("UT", string.Join(",", response.Headers.GetValues("x-mesh-response-flags")));
        Assert.Contains("per-try timeout", response.ReasonPhrase, StringComparison.Ordinal);
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(590), $"elapsed {watch.Elapsed.TotalMilliseconds} ms");
        Assert.Equal(3, v2.Count);
        v2.Reset();
    }

    [Fact]
    public async Task RouteTimeout_Answers504()
    {
        await Mesh.ApplyAsync("""
            - name: bounded
              timeout: 300ms
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v2}
            """);
        Mesh.ResetBackends();
        var v2 = Mesh.Backend("reviews-v2-a");
        v2.Delay(TimeSpan.FromSeconds(3));
        var watch = Stopwatch.StartNew();
        var (response, _) = await Mesh.GetAsync("/bounded");
        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Contains("route 'bounded' timeout 00:00:00.3000000 elapsed", response.ReasonPhrase, StringComparison.Ordinal);
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(295), $"elapsed {watch.Elapsed.TotalMilliseconds} ms");
        Assert.Equal(1, v2.Count);
        v2.Reset();
    }

    [Fact]
    public async Task CallerCancellation_IsHonoured()
    {
        await Mesh.ApplyAsync("""
            - name: cancellable
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v2}
            """);
        var v2 = Mesh.Backend("reviews-v2-a");
        v2.Delay(TimeSpan.FromSeconds(3));
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Mesh.Http.GetAsync(MeshHarness.BaseUrl + "/cancel", cts.Token));
        v2.Reset();
    }

    [Fact]
    public async Task CircuitBreakerOverflow_IsRejectedWithAClearError()
    {
        await Mesh.ApplyAsync(
            """
            - name: guarded
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v2}
            """,
            trafficPolicy: """
            connectionPool:
              http:
                http2MaxRequests: 1
            """);
        await Mesh.WaitUntilAsync(
            () => Mesh.Runtime.Clusters.TryGetCluster("outbound|9080|v2|reviews.default.svc.cluster.local", out var c) && c.CircuitBreakers.Default.Requests.Limit == 1,
            "cluster v2 with max_requests 1");
        var v2 = Mesh.Backend("reviews-v2-a");
        v2.Delay(TimeSpan.FromSeconds(1));
        var first = Mesh.GetAsync("/guarded");
        while (v2.Count == 0)
        {
            await Task.Delay(5);
        }

        var rejected = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Mesh.GetAsync("/guarded")));
        var (ok, _) = await first;
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        foreach (var (response, _) in rejected)
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.Equal("true", string.Join(",", response.Headers.GetValues("x-envoy-overloaded")));
            Assert.Equal(
                "Mesh.Sdk: cluster 'outbound|9080|v2|reviews.default.svc.cluster.local' is over its max_requests limit of 1; the request was not sent (circuit breaker)",
                response.ReasonPhrase);
            var error = Assert.Throws<HttpRequestException>(() => response.EnsureSuccessStatusCode());
            Assert.Contains("max_requests limit of 1", error.Message, StringComparison.Ordinal);
        }

        Assert.Equal(1, v2.Count);
        v2.Reset();
    }

    [Fact]
    public async Task OutlierDetection_EjectsAfterConsecutive5xxAndReturnsAfterTheEjectionTime()
    {
        await Mesh.ApplyAsync(
            """
            - name: detected
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v1}
            """,
            trafficPolicy: """
            outlierDetection:
              consecutive5xxErrors: 3
              interval: 100ms
              baseEjectionTime: 1s
              maxEjectionPercent: 100
            """);

        // RDS can arrive before the CDS update that carries the detection settings: wait for those too.
        const string V1 = "outbound|9080|v1|reviews.default.svc.cluster.local";
        await Mesh.WaitUntilAsync(
            () => Mesh.Runtime.Clusters.TryGetCluster(V1, out var c) && c.OutlierDetector?.Settings.Consecutive5xx == 3,
            "cluster v1 with outlier detection");
        Mesh.ResetBackends();
        var good = Mesh.Backend("reviews-v1-a");
        var bad = Mesh.Backend("reviews-v1-b");
        bad.AlwaysAnswer(500);
        var failures = 0;
        for (var i = 0; i < 30; i++)
        {
            var (response, _) = await Mesh.GetAsync("/outlier");
            if (response.StatusCode != HttpStatusCode.OK)
            {
                failures++;
            }
        }

        var ejectedAt = Stopwatch.StartNew();
        // Ejected exactly at the third consecutive 5xx: the bad host saw 3 requests, the good one the other 27.
        Mesh.Runtime.Clusters.TryGetCluster(V1, out var v1);
        var states = string.Join(", ", v1!.LoadBalancer.Endpoints.All.Select(e => $"{e.Key} ejected={e.State.Outlier.IsEjected} c5xx={e.State.Outlier.Consecutive5xx}"));
        Assert.True(bad.Count == 3, $"bad saw {bad.Count}; detector {v1.OutlierDetector?.Settings.Consecutive5xx}; {states}\n{Mesh.Dump()}");
        Assert.Equal(3, failures);
        Assert.Equal(27, good.Count);

        bad.AlwaysAnswer(0);
        var before = bad.Count;
        while (bad.Count == before && ejectedAt.Elapsed < TimeSpan.FromSeconds(5))
        {
            var (response, _) = await Mesh.GetAsync("/outlier");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await Task.Delay(20);
        }

        // Back after the base ejection time (1 s), found by the next 100 ms interval.
        Assert.True(bad.Count > before, "the ejected host did not return within 5 s\n" + Mesh.Dump());
        Assert.True(ejectedAt.Elapsed >= TimeSpan.FromMilliseconds(900), $"returned after {ejectedAt.Elapsed.TotalMilliseconds} ms");
        bad.Reset();
    }
}

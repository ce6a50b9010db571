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
    public async Task PerTryTimeout_IsNotRetriedUnderRetriableStatusCode504Alone()
    {
        // Envoy resets an attempt at its per-try timeout and retries that reset under reset, 5xx or gateway-error
        // only; retriable_status_codes [504] retries 504 responses, not timeouts.
        await Mesh.ApplyAsync("""
            - name: slow-504
              timeout: 10s
              retries:
                attempts: 2
                perTryTimeout: 200ms
                retryOn: retriable-status-codes,504
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v2}
            """);
        Mesh.ResetBackends();
        var v2 = Mesh.Backend("reviews-v2-a");
        v2.Delay(TimeSpan.FromSeconds(2));
        var (timedOut, _) = await Mesh.GetAsync("/slow-504");
        Assert.Equal(HttpStatusCode.GatewayTimeout, timedOut.StatusCode);
        Assert.Equal("UT", string.Join(",", timedOut.Headers.GetValues("x-mesh-response-flags")));
        Assert.Equal(1, v2.Count);

        // A 504 the upstream answers is retried by the same policy.
        v2.Reset();
        v2.FailNext(1, 504);
        var (answered, reply) = await Mesh.GetAsync("/slow-504");
        Assert.Equal((HttpStatusCode.OK, "v2"), (answered.StatusCode, reply!.Version));
        Assert.Equal(2, v2.Count);
    }

    [Fact]
    public async Task EnvoyRequestHeaders_OverrideRetriesAndTimeouts_AndAreNotForwarded()
    {
        // attempts: 0 (no retry policy, no timeout): the application asks for retries and a timeout per request, as
        // Envoy's router lets an internal caller.
        await Mesh.ApplyAsync("""
            - name: plain
              retries:
                attempts: 0
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v2}
            """);
        Mesh.ResetBackends();
        var v2 = Mesh.Backend("reviews-v2-a");
        v2.FailNext(3, 503);
        var (response, reply) = await Mesh.GetAsync("/headers", ("x-envoy-retry-on", "5xx"), ("x-envoy-max-retries", "3"));
        Assert.Equal((HttpStatusCode.OK, 4), (response.StatusCode, v2.Count));
        // The router consumes the override headers; only the metadata exchange headers (x-envoy-peer-metadata*) go on.
        Assert.DoesNotContain(reply!.Headers.Keys, k => k.StartsWith("x-envoy-", StringComparison.OrdinalIgnoreCase)
            && !k.StartsWith("x-envoy-peer-metadata", StringComparison.OrdinalIgnoreCase));

        v2.Reset();
        v2.Delay(TimeSpan.FromSeconds(3));
        var (timedOut, _) = await Mesh.GetAsync("/headers", ("x-envoy-upstream-rq-timeout-ms", "200"));
        Assert.Equal(HttpStatusCode.GatewayTimeout, timedOut.StatusCode);
        Assert.Contains("timeout 00:00:00.2000000 elapsed", timedOut.ReasonPhrase, StringComparison.Ordinal);
        var (alternative, _) = await Mesh.GetAsync("/headers", ("x-envoy-upstream-rq-timeout-ms", "200"), ("x-envoy-upstream-rq-timeout-alt-response", "true"));
        Assert.Equal(HttpStatusCode.NoContent, alternative.StatusCode);
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
        await ApplyV2WithMaxRequestsOneAsync("guarded");
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

    private const string V2Cluster = "outbound|9080|v2|reviews.default.svc.cluster.local";

    /// <summary>A route named <paramref name="routeName"/> to subset v2, whose cluster allows one request at a time; returns once the client has it.</summary>
    private async Task ApplyV2WithMaxRequestsOneAsync(string routeName)
    {
        await Mesh.ApplyAsync(
            $$"""
            - name: {{routeName}}
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v2}
            """,
            trafficPolicy: """
            connectionPool:
              http:
                http2MaxRequests: 1
            """);
        await Mesh.WaitUntilAsync(
            () => Mesh.Runtime.Clusters.TryGetCluster(V2Cluster, out var c) && c.CircuitBreakers.Default.Requests.Limit == 1,
            "cluster v2 with max_requests 1");
    }

    [Fact]
    public async Task MaxConnectionsAndMaxPending_TwoInFlightOneWaitsOneRejected()
    {
        await Mesh.ApplyAsync(
            """
            - name: pooled
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v2}
            """,
            trafficPolicy: """
            connectionPool:
              tcp:
                maxConnections: 2
              http:
                http1MaxPendingRequests: 1
            """);
        await Mesh.WaitUntilAsync(
            () => Mesh.Runtime.Clusters.TryGetCluster(V2Cluster, out var c) && c.CircuitBreakers.Default.Connections.Limit == 2 && c.CircuitBreakers.Default.PendingRequests.Limit == 1,
            "cluster v2 with max_connections 2 and max_pending_requests 1");
        Mesh.Runtime.Clusters.TryGetCluster(V2Cluster, out var cluster);
        var breakers = cluster!.CircuitBreakers.Default;
        var v2 = Mesh.Backend("reviews-v2-a");
        v2.Hold();

        var calls = Enumerable.Range(0, 4).Select(_ => Mesh.GetAsync("/pooled")).ToArray();
        await Mesh.WaitUntilAsync(() => v2.InFlight == 2 && breakers.PendingRequests.Count == 1 && calls.Count(c => c.IsCompleted) == 1, "2 requests at the backend, 1 pending, 1 answered");

        // The pending request stays pending while both connections are busy.
        await Task.Delay(300);
        Assert.Equal((2, 2, 1L, 2L), (v2.InFlight, v2.Count, breakers.PendingRequests.Count, breakers.Connections.Count));
        var (rejected, _) = await calls.Single(c => c.IsCompleted);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, rejected.StatusCode);
        Assert.Equal("true", string.Join(",", rejected.Headers.GetValues("x-envoy-overloaded")));
        Assert.Equal("UO", string.Join(",", rejected.Headers.GetValues("x-mesh-response-flags")));
        Assert.Equal(
            $"Mesh.Sdk: cluster '{V2Cluster}' is over its max_pending_requests limit of 1; the request was not sent (circuit breaker)",
            rejected.ReasonPhrase);

        v2.ReleaseHeld();
        var answered = await Task.WhenAll(calls.Where(c => !c.IsCompleted || c.Result.Response != rejected)).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(3, answered.Length);
        Assert.All(answered, a => Assert.Equal((HttpStatusCode.OK, "v2"), (a.Response.StatusCode, a.Reply!.Version)));
        Assert.Equal((3, 2), (v2.Count, v2.MaxInFlight));
        Assert.Equal((0L, 0L, 0L), (breakers.Connections.Count, breakers.PendingRequests.Count, breakers.Requests.Count));
    }

    [Fact]
    public async Task StreamedBody_HoldsItsMaxRequestsSlotUntilReadToTheEnd()
    {
        await ApplyV2WithMaxRequestsOneAsync("streamed");
        Mesh.Runtime.Clusters.TryGetCluster(V2Cluster, out var cluster);
        var breakers = cluster!.CircuitBreakers.Default;
        var endpoint = cluster.LoadBalancer.Endpoints.All.Single();
        var v2 = Mesh.Backend("reviews-v2-a");
        v2.Hold(body: true);

        using var streamed = await Mesh.Http.SendAsync(new HttpRequestMessage(HttpMethod.Get, MeshHarness.BaseUrl + "/streamed"), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, streamed.StatusCode);
        var body = new StreamReader(await streamed.Content.ReadAsStreamAsync());
        Assert.Equal("first", await body.ReadLineAsync());

        // Headers and part of the body are in: the request still holds its slot, its connection and its endpoint.
        Assert.Equal((1L, 1L, 1), (breakers.Requests.Count, breakers.Connections.Count, endpoint.State.ActiveRequests));
        var (overflow, _) = await Mesh.GetAsync("/streamed");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, overflow.StatusCode);
        Assert.Contains("over its max_requests limit of 1", overflow.ReasonPhrase, StringComparison.Ordinal);

        v2.ReleaseHeld();
        Assert.Equal("second", await body.ReadLineAsync());
        Assert.Null(await body.ReadLineAsync());
        Assert.Equal((0L, 0L, 0), (breakers.Requests.Count, breakers.Connections.Count, endpoint.State.ActiveRequests));
        var (next, reply) = await Mesh.GetAsync("/streamed");
        Assert.Equal((HttpStatusCode.OK, "v2"), (next.StatusCode, reply!.Version));

        // A response disposed unread gives its slot back too, once: later requests still fit the limit of 1.
        v2.Hold(body: true);
        var unread = await Mesh.Http.SendAsync(new HttpRequestMessage(HttpMethod.Get, MeshHarness.BaseUrl + "/streamed"), HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(1L, breakers.Requests.Count);
        unread.Dispose();
        unread.Dispose();
        Assert.Equal((0L, 0L, 0), (breakers.Requests.Count, breakers.Connections.Count, endpoint.State.ActiveRequests));
        v2.ReleaseHeld();
        for (var i = 0; i < 3; i++)
        {
            var (again, _) = await Mesh.GetAsync("/streamed");
            Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        }

        Assert.Equal(0L, breakers.Requests.Count);
    }

    [Fact]
    public async Task CancelledWhileReadingTheBody_GivesTheSlotBack()
    {
        await ApplyV2WithMaxRequestsOneAsync("cancelled-body");
        Mesh.Runtime.Clusters.TryGetCluster(V2Cluster, out var cluster);
        var breakers = cluster!.CircuitBreakers.Default;
        var v2 = Mesh.Backend("reviews-v2-a");
        v2.Hold(body: true);

        // The default completion option buffers the body inside HttpClient; cancelling that read gives the slot back.
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Mesh.Http.GetAsync(MeshHarness.BaseUrl + "/cancelled-body", cts.Token));
        Assert.Equal((0L, 0L), (breakers.Requests.Count, breakers.Connections.Count));
        v2.ReleaseHeld();
        var (next, _) = await Mesh.GetAsync("/cancelled-body");
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);
        Assert.Equal(0L, breakers.Requests.Count);
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

using System.Diagnostics;
using Grpc.Core;
using Grpc.Net.Client;
using Mesh.Sdk.FunctionalTests.Grpc.Greeter;
using Mesh.Sdk.FunctionalTests.Grpc.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;
using static Mesh.Sdk.FunctionalTests.Grpc.Infrastructure.GrpcTestServices;

namespace Mesh.Sdk.FunctionalTests.Grpc;

/// <summary>
/// <c>Grpc.Net.Client</c> through <c>xds:///</c> targets against real Kestrel gRPC workloads and the real control
/// plane: routing, weighted split, faults, retries, timeouts, outlier ejection and return, consistent hashing, circuit
/// breaking and live route changes.
/// </summary>
public sealed partial class GrpcMeshTests(GrpcMeshFixture fixture, ITestOutputHelper output) : IClassFixture<GrpcMeshFixture>
{
    private const string Unavailable = "status Unavailable";

    private static readonly TimeSpan CallDeadline = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task WeightedSplit_SendsSharesWithinTolerance()
    {
        using var channel = fixture.CreateChannel(Split);
        var client = new Greeter.Greeter.GreeterClient(channel);
        const int calls = 500;
        var v2 = 0;
        for (var i = 0; i < calls; i++)
        {
            var reply = await client.SayHelloAsync(new HelloRequest { Name = "split" }, deadline: Deadline());
            v2 += reply.Version == "v2" ? 1 : 0;
        }

        // 80/20 over 500 calls: the standard deviation of the v2 share is 1.8 %; 6 % is more than three of them.
        var share = v2 / (double)calls;
        Assert.InRange(share, 0.14, 0.26);
    }

    [Fact]
    public async Task MethodRoute_SendsOneMethodToV2AndTheOtherToV1()
    {
        using var channel = fixture.CreateChannel(Method);
        var client = new Greeter.Greeter.GreeterClient(channel);
        await AssertMethodRouteAsync(client);
    }

    [Fact]
    public async Task AddGrpcClient_WithXdsAddress_RoutesPerMethod()
    {
        var client = fixture.Services.GetRequiredService<Greeter.Greeter.GreeterClient>();
        await AssertMethodRouteAsync(client);
    }

    [Fact]
    public async Task PlainForAddress_WithServiceProvider_RoutesPerMethod()
    {
        // No UseMesh: the resolver and balancer come from the service provider alone.
        using var channel = GrpcChannel.ForAddress(GrpcMeshFixture.Target(Method), new GrpcChannelOptions
        {
            ServiceProvider = fixture.Services,
            Credentials = ChannelCredentials.Insecure,
        });
        await AssertMethodRouteAsync(new Greeter.Greeter.GreeterClient(channel));
    }

    [Fact]
    public async Task HeaderRoute_SendsMatchingMetadataToV2Exactly()
    {
        using var channel = fixture.CreateChannel(Header);
        var client = new Greeter.Greeter.GreeterClient(channel);
        var canary = new Metadata { { "x-canary", "yes" } };
        var other = new Metadata { { "x-canary", "no" } };
        var versions = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < 40; i++)
        {
            var withHeader = await client.SayHelloAsync(new HelloRequest(), canary, Deadline());
            var without = await client.SayHelloAsync(new HelloRequest(), i % 2 == 0 ? other : null, Deadline());
            Count(versions, "canary:" + withHeader.Version);
            Count(versions, "other:" + without.Version);
        }

        Assert.Equal(new Dictionary<string, int> { ["canary:v2"] = 40, ["other:v1"] = 40 }, versions);
    }

    [Fact]
    public async Task AbortFault_ReturnsConfiguredStatus_AndNoCallReachesTheBackend()
    {
        using var channel = fixture.CreateChannel(Abort);
        var client = new Greeter.Greeter.GreeterClient(channel);
        var before = fixture.V1A.Calls + fixture.V1B.Calls;
        for (var i = 0; i < 10; i++)
        {
            var grpc = await Assert.ThrowsAsync<RpcException>(async () => await client.SayHelloAsync(new HelloRequest(), deadline: Deadline()));
            Assert.Equal(StatusCode.ResourceExhausted, grpc.StatusCode);

            // httpStatus 404 maps to UNIMPLEMENTED, as gRPC maps HTTP statuses.
            var http = await Assert.ThrowsAsync<RpcException>(async () => await client.SayHelloAsync(new HelloRequest(), new Metadata { { "x-abort", "http" } }, Deadline()));
            Assert.Equal(StatusCode.Unimplemented, http.StatusCode);
        }

        Assert.Equal(before, fixture.V1A.Calls + fixture.V1B.Calls);
    }

    [Fact]
    public async Task DelayFault_DelaysEachCallByTheConfiguredTime()
    {
        using var channel = fixture.CreateChannel(Delay);
        var client = new Greeter.Greeter.GreeterClient(channel);
        await client.SayHelloAsync(new HelloRequest(), deadline: Deadline()); // connect first
        var elapsed = new List<double>();
        for (var i = 0; i < 5; i++)
        {
            var watch = Stopwatch.StartNew();
            var reply = await client.SayHelloAsync(new HelloRequest(), deadline: Deadline());
            elapsed.Add(watch.Elapsed.TotalMilliseconds);
            Assert.Equal("v1", reply.Version);
        }

        // 400 ms less 2 % for timer granularity (timers may fire a millisecond early).
        Assert.All(elapsed, ms => Assert.InRange(ms, 392, 2000));
    }

    [Fact]
    public async Task Retries_OnUnavailable_AreCountedAtTheBackend()
    {
        using var channel = fixture.CreateChannel(Retry);
        var client = new Greeter.Greeter.GreeterClient(channel);

        // attempts: 3, retryOn: unavailable. Two failures then success: three calls at v2, the caller sees OK.
        var key = "retry-" + Guid.NewGuid().ToString("N");
        var reply = await client.SayHelloAsync(new HelloRequest { FailKey = key, FailTimes = 2, FailCode = (int)StatusCode.Unavailable }, deadline: Deadline());
        Assert.Equal("v2", reply.Version);
        Assert.Equal(3, fixture.V2.CallsWithKey(key));

        // Five failures exceed three retries: four calls, then the caller sees the last UNAVAILABLE.
        var exhausted = "retry-" + Guid.NewGuid().ToString("N");
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await client.SayHelloAsync(
            new HelloRequest { FailKey = exhausted, FailTimes = 5, FailCode = (int)StatusCode.Unavailable }, deadline: Deadline()));
        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Equal(4, fixture.V2.CallsWithKey(exhausted));

        // INTERNAL is not in retryOn: one call.
        var notRetried = "retry-" + Guid.NewGuid().ToString("N");
        var internalError = await Assert.ThrowsAsync<RpcException>(async () => await client.SayHelloAsync(
            new HelloRequest { FailKey = notRetried, FailTimes = 1, FailCode = (int)StatusCode.Internal }, deadline: Deadline()));
        Assert.Equal(StatusCode.Internal, internalError.StatusCode);
        Assert.Equal(1, fixture.V2.CallsWithKey(notRetried));
    }

    [Fact]
    public async Task RouteTimeout_EndsSlowCallsWithDeadlineExceeded()
    {
        using var channel = fixture.CreateChannel(GrpcTestServices.Deadline);
        var client = new Greeter.Greeter.GreeterClient(channel);
        var fast = await client.SayHelloAsync(new HelloRequest { DelayMs = 10 }, deadline: Deadline());
        Assert.Equal("v1", fast.Version);

        var watch = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await client.SayHelloAsync(new HelloRequest { DelayMs = 5000 }, deadline: Deadline()));
        watch.Stop();
        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        Assert.InRange(watch.Elapsed.TotalMilliseconds, 280, 2500);
    }

    [Fact]
    public async Task OutlierDetection_EjectsTheFailingHost()
    {
        using var channel = fixture.CreateChannel(Outlier);
        var client = new Greeter.Greeter.GreeterClient(channel);
        var badBefore = fixture.OutlierBad.Calls;
        var outcomes = await CallSeriallyAsync(client, Stopwatch.StartNew(), calls: 40);

        // consecutive5xxErrors: 3 ejects the bad host after its third consecutive failure, for 60 s; the route has
        // retries off (attempts: 0), so each of those three calls fails and no later call reaches the bad host.
        Assert.Equal(3, fixture.OutlierBad.Calls - badBefore);
        Assert.Equal(3, outcomes.Count(o => o.Outcome == Unavailable));
        Assert.Equal(Enumerable.Repeat("outlier-good", 20), outcomes.Skip(20).Select(o => o.Outcome));
    }

    [Fact]
    public async Task OutlierDetection_EjectedHostGetsTrafficBackAfterTheBaseEjectionTime()
    {
        using var channel = fixture.CreateChannel(OutlierReturn);
        var client = new Greeter.Greeter.GreeterClient(channel);
        var (good, bad) = (fixture.RecoveringGood, fixture.RecoveringBad);
        var clock = Stopwatch.StartNew();
        var badBefore = bad.Calls;
        bad.FailAllWith = StatusCode.Unavailable;
        List<CallOutcome> ejecting;
        try
        {
            ejecting = await CallSeriallyAsync(client, clock, calls: 30);
        }
        finally
        {
            bad.FailAllWith = null;
        }

        // Ejected at its third consecutive UNAVAILABLE: three failed calls, the other 27 answered by the good host.
        Assert.Equal(3, bad.Calls - badBefore);
        Assert.Equal(3, ejecting.Count(o => o.Outcome == Unavailable));
        Assert.Equal(27, ejecting.Count(o => o.Outcome == good.Name));
        var ejectedAt = ejecting.Last(o => o.Outcome == Unavailable).Ended;

        // The bad host answers OK again; probing every 20 ms, it is picked again only after baseEjectionTime (1 s),
        // found by the next 100 ms interval sweep. Every call meanwhile succeeds on the good host.
        var returning = await CallSeriallyAsync(client, clock, calls: 250, until: o => o.Outcome == bad.Name, pause: TimeSpan.FromMilliseconds(20));
        var back = returning.LastOrDefault(o => o.Outcome == bad.Name);
        Assert.True(back is not null, $"'{bad.Name}' got no call within {returning.Count} calls ({(clock.Elapsed - ejectedAt).TotalMilliseconds:F0} ms after its ejection)");
        var after = back.Started - ejectedAt;
        output.WriteLine($"'{bad.Name}' picked again {after.TotalMilliseconds:F0} ms after its ejection, on call {returning.Count}");
        Assert.Equal(Enumerable.Repeat(good.Name, returning.Count - 1), returning.SkipLast(1).Select(o => o.Outcome));
        Assert.Equal(4, bad.Calls - badBefore);
        Assert.InRange(after.TotalMilliseconds, 900, 2500);
    }

    [Fact]
    public async Task Retries_WithPreviousHosts_MoveToAnotherHost()
    {
        // Round robin over a good and an always-UNAVAILABLE host, no outlier detection; istiod's retry policy adds
        // the previous_hosts predicate, so every call the bad host fails is retried on the good one.
        using var channel = fixture.CreateChannel(RetryHost);
        var client = new Greeter.Greeter.GreeterClient(channel);
        var badBefore = fixture.OutlierBad.Calls;
        var workloads = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            workloads.Add((await client.SayHelloAsync(new HelloRequest(), deadline: Deadline())).Workload);
        }

        // The bad host did take first attempts (a retry's pick advances round robin too, as in Envoy, so most first
        // picks land on it), and each of them was answered by the good host.
        Assert.Equal(Enumerable.Repeat("outlier-good", 20), workloads);
        Assert.InRange(fixture.OutlierBad.Calls - badBefore, 5, 20);
    }

    [Fact]
    public async Task CircuitBreaker_RejectsCallsOverMaxRequests()
    {
        using var channel = fixture.CreateChannel(Breaker);
        var client = new Greeter.Greeter.GreeterClient(channel);
        await client.SayHelloAsync(new HelloRequest(), deadline: Deadline()); // connect first
        var calls = Enumerable.Range(0, 6).Select(async _ =>
        {
            try
            {
                await client.SayHelloAsync(new HelloRequest { DelayMs = 600 }, deadline: Deadline());
                return "ok";
            }
            catch (RpcException ex)
            {
                return ex.StatusCode + ": " + ex.Status.Detail;
            }
        }).ToArray();
        var outcomes = await Task.WhenAll(calls);

        // http2MaxRequests: 2 → max_requests 2: two calls run, four are rejected naming the cluster and the limit.
        Assert.Equal(2, outcomes.Count(o => o == "ok"));
        Assert.All(outcomes.Where(o => o != "ok"), o => Assert.Equal(
            $"Unavailable: Cluster 'outbound|{GrpcMeshFixture.ServicePort}|v1|{GrpcMeshFixture.Host(Breaker)}' is over its max_requests limit of 2.", o));
    }

    [Fact]
    public async Task RouteChange_WhileCalling_ShiftsTrafficWithinOneSecond_WithNoFailedCall()
    {
        using var channel = fixture.CreateChannel(Shift);
        var client = new Greeter.Greeter.GreeterClient(channel);
        Assert.Equal("v1", (await client.SayHelloAsync(new HelloRequest(), deadline: Deadline())).Version);

        var failures = new List<string>();
        var replies = new List<(TimeSpan At, string Version)>();
        var clock = Stopwatch.StartNew();
        TimeSpan? changedAt = null;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(4));
        var workers = Enumerable.Range(0, 4).Select(async _ =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var reply = await client.SayHelloAsync(new HelloRequest(), deadline: Deadline());
                    lock (replies)
                    {
                        replies.Add((clock.Elapsed, reply.Version));
                    }
                }
                catch (RpcException ex)
                {
                    lock (failures)
                    {
                        failures.Add(ex.Status.ToString());
                    }
                }
            }
        }).ToArray();

        await Task.Delay(TimeSpan.FromSeconds(1));
        changedAt = clock.Elapsed;
        fixture.WriteVirtualService(Shift, SingleRoute(Shift, "v2"));
        await Task.WhenAll(workers);

        Assert.True(failures.Count == 0, $"{failures.Count} failed calls: {string.Join("; ", failures.Distinct())}");
        var firstV2 = replies.Where(r => r.Version == "v2").Select(r => r.At).DefaultIfEmpty(TimeSpan.MaxValue).Min();
        Assert.True(firstV2 - changedAt.Value < TimeSpan.FromSeconds(1), $"first v2 reply {(firstV2 - changedAt.Value).TotalMilliseconds} ms after the change");

        // Once v2 answered, v1 may only finish calls already routed: none starts later than 100 ms after.
        Assert.DoesNotContain(replies, r => r.Version == "v1" && r.At > firstV2 + TimeSpan.FromMilliseconds(100));
        Assert.True(replies.Count > 100, $"only {replies.Count} calls in 4 s");
    }

    private static async Task AssertMethodRouteAsync(Greeter.Greeter.GreeterClient client)
    {
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < 30; i++)
        {
            var hello = await client.SayHelloAsync(new HelloRequest(), deadline: Deadline());
            var goodbye = await client.SayGoodbyeAsync(new HelloRequest(), deadline: Deadline());
            Count(seen, hello.Method + ":" + hello.Version);
            Count(seen, goodbye.Method + ":" + goodbye.Version);
        }

        Assert.Equal(new Dictionary<string, int> { ["SayHello:v1"] = 30, ["SayGoodbye:v2"] = 30 }, seen);
    }

    /// <summary>
    /// SayHello <paramref name="calls"/> times one after the other (fewer if <paramref name="until"/> holds for an
    /// outcome), <paramref name="pause"/> apart: each outcome is the answering workload or <c>status Code</c>, with when
    /// the call started and ended on <paramref name="clock"/>.
    /// </summary>
    private static async Task<List<CallOutcome>> CallSeriallyAsync(
        Greeter.Greeter.GreeterClient client, Stopwatch clock, int calls, Func<CallOutcome, bool>? until = null, TimeSpan pause = default)
    {
        var outcomes = new List<CallOutcome>(calls);
        for (var i = 0; i < calls; i++)
        {
            var started = clock.Elapsed;
            string outcome;
            try
            {
                outcome = (await client.SayHelloAsync(new HelloRequest(), deadline: Deadline())).Workload;
            }
            catch (RpcException ex)
            {
                outcome = "status " + ex.StatusCode;
            }

            var call = new CallOutcome(outcome, started, clock.Elapsed);
            outcomes.Add(call);
            if (until?.Invoke(call) == true)
            {
                break;
            }

            if (pause > TimeSpan.Zero)
            {
                await Task.Delay(pause);
            }
        }

        return outcomes;
    }

    private static void Count(Dictionary<string, int> counts, string key) => counts[key] = counts.GetValueOrDefault(key) + 1;

    private static DateTime Deadline() => DateTime.UtcNow + CallDeadline;

    private sealed record CallOutcome(string Outcome, TimeSpan Started, TimeSpan Ended);
}

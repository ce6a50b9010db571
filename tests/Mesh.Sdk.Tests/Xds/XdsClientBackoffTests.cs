using Mesh.Sdk.Tests.Xds.Fakes;
using Mesh.Sdk.Xds.Internal;
using static Mesh.Sdk.Tests.Xds.Fakes.TestResources;

namespace Mesh.Sdk.Tests.Xds;

public sealed class XdsClientBackoffTests
{
    [Fact]
    public async Task UnreachableServer_RetriesOnGrpcScheduleCappedAt3Seconds_NeverEarly()
    {
        // NextDouble 0.5 makes the jitter factor exactly 1: delays 1, 1.6, 2.56 s, then 3 s (gRPC's would go on
        // 4.096, 6.5536 s: a control plane back after 10 s would wait up to 6 s for the client).
        await using var h = new XdsClientHarness();
        h.Transport.Unreachable = true;
        h.Client.AddListener(ListenerName);
        var start = h.Time.GetUtcNow();
        h.Client.Start();
        await h.Transport.WaitForOpenCountAsync(1);

        double[] expected = [1, 1.6, 2.56, 3, 3];
        for (var i = 0; i < expected.Length; i++)
        {
            await h.Time.WaitForTimersAsync(i + 1);
            h.Time.Advance(TimeSpan.FromSeconds(expected[i]) - TimeSpan.FromMilliseconds(1));
            await Task.Delay(30);
            Assert.Equal(i + 1, h.Transport.OpenTimes.Count);
            h.Time.Advance(TimeSpan.FromMilliseconds(1));
            await h.Transport.WaitForOpenCountAsync(i + 2);
        }

        var offsets = h.Transport.OpenTimes.Select(t => Math.Round((t - start).TotalSeconds, 4)).ToArray();
        Assert.Equal([0, 1, 2.6, 5.16, 8.16, 11.16], offsets);
    }

    [Fact]
    public async Task ResponseOnStream_ResetsBackoff()
    {
        await using var h = new XdsClientHarness();
        h.Transport.Unreachable = true;
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        await h.Transport.WaitForOpenCountAsync(1);
        await h.Time.WaitForTimersAsync(1);
        h.Time.Advance(TimeSpan.FromSeconds(1));
        await h.Transport.WaitForOpenCountAsync(2);
        await h.Time.WaitForTimersAsync(2);

        // Third attempt (after 1.6 s) succeeds and gets a response; then it breaks.
        h.Transport.Unreachable = false;
        h.Time.Advance(TimeSpan.FromSeconds(1.6));
        await h.Transport.NextSotwCallAsync();
        await h.Transport.NextSotwCallAsync();
        var call = await h.Transport.NextSotwCallAsync();

        await call.NextRequestAsync();
        call.Respond(Sotw(Lds, "1", "a", Listener()));
        await call.NextRequestAsync();
        call.Fail();
        await h.Time.WaitForTimersAsync(3);
        var failedAt = h.Time.GetUtcNow();
        h.Time.Advance(TimeSpan.FromMilliseconds(999));
        await Task.Delay(30);
        Assert.Equal(3, h.Transport.OpenTimes.Count);
        h.Time.Advance(TimeSpan.FromMilliseconds(1));
        await h.Transport.WaitForOpenCountAsync(4);
        Assert.Equal(TimeSpan.FromSeconds(1), h.Transport.OpenTimes[3] - failedAt);
    }

    [Fact]
    public async Task Delay_CountsFromTheStartOfTheAttempt()
    {
        // gRPC's connection backoff: the next attempt is due at (start of this one + delay), so an attempt that took
        // 0.7 s to fail is followed 0.3 s after its failure, not 1 s.
        await using var h = new XdsClientHarness();
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await h.Transport.NextSotwCallAsync();
        await call.NextRequestAsync();
        h.Time.Advance(TimeSpan.FromSeconds(0.7));
        call.Fail();
        await h.Time.WaitForTimersAsync(1);
        h.Time.Advance(TimeSpan.FromMilliseconds(299));
        await Task.Delay(30);
        Assert.Single(h.Transport.OpenTimes);
        h.Time.Advance(TimeSpan.FromMilliseconds(1));
        await h.Transport.WaitForOpenCountAsync(2);
        Assert.Equal(TimeSpan.FromSeconds(1), h.Transport.OpenTimes[1] - h.Transport.OpenTimes[0]);
    }

    [Fact]
    public async Task StreamThatGotResponsesAndLivedLongerThanTheDelay_IsRetriedAtOnce_ThenTheScheduleStartsOver()
    {
        await using var h = new XdsClientHarness();
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await h.Transport.NextSotwCallAsync();
        await call.NextRequestAsync();
        call.Respond(Sotw(Lds, "1", "a", Listener()));
        await call.NextRequestAsync();
        h.Time.Advance(TimeSpan.FromMinutes(30));
        var brokeAt = h.Time.GetUtcNow();
        call.Fail();

        // Retried with no wait (the reset delay of 1 s has long passed since the stream started) ...
        await h.Transport.WaitForOpenCountAsync(2);
        Assert.Equal(brokeAt, h.Transport.OpenTimes[1]);

        // ... and if that one fails at once, the next waits 1.6 s: the schedule restarted at the reset.
        var second = await h.Transport.NextSotwCallAsync();
        second.Fail();
        await h.Time.WaitForTimersAsync(1);
        h.Time.Advance(TimeSpan.FromMilliseconds(1599));
        await Task.Delay(30);
        Assert.Equal(2, h.Transport.OpenTimes.Count);
        h.Time.Advance(TimeSpan.FromMilliseconds(1));
        await h.Transport.WaitForOpenCountAsync(3);
        Assert.Equal(TimeSpan.FromSeconds(1.6), h.Transport.OpenTimes[2] - h.Transport.OpenTimes[1]);
    }

    [Fact]
    public void Delays_StayWithinJitterBounds_AndCapAtMaximum()
    {
        var backoff = new ExponentialBackoff(new Random(1234), BackoffSettings.Grpc);
        var nominal = 1.0;
        var delays = new List<double>();
        for (var i = 0; i < 20; i++)
        {
            var delay = backoff.NextDelay().TotalSeconds;
            delays.Add(delay);
            Assert.InRange(delay, nominal * 0.8, nominal * 1.2);
            nominal = Math.Min(nominal * 1.6, 120);
        }

        Assert.Equal(120, nominal);
        Assert.True(delays.Distinct().Count() > 15, "jitter should vary the delays");

        var again = new ExponentialBackoff(new Random(1234), BackoffSettings.Grpc);
        Assert.Equal(delays, Enumerable.Range(0, 20).Select(_ => again.NextDelay().TotalSeconds));
    }

    [Fact]
    public void Reset_StartsOverAtInitialBackoff()
    {
        var backoff = new ExponentialBackoff(new FixedRandom(0.5), BackoffSettings.Grpc);
        Assert.Equal(1, backoff.NextDelay().TotalSeconds, 6);
        Assert.Equal(1.6, backoff.NextDelay().TotalSeconds, 6);
        backoff.Reset();
        Assert.Equal(1, backoff.NextDelay().TotalSeconds, 6);
        var low = new ExponentialBackoff(new FixedRandom(0), BackoffSettings.Grpc);
        Assert.Equal(0.8, low.NextDelay().TotalSeconds, 6);
    }
}

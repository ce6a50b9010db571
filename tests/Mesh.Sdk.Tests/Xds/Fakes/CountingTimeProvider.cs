using Microsoft.Extensions.Time.Testing;

namespace Mesh.Sdk.Tests.Xds.Fakes;

/// <summary>A <see cref="FakeTimeProvider"/> that counts the timers created, so a test knows a delay has started.</summary>
internal sealed class CountingTimeProvider : FakeTimeProvider
{
    private int _timers;

    public CountingTimeProvider()
        : base(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero))
    {
    }

    public int TimersCreated => Volatile.Read(ref _timers);

    /// <summary>Counts timers other than the client's 15 s resource timers, that is, the backoff delays.</summary>
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = base.CreateTimer(callback, state, dueTime, period);
        if (dueTime != Mesh.Sdk.Xds.XdsClient.DefaultResourceTimeout)
        {
            Interlocked.Increment(ref _timers);
        }

        return timer;
    }

    public async Task WaitForTimersAsync(int count)
    {
        var deadline = DateTime.UtcNow + FakeAdsTransport.Timeout;
        while (TimersCreated < count)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Expected {count} timers, saw {TimersCreated}.");
            }

            await Task.Delay(5);
        }
    }
}

/// <summary>A <see cref="Random"/> whose NextDouble is fixed, making jitter a known factor.</summary>
internal sealed class FixedRandom(double value) : Random
{
    public override double NextDouble() => value;
}

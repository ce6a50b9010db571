using Mesh.Sdk.RateLimiting;
using Microsoft.Extensions.Time.Testing;

namespace Mesh.Sdk.Tests.RateLimiting;

public class TokenBucketTests
{
    [Fact]
    public void StartsFull_EmptiesAfterMaxTokens()
    {
        var bucket = new TokenBucket(4, 4, TimeSpan.FromSeconds(60), new FakeTimeProvider());

        Assert.Equal([true, true, true, true, false], Enumerable.Range(0, 5).Select(_ => bucket.TryConsume()));
        Assert.Equal(0u, bucket.Remaining);
    }

    [Fact]
    public void Refills_OnTheFillTimer_CountedFromCreation()
    {
        var time = new FakeTimeProvider();
        var bucket = new TokenBucket(10, 2, TimeSpan.FromSeconds(1), time);
        for (var i = 0; i < 10; i++)
        {
            Assert.True(bucket.TryConsume());
        }

        time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.False(bucket.TryConsume());
        Assert.Equal(TimeSpan.FromMilliseconds(1), bucket.UntilNextFill);

        // The timer fires at 1 s after creation, whenever the last request came: 2 tokens, not a full bucket.
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(2u, bucket.Remaining);
        Assert.True(bucket.TryConsume());
        Assert.True(bucket.TryConsume());
        Assert.False(bucket.TryConsume());

        time.Advance(TimeSpan.FromSeconds(3.5));
        Assert.Equal(6u, bucket.Remaining);
    }

    [Fact]
    public void Refills_NeverBeyondMaxTokens()
    {
        var time = new FakeTimeProvider();
        var bucket = new TokenBucket(3, 2, TimeSpan.FromMilliseconds(50), time);
        Assert.True(bucket.TryConsume());

        time.Advance(TimeSpan.FromDays(400));

        Assert.Equal(3u, bucket.Remaining);
    }
}

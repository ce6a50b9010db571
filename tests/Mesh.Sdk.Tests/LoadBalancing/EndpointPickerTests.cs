using Mesh.Sdk.LoadBalancing;
using static Mesh.Sdk.Tests.LoadBalancing.Lb;

namespace Mesh.Sdk.Tests.LoadBalancing;

public sealed class EndpointPickerTests
{
    private static readonly LoadBalancerPolicy RoundRobin = LoadBalancerPolicy.Default;
    private static readonly LoadBalancerPolicy LeastRequest = LoadBalancerPolicy.Default with { Kind = LoadBalancerKind.LeastRequest };
    private static readonly LoadBalancerPolicy RandomPolicy = LoadBalancerPolicy.Default with { Kind = LoadBalancerKind.Random };
    private static readonly LoadBalancerPolicy RingHash = LoadBalancerPolicy.Default with { Kind = LoadBalancerKind.RingHash };

    [Fact]
    public void RoundRobin_EqualWeightsCycleThroughEveryHostEvenly()
    {
        var lb = Balancer(Hosts(4), RoundRobin);

        var sequence = Enumerable.Range(0, 8).Select(_ => lb.Pick(default)!.Key).ToArray();

        Assert.Equal(4, sequence.Take(4).Distinct().Count());
        Assert.Equal(sequence.Take(4), sequence.Skip(4));
    }

    [Fact]
    public void RoundRobin_StartsAtARandomOffset()
    {
        var firsts = Enumerable.Range(0, 20).Select(seed => Balancer(Hosts(4), RoundRobin, seed).Pick(default)!.Key).Distinct().Count();

        Assert.True(firsts >= 3, $"only {firsts} distinct first picks over 20 balancers");
    }

    [Fact]
    public void RoundRobin_HonoursWeightsSmoothly()
    {
        var lb = Balancer(Flat(Ep("10.0.0.1", weight: 1), Ep("10.0.0.2", weight: 2), Ep("10.0.0.3", weight: 3)), RoundRobin);

        var counts = Count(lb, 6000);

        Assert.InRange(counts["10.0.0.1:9080"], 950, 1050);
        Assert.InRange(counts["10.0.0.2:9080"], 1950, 2050);
        Assert.InRange(counts["10.0.0.3:9080"], 2950, 3050);

        // Smooth: the heaviest host never takes more than 3 turns in a row.
        var run = 0;
        var longest = 0;
        for (var i = 0; i < 600; i++)
        {
            run = lb.Pick(default)!.Key == "10.0.0.3:9080" ? run + 1 : 0;
            longest = Math.Max(longest, run);
        }

        Assert.InRange(longest, 1, 3);
    }

    [Fact]
    public void LeastRequest_PowerOfTwoChoicesAvoidsTheBusyHost()
    {
        var lb = Balancer(Hosts(4), LeastRequest);
        var busy = lb.Endpoints.All[0];
        for (var i = 0; i < 10; i++)
        {
            busy.State.RequestStarted();
        }

        var counts = Count(lb, 20_000);

        // The busy host wins only when both samples are it: (1/4)² = 6.25 % instead of 25 %.
        Assert.InRange(Share(counts, busy.Key), 0.05, 0.075);
        Assert.All(lb.Endpoints.All.Skip(1), e => Assert.InRange(Share(counts, e.Key), 0.29, 0.335));
    }

    [Fact]
    public void LeastRequest_ChoiceCountOfThreeAvoidsTheBusyHostMore()
    {
        var lb = Balancer(Hosts(4), LeastRequest with { ChoiceCount = 3 });
        lb.Endpoints.All[0].State.RequestStarted();

        var counts = Count(lb, 20_000);

        // (1/4)³ = 1.6 %.
        Assert.InRange(Share(counts, lb.Endpoints.All[0].Key), 0.008, 0.025);
    }

    [Fact]
    public void LeastRequest_FullScanAlwaysTakesTheLeastLoaded()
    {
        var lb = Balancer(Hosts(5), LeastRequest with { FullScan = true });
        foreach (var e in lb.Endpoints.All.Where((_, i) => i != 3))
        {
            e.State.RequestStarted();
        }

        var counts = Count(lb, 200);

        Assert.Equal(200, counts[lb.Endpoints.All[3].Key]);
    }

    [Fact]
    public void LeastRequest_WeightedPrefersHeavierHostsWhenIdle()
    {
        var lb = Balancer(Flat(Ep("10.0.0.1", weight: 1), Ep("10.0.0.2", weight: 3)), LeastRequest);

        var counts = Count(lb, 20_000);

        // Two weighted samples; the heavier one wins unless both are the light host: 1 - (1/4)² = 93.75 %.
        Assert.InRange(Share(counts, "10.0.0.2:9080"), 0.925, 0.95);
    }

    [Fact]
    public void LeastRequest_WeightedAccountsForActiveRequests()
    {
        var lb = Balancer(Flat(Ep("10.0.0.1", weight: 1), Ep("10.0.0.2", weight: 3)), LeastRequest);
        var heavy = lb.Endpoints.All[1];
        for (var i = 0; i < 5; i++)
        {
            heavy.State.RequestStarted();
        }

        var counts = Count(lb, 20_000);

        // Effective weights 1/1 = 1 and 3/6 = 0.5: the light host wins whenever it is sampled: 1 - (3/4)² = 43.75 %.
        Assert.InRange(Share(counts, "10.0.0.1:9080"), 0.42, 0.455);
    }

    [Fact]
    public void Random_FollowsWeightsWithinTolerance()
    {
        var lb = Balancer(Flat(Ep("10.0.0.1", weight: 1), Ep("10.0.0.2", weight: 3), Ep("10.0.0.3", weight: 6)), RandomPolicy);

        var counts = Count(lb, 50_000);

        Assert.InRange(Share(counts, "10.0.0.1:9080"), 0.09, 0.11);
        Assert.InRange(Share(counts, "10.0.0.2:9080"), 0.285, 0.315);
        Assert.InRange(Share(counts, "10.0.0.3:9080"), 0.585, 0.615);
    }

    [Fact]
    public void RingHash_SameKeyAlwaysPicksTheSameHost()
    {
        var lb = Balancer(Hosts(10), RingHash);
        var keys = Enumerable.Range(0, 200).Select(i => HashOf($"user-{i}")).ToArray();

        var first = keys.Select(k => lb.Pick(new PickContext(k))!.Key).ToArray();
        for (var round = 0; round < 5; round++)
        {
            Assert.Equal(first, keys.Select(k => lb.Pick(new PickContext(k))!.Key));
        }

        Assert.Equal(10, first.Distinct().Count());
    }

    [Theory]
    [InlineData(4, 0.15, 0.25)]
    [InlineData(10, 0.06, 0.12)]
    public void RingHash_AddingAHostMovesAboutOneNthOfKeysAllToTheNewHost(int hosts, double low, double high)
    {
        var before = Balancer(Hosts(hosts), RingHash);
        var after = Balancer(Hosts(hosts + 1), RingHash);
        var added = after.Endpoints.All[hosts].Key;
        var keys = Enumerable.Range(0, 10_000).Select(i => HashOf($"session-{i}")).ToArray();

        var moved = keys.Where(k => before.Pick(new PickContext(k))!.Key != after.Pick(new PickContext(k))!.Key).ToArray();

        // About 1/(N+1) of the keys move (1/5 for 4 → 5, 1/11 for 10 → 11), and every one of them to the new host:
        // the old hosts keep all their ring points.
        Assert.InRange(moved.Length / (double)keys.Length, low, high);
        Assert.All(moved, k => Assert.Equal(added, after.Pick(new PickContext(k))!.Key));
    }

    [Fact]
    public void RingHash_RemovingAHostMovesOnlyItsKeys()
    {
        var before = Balancer(Hosts(5), RingHash);
        var removed = before.Endpoints.All[2].Key;
        var after = Balancer(Flat(Enumerable.Range(1, 5).Where(i => i != 3).Select(i => Ep($"10.0.0.{i}")).ToArray()), RingHash);
        var keys = Enumerable.Range(0, 10_000).Select(i => HashOf($"session-{i}")).ToArray();

        var owners = keys.Select(k => (Before: before.Pick(new PickContext(k))!.Key, After: after.Pick(new PickContext(k))!.Key)).ToArray();

        Assert.Equal(4, after.Endpoints.All.Count);
        Assert.DoesNotContain(owners, o => o.Before != removed && o.Before != o.After);
        Assert.All(owners.Where(o => o.Before == removed), o => Assert.NotEqual(removed, o.After));
        Assert.InRange(owners.Count(o => o.Before == removed) / (double)keys.Length, 0.15, 0.25);
    }

    [Fact]
    public void RingHash_KeysOfRemainingHostsStayWhenAHostIsEjected()
    {
        var lb = Balancer(Hosts(10), RingHash);
        var keys = Enumerable.Range(0, 5_000).Select(i => HashOf($"k-{i}")).ToArray();
        var before = keys.Select(k => lb.Pick(new PickContext(k))!.Key).ToArray();
        var gone = lb.Endpoints.All[4];

        gone.State.Outlier.SetEjected(true);
        lb.Refresh();
        var after = keys.Select(k => lb.Pick(new PickContext(k))!.Key).ToArray();

        // The ring is rebuilt without the ejected host's points: its keys all move, every other key stays.
        Assert.DoesNotContain(gone.Key, after);
        Assert.Contains(before, k => k == gone.Key);
        Assert.All(Enumerable.Range(0, keys.Length).Where(i => before[i] != gone.Key), i => Assert.Equal(before[i], after[i]));
    }

    [Fact]
    public void RingHash_EachUnitOfWeightGetsMinimumRingSizePoints()
    {
        var three = Assert.IsType<RingHashPicker>(Balancer(Hosts(3), RingHash).GetPicker(0, degraded: false));
        var seven = Assert.IsType<RingHashPicker>(Balancer(Hosts(7), RingHash).GetPicker(0, degraded: false));

        // 1024 points per host of weight 1, whatever the number of hosts.
        Assert.Equal(3 * 1024, three.RingSize);
        Assert.Equal(7 * 1024, seven.RingSize);

        var weighted = Balancer(Flat(Ep("10.0.0.1", weight: 1), Ep("10.0.0.2", weight: 3)), RingHash with { MinimumRingSize = 1000 });
        Assert.Equal(4000, Assert.IsType<RingHashPicker>(weighted.GetPicker(0, degraded: false)).RingSize);
        var counts = Count(weighted, 40_000, i => new PickContext(HashOf($"k{i}")));
        Assert.InRange(Share(counts, "10.0.0.2:9080"), 0.68, 0.82);
    }

    [Fact]
    public void RingHash_LocalityWeightsProportionalToHostsKeepEveryHostsPoints()
    {
        var policy = RingHash with { LocalityWeighted = true };
        var lb = Balancer(Assignment(Locality("z1", 0, 2, Ep("10.0.0.1"), Ep("10.0.0.2")), Locality("z2", 0, 1, Ep("10.0.1.1"))), policy);

        Assert.Equal(3 * 1024, Assert.IsType<RingHashPicker>(lb.GetPicker(0, degraded: false)).RingSize);

        // z2 weighted 3 with one host: its host carries 3/4 of the ring.
        var skewed = Balancer(Assignment(Locality("z1", 0, 1, Ep("10.0.0.1"), Ep("10.0.0.2")), Locality("z2", 0, 3, Ep("10.0.1.1"))), policy);
        var counts = Count(skewed, 40_000, i => new PickContext(HashOf($"k{i}")));
        Assert.InRange(Share(counts, "10.0.1.1:9080"), 0.70, 0.80);
    }

    [Fact]
    public void RingHash_RespectsMaximumRingSize()
    {
        var lb = Balancer(Hosts(3), RingHash with { MinimumRingSize = 1000, MaximumRingSize = 12 });

        var ring = Assert.IsType<RingHashPicker>(lb.GetPicker(0, degraded: false));
        Assert.Equal(12, ring.RingSize);
        var counts = Count(lb, 4_000, i => new PickContext(HashOf($"k{i}")));
        Assert.Equal(3, counts.Count);
    }

    [Fact]
    public void RingHash_RetryStepsToAnotherHost()
    {
        var lb = Balancer(Hosts(5), RingHash);
        var hash = HashOf("sticky");
        var first = lb.Pick(new PickContext(hash))!;

        var retried = lb.Pick(new PickContext(hash, PickContext.PreviousHosts, first, hostSelectionRetryMaxAttempts: 5))!;

        Assert.NotEqual(first.Key, retried.Key);
    }

    [Fact]
    public void PickFirst_TakesTheFirstHostUntilExcluded()
    {
        var lb = Balancer(Hosts(3), LoadBalancerPolicy.Default with { Kind = LoadBalancerKind.PickFirst });

        Assert.Equal(100, Count(lb, 100)["10.0.0.1:9080"]);
        Assert.Equal("10.0.0.2:9080", lb.Pick(new PickContext(exclude: PickContext.PreviousHosts, excludeState: lb.Endpoints.All[0]))!.Key);
    }

    private static ulong HashOf(string key) => System.IO.Hashing.XxHash64.HashToUInt64(System.Text.Encoding.UTF8.GetBytes(key));
}

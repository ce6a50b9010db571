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

    [Fact]
    public void RingHash_AddingOneHostToTenGivesItAboutOneEleventhOfKeys()
    {
        var before = Balancer(Hosts(10), RingHash);
        var after = Balancer(Hosts(11), RingHash);
        var keys = Enumerable.Range(0, 10_000).Select(i => HashOf($"session-{i}")).ToArray();

        var moved = keys.Count(k => before.Pick(new PickContext(k))!.Key != after.Pick(new PickContext(k))!.Key) / 10_000.0;
        var toNew = keys.Count(k => after.Pick(new PickContext(k))!.Key == after.Endpoints.All[10].Key) / 10_000.0;

        // The new host takes about 1/11 of the keys.
        Assert.InRange(toNew, 0.05, 0.15);

        // Envoy scales the ring to minimum_ring_size, so each old host drops from ceil(1024/10) = 103 to
        // ceil(1024/11) = 94 points; keys on dropped points move as well: about 2/11 move in total, never all.
        Assert.InRange(moved, 0.12, 0.24);
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

        // The ring is rebuilt over 9 hosts (114 instead of 103 points each): keys of the ejected host all move,
        // and most other keys stay on their host.
        Assert.DoesNotContain(gone.Key, after);
        var stayed = Enumerable.Range(0, keys.Length).Count(i => before[i] != gone.Key && before[i] == after[i]);
        var others = before.Count(k => k != gone.Key);
        Assert.InRange(stayed / (double)others, 0.85, 1.0);
    }

    [Fact]
    public void RingHash_RingSizeFollowsMinimumAndWeights()
    {
        var lb = Balancer(Hosts(3), RingHash);
        var ring = Assert.IsType<RingHashPicker>(lb.GetPicker(0, degraded: false));

        // ceil(1/3 × 1024) / (1/3) = 1026 entries.
        Assert.Equal(1026, ring.RingSize);

        var weighted = Balancer(Flat(Ep("10.0.0.1", weight: 1), Ep("10.0.0.2", weight: 3)), RingHash with { MinimumRingSize = 100 });
        var counts = Count(weighted, 40_000, i => new PickContext(HashOf($"k{i}")));
        Assert.InRange(Share(counts, "10.0.0.2:9080"), 0.68, 0.82);
    }

    [Fact]
    public void RingHash_RespectsMaximumRingSize()
    {
        var lb = Balancer(Hosts(3), RingHash with { MinimumRingSize = 1000, MaximumRingSize = 12 });

        Assert.Equal(12, Assert.IsType<RingHashPicker>(lb.GetPicker(0, degraded: false)).RingSize);
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

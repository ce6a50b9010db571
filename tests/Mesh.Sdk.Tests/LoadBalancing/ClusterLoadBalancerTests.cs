using Envoy.Config.Core.V3;
using Mesh.Sdk.LoadBalancing;
using static Mesh.Sdk.Tests.LoadBalancing.Lb;

namespace Mesh.Sdk.Tests.LoadBalancing;

public sealed class ClusterLoadBalancerTests
{
    [Fact]
    public void Pick_FailsOverToP1WhenP0HasNoHealthyHosts()
    {
        var lb = Balancer(Assignment(
            Locality("z1", 0, 1, Ep("10.0.0.1", health: HealthStatus.Unhealthy), Ep("10.0.0.2", health: HealthStatus.Draining)),
            Locality("z2", 1, 1, Ep("10.0.1.1"), Ep("10.0.1.2"))));

        var counts = Count(lb, 1000);

        Assert.Equal([0, 100], lb.Load.Healthy);
        Assert.Equal(2, counts.Count);
        Assert.Equal(500, counts["10.0.1.1:9080"]);
        Assert.Equal(500, counts["10.0.1.2:9080"]);
    }

    [Fact]
    public void Pick_SpillsPartOfTheLoadByOverprovisioning()
    {
        // P0: 5 of 10 healthy → availability 70 %; P1 takes the other 30 %.
        var p0 = Enumerable.Range(1, 10).Select(i => Ep($"10.0.0.{i}", health: i <= 5 ? HealthStatus.Healthy : HealthStatus.Unhealthy)).ToArray();
        var lb = Balancer(Assignment(Locality("z1", 0, 1, p0), Locality("z2", 1, 1, Ep("10.0.1.1"))));

        var counts = Count(lb, 20_000);

        Assert.Equal([70, 30], lb.Load.Healthy);
        Assert.InRange(Share(counts, "10.0.1.1:9080"), 0.28, 0.32);
        Assert.All(Enumerable.Range(6, 5), i => Assert.False(counts.ContainsKey($"10.0.0.{i}:9080")));
        Assert.InRange(Share(counts, "10.0.0.1:9080"), 0.12, 0.16);
    }

    [Fact]
    public void Pick_UsesDegradedHostsOnlyWhenHealthyOnesAreShort()
    {
        // 5 healthy of 6: 140 × 5/6 = 116 → healthy hosts carry everything.
        var enough = Balancer(Flat(Ep("10.0.0.1"), Ep("10.0.0.2"), Ep("10.0.0.3"), Ep("10.0.0.4"), Ep("10.0.0.5"), Ep("10.0.0.6", health: HealthStatus.Degraded)));
        Assert.False(Count(enough, 1000).ContainsKey("10.0.0.6:9080"));

        // 2 healthy of 3: 93 % healthy, the degraded host takes the remaining 7 % (Envoy's arithmetic).
        var almost = Balancer(Flat(Ep("10.0.0.1"), Ep("10.0.0.2"), Ep("10.0.0.3", health: HealthStatus.Degraded)));
        Assert.Equal([93], almost.Load.Healthy);
        Assert.Equal([7], almost.Load.Degraded);

        // 1 healthy of 3 and 1 degraded: availabilities 46 % and 46 % (total 92) normalize to 50/50.
        var short_ = Balancer(Flat(Ep("10.0.0.1"), Ep("10.0.0.2", health: HealthStatus.Unhealthy), Ep("10.0.0.3", health: HealthStatus.Degraded)));
        var counts = Count(short_, 20_000);
        Assert.Equal([50], short_.Load.Healthy);
        Assert.Equal([50], short_.Load.Degraded);
        Assert.InRange(Share(counts, "10.0.0.3:9080"), 0.48, 0.52);
        Assert.False(counts.ContainsKey("10.0.0.2:9080"));
    }

    [Fact]
    public void Pick_ReturnsNullWhenNoHostIsUsable()
    {
        var lb = Balancer(Flat(Ep("10.0.0.1", health: HealthStatus.Unhealthy), Ep("10.0.0.2", health: HealthStatus.Timeout)));

        Assert.Null(lb.Pick(default));
        Assert.True(lb.Load.NoAvailability);
    }

    [Fact]
    public void Pick_WithPanicThresholdUsesAllHostsOfAPriorityBelowIt()
    {
        var policy = LoadBalancerPolicy.Default with { HealthyPanicThreshold = 50 };
        var lb = Balancer(Flat(Ep("10.0.0.1"), Ep("10.0.0.2", health: HealthStatus.Unhealthy), Ep("10.0.0.3", health: HealthStatus.Unhealthy)), policy);

        var counts = Count(lb, 3000);

        Assert.Equal(3, counts.Count);
        Assert.Equal(1000, counts["10.0.0.2:9080"]);
    }

    [Fact]
    public void Pick_LocalityWeightedSplitsByLocalityWeight()
    {
        var policy = LoadBalancerPolicy.Default with { LocalityWeighted = true };
        var lb = Balancer(
            Assignment(
                Locality("z1", 0, 1, Ep("10.0.0.1"), Ep("10.0.0.2"), Ep("10.0.0.3")),
                Locality("z2", 0, 3, Ep("10.0.1.1")),
                Locality("z3", 0, null, Ep("10.0.2.1"))),
            policy);

        var counts = Count(lb, 4000);

        Assert.InRange(counts["10.0.0.1:9080"] + counts["10.0.0.2:9080"] + counts["10.0.0.3:9080"], 960, 1040);
        Assert.InRange(counts["10.0.1.1:9080"], 2960, 3040);
        Assert.False(counts.ContainsKey("10.0.2.1:9080"));
    }

    [Fact]
    public void Pick_LocalityWeightIsScaledByLocalityHealth()
    {
        // z1 has 1 of 4 healthy: effective weight 1 × min(1, 1.4 × 0.25) = 0.35 against z2's 1.
        var policy = LoadBalancerPolicy.Default with { LocalityWeighted = true };
        var z1 = new[] { Ep("10.0.0.1") }.Concat(Enumerable.Range(2, 3).Select(i => Ep($"10.0.0.{i}", health: HealthStatus.Unhealthy))).ToArray();
        var lb = Balancer(Assignment(Locality("z1", 0, 1, z1), Locality("z2", 0, 1, Ep("10.0.1.1"), Ep("10.0.1.2"), Ep("10.0.1.3"), Ep("10.0.1.4"))), policy);

        var counts = Count(lb, 13_500);

        Assert.InRange(Share(counts, "10.0.0.1:9080"), 0.35 / 1.35 - 0.01, 0.35 / 1.35 + 0.01);
    }

    [Fact]
    public void Pick_ReselectsWhenTheContextExcludesTheHost()
    {
        var lb = Balancer(Flat(Ep("10.0.0.1"), Ep("10.0.0.2"), Ep("10.0.0.3")));
        var tried = lb.Endpoints.All[1];
        var ctx = new PickContext(exclude: PickContext.PreviousHosts, excludeState: tried, hostSelectionRetryMaxAttempts: 3);

        var counts = Count(lb, 600, _ => ctx);

        Assert.False(counts.ContainsKey(tried.Key));
        Assert.Equal(300, counts["10.0.0.1:9080"]);
    }

    [Fact]
    public void Pick_UsesTheLastPickWhenEveryHostIsExcluded()
    {
        var lb = Balancer(Flat(Ep("10.0.0.1")));
        var ctx = new PickContext(exclude: static (_, _) => true);

        Assert.Equal("10.0.0.1:9080", lb.Pick(ctx)?.Key);
    }

    [Fact]
    public void Pick_SkipsEjectedHostsAfterRefresh()
    {
        var lb = Balancer(Flat(Ep("10.0.0.1"), Ep("10.0.0.2")));
        lb.Endpoints.All[0].State.Outlier.SetEjected(true);
        lb.Refresh();

        var counts = Count(lb, 100);

        Assert.Equal(100, counts["10.0.0.2:9080"]);
    }

    [Fact]
    public void Pick_AllocatesNothing()
    {
        var lb = Balancer(Hosts(10), LoadBalancerPolicy.Default with { Kind = LoadBalancerKind.LeastRequest });
        var ctx = new PickContext(hash: 12345);
        lb.Pick(ctx);

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            lb.Pick(ctx);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}

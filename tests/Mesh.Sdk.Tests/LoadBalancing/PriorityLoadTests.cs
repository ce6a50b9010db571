using Mesh.Sdk.LoadBalancing;

namespace Mesh.Sdk.Tests.LoadBalancing;

public sealed class PriorityLoadTests
{
    [Theory]
    [InlineData(10, 10, 100)] // all healthy
    [InlineData(8, 10, 100)]  // 140 × 0.8 = 112 → capped at 100
    [InlineData(5, 10, 70)]   // 140 × 0.5
    [InlineData(1, 3, 46)]    // 140 / 3 = 46 (integer division as Envoy)
    [InlineData(0, 10, 0)]
    public void Availability_IsOverprovisionedHealthyShare(int healthy, int total, int expected)
        => Assert.Equal(expected, PriorityLoad.Availability(140, (ulong)healthy, (ulong)total));

    [Fact]
    public void Compute_SpillsWhatP0CannotCarryToP1()
    {
        var load = PriorityLoad.Compute([70, 100], [0, 0]);

        Assert.Equal([70, 30], load.Healthy);
        Assert.Equal([0, 0], load.Degraded);
        Assert.False(load.NoAvailability);
    }

    [Fact]
    public void Compute_FailsOverEntirelyWhenP0HasNoHealthyHosts()
    {
        var load = PriorityLoad.Compute([0, 100, 100], [0, 0, 0]);

        Assert.Equal([0, 100, 0], load.Healthy);
    }

    [Fact]
    public void Compute_ScalesUpWhenTotalAvailabilityIsBelow100()
    {
        // P0 at 28 % and P1 at 42 %: total 70, so loads are normalized to 40/60.
        var load = PriorityLoad.Compute([28, 42], [0, 0]);

        Assert.Equal([40, 60], load.Healthy);
    }

    [Fact]
    public void Compute_UsesDegradedHostsOnlyForWhatHealthyCannotCarry()
    {
        // P0: healthy 70, degraded 56 (4 of 10 degraded). Healthy takes 70; degraded the remaining 30.
        var load = PriorityLoad.Compute([70], [56]);

        Assert.Equal([70], load.Healthy);
        Assert.Equal([30], load.Degraded);
    }

    [Fact]
    public void Compute_GivesRoundingRemainderToFirstHealthyPriority()
    {
        // 33 + 33 + 33 = 99 normalized: 33*100/99 = 33 each, remainder 1 to P0.
        var load = PriorityLoad.Compute([33, 33, 33], [0, 0, 0]);

        Assert.Equal([34, 33, 33], load.Healthy);
    }

    [Fact]
    public void Compute_WithNoAvailabilitySendsAllToP0AndFlagsIt()
    {
        var load = PriorityLoad.Compute([0, 0], [0, 0]);

        Assert.True(load.NoAvailability);
        Assert.Equal([100, 0], load.Healthy);
    }
}

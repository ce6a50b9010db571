using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Mesh.Sdk.Resilience;

namespace Mesh.Sdk.Tests.Resilience;

public sealed class CircuitBreakersTests
{
    private const string Cluster = "outbound|9080|v1|reviews.default.svc.cluster.local";

    private static ClusterCircuitBreakers Breakers(uint maxRequests)
    {
        var config = new CircuitBreakers();
        config.Thresholds.Add(new CircuitBreakers.Types.Thresholds { MaxRequests = maxRequests, MaxRetries = 1 });
        config.Thresholds.Add(new CircuitBreakers.Types.Thresholds { Priority = RoutingPriority.High, MaxRequests = 1 });
        return new ClusterCircuitBreakers(Cluster, config);
    }

    [Fact]
    public void Acquire_OverflowsAtTheLimitWithAClearMessage_AndRecoversOnRelease()
    {
        var breakers = Breakers(maxRequests: 10);
        var leases = new List<CircuitBreakerLease>();
        for (var i = 0; i < 10; i++)
        {
            Assert.True(breakers.TryAcquireRequest(RoutingPriority.Default, out var lease));
            leases.Add(lease);
        }

        Assert.False(breakers.TryAcquireRequest(RoutingPriority.Default, out var refused));
        Assert.False(refused.IsAcquired);
        var ex = Assert.Throws<ClusterOverflowException>(() => breakers.Acquire(CircuitBreakerResource.Requests));
        Assert.Equal("Cluster 'outbound|9080|v1|reviews.default.svc.cluster.local' is over its max_requests limit of 10.", ex.Message);
        Assert.Equal(("max_requests", 10L, Cluster), (ex.LimitName, ex.Limit, ex.ClusterName));
        Assert.Equal(10, breakers.Default.Requests.Count);

        leases[3].Dispose();
        Assert.Equal(9, breakers.Default.Requests.Count);
        using var again = breakers.Acquire(CircuitBreakerResource.Requests);
        Assert.True(again.IsAcquired);
    }

    [Fact]
    public void Priorities_HaveSeparateCounters_AndUnsetLimitsUseEnvoyDefaults()
    {
        var breakers = Breakers(maxRequests: 5);

        using var high = breakers.Acquire(CircuitBreakerResource.Requests, RoutingPriority.High);
        Assert.False(breakers.TryAcquireRequest(RoutingPriority.High, out _));
        Assert.True(breakers.TryAcquireRequest(RoutingPriority.Default, out var lease));
        lease.Dispose();

        Assert.Equal(1024, breakers.Default.Connections.Limit);
        Assert.Equal(1024, breakers.Default.PendingRequests.Limit);
        Assert.Equal(1, breakers.Default.Retries.Limit);
        Assert.Equal(3, breakers.High.Retries.Limit);
        var none = new ClusterCircuitBreakers(Cluster, null);
        Assert.Equal((1024L, 1024L, 1024L, 3L), (none.Default.Connections.Limit, none.Default.PendingRequests.Limit, none.Default.Requests.Limit, none.Default.Retries.Limit));
    }

    [Fact]
    public void Retries_OverflowNamesMaxRetries()
    {
        var breakers = Breakers(maxRequests: 5);
        using var retry = breakers.Acquire(CircuitBreakerResource.Retries);

        var ex = Assert.Throws<ClusterOverflowException>(() => breakers.Acquire(CircuitBreakerResource.Retries));

        Assert.Equal($"Cluster '{Cluster}' is over its max_retries limit of 1.", ex.Message);
    }

    [Fact]
    public async Task Acquire_IsExactUnderConcurrency()
    {
        var breakers = Breakers(maxRequests: 50);
        var acquired = 0;
        var maxSeen = 0;
        await Parallel.ForAsync(0, 20_000, async (_, ct) =>
        {
            if (breakers.TryAcquireRequest(RoutingPriority.Default, out var lease))
            {
                var now = Interlocked.Increment(ref acquired);
                InterlockedMax(ref maxSeen, now);
                await Task.Yield();
                Interlocked.Decrement(ref acquired);
                lease.Dispose();
            }
        });

        Assert.InRange(maxSeen, 1, 50);
        Assert.Equal(0, breakers.Default.Requests.Count);
    }

    [Fact]
    public void Constructor_RejectsPerHostThresholds()
    {
        var config = new CircuitBreakers();
        config.PerHostThresholds.Add(new CircuitBreakers.Types.Thresholds());

        var ex = Assert.Throws<NotSupportedException>(() => new ClusterCircuitBreakers(Cluster, config));

        Assert.Contains("per_host_thresholds is not supported", ex.Message);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}

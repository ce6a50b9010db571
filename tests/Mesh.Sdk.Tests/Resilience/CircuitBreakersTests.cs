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

    private static ClusterCircuitBreakers ConnectionBreakers(uint maxConnections, uint maxPending)
    {
        var config = new CircuitBreakers();
        config.Thresholds.Add(new CircuitBreakers.Types.Thresholds { MaxConnections = maxConnections, MaxPendingRequests = maxPending });
        return new ClusterCircuitBreakers(Cluster, config);
    }

    [Fact]
    public async Task AcquireConnection_BeyondMaxConnectionsWaitsAsPending_AndOverflowsBeyondMaxPending()
    {
        var breakers = ConnectionBreakers(maxConnections: 2, maxPending: 1);

        var first = breakers.AcquireConnectionAsync(RoutingPriority.Default, CancellationToken.None);
        var second = breakers.AcquireConnectionAsync(RoutingPriority.Default, CancellationToken.None);
        Assert.True(first.IsCompletedSuccessfully && second.IsCompletedSuccessfully);
        var firstLease = await first;
        var secondLease = await second;
        Assert.True(firstLease.IsAcquired && secondLease.IsAcquired);

        var third = breakers.AcquireConnectionAsync(RoutingPriority.Default, CancellationToken.None);
        Assert.False(third.IsCompleted);
        Assert.Equal((2L, 1L, 1), (breakers.Default.Connections.Count, breakers.Default.PendingRequests.Count, breakers.Default.Connections.Waiting));

        var fourth = breakers.AcquireConnectionAsync(RoutingPriority.Default, CancellationToken.None);
        Assert.True(fourth.IsCompletedSuccessfully);
        Assert.False((await fourth).IsAcquired);

        firstLease.Dispose();
        using var granted = await third.AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(granted.IsAcquired);
        Assert.Equal((2L, 0L, 0), (breakers.Default.Connections.Count, breakers.Default.PendingRequests.Count, breakers.Default.Connections.Waiting));
        secondLease.Dispose();
        Assert.Equal(1L, breakers.Default.Connections.Count);
    }

    [Fact]
    public async Task AcquireConnection_GrantsWaitersInArrivalOrder_AndNewcomersQueueBehindThem()
    {
        var breakers = ConnectionBreakers(maxConnections: 1, maxPending: 10);
        var held = await breakers.AcquireConnectionAsync(RoutingPriority.Default, CancellationToken.None);
        var order = new List<int>();
        var waiters = new List<Task>();
        for (var i = 0; i < 3; i++)
        {
            var n = i;
            var wait = breakers.AcquireConnectionAsync(RoutingPriority.Default, CancellationToken.None);
            waiters.Add(Task.Run(async () =>
            {
                using var lease = await wait;
                lock (order)
                {
                    order.Add(n);
                }
            }));
        }

        // Nobody waits when a slot is free, but a newcomer does not overtake queued requests.
        Assert.False(breakers.TryAcquireConnection(RoutingPriority.Default, out _));
        held.Dispose();
        await Task.WhenAll(waiters).WaitAsync(TimeSpan.FromSeconds(5));

        Assert.Equal([0, 1, 2], order);
        Assert.Equal((0L, 0L, 0), (breakers.Default.Connections.Count, breakers.Default.PendingRequests.Count, breakers.Default.Connections.Waiting));
    }

    [Fact]
    public async Task AcquireConnection_CancelledWhilePending_ReleasesThePendingSlotAndTakesNoConnection()
    {
        var breakers = ConnectionBreakers(maxConnections: 1, maxPending: 1);
        using var held = await breakers.AcquireConnectionAsync(RoutingPriority.Default, CancellationToken.None);
        using var cts = new CancellationTokenSource();

        var waiting = breakers.AcquireConnectionAsync(RoutingPriority.Default, cts.Token);
        Assert.Equal(1L, breakers.Default.PendingRequests.Count);
        cts.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.AsTask().WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.Equal((1L, 0L, 0), (breakers.Default.Connections.Count, breakers.Default.PendingRequests.Count, breakers.Default.Connections.Waiting));
        var next = breakers.AcquireConnectionAsync(RoutingPriority.Default, CancellationToken.None);
        Assert.False(next.IsCompleted);
        held.Dispose();
        using var lease = await next.AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(lease.IsAcquired);
    }

    [Fact]
    public async Task AcquireConnection_IsExactUnderConcurrency()
    {
        var breakers = ConnectionBreakers(maxConnections: 4, maxPending: 100_000);
        var inFlight = 0;
        var maxSeen = 0;
        var refused = 0;
        var tasks = new Task[400];
        for (var i = 0; i < tasks.Length; i++)
        {
            tasks[i] = Task.Run(async () =>
            {
                using var lease = await breakers.AcquireConnectionAsync(RoutingPriority.Default, CancellationToken.None);
                if (!lease.IsAcquired)
                {
                    Interlocked.Increment(ref refused);
                    return;
                }

                InterlockedMax(ref maxSeen, Interlocked.Increment(ref inFlight));
                await Task.Delay(2);
                Interlocked.Decrement(ref inFlight);
            });
        }

        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, refused);

        Assert.Equal(4, maxSeen);
        Assert.Equal((0L, 0L, 0), (breakers.Default.Connections.Count, breakers.Default.PendingRequests.Count, breakers.Default.Connections.Waiting));
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}

using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;

namespace Mesh.Sdk.Resilience;

/// <summary>The resources a cluster's circuit breaker counts.</summary>
internal enum CircuitBreakerResource
{
    /// <summary><c>max_connections</c>: open upstream connections.</summary>
    Connections,

    /// <summary><c>max_pending_requests</c>: requests waiting for a connection.</summary>
    PendingRequests,

    /// <summary><c>max_requests</c>: requests in flight.</summary>
    Requests,

    /// <summary><c>max_retries</c>: retries in flight.</summary>
    Retries,
}

/// <summary>
/// One counter of a circuit breaker: a limit and an <see cref="Interlocked"/> count of leases held.
/// <see cref="AcquireOrWaitAsync"/> adds a FIFO queue of waiters (Envoy's pending requests): a released slot goes
/// to the longest waiter first.
/// </summary>
internal sealed class CircuitBreakerCounter
{
    private readonly LinkedList<TaskCompletionSource<bool>> _waiters = new();
    private long _count;
    private int _waiting;

    public CircuitBreakerCounter(string clusterName, CircuitBreakerResource resource, long limit)
    {
        ClusterName = clusterName;
        Resource = resource;
        Limit = limit;
    }

    public string ClusterName { get; }

    public CircuitBreakerResource Resource { get; }

    public long Limit { get; }

    /// <summary>Leases currently held.</summary>
    public long Count => Volatile.Read(ref _count);

    /// <summary>The xDS field name of the limit.</summary>
    public string LimitName => Resource switch
    {
        CircuitBreakerResource.Connections => "max_connections",
        CircuitBreakerResource.PendingRequests => "max_pending_requests",
        CircuitBreakerResource.Requests => "max_requests",
        _ => "max_retries",
    };

    /// <summary>Takes a slot when one is free.</summary>
    public bool TryAcquire(out CircuitBreakerLease lease)
    {
        if (Interlocked.Increment(ref _count) > Limit)
        {
            Interlocked.Decrement(ref _count);
            lease = default;
            return false;
        }

        lease = new CircuitBreakerLease(this);
        return true;
    }

    /// <summary>Takes a slot or throws <see cref="ClusterOverflowException"/>.</summary>
    public CircuitBreakerLease Acquire()
        => TryAcquire(out var lease) ? lease : throw CreateOverflowException();

    /// <summary>The exception describing an overflow of this counter.</summary>
    public ClusterOverflowException CreateOverflowException() => new(ClusterName, LimitName, Limit);

    /// <summary>Requests waiting in <see cref="AcquireOrWaitAsync"/> for a slot of this counter.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    /// <summary>
    /// Takes a slot; when none is free (or others already wait), waits for one in FIFO order as a pending request,
    /// holding a slot of <paramref name="pending"/> (<c>max_pending_requests</c>) while it waits. Returns a lease
    /// that is not <see cref="CircuitBreakerLease.IsAcquired"/> when <paramref name="pending"/> is full too: the
    /// request overflows (report <paramref name="pending"/>'s limit). Completes synchronously when a slot is free.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled while waiting; no slot is held.</exception>
    public ValueTask<CircuitBreakerLease> AcquireOrWaitAsync(CircuitBreakerCounter pending, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(pending);
        if (Volatile.Read(ref _waiting) == 0 && TryAcquire(out var lease))
        {
            return new ValueTask<CircuitBreakerLease>(lease);
        }

        if (!pending.TryAcquire(out var pendingLease))
        {
            return new ValueTask<CircuitBreakerLease>(default(CircuitBreakerLease));
        }

        return WaitAsync(pendingLease, cancellationToken);
    }

    private async ValueTask<CircuitBreakerLease> WaitAsync(CircuitBreakerLease pendingLease, CancellationToken cancellationToken)
    {
        using (pendingLease)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var waiter = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            LinkedListNode<TaskCompletionSource<bool>> node;
            lock (_waiters)
            {
                node = _waiters.AddLast(waiter);
                _waiting++;
            }

            // A slot released before the waiter was queued is handed out now.
            Grant();
            await using (cancellationToken.UnsafeRegister(static (state, token) => ((CircuitBreakerCounter)((object[])state!)[0]).Cancel((LinkedListNode<TaskCompletionSource<bool>>)((object[])state!)[1], token), new object[] { this, node }).ConfigureAwait(false))
            {
                await waiter.Task.ConfigureAwait(false);
            }

            return new CircuitBreakerLease(this);
        }
    }

    private void Cancel(LinkedListNode<TaskCompletionSource<bool>> node, CancellationToken token)
    {
        lock (_waiters)
        {
            if (node.List is null)
            {
                return;
            }

            _waiters.Remove(node);
            _waiting--;
        }

        node.Value.TrySetCanceled(token);
    }

    /// <summary>Hands free slots to waiters, oldest first.</summary>
    private void Grant()
    {
        lock (_waiters)
        {
            while (_waiters.First is { } first)
            {
                if (Interlocked.Increment(ref _count) > Limit)
                {
                    Interlocked.Decrement(ref _count);
                    return;
                }

                _waiters.RemoveFirst();
                _waiting--;
                first.Value.TrySetResult(true);
            }
        }
    }

    internal void Release()
    {
        Interlocked.Decrement(ref _count);
        if (Volatile.Read(ref _waiting) > 0)
        {
            Grant();
        }
    }
}

/// <summary>
/// A held circuit-breaker slot; <see cref="Dispose"/> gives it back. A copy shares the slot: dispose exactly one.
/// <see langword="default"/> holds nothing.
/// </summary>
internal readonly struct CircuitBreakerLease : IDisposable
{
    private readonly CircuitBreakerCounter? _counter;

    internal CircuitBreakerLease(CircuitBreakerCounter counter) => _counter = counter;

    /// <summary>Whether the lease holds a slot.</summary>
    public bool IsAcquired => _counter is not null;

    /// <summary>The counter the slot belongs to; <see langword="null"/> for <see langword="default"/>.</summary>
    public CircuitBreakerCounter? Counter => _counter;

    public void Dispose() => _counter?.Release();
}

/// <summary>The counters of one routing priority (DEFAULT or HIGH).</summary>
internal sealed class CircuitBreakerThresholds
{
    /// <summary>Envoy's default for each of max_connections, max_pending_requests and max_requests.</summary>
    public const uint DefaultLimit = 1024;

    /// <summary>Envoy's default max_retries.</summary>
    public const uint DefaultMaxRetries = 3;

    public CircuitBreakerThresholds(string clusterName, CircuitBreakers.Types.Thresholds? thresholds)
    {
        Connections = new(clusterName, CircuitBreakerResource.Connections, thresholds?.MaxConnections ?? DefaultLimit);
        PendingRequests = new(clusterName, CircuitBreakerResource.PendingRequests, thresholds?.MaxPendingRequests ?? DefaultLimit);
        Requests = new(clusterName, CircuitBreakerResource.Requests, thresholds?.MaxRequests ?? DefaultLimit);
        Retries = new(clusterName, CircuitBreakerResource.Retries, thresholds?.MaxRetries ?? DefaultMaxRetries);
    }

    public CircuitBreakerCounter Connections { get; }

    public CircuitBreakerCounter PendingRequests { get; }

    public CircuitBreakerCounter Requests { get; }

    public CircuitBreakerCounter Retries { get; }

    public CircuitBreakerCounter this[CircuitBreakerResource resource] => resource switch
    {
        CircuitBreakerResource.Connections => Connections,
        CircuitBreakerResource.PendingRequests => PendingRequests,
        CircuitBreakerResource.Requests => Requests,
        _ => Retries,
    };
}

/// <summary>
/// A cluster's <c>circuit_breakers</c>: per routing priority, limits on connections, pending requests,
/// requests and retries, counted with <see cref="Interlocked"/>. Acquire a slot per request (and per retry);
/// on overflow the request must not be sent.
/// </summary>
internal sealed class ClusterCircuitBreakers
{
    public ClusterCircuitBreakers(string clusterName, CircuitBreakers? config)
    {
        ArgumentNullException.ThrowIfNull(clusterName);
        ClusterName = clusterName;
        CircuitBreakers.Types.Thresholds? defaults = null, high = null;
        if (config is not null)
        {
            if (config.PerHostThresholds.Count > 0)
            {
                throw new NotSupportedException($"Cluster '{clusterName}': circuit_breakers.per_host_thresholds is not supported.");
            }

            foreach (var threshold in config.Thresholds)
            {
                if (threshold.RetryBudget is not null)
                {
                    throw new NotSupportedException($"Cluster '{clusterName}': circuit_breakers.thresholds.retry_budget is not supported (use max_retries).");
                }

                if (threshold.Priority == RoutingPriority.High)
                {
                    high ??= threshold;
                }
                else
                {
                    defaults ??= threshold;
                }
            }
        }

        Default = new CircuitBreakerThresholds(clusterName, defaults);
        High = new CircuitBreakerThresholds(clusterName, high);
    }

    public string ClusterName { get; }

    /// <summary>Limits of DEFAULT-priority requests.</summary>
    public CircuitBreakerThresholds Default { get; }

    /// <summary>Limits of HIGH-priority requests.</summary>
    public CircuitBreakerThresholds High { get; }

    /// <summary>The thresholds of a routing priority.</summary>
    public CircuitBreakerThresholds For(RoutingPriority priority) => priority == RoutingPriority.High ? High : Default;

    /// <summary>Takes a request slot (<c>max_requests</c>).</summary>
    public bool TryAcquireRequest(RoutingPriority priority, out CircuitBreakerLease lease) => For(priority).Requests.TryAcquire(out lease);

    /// <summary>Takes a pending-request slot (<c>max_pending_requests</c>) without waiting.</summary>
    public bool TryAcquirePendingRequest(RoutingPriority priority, out CircuitBreakerLease lease) => For(priority).PendingRequests.TryAcquire(out lease);

    /// <summary>Takes a connection slot (<c>max_connections</c>) without waiting.</summary>
    public bool TryAcquireConnection(RoutingPriority priority, out CircuitBreakerLease lease) => For(priority).Connections.TryAcquire(out lease);

    /// <summary>
    /// Takes a connection slot (<c>max_connections</c>) for a request that occupies a connection while it is in
    /// flight (HTTP/1.1); when every slot is taken the request waits as pending, FIFO, bounded by
    /// <c>max_pending_requests</c>. A lease that is not <see cref="CircuitBreakerLease.IsAcquired"/> means the
    /// pending limit overflowed: answer 503 with <c>x-envoy-overloaded</c> naming
    /// <see cref="CircuitBreakerThresholds.PendingRequests"/> of <see cref="For"/>(<paramref name="priority"/>).
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled while pending; nothing is held.</exception>
    public ValueTask<CircuitBreakerLease> AcquireConnectionAsync(RoutingPriority priority, CancellationToken cancellationToken)
    {
        var thresholds = For(priority);
        return thresholds.Connections.AcquireOrWaitAsync(thresholds.PendingRequests, cancellationToken);
    }

    /// <summary>Takes a retry slot (<c>max_retries</c>).</summary>
    public bool TryAcquireRetry(RoutingPriority priority, out CircuitBreakerLease lease) => For(priority).Retries.TryAcquire(out lease);

    /// <summary>Takes a slot of any resource.</summary>
    public bool TryAcquire(CircuitBreakerResource resource, RoutingPriority priority, out CircuitBreakerLease lease)
        => For(priority)[resource].TryAcquire(out lease);

    /// <summary>Takes a slot of any resource or throws <see cref="ClusterOverflowException"/> naming the cluster and the limit.</summary>
    public CircuitBreakerLease Acquire(CircuitBreakerResource resource, RoutingPriority priority = RoutingPriority.Default)
        => For(priority)[resource].Acquire();
}

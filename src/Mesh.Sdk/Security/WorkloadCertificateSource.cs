namespace Mesh.Sdk.Security;

/// <summary>
/// Keeps the workload's current certificate: one background loop (started by <see cref="Start"/>, stopped by
/// <see cref="DisposeAsync"/>, one cancellation source) fetches or reads it and swaps <see cref="Current"/> atomically.
/// A certificate once published stays until a newer one replaces it, so a failed renewal never leaves TLS without one.
/// </summary>
internal abstract class WorkloadCertificateSource : IAsyncDisposable, IDisposable
{
    private readonly CancellationTokenSource _stopping = new();
    private readonly TaskCompletionSource<WorkloadCertificate> _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private WorkloadCertificate? _current;
    private int _waits;
    private Task? _loop;
    private int _state; // 0 new, 1 started, 2 disposed

    /// <summary>The certificate in force, or <see langword="null"/> before the first one arrived.</summary>
    public WorkloadCertificate? Current => Volatile.Read(ref _current);

    /// <summary>Raised after <see cref="Current"/> changed, on the loop's thread.</summary>
    public event Action<WorkloadCertificate>? Changed;

    /// <summary>Where certificates come from, for logs (the CA address, or the files).</summary>
    public abstract string Description { get; }

    /// <summary>Starts the loop (idempotent).</summary>
    public void Start()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _state) == 2, this);
        if (Interlocked.CompareExchange(ref _state, 1, 0) == 0)
        {
            _loop = Task.Run(() => RunAsync(_stopping.Token));
        }
    }

    /// <summary>Completes with the first certificate (at once when there is one).</summary>
    /// <param name="cancellationToken">Stops waiting.</param>
    /// <returns>The certificate in force once there is one.</returns>
    public async Task<WorkloadCertificate> WaitForCertificateAsync(CancellationToken cancellationToken)
    {
        await _first.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        return Current!;
    }

    /// <summary>How many times the loop has started waiting (its timer is set by then); lets fake-clock tests advance safely.</summary>
    internal int Waits => Volatile.Read(ref _waits);

    /// <summary>Starts a wait on the clock and counts it in <see cref="Waits"/> once the timer is set.</summary>
    protected Task Wait(TimeSpan delay, TimeProvider time, CancellationToken cancellationToken)
    {
        var task = Task.Delay(delay, time, cancellationToken);
        Interlocked.Increment(ref _waits);
        return task;
    }

    /// <summary>Swaps in a new certificate.</summary>
    protected void Publish(WorkloadCertificate certificate)
    {
        Volatile.Write(ref _current, certificate);
        _first.TrySetResult(certificate);
        Changed?.Invoke(certificate);
    }

    /// <summary>The loop; returns when <paramref name="stopping"/> is cancelled.</summary>
    protected abstract Task RunAsync(CancellationToken stopping);

    /// <summary>Stops the loop and waits for it.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _state, 2) == 2)
        {
            return;
        }

        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            try
            {
                await _loop.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        _first.TrySetCanceled();
        await DisposeCoreAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    /// <summary>Begins <see cref="DisposeAsync"/> without waiting, for containers disposed synchronously.</summary>
    public void Dispose() => _ = DisposeAsync().AsTask();

    /// <summary>Releases what the source holds, after the loop ended.</summary>
    /// <returns>A task that completes when released.</returns>
    protected virtual ValueTask DisposeCoreAsync() => ValueTask.CompletedTask;
}

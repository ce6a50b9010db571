using Microsoft.Extensions.Primitives;

namespace Mesh.Sdk.Resources;

/// <summary>Holds the current snapshot; publication swaps one reference and fires the change token.</summary>
internal sealed class MeshSnapshotSource(TimeProvider timeProvider) : IMeshSnapshotSource
{
    private readonly Lock _gate = new();
    private MeshSnapshot _current = MeshSnapshot.Empty;
    private CancellationTokenSource _changed = new();

    public MeshSnapshotSource()
        : this(TimeProvider.System)
    {
    }

    public event Action<MeshSnapshot>? SnapshotChanged;

    public MeshSnapshot Current => Volatile.Read(ref _current);

    public IChangeToken GetChangeToken()
    {
        lock (_gate)
        {
            return new CancellationChangeToken(_changed.Token);
        }
    }

    public void Publish(MeshSnapshot snapshot)
    {
        CancellationTokenSource fired;
        lock (_gate)
        {
            if (snapshot.Version <= _current.Version)
            {
                throw new InvalidOperationException($"Snapshot version {snapshot.Version} is not newer than {_current.Version}.");
            }

            Volatile.Write(ref _current, snapshot);
            fired = _changed;
            _changed = new CancellationTokenSource();
        }

        fired.Cancel();
        fired.Dispose();
        SnapshotChanged?.Invoke(snapshot);
    }

    public async Task<MeshSnapshot> WaitAsync(Func<MeshSnapshot, bool> predicate, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        using var timeoutSource = new CancellationTokenSource(timeout, timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeoutSource.Token, cancellationToken);
        while (true)
        {
            var token = GetChangeToken();
            var snapshot = Current;
            if (predicate(snapshot))
            {
                return snapshot;
            }

            var changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using (token.RegisterChangeCallback(static s => ((TaskCompletionSource)s!).TrySetResult(), changed))
            using (linked.Token.Register(static s => ((TaskCompletionSource)s!).TrySetResult(), changed))
            {
                await changed.Task.ConfigureAwait(false);
            }

            cancellationToken.ThrowIfCancellationRequested();
            if (timeoutSource.IsCancellationRequested)
            {
                snapshot = Current;
                if (predicate(snapshot))
                {
                    return snapshot;
                }

                throw new TimeoutException($"No mesh snapshot satisfied the condition within {timeout.TotalSeconds:0.###} s (current version {snapshot.Version}).");
            }
        }
    }
}

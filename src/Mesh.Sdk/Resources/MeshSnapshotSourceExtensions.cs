namespace Mesh.Sdk.Resources;

/// <summary>Common waits on an <see cref="IMeshSnapshotSource"/>.</summary>
public static class MeshSnapshotSourceExtensions
{
    /// <summary>Waits for a snapshot with at least the given version.</summary>
    /// <param name="source">The snapshot source.</param>
    /// <param name="version">The smallest acceptable version.</param>
    /// <param name="timeout">How long to wait at most.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The snapshot.</returns>
    public static Task<MeshSnapshot> WaitForVersionAsync(this IMeshSnapshotSource source, long version, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        return source.WaitAsync(s => s.Version >= version, timeout, cancellationToken);
    }

    /// <summary>
    /// Waits until a listener and everything it depends on (routes, clusters, endpoints) are present.
    /// </summary>
    /// <param name="source">The snapshot source.</param>
    /// <param name="listenerName">The listener resource name.</param>
    /// <param name="timeout">How long to wait at most.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The snapshot.</returns>
    public static Task<MeshSnapshot> WaitForListenerAsync(this IMeshSnapshotSource source, string listenerName, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(source);
        return source.WaitAsync(s => s.IsComplete(listenerName), timeout, cancellationToken);
    }
}

using Microsoft.Extensions.Primitives;

namespace Mesh.Sdk.Resources;

/// <summary>
/// Where routing, load balancing and the rest read the mesh configuration from: the current
/// <see cref="MeshSnapshot"/>, and notification when a newer one is published.
/// </summary>
public interface IMeshSnapshotSource
{
    /// <summary>The snapshot in force (one volatile read).</summary>
    MeshSnapshot Current { get; }

    /// <summary>A token that fires once when a snapshot newer than the current one is published.</summary>
    /// <returns>The change token.</returns>
    IChangeToken GetChangeToken();

    /// <summary>Raised after each publication, with the new snapshot, on the publishing thread.</summary>
    event Action<MeshSnapshot>? SnapshotChanged;

    /// <summary>Waits until the current snapshot satisfies <paramref name="predicate"/>.</summary>
    /// <param name="predicate">The condition.</param>
    /// <param name="timeout">How long to wait at most.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The first snapshot satisfying the condition.</returns>
    /// <exception cref="TimeoutException">No such snapshot within <paramref name="timeout"/>.</exception>
    Task<MeshSnapshot> WaitAsync(Func<MeshSnapshot, bool> predicate, TimeSpan timeout, CancellationToken cancellationToken = default);
}

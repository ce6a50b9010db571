namespace Mesh.Sdk.LoadBalancing;

/// <summary>
/// Per-pick input: an optional request hash (from the route's hash policy, for RING_HASH) and an optional
/// exclusion predicate with its state (for retries on a different host). A struct passed by reference, so a
/// pick allocates nothing; use a <see langword="static"/> lambda and pass what it needs as state.
/// </summary>
internal readonly struct PickContext
{
    /// <summary>Envoy's default <c>host_selection_retry_max_attempts</c>: reselect once.</summary>
    public const int DefaultHostSelectionRetryMaxAttempts = 1;

    /// <summary>Creates a context.</summary>
    /// <param name="hash">The request hash; <see langword="null"/> when no hash policy produced one.</param>
    /// <param name="exclude">Returns <see langword="true"/> for endpoints to avoid (for example those already tried).</param>
    /// <param name="excludeState">State handed to <paramref name="exclude"/>.</param>
    /// <param name="hostSelectionRetryMaxAttempts">How many times to pick again when the pick is excluded; the last pick is used when all are excluded.</param>
    public PickContext(
        ulong? hash = null,
        Func<MeshEndpoint, object?, bool>? exclude = null,
        object? excludeState = null,
        int hostSelectionRetryMaxAttempts = DefaultHostSelectionRetryMaxAttempts)
    {
        HasHash = hash.HasValue;
        Hash = hash.GetValueOrDefault();
        Exclude = exclude;
        ExcludeState = excludeState;
        HostSelectionRetryMaxAttempts = Math.Max(0, hostSelectionRetryMaxAttempts);
    }

    /// <summary>Whether <see cref="Hash"/> carries a request hash.</summary>
    public bool HasHash { get; }

    /// <summary>The request hash when <see cref="HasHash"/>.</summary>
    public ulong Hash { get; }

    /// <summary>The exclusion predicate, if any.</summary>
    public Func<MeshEndpoint, object?, bool>? Exclude { get; }

    /// <summary>State for <see cref="Exclude"/>.</summary>
    public object? ExcludeState { get; }

    /// <summary>Reselection attempts when a pick is excluded.</summary>
    public int HostSelectionRetryMaxAttempts { get; }

    /// <summary>Whether the predicate rejects <paramref name="endpoint"/>.</summary>
    public bool IsExcluded(MeshEndpoint endpoint) => Exclude is { } exclude && exclude(endpoint, ExcludeState);

    /// <summary>A predicate excluding the endpoints in an <see cref="IReadOnlyCollection{T}"/> passed as state (Envoy's <c>previous_hosts</c>).</summary>
    public static Func<MeshEndpoint, object?, bool> PreviousHosts { get; } = static (endpoint, state) =>
    {
        if (state is MeshEndpoint single)
        {
            return ReferenceEquals(single, endpoint) || single.Key == endpoint.Key;
        }

        if (state is IReadOnlyList<MeshEndpoint> list)
        {
            for (var i = 0; i < list.Count; i++)
            {
                if (list[i].Key == endpoint.Key)
                {
                    return true;
                }
            }
        }

        return false;
    };
}

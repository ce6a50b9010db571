namespace Mesh.Sdk.Resilience;

/// <summary>
/// Outlier-detection state of one endpoint: consecutive-failure counters and success/total buckets written
/// on the request path with <see cref="Interlocked"/>, and ejection bookkeeping written by the
/// <see cref="OutlierDetector"/> under its lock.
/// </summary>
internal sealed class OutlierHostState
{
    internal int Consecutive5xx;
    internal int ConsecutiveGatewayFailure;
    internal int ConsecutiveLocalOriginFailure;

    // Current interval's counters; swapped out by the detector at each interval.
    internal long ExternalTotal;
    internal long ExternalSuccess;
    internal long LocalTotal;
    internal long LocalSuccess;

    private volatile bool _ejected;

    /// <summary>Whether the endpoint is ejected and must not be picked.</summary>
    public bool IsEjected => _ejected;

    /// <summary>How many times the endpoint has been ejected in total.</summary>
    public int EjectionCount { get; internal set; }

    /// <summary>The ejection time multiplier: grows with each ejection, decays while the host stays healthy.</summary>
    public int EjectionMultiplier { get; internal set; }

    /// <summary>When the current (or last) ejection started.</summary>
    public DateTimeOffset? LastEjection { get; internal set; }

    /// <summary>When the host last returned from ejection.</summary>
    public DateTimeOffset? LastUnejection { get; internal set; }

    /// <summary>The jitter added to the current ejection.</summary>
    internal TimeSpan Jitter { get; set; }

    internal void SetEjected(bool value) => _ejected = value;

    internal void ResetConsecutive()
    {
        Volatile.Write(ref Consecutive5xx, 0);
        Volatile.Write(ref ConsecutiveGatewayFailure, 0);
        Volatile.Write(ref ConsecutiveLocalOriginFailure, 0);
    }
}

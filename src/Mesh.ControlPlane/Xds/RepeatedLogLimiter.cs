namespace Mesh.ControlPlane.Xds;

/// <summary>
/// Decides which of a run of identical warnings reach the log: the first of a key is logged, repeats within the
/// interval are only counted, and the first repeat after the interval is logged again with the count held back.
/// A client that NACKs the same rejection a thousand times a second, or reconnects and fails in a loop, writes one
/// line per interval instead of one per occurrence. Thread-safe (streams log concurrently).
/// </summary>
internal sealed class RepeatedLogLimiter(TimeProvider timeProvider, TimeSpan interval)
{
    /// <summary>How often a repeating warning is logged again, with the count of the repeats held back.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(10);

    // Keys are few (one per node, type and rejection text); the cap guards against texts that differ every time.
    private const int MaxKeys = 1024;

    private readonly Lock _gate = new();
    private readonly Dictionary<string, (DateTimeOffset LastLogged, int Held)> _entries = new(StringComparer.Ordinal);

    /// <summary>Records one occurrence of <paramref name="key"/>.</summary>
    /// <param name="key">The warning's identity (its text without nonces or versions).</param>
    /// <param name="repeats">When logged, how many occurrences were held back since the last logged one.</param>
    /// <param name="window">When logged, the time since the last logged one (zero for the first).</param>
    /// <returns>Whether to log this occurrence as a warning; otherwise it was counted.</returns>
    public bool ShouldLog(string key, out int repeats, out TimeSpan window)
    {
        var now = timeProvider.GetUtcNow();
        lock (_gate)
        {
            if (!_entries.TryGetValue(key, out var entry))
            {
                if (_entries.Count >= MaxKeys)
                {
                    _entries.Clear();
                }

                _entries[key] = (now, 0);
                (repeats, window) = (0, TimeSpan.Zero);
                return true;
            }

            window = now - entry.LastLogged;
            if (window >= interval)
            {
                repeats = entry.Held;
                _entries[key] = (now, 0);
                return true;
            }

            _entries[key] = (entry.LastLogged, entry.Held + 1);
            repeats = 0;
            return false;
        }
    }
}

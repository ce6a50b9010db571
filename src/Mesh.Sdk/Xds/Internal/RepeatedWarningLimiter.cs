namespace Mesh.Sdk.Xds.Internal;

/// <summary>
/// Decides which of a run of identical warnings reach the log: the first of a key is logged, repeats within the
/// interval are only counted, and the first repeat after the interval is logged again with the count of those
/// held back, so a fault that repeats a thousand times a second writes one line a minute. Not thread-safe: the
/// owner calls it under its own lock (or from one loop).
/// </summary>
internal sealed class RepeatedWarningLimiter(TimeProvider timeProvider, TimeSpan interval)
{
    /// <summary>How often a repeating warning is logged again, with the count of the repeats held back.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(60);

    // Distinct keys are few (one per resource type and rejection text, one per connection failure reason); the cap
    // only guards against a server that invents a new error text on every response.
    private const int MaxKeys = 256;

    private readonly Dictionary<(string Group, string Key), Entry> _entries = [];

    public TimeSpan Interval => interval;

    /// <summary>Records one occurrence.</summary>
    /// <param name="group">What the warning is about (a resource type, a server), for <see cref="Clear"/>.</param>
    /// <param name="key">The warning's identity within the group (its text without nonces or versions).</param>
    /// <param name="repeats">When logged, how many occurrences were held back since the last logged one.</param>
    /// <param name="window">When logged, the time since the last logged one (zero for the first).</param>
    /// <returns>Whether to log this occurrence as a warning; otherwise it was counted.</returns>
    public bool ShouldLog(string group, string key, out int repeats, out TimeSpan window)
    {
        var now = timeProvider.GetUtcNow();
        if (!_entries.TryGetValue((group, key), out var entry))
        {
            if (_entries.Count >= MaxKeys)
            {
                _entries.Clear();
            }

            _entries[(group, key)] = new Entry { LastLogged = now };
            repeats = 0;
            window = TimeSpan.Zero;
            return true;
        }

        window = now - entry.LastLogged;
        if (window >= interval)
        {
            repeats = entry.Held;
            entry.LastLogged = now;
            entry.Held = 0;
            return true;
        }

        entry.Held++;
        repeats = 0;
        return false;
    }

    /// <summary>Forgets every key of <paramref name="group"/> (the fault is over); returns the repeats held back and not yet reported.</summary>
    public int Clear(string group)
    {
        if (_entries.Count == 0)
        {
            return 0;
        }

        var held = 0;
        List<(string, string)>? remove = null;
        foreach (var (id, entry) in _entries)
        {
            if (id.Group == group)
            {
                held += entry.Held;
                (remove ??= []).Add(id);
            }
        }

        if (remove is not null)
        {
            foreach (var id in remove)
            {
                _entries.Remove(id);
            }
        }

        return held;
    }

    private sealed class Entry
    {
        public DateTimeOffset LastLogged { get; set; }

        public int Held { get; set; }
    }
}

namespace Mesh.Sdk.Xds.Internal;

/// <summary>
/// gRPC's connection backoff: the first delay is the initial backoff, each next one the previous times the
/// multiplier (capped at the maximum); every delay is jittered uniformly by ±jitter.
/// </summary>
internal sealed class ExponentialBackoff(Random random, BackoffSettings settings)
{
    private TimeSpan _current = settings.Initial;
    private bool _first = true;

    public BackoffSettings Settings => settings;

    public TimeSpan NextDelay()
    {
        if (_first)
        {
            _first = false;
        }
        else
        {
            var next = _current.TotalSeconds * settings.Multiplier;
            _current = TimeSpan.FromSeconds(Math.Min(next, settings.Max.TotalSeconds));
        }

        var factor = 1 + settings.Jitter * ((random.NextDouble() * 2) - 1);
        return TimeSpan.FromSeconds(_current.TotalSeconds * factor);
    }

    public void Reset()
    {
        _current = settings.Initial;
        _first = true;
    }
}

/// <summary>Backoff parameters; <see cref="Grpc"/> holds gRPC's documented defaults.</summary>
internal sealed record BackoffSettings(TimeSpan Initial, double Multiplier, double Jitter, TimeSpan Max)
{
    public static BackoffSettings Grpc { get; } = new(TimeSpan.FromSeconds(1), 1.6, 0.2, TimeSpan.FromSeconds(120));

    /// <summary>
    /// The ADS stream's: gRPC's schedule capped at 3 s. Whatever the length of an outage, the client tries again at
    /// most 3.6 s (3 s + 20 % jitter) after the control plane is back, so a change made meanwhile is followed within
    /// a few seconds of it listening; a down server sees one connection attempt every 2.4 to 3.6 s per client.
    /// </summary>
    public static BackoffSettings Ads { get; } = Grpc with { Max = TimeSpan.FromSeconds(3) };
}

namespace Mesh.Sdk.LoadBalancing.Internal;

/// <summary>
/// Lock-free, allocation-free weighted round robin over a fixed list of weights. Weights are scaled so the
/// largest is <see cref="MaxWeight"/>; entry <c>i</c> is taken in "generation" <c>g</c> (one pass over the
/// list) when <c>(w_i * g + offset_i) mod MaxWeight</c> falls in the top <c>w_i</c> of the range, which spreads
/// an entry's turns evenly across generations. The heaviest entry is taken every generation, so one call
/// loops at most once over the list.
/// </summary>
internal sealed class StrideScheduler
{
    public const ulong MaxWeight = 0xFFFF;

    private readonly ushort[] _scaled;
    private readonly bool _uniform;
    private long _sequence;

    public StrideScheduler(ReadOnlySpan<double> weights, long startSequence)
    {
        if (weights.IsEmpty)
        {
            throw new ArgumentException("At least one weight is needed.", nameof(weights));
        }

        var max = 0.0;
        foreach (var w in weights)
        {
            max = Math.Max(max, w);
        }

        _scaled = new ushort[weights.Length];
        _uniform = true;
        for (var i = 0; i < weights.Length; i++)
        {
            var scaled = max <= 0 ? MaxWeight : Math.Clamp(Math.Round(weights[i] / max * MaxWeight), 1, MaxWeight);
            _scaled[i] = (ushort)scaled;
            _uniform &= _scaled[i] == MaxWeight;
        }

        _sequence = startSequence;
    }

    public int Count => _scaled.Length;

    public int Next()
    {
        var n = (ulong)_scaled.Length;
        if (_uniform)
        {
            return (int)((ulong)Interlocked.Increment(ref _sequence) % n);
        }

        while (true)
        {
            var sequence = (ulong)Interlocked.Increment(ref _sequence);
            var index = sequence % n;
            var generation = sequence / n;
            ulong weight = _scaled[index];
            var offset = MaxWeight / 2 * index;
            if ((weight * generation + offset) % MaxWeight < MaxWeight - weight)
            {
                continue;
            }

            return (int)index;
        }
    }
}

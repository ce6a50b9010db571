namespace Mesh.Sdk.RateLimiting;

/// <summary>
/// Envoy's timer token bucket (<c>local_ratelimit</c>): it starts full, and every <see cref="FillInterval"/> after it
/// was created <see cref="TokensPerFill"/> tokens are added, never beyond <see cref="MaxTokens"/>. Each request that
/// is checked takes one token. Envoy runs a timer per bucket; here the refills due are counted from the clock when the
/// bucket is next read, which gives the same tokens at every instant without a timer.
/// </summary>
internal sealed class TokenBucket
{
    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private readonly long _start;
    private long _fills;
    private uint _tokens;

    /// <summary>Creates a full bucket.</summary>
    public TokenBucket(uint maxTokens, uint tokensPerFill, TimeSpan fillInterval, TimeProvider time)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(fillInterval, TimeSpan.Zero);
        MaxTokens = maxTokens;
        TokensPerFill = tokensPerFill;
        FillInterval = fillInterval;
        _time = time;
        _start = time.GetTimestamp();
        _tokens = maxTokens;
    }

    /// <summary>The most tokens the bucket holds (<c>max_tokens</c>).</summary>
    public uint MaxTokens { get; }

    /// <summary>Tokens added per refill (<c>tokens_per_fill</c>, 1 when unset).</summary>
    public uint TokensPerFill { get; }

    /// <summary>Time between refills (<c>fill_interval</c>).</summary>
    public TimeSpan FillInterval { get; }

    /// <summary>The tokens left now.</summary>
    public uint Remaining
    {
        get
        {
            lock (_gate)
            {
                Refill();
                return _tokens;
            }
        }
    }

    /// <summary>Time until the next refill.</summary>
    public TimeSpan UntilNextFill
    {
        get
        {
            var elapsed = _time.GetElapsedTime(_start).Ticks;
            return TimeSpan.FromTicks(FillInterval.Ticks - (elapsed % FillInterval.Ticks));
        }
    }

    /// <summary>Takes one token; false when the bucket is empty.</summary>
    public bool TryConsume()
    {
        lock (_gate)
        {
            Refill();
            if (_tokens == 0)
            {
                return false;
            }

            _tokens--;
            return true;
        }
    }

    private void Refill()
    {
        var due = _time.GetElapsedTime(_start).Ticks / FillInterval.Ticks;
        if (due <= _fills)
        {
            return;
        }

        // More refills than tokens cannot add more than a full bucket; bounding them keeps the product in range.
        var added = (ulong)Math.Min(due - _fills, (long)MaxTokens + 1) * TokensPerFill;
        _tokens = (uint)Math.Min(MaxTokens, _tokens + added);
        _fills = due;
    }
}

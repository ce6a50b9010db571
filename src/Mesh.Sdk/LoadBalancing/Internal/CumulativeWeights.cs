namespace Mesh.Sdk.LoadBalancing.Internal;

/// <summary>Weighted random selection by binary search over prefix sums of the weights.</summary>
internal sealed class CumulativeWeights
{
    private readonly ulong[] _prefix;

    public CumulativeWeights(MeshEndpoint[] endpoints)
    {
        _prefix = new ulong[endpoints.Length];
        ulong sum = 0;
        var uniform = true;
        for (var i = 0; i < endpoints.Length; i++)
        {
            sum += endpoints[i].Weight;
            _prefix[i] = sum;
            uniform &= endpoints[i].Weight == endpoints[0].Weight;
        }

        Total = sum;
        IsUniform = uniform;
    }

    public ulong Total { get; }

    public bool IsUniform { get; }

    public int Pick(Random random)
    {
        if (IsUniform)
        {
            return random.Next(_prefix.Length);
        }

        var target = (ulong)random.NextInt64((long)Total);

        // First index whose prefix sum exceeds the target.
        int lo = 0, hi = _prefix.Length - 1;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (_prefix[mid] > target)
            {
                hi = mid;
            }
            else
            {
                lo = mid + 1;
            }
        }

        return lo;
    }
}

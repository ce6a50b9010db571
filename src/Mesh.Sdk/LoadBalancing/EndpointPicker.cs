using System.IO.Hashing;
using System.Text;
using Mesh.Sdk.LoadBalancing.Internal;

namespace Mesh.Sdk.LoadBalancing;

/// <summary>
/// Picks one endpoint out of a fixed, non-empty host list (one priority's healthy or degraded hosts, or one
/// locality's). Built once per update; <see cref="Pick"/> is thread-safe and allocation-free.
/// </summary>
internal abstract class EndpointPicker
{
    protected EndpointPicker(MeshEndpoint[] endpoints)
    {
        if (endpoints.Length == 0)
        {
            throw new ArgumentException("A picker needs at least one endpoint.", nameof(endpoints));
        }

        Endpoints = endpoints;
    }

    /// <summary>The hosts this picker chooses from.</summary>
    public MeshEndpoint[] Endpoints { get; }

    /// <summary>Picks an endpoint.</summary>
    /// <param name="context">The pick context (hash for consistent hashing).</param>
    /// <param name="attempt">0 for the first pick, then 1, 2, … when earlier picks were excluded.</param>
    /// <param name="random">The random source of the load balancer.</param>
    public abstract MeshEndpoint Pick(in PickContext context, int attempt, Random random);

    /// <summary>Creates the picker for <paramref name="policy"/>.</summary>
    /// <param name="policy">The cluster's policy.</param>
    /// <param name="endpoints">The hosts.</param>
    /// <param name="ringWeights">RING_HASH only: per-host weights in units of endpoint weight (locality-scaled when locality weighting is on); <see langword="null"/> uses endpoint weights.</param>
    /// <param name="random">Random source for start offsets.</param>
    public static EndpointPicker Create(LoadBalancerPolicy policy, MeshEndpoint[] endpoints, double[]? ringWeights, Random random) => policy.Kind switch
    {
        LoadBalancerKind.RoundRobin => new RoundRobinPicker(endpoints, random),
        LoadBalancerKind.LeastRequest => new LeastRequestPicker(endpoints, policy.ChoiceCount, policy.ActiveRequestBias, policy.FullScan),
        LoadBalancerKind.Random => new RandomPicker(endpoints),
        LoadBalancerKind.RingHash => new RingHashPicker(endpoints, ringWeights, policy.MinimumRingSize, policy.MaximumRingSize, policy.UseHostnameForHashing),
        LoadBalancerKind.PickFirst => new PickFirstPicker(endpoints),
        _ => throw new NotSupportedException($"Load balancer '{policy.Kind}' is not supported."),
    };
}

/// <summary>
/// Weighted round robin (smooth: an endpoint's turns are spread evenly, not bunched), starting at a random
/// offset so that many clients do not all begin with the same host.
/// </summary>
internal sealed class RoundRobinPicker : EndpointPicker
{
    private readonly StrideScheduler _scheduler;

    public RoundRobinPicker(MeshEndpoint[] endpoints, Random random)
        : base(endpoints)
    {
        var weights = new double[endpoints.Length];
        for (var i = 0; i < endpoints.Length; i++)
        {
            weights[i] = endpoints[i].Weight;
        }

        _scheduler = new StrideScheduler(weights, random.NextInt64(endpoints.Length));
    }

    public override MeshEndpoint Pick(in PickContext context, int attempt, Random random) => Endpoints[_scheduler.Next()];
}

/// <summary>Weighted random.</summary>
internal sealed class RandomPicker : EndpointPicker
{
    private readonly CumulativeWeights _weights;

    public RandomPicker(MeshEndpoint[] endpoints)
        : base(endpoints)
        => _weights = new CumulativeWeights(endpoints);

    public override MeshEndpoint Pick(in PickContext context, int attempt, Random random) => Endpoints[_weights.Pick(random)];
}

/// <summary>
/// Least request. With equal weights: sample <c>choice_count</c> endpoints (default 2, "power of two
/// choices") and take the one with the fewest active requests, as Envoy does. With unequal weights:
/// sample by weight and take the highest effective weight <c>weight / (active + 1)^active_request_bias</c>,
/// so both weight and load count. FULL_SCAN compares every endpoint.
/// </summary>
internal sealed class LeastRequestPicker : EndpointPicker
{
    private readonly CumulativeWeights _weights;
    private readonly int _choices;
    private readonly double _bias;
    private readonly bool _fullScan;

    public LeastRequestPicker(MeshEndpoint[] endpoints, uint choiceCount, double activeRequestBias, bool fullScan)
        : base(endpoints)
    {
        _weights = new CumulativeWeights(endpoints);
        _choices = (int)Math.Max(2, choiceCount);
        _bias = activeRequestBias;
        _fullScan = fullScan;
    }

    public override MeshEndpoint Pick(in PickContext context, int attempt, Random random)
    {
        var endpoints = Endpoints;
        if (endpoints.Length == 1)
        {
            return endpoints[0];
        }

        if (_fullScan)
        {
            var start = random.Next(endpoints.Length);
            MeshEndpoint? best = null;
            var bestScore = double.MinValue;
            for (var i = 0; i < endpoints.Length; i++)
            {
                var candidate = endpoints[(start + i) % endpoints.Length];
                var score = Score(candidate);
                if (best is null || score > bestScore)
                {
                    best = candidate;
                    bestScore = score;
                }
            }

            return best!;
        }

        if (_weights.IsUniform)
        {
            var chosen = endpoints[random.Next(endpoints.Length)];
            var least = chosen.State.ActiveRequests;
            for (var i = 1; i < _choices; i++)
            {
                var candidate = endpoints[random.Next(endpoints.Length)];
                var active = candidate.State.ActiveRequests;
                if (active < least)
                {
                    chosen = candidate;
                    least = active;
                }
            }

            return chosen;
        }

        var pick = endpoints[_weights.Pick(random)];
        var pickScore = Score(pick);
        for (var i = 1; i < _choices; i++)
        {
            var candidate = endpoints[_weights.Pick(random)];
            var score = Score(candidate);
            if (score > pickScore)
            {
                pick = candidate;
                pickScore = score;
            }
        }

        return pick;
    }

    private double Score(MeshEndpoint endpoint)
    {
        var active = endpoint.State.ActiveRequests + 1.0;
        return _bias switch
        {
            0.0 => endpoint.Weight,
            1.0 => endpoint.Weight / active,
            _ => endpoint.Weight / Math.Pow(active, _bias),
        };
    }
}

/// <summary>
/// Ketama-style consistent hashing with a ring whose points per endpoint do not depend on the other endpoints:
/// an endpoint of weight <c>w</c> contributes <c>w × minimum_ring_size</c> points, the hashes of
/// <c>"address:port_i"</c> (xxHash64, seed 0) for <c>i = 0, 1, …</c>, and a request hash maps to the first ring
/// entry at or after it (wrapping). Adding an endpoint to N therefore only inserts its own points: it takes about
/// 1/(N+1) of the keys and no key moves between endpoints that stay; removing one moves only its keys. Only when
/// the total exceeds <c>maximum_ring_size</c> are all counts scaled down to fit (then membership changes move
/// more). Envoy and gRPC instead scale the whole ring to <c>minimum_ring_size</c>, so the same key can map to a
/// different endpoint than an Envoy caller picks.
/// </summary>
internal sealed class RingHashPicker : EndpointPicker
{
    private readonly ulong[] _hashes;
    private readonly MeshEndpoint[] _owners;

    /// <summary>Builds the ring.</summary>
    /// <param name="endpoints">The hosts.</param>
    /// <param name="weights">Per-host weights in units of endpoint weight; <see langword="null"/> uses <see cref="MeshEndpoint.Weight"/>.</param>
    /// <param name="minimumRingSize">Points per unit of weight.</param>
    /// <param name="maximumRingSize">Upper bound of the ring's size.</param>
    /// <param name="useHostname">Hash the endpoint's hostname instead of its address.</param>
    public RingHashPicker(MeshEndpoint[] endpoints, double[]? weights, ulong minimumRingSize, ulong maximumRingSize, bool useHostname)
        : base(endpoints)
    {
        var points = new double[endpoints.Length];
        var total = 0.0;
        for (var i = 0; i < endpoints.Length; i++)
        {
            // At least one point, so a host of tiny (locality-scaled) weight is still on the ring.
            points[i] = Math.Max(1.0, Math.Round((weights?[i] ?? endpoints[i].Weight) * minimumRingSize));
            total += points[i];
        }

        if (total > maximumRingSize)
        {
            // Scale down to the maximum with Envoy's running target, so the ring holds exactly maximum_ring_size entries.
            var scale = maximumRingSize / total;
            var target = 0.0;
            var assigned = 0.0;
            for (var i = 0; i < points.Length; i++)
            {
                target += points[i] * scale;
                points[i] = Math.Max(0.0, Math.Ceiling(target - 1e-9) - assigned);
                assigned += points[i];
            }

            total = assigned;
        }

        var hashes = new ulong[(int)total];
        var owners = new MeshEndpoint[hashes.Length];
        var next = 0;
        Span<byte> buffer = stackalloc byte[512];
        for (var h = 0; h < endpoints.Length; h++)
        {
            var endpoint = endpoints[h];
            var name = useHostname && endpoint.Hostname.Length > 0 ? endpoint.Hostname : endpoint.Key;

            // "name_" once, then the replica index appended in place for each point.
            var prefixLength = Encoding.UTF8.GetByteCount(name) + 1;
            Span<byte> bytes = prefixLength + 11 <= buffer.Length ? buffer : new byte[prefixLength + 11];
            Encoding.UTF8.GetBytes(name, bytes);
            bytes[prefixLength - 1] = (byte)'_';
            var count = (int)points[h];
            for (var i = 0; i < count; i++)
            {
                i.TryFormat(bytes[prefixLength..], out var digits, provider: System.Globalization.CultureInfo.InvariantCulture);
                hashes[next] = XxHash64.HashToUInt64(bytes[..(prefixLength + digits)]);
                owners[next] = endpoint;
                next++;
            }
        }

        Array.Sort(hashes, owners);
        _hashes = hashes;
        _owners = owners;
    }

    /// <summary>Number of entries on the ring.</summary>
    public int RingSize => _hashes.Length;

    public override MeshEndpoint Pick(in PickContext context, int attempt, Random random)
    {
        var hash = context.HasHash ? context.Hash : unchecked((ulong)random.NextInt64(long.MinValue, long.MaxValue));
        var index = Array.BinarySearch(_hashes, hash);
        if (index < 0)
        {
            index = ~index;
        }

        // A retry behaves as if the entry were missing from the ring: step to later entries.
        return _owners[(int)((uint)(index + attempt) % (uint)_owners.Length)];
    }
}

/// <summary>gRPC's pick_first: the first endpoint in order; reselection walks down the list.</summary>
internal sealed class PickFirstPicker : EndpointPicker
{
    public PickFirstPicker(MeshEndpoint[] endpoints)
        : base(endpoints)
    {
    }

    public override MeshEndpoint Pick(in PickContext context, int attempt, Random random) => Endpoints[attempt % Endpoints.Length];
}

/// <summary>
/// Locality-weighted balancing: pick a locality by its effective weight (weighted round robin), then an
/// endpoint inside it with the cluster's algorithm.
/// </summary>
internal sealed class LocalityWeightedPicker : EndpointPicker
{
    private readonly EndpointPicker[] _localities;
    private readonly StrideScheduler _scheduler;

    public LocalityWeightedPicker(EndpointPicker[] localities, double[] effectiveWeights, Random random)
        : base(localities.SelectMany(static l => l.Endpoints).ToArray())
    {
        _localities = localities;
        EffectiveWeights = effectiveWeights;
        _scheduler = new StrideScheduler(effectiveWeights, random.NextInt64(localities.Length));
    }

    /// <summary>Effective locality weights: weight × min(1, overprovisioning × available/total).</summary>
    public double[] EffectiveWeights { get; }

    public override MeshEndpoint Pick(in PickContext context, int attempt, Random random)
        => _localities[_scheduler.Next()].Pick(context, attempt, random);
}

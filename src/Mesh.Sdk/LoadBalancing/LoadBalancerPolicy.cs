using Envoy.Config.Cluster.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Mesh.Xds;
using TypedLeastRequest = Envoy.Extensions.LoadBalancingPolicies.LeastRequest.V3.LeastRequest;
using TypedPickFirst = Envoy.Extensions.LoadBalancingPolicies.PickFirst.V3.PickFirst;
using TypedRandom = Envoy.Extensions.LoadBalancingPolicies.Random.V3.Random;
using TypedRingHash = Envoy.Extensions.LoadBalancingPolicies.RingHash.V3.RingHash;
using TypedRoundRobin = Envoy.Extensions.LoadBalancingPolicies.RoundRobin.V3.RoundRobin;
using TypedWrrLocality = Envoy.Extensions.LoadBalancingPolicies.WrrLocality.V3.WrrLocality;

namespace Mesh.Sdk.LoadBalancing;

/// <summary>The endpoint-picking algorithm of a cluster.</summary>
internal enum LoadBalancerKind
{
    /// <summary>Weighted round robin.</summary>
    RoundRobin,

    /// <summary>Power of N choices on active requests (weighted).</summary>
    LeastRequest,

    /// <summary>Weighted random.</summary>
    Random,

    /// <summary>Consistent hashing on a ring (Ketama style, xxHash64).</summary>
    RingHash,

    /// <summary>The first usable endpoint in EDS order (gRPC's pick_first).</summary>
    PickFirst,
}

/// <summary>
/// A cluster's load-balancing configuration compiled from <c>lb_policy</c> with its <c>lb_config</c>
/// and <c>common_lb_config</c>, or from the typed <c>load_balancing_policy</c>.
/// </summary>
internal sealed record LoadBalancerPolicy
{
    /// <summary>Envoy's default <c>minimum_ring_size</c>.</summary>
    public const ulong DefaultMinimumRingSize = 1024;

    /// <summary>Envoy's default (and the allowed maximum) <c>maximum_ring_size</c>: 8M entries.</summary>
    public const ulong DefaultMaximumRingSize = 8 * 1024 * 1024;

    /// <summary>Envoy's default <c>choice_count</c>.</summary>
    public const uint DefaultChoiceCount = 2;

    /// <summary>The round-robin default policy.</summary>
    public static LoadBalancerPolicy Default { get; } = new();

    /// <summary>The algorithm.</summary>
    public LoadBalancerKind Kind { get; init; } = LoadBalancerKind.RoundRobin;

    /// <summary>Whether traffic is split across localities by locality weight before picking an endpoint.</summary>
    public bool LocalityWeighted { get; init; }

    /// <summary>LEAST_REQUEST: endpoints sampled per pick (<c>choice_count</c>, default 2).</summary>
    public uint ChoiceCount { get; init; } = DefaultChoiceCount;

    /// <summary>LEAST_REQUEST: scan every endpoint instead of sampling (<c>selection_method: FULL_SCAN</c>).</summary>
    public bool FullScan { get; init; }

    /// <summary>LEAST_REQUEST with unequal weights: effective weight = weight / (active + 1)^bias (<c>active_request_bias</c>, default 1.0).</summary>
    public double ActiveRequestBias { get; init; } = 1.0;

    /// <summary>RING_HASH: <c>minimum_ring_size</c>, default 1024.</summary>
    public ulong MinimumRingSize { get; init; } = DefaultMinimumRingSize;

    /// <summary>RING_HASH: <c>maximum_ring_size</c>, default 8M.</summary>
    public ulong MaximumRingSize { get; init; } = DefaultMaximumRingSize;

    /// <summary>RING_HASH: hash the endpoint's hostname instead of its address (<c>use_hostname_for_hashing</c>).</summary>
    public bool UseHostnameForHashing { get; init; }

    /// <summary>PICK_FIRST: shuffle the endpoint list once per update (<c>shuffle_address_list</c>).</summary>
    public bool ShuffleAddressList { get; init; }

    /// <summary><c>common_lb_config.healthy_panic_threshold</c> in percent; 0 (the default here) disables panic routing.</summary>
    public double HealthyPanicThreshold { get; init; }

    /// <summary>
    /// Compiles the policy of a cluster.
    /// </summary>
    /// <exception cref="NotSupportedException">The cluster asks for a policy or option the SDK does not implement; the message names the cluster and the field.</exception>
    public static LoadBalancerPolicy FromCluster(Cluster cluster)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        var panic = cluster.CommonLbConfig?.HealthyPanicThreshold?.Value ?? 0;
        if (panic is < 0 or > 100)
        {
            throw Unsupported(cluster, $"common_lb_config.healthy_panic_threshold {panic} must be in 0..100");
        }

        if (cluster.LoadBalancingPolicy is { Policies.Count: > 0 } typed)
        {
            return FromTyped(cluster, typed, localityWeighted: false, depth: 0) with { HealthyPanicThreshold = panic };
        }

        var localityWeighted = cluster.CommonLbConfig?.LocalityWeightedLbConfig is not null;
        var useHostname = cluster.CommonLbConfig?.ConsistentHashingLbConfig?.UseHostnameForHashing ?? false;
        var policy = cluster.LbPolicy switch
        {
            Cluster.Types.LbPolicy.RoundRobin => new LoadBalancerPolicy { Kind = LoadBalancerKind.RoundRobin },
            Cluster.Types.LbPolicy.Random => new LoadBalancerPolicy { Kind = LoadBalancerKind.Random },
            Cluster.Types.LbPolicy.LeastRequest => LeastRequest(cluster, cluster.LeastRequestLbConfig?.ChoiceCount, cluster.LeastRequestLbConfig?.ActiveRequestBias, fullScan: false, "least_request_lb_config"),
            Cluster.Types.LbPolicy.RingHash => RingHash(
                cluster,
                cluster.RingHashLbConfig?.HashFunction is null or Cluster.Types.RingHashLbConfig.Types.HashFunction.XxHash,
                cluster.RingHashLbConfig?.MinimumRingSize,
                cluster.RingHashLbConfig?.MaximumRingSize,
                useHostname,
                "ring_hash_lb_config"),
            _ => throw Unsupported(cluster, $"lb_policy {cluster.LbPolicy} is not supported (ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH or a typed load_balancing_policy)"),
        };

        return policy with { LocalityWeighted = localityWeighted, HealthyPanicThreshold = panic };
    }

    private static LoadBalancerPolicy FromTyped(Cluster cluster, LoadBalancingPolicy typed, bool localityWeighted, int depth)
    {
        var seen = new List<string>();
        foreach (var entry in typed.Policies)
        {
            var any = entry.TypedExtensionConfig?.TypedConfig;
            if (any is null)
            {
                seen.Add("(none)");
                continue;
            }

            switch (any.TypeUrl)
            {
                case XdsTypeUrls.RoundRobin:
                {
                    var rr = Unpack<TypedRoundRobin>(cluster, any);
                    return new LoadBalancerPolicy
                    {
                        Kind = LoadBalancerKind.RoundRobin,
                        LocalityWeighted = localityWeighted || rr.LocalityLbConfig?.LocalityWeightedLbConfig is not null,
                    };
                }

                case XdsTypeUrls.Random:
                {
                    var random = Unpack<TypedRandom>(cluster, any);
                    return new LoadBalancerPolicy
                    {
                        Kind = LoadBalancerKind.Random,
                        LocalityWeighted = localityWeighted || random.LocalityLbConfig?.LocalityWeightedLbConfig is not null,
                    };
                }

                case XdsTypeUrls.LeastRequest:
                {
                    var lr = Unpack<TypedLeastRequest>(cluster, any);
                    return LeastRequest(cluster, lr.ChoiceCount, lr.ActiveRequestBias, lr.SelectionMethod == TypedLeastRequest.Types.SelectionMethod.FullScan, "LeastRequest") with
                    {
                        LocalityWeighted = localityWeighted || lr.LocalityLbConfig?.LocalityWeightedLbConfig is not null,
                    };
                }

                case XdsTypeUrls.RingHash:
                {
                    var ring = Unpack<TypedRingHash>(cluster, any);
                    return RingHash(
                        cluster,
                        ring.HashFunction is TypedRingHash.Types.HashFunction.DefaultHash or TypedRingHash.Types.HashFunction.XxHash,
                        ring.MinimumRingSize,
                        ring.MaximumRingSize,
                        ring.ConsistentHashingLbConfig?.UseHostnameForHashing ?? false,
                        "RingHash") with
                    {
                        LocalityWeighted = localityWeighted || ring.LocalityWeightedLbConfig is not null,
                    };
                }

                case PickFirstTypeUrl:
                {
                    var first = Unpack<TypedPickFirst>(cluster, any);
                    return new LoadBalancerPolicy { Kind = LoadBalancerKind.PickFirst, ShuffleAddressList = first.ShuffleAddressList, LocalityWeighted = localityWeighted };
                }

                case XdsTypeUrls.WrrLocality:
                {
                    var wrr = Unpack<TypedWrrLocality>(cluster, any);
                    if (depth > 0 || wrr.EndpointPickingPolicy is not { Policies.Count: > 0 } child)
                    {
                        throw Unsupported(cluster, "load_balancing_policy WrrLocality needs an endpoint_picking_policy that is not itself WrrLocality");
                    }

                    return FromTyped(cluster, child, localityWeighted: true, depth + 1);
                }

                default:
                    seen.Add(any.TypeUrl);
                    break;
            }
        }

        throw Unsupported(cluster, $"load_balancing_policy has no supported policy (found {string.Join(", ", seen.Select(static s => "'" + s + "'"))}; supported: RoundRobin, LeastRequest, Random, RingHash, PickFirst, WrrLocality)");
    }

    internal const string PickFirstTypeUrl = XdsTypeUrls.Prefix + "envoy.extensions.load_balancing_policies.pick_first.v3.PickFirst";

    private static LoadBalancerPolicy LeastRequest(Cluster cluster, uint? choiceCount, Envoy.Config.Core.V3.RuntimeDouble? bias, bool fullScan, string where)
    {
        var count = choiceCount ?? DefaultChoiceCount;
        if (count < 2)
        {
            throw Unsupported(cluster, $"{where}.choice_count {count} must be at least 2");
        }

        var activeBias = bias?.DefaultValue ?? 1.0;
        if (activeBias < 0 || double.IsNaN(activeBias) || double.IsInfinity(activeBias))
        {
            throw Unsupported(cluster, $"{where}.active_request_bias {activeBias} must be a finite number >= 0");
        }

        return new LoadBalancerPolicy { Kind = LoadBalancerKind.LeastRequest, ChoiceCount = count, ActiveRequestBias = activeBias, FullScan = fullScan };
    }

    private static LoadBalancerPolicy RingHash(Cluster cluster, bool xxHash, ulong? min, ulong? max, bool useHostname, string where)
    {
        if (!xxHash)
        {
            throw Unsupported(cluster, $"{where}.hash_function MURMUR_HASH_2 is not supported (XX_HASH only)");
        }

        var minimum = min ?? DefaultMinimumRingSize;
        var maximum = max ?? DefaultMaximumRingSize;
        if (minimum is 0 or > DefaultMaximumRingSize || maximum is 0 or > DefaultMaximumRingSize || minimum > maximum)
        {
            throw Unsupported(cluster, $"{where}: minimum_ring_size {minimum} and maximum_ring_size {maximum} must satisfy 1 <= minimum <= maximum <= {DefaultMaximumRingSize}");
        }

        return new LoadBalancerPolicy { Kind = LoadBalancerKind.RingHash, MinimumRingSize = minimum, MaximumRingSize = maximum, UseHostnameForHashing = useHostname };
    }

    private static T Unpack<T>(Cluster cluster, Any any)
        where T : IMessage<T>, new()
    {
        try
        {
            return any.Unpack<T>();
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw Unsupported(cluster, $"load_balancing_policy '{any.TypeUrl}' does not decode: {ex.Message}");
        }
    }

    private static NotSupportedException Unsupported(Cluster cluster, string reason)
        => new($"Cluster '{cluster.Name}': {reason}.");
}

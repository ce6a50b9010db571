using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.LoadBalancing;
using TypedLeastRequest = Envoy.Extensions.LoadBalancingPolicies.LeastRequest.V3.LeastRequest;
using TypedRingHash = Envoy.Extensions.LoadBalancingPolicies.RingHash.V3.RingHash;
using TypedRoundRobin = Envoy.Extensions.LoadBalancingPolicies.RoundRobin.V3.RoundRobin;
using TypedWrrLocality = Envoy.Extensions.LoadBalancingPolicies.WrrLocality.V3.WrrLocality;
using static Mesh.Sdk.Tests.LoadBalancing.Lb;

namespace Mesh.Sdk.Tests.LoadBalancing;

public sealed class LoadBalancerPolicyTests
{
    [Fact]
    public void FromCluster_MapsLbPolicyAndLbConfig()
    {
        var lr = Cluster(Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.LeastRequest);
        lr.LeastRequestLbConfig = new Envoy.Config.Cluster.V3.Cluster.Types.LeastRequestLbConfig { ChoiceCount = 4, ActiveRequestBias = new RuntimeDouble { DefaultValue = 0.5 } };
        lr.CommonLbConfig = new Envoy.Config.Cluster.V3.Cluster.Types.CommonLbConfig { LocalityWeightedLbConfig = new() };

        var policy = LoadBalancerPolicy.FromCluster(lr);

        Assert.Equal((LoadBalancerKind.LeastRequest, 4u, 0.5, true), (policy.Kind, policy.ChoiceCount, policy.ActiveRequestBias, policy.LocalityWeighted));
        Assert.Equal(LoadBalancerKind.Random, LoadBalancerPolicy.FromCluster(Cluster(Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.Random)).Kind);
        Assert.Equal(LoadBalancerPolicy.Default, LoadBalancerPolicy.FromCluster(Cluster()));
    }

    [Fact]
    public void FromCluster_RingHashDefaultsAndLimits()
    {
        var ring = Cluster(Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.RingHash);
        var policy = LoadBalancerPolicy.FromCluster(ring);
        Assert.Equal((1024UL, 8UL * 1024 * 1024), (policy.MinimumRingSize, policy.MaximumRingSize));

        ring.RingHashLbConfig = new Envoy.Config.Cluster.V3.Cluster.Types.RingHashLbConfig { HashFunction = Envoy.Config.Cluster.V3.Cluster.Types.RingHashLbConfig.Types.HashFunction.MurmurHash2 };
        var ex = Assert.Throws<NotSupportedException>(() => LoadBalancerPolicy.FromCluster(ring));
        Assert.Equal($"Cluster '{ClusterName}': ring_hash_lb_config.hash_function MURMUR_HASH_2 is not supported (XX_HASH only).", ex.Message);
    }

    [Fact]
    public void FromCluster_RejectsMaglevWithTheClusterName()
    {
        var ex = Assert.Throws<NotSupportedException>(() => LoadBalancerPolicy.FromCluster(Cluster(Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.Maglev)));

        Assert.StartsWith($"Cluster '{ClusterName}': lb_policy Maglev is not supported", ex.Message);
    }

    [Fact]
    public void FromCluster_TypedPolicyTakesTheFirstSupportedEntry()
    {
        var cluster = Cluster();
        cluster.LoadBalancingPolicy = new LoadBalancingPolicy();
        cluster.LoadBalancingPolicy.Policies.Add(Typed("envoy.load_balancing_policies.unknown", new Any { TypeUrl = "type.googleapis.com/example.Unknown" }));
        cluster.LoadBalancingPolicy.Policies.Add(Typed("envoy.load_balancing_policies.least_request", Any.Pack(new TypedLeastRequest { ChoiceCount = 3, SelectionMethod = TypedLeastRequest.Types.SelectionMethod.FullScan })));

        var policy = LoadBalancerPolicy.FromCluster(cluster);

        Assert.Equal((LoadBalancerKind.LeastRequest, 3u, true), (policy.Kind, policy.ChoiceCount, policy.FullScan));
    }

    [Fact]
    public void FromCluster_WrrLocalityTurnsOnLocalityWeighting()
    {
        var child = new LoadBalancingPolicy();
        child.Policies.Add(Typed("ring_hash", Any.Pack(new TypedRingHash { MinimumRingSize = 64, MaximumRingSize = 4096 })));
        var cluster = Cluster();
        cluster.LoadBalancingPolicy = new LoadBalancingPolicy();
        cluster.LoadBalancingPolicy.Policies.Add(Typed("wrr_locality", Any.Pack(new TypedWrrLocality { EndpointPickingPolicy = child })));

        var policy = LoadBalancerPolicy.FromCluster(cluster);

        Assert.Equal((LoadBalancerKind.RingHash, true, 64UL, 4096UL), (policy.Kind, policy.LocalityWeighted, policy.MinimumRingSize, policy.MaximumRingSize));
    }

    [Fact]
    public void FromCluster_TypedRoundRobinWithoutLocalityConfigIsNotLocalityWeighted()
    {
        var cluster = Cluster();
        cluster.LoadBalancingPolicy = new LoadBalancingPolicy();
        cluster.LoadBalancingPolicy.Policies.Add(Typed("round_robin", Any.Pack(new TypedRoundRobin())));

        Assert.Equal(LoadBalancerPolicy.Default, LoadBalancerPolicy.FromCluster(cluster));
    }

    [Fact]
    public void FromCluster_ListsWhatItFoundWhenNothingIsSupported()
    {
        var cluster = Cluster();
        cluster.LoadBalancingPolicy = new LoadBalancingPolicy();
        cluster.LoadBalancingPolicy.Policies.Add(Typed("x", new Any { TypeUrl = "type.googleapis.com/example.Unknown" }));

        var ex = Assert.Throws<NotSupportedException>(() => LoadBalancerPolicy.FromCluster(cluster));

        Assert.Contains("load_balancing_policy has no supported policy (found 'type.googleapis.com/example.Unknown'", ex.Message);
    }

    [Fact]
    public void FromCluster_RejectsChoiceCountBelowTwo()
    {
        var lr = Cluster(Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.LeastRequest);
        lr.LeastRequestLbConfig = new Envoy.Config.Cluster.V3.Cluster.Types.LeastRequestLbConfig { ChoiceCount = 1 };

        var ex = Assert.Throws<NotSupportedException>(() => LoadBalancerPolicy.FromCluster(lr));

        Assert.Contains("least_request_lb_config.choice_count 1 must be at least 2", ex.Message);
    }

    private static LoadBalancingPolicy.Types.Policy Typed(string name, Any config)
        => new() { TypedExtensionConfig = new TypedExtensionConfig { Name = name, TypedConfig = config } };
}

using BenchmarkDotNet.Attributes;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Mesh.Sdk.LoadBalancing;

namespace Mesh.Sdk.Benchmarks.LoadBalancing;

/// <summary>One pick of each load balancer over a cluster of <see cref="Endpoints"/> healthy endpoints.</summary>
[MemoryDiagnoser]
public class LoadBalancerBenchmarks
{
    private ClusterLoadBalancer _roundRobin = null!;
    private ClusterLoadBalancer _weightedRoundRobin = null!;
    private ClusterLoadBalancer _leastRequest = null!;
    private ClusterLoadBalancer _random = null!;
    private ClusterLoadBalancer _ringHash = null!;
    private ClusterLoadBalancer _localityWeighted = null!;
    private PickContext _hashed;
    private PickContext _retry;

    [Params(10, 100)]
    public int Endpoints { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _roundRobin = Create(LoadBalancerPolicy.Default, weighted: false);
        _weightedRoundRobin = Create(LoadBalancerPolicy.Default, weighted: true);
        _leastRequest = Create(LoadBalancerPolicy.Default with { Kind = LoadBalancerKind.LeastRequest }, weighted: false);
        _random = Create(LoadBalancerPolicy.Default with { Kind = LoadBalancerKind.Random }, weighted: true);
        _ringHash = Create(LoadBalancerPolicy.Default with { Kind = LoadBalancerKind.RingHash }, weighted: false);
        _localityWeighted = Create(LoadBalancerPolicy.Default with { LocalityWeighted = true }, weighted: false);
        _hashed = new PickContext(hash: 0x9E3779B97F4A7C15UL);
        _retry = new PickContext(exclude: PickContext.PreviousHosts, excludeState: _roundRobin.Endpoints.All[0], hostSelectionRetryMaxAttempts: 1);
    }

    [Benchmark(Baseline = true)]
    public int RoundRobin() => _roundRobin.Pick(default)!.Port;

    [Benchmark]
    public int WeightedRoundRobin() => _weightedRoundRobin.Pick(default)!.Port;

    [Benchmark]
    public int LeastRequest() => _leastRequest.Pick(default)!.Port;

    [Benchmark]
    public int RandomWeighted() => _random.Pick(default)!.Port;

    [Benchmark]
    public int RingHash() => _ringHash.Pick(_hashed)!.Port;

    [Benchmark]
    public int LocalityWeightedRoundRobin() => _localityWeighted.Pick(default)!.Port;

    [Benchmark]
    public int RoundRobinExcludingPreviousHost() => _roundRobin.Pick(_retry)!.Port;

    private ClusterLoadBalancer Create(LoadBalancerPolicy policy, bool weighted)
    {
        var cla = new ClusterLoadAssignment { ClusterName = "bench" };
        for (var zone = 0; zone < 2; zone++)
        {
            var locality = new LocalityLbEndpoints { Locality = new Locality { Region = "r", Zone = $"z{zone}" }, LoadBalancingWeight = (uint)(zone + 1) };
            for (var i = zone; i < Endpoints; i += 2)
            {
                locality.LbEndpoints.Add(new LbEndpoint
                {
                    Endpoint = new Endpoint { Address = new Address { SocketAddress = new SocketAddress { Address = $"10.0.{i / 200}.{i % 200}", PortValue = 9080 } } },
                    HealthStatus = HealthStatus.Healthy,
                    LoadBalancingWeight = weighted ? (uint)(1 + (i % 5)) : 1u,
                });
            }

            cla.Endpoints.Add(locality);
        }

        var lb = new ClusterLoadBalancer("bench", policy);
        lb.Update(EndpointSet.Create("bench", cla));
        return lb;
    }
}

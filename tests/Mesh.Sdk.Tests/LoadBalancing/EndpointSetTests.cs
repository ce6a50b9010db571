using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Mesh.Sdk.LoadBalancing;
using static Mesh.Sdk.Tests.LoadBalancing.Lb;

namespace Mesh.Sdk.Tests.LoadBalancing;

public sealed class EndpointSetTests
{
    [Fact]
    public void Create_CompilesPrioritiesLocalitiesWeightsAndHealth()
    {
        var cla = Assignment(
            Locality("z1", 0, 3, Ep("10.0.0.1", weight: 5), Ep("10.0.0.2", health: HealthStatus.Degraded)),
            Locality("z2", 2, null, Ep("10.0.0.3", health: HealthStatus.Draining)));
        cla.Policy = new ClusterLoadAssignment.Types.Policy { OverprovisioningFactor = 200 };

        var set = EndpointSet.Create(ClusterName, cla);

        Assert.Equal(3, set.Priorities.Count);
        Assert.Empty(set.Priorities[1].Endpoints);
        Assert.Equal(3u, set.Priorities[0].Localities[0].Weight);
        Assert.Equal(0u, set.Priorities[2].Localities[0].Weight);
        Assert.Equal(["10.0.0.1:9080", "10.0.0.2:9080", "10.0.0.3:9080"], set.All.Select(e => e.Key));
        Assert.Equal([5u, 1u, 1u], set.All.Select(e => e.Weight));
        Assert.Equal([EndpointHealth.Healthy, EndpointHealth.Degraded, EndpointHealth.Excluded], set.All.Select(e => e.HealthClass));
        Assert.Equal("z2", set.All[2].Locality.Zone);
        Assert.Equal(2, set.All[2].Priority);
        Assert.Equal(200u, set.OverprovisioningFactor);
    }

    [Theory]
    [InlineData(HealthStatus.Healthy, "Healthy")]
    [InlineData(HealthStatus.Unknown, "Healthy")]
    [InlineData(HealthStatus.Degraded, "Degraded")]
    [InlineData(HealthStatus.Unhealthy, "Excluded")]
    [InlineData(HealthStatus.Draining, "Excluded")]
    [InlineData(HealthStatus.Timeout, "Excluded")]
    public void Classify_FollowsEnvoyHealthSemantics(HealthStatus status, string expected)
        => Assert.Equal(Enum.Parse<EndpointHealth>(expected), MeshEndpoint.Classify(status));

    [Fact]
    public void Create_KeepsStateOfUnchangedAddresses_AndNewStateForNewOnes()
    {
        var first = EndpointSet.Create(ClusterName, Flat(Ep("10.0.0.1"), Ep("10.0.0.2")));
        first.All[0].State.RequestStarted();
        first.All[0].State.RequestStarted();

        var second = EndpointSet.Create(ClusterName, Flat(Ep("10.0.0.1", weight: 7), Ep("10.0.0.3")), first);

        Assert.Same(first.All[0].State, second.All[0].State);
        Assert.Equal(2, second.All[0].State.ActiveRequests);
        Assert.Equal(7u, second.All[0].Weight);
        Assert.Equal(0, second.All[1].State.ActiveRequests);
        Assert.NotSame(first.All[1].State, second.All[1].State);
    }

    [Fact]
    public void Create_FormatsIpv6KeysWithBrackets_AndResolvesNamedEndpoints()
    {
        var cla = Flat(Ep("::1", port: 8080), new LbEndpoint { EndpointName = "a" });
        cla.NamedEndpoints.Add("a", Ep("10.1.1.1:81").Endpoint);

        var set = EndpointSet.Create(ClusterName, cla);

        Assert.Equal(["[::1]:8080", "10.1.1.1:81"], set.All.Select(e => e.Key));
    }

    [Fact]
    public void Create_RejectsPortlessEndpointWithItsPath()
    {
        var cla = Flat(Ep("10.0.0.1"), Ep("10.0.0.2", port: 0));

        var ex = Assert.Throws<InvalidDataException>(() => EndpointSet.Create(ClusterName, cla));

        Assert.Equal($"ClusterLoadAssignment for cluster '{ClusterName}': endpoints[0].lb_endpoints[1].endpoint.address.socket_address needs a port_value in 1..65535.", ex.Message);
    }

    [Fact]
    public void Create_RejectsZeroWeightAndUnknownNamedEndpoint()
    {
        var zero = Assert.Throws<InvalidDataException>(() => EndpointSet.Create(ClusterName, Flat(Ep("10.0.0.1", weight: 0))));
        Assert.Contains("endpoints[0].lb_endpoints[0].load_balancing_weight must be at least 1", zero.Message);

        var named = Assert.Throws<InvalidDataException>(() => EndpointSet.Create(ClusterName, Flat(new LbEndpoint { EndpointName = "missing" })));
        Assert.Contains("endpoint_name 'missing' is not in named_endpoints", named.Message);
    }
}

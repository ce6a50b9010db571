using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Registry;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Mesh.ControlPlane.Tests.Registry;

public class ServiceRegistryTests
{
    private static MeshConfig Config(string yaml)
    {
        var store = new ConfigStore("default", NullLogger.Instance);
        store.Apply("/cfg/test.yaml", yaml);
        Assert.Empty(store.LastErrors);
        return store.Current;
    }

    [Fact]
    public void WorkloadSelector_PicksMatchingWorkloadEntriesInSameNamespace()
    {
        var other = TestYaml.Workload("elsewhere", "v1", 19090).Replace("name: elsewhere", "name: elsewhere\n  namespace: other");
        var unrelated = TestYaml.Workload("ratings", "v1", 19091).Replace("app: reviews", "app: ratings");
        using var registry = new ServiceRegistry(TimeProvider.System, TimeSpan.FromSeconds(10), "cluster.local", NullLogger.Instance);
        registry.UpdateConfig(Config(string.Join("\n---\n", TestYaml.All, other, unrelated)));

        var service = Assert.Single(registry.Current.Services);
        Assert.Equal("reviews.default.svc.cluster.local", service.Hostname);
        Assert.Equal([19081u, 19082u], service.Endpoints.Select(e => e.Ports[9080]).Order());
        Assert.Equal(new EndpointLocality("r1", "z2", ""), service.Endpoints.Single(e => e.Labels["version"] == "v2").Locality);
        Assert.All(service.Endpoints, e => Assert.Equal(3u, e.Weight));
    }

    [Fact]
    public void InlineEndpoints_UseNamedPortOrTargetPort()
    {
        using var registry = new ServiceRegistry(TimeProvider.System, TimeSpan.FromSeconds(10), "cluster.local", NullLogger.Instance);
        registry.UpdateConfig(Config("""
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: details}
            spec:
              hosts: [details]
              ports:
              - {number: 9080, name: http, targetPort: 8080}
              - {number: 9443, name: grpc}
              endpoints:
              - address: 10.0.0.1
              - address: 10.0.0.2
                ports: {grpc: 7000}
            """));

        var service = registry.Current.Find("details.default.svc.cluster.local")!;
        Assert.Equal(8080u, service.Endpoints[0].Ports[9080]);
        Assert.Equal(9443u, service.Endpoints[0].Ports[9443]);
        Assert.Equal(7000u, service.Endpoints[1].Ports[9443]);
    }

    [Fact]
    public void SelfRegistration_LivesWhileStreamAndGraceThenExpires()
    {
        var time = new FakeTimeProvider();
        using var registry = new ServiceRegistry(time, TimeSpan.FromSeconds(10), "cluster.local", NullLogger.Instance);
        registry.UpdateConfig(Config(TestYaml.ReviewsServiceEntry));
        var changes = 0;
        registry.Changed += _ => changes++;
        var registration = new SelfRegistration("node-1", "reviews.default.svc.cluster.local", "default", "127.0.0.5",
            new Dictionary<uint, uint> { [9080] = 41234 }, new Dictionary<string, string> { ["app"] = "reviews", ["version"] = "v3" },
            new EndpointLocality("r", "z", ""), "reviews", "reviews-v3");

        var handle = registry.Register(registration);
        var endpoint = Assert.Single(registry.Current.Find("reviews.default.svc.cluster.local")!.Endpoints);
        Assert.Equal(("127.0.0.5", 41234u), (endpoint.Address, endpoint.Ports[9080]));

        handle.Dispose();
        time.Advance(TimeSpan.FromSeconds(9));
        Assert.Single(registry.Current.Find("reviews.default.svc.cluster.local")!.Endpoints);

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Empty(registry.Current.Find("reviews.default.svc.cluster.local")!.Endpoints);
        Assert.Equal(2, changes);
    }

    [Fact]
    public void SelfRegistration_ReconnectWithinGraceKeepsEndpointAndUnknownServiceIsImplicit()
    {
        var time = new FakeTimeProvider();
        using var registry = new ServiceRegistry(time, TimeSpan.FromSeconds(10), "cluster.local", NullLogger.Instance);
        var registration = new SelfRegistration("node-2", "ratings.shop.svc.cluster.local", "shop", "127.0.0.9",
            new Dictionary<uint, uint> { [9080] = 40000 }, new Dictionary<string, string>(), EndpointLocality.None, null, null);

        registry.Register(registration).Dispose();
        time.Advance(TimeSpan.FromSeconds(5));
        using var again = registry.Register(registration);
        time.Advance(TimeSpan.FromSeconds(30));

        var service = Assert.Single(registry.Current.Services);
        Assert.Equal(("ratings.shop.svc.cluster.local", "shop", 9080u), (service.Hostname, service.Namespace, service.Ports[0].Number));
        Assert.Equal(40000u, Assert.Single(service.Endpoints).Ports[9080]);
    }
}

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

    [Fact]
    public void Restore_ServesThePreviousRunsRegistrations_UntilTheirWorkloadsReconnectOrTheRestoreGraceEnds()
    {
        var folder = Directory.CreateTempSubdirectory("mesh-registry-").FullName;
        try
        {
            var file = Path.Combine(folder, RegistryStateFile.FileName);
            var v3 = new SelfRegistration("node-1", "reviews.default.svc.cluster.local", "default", "127.0.0.5",
                new Dictionary<uint, uint> { [9080] = 41234 }, new Dictionary<string, string> { ["app"] = "reviews", ["version"] = "v3" },
                new EndpointLocality("r", "z", "s"), "reviews", "reviews-v3");
            var ratings = new SelfRegistration("node-2", "ratings.shop.svc.cluster.local", "shop", "127.0.0.9",
                new Dictionary<uint, uint> { [9080] = 40000 }, new Dictionary<string, string>(), EndpointLocality.None, null, null);

            // First run: both register; the state file follows every change. The process then dies with streams open.
            var firstTime = new FakeTimeProvider();
            using (var first = new ServiceRegistry(firstTime, TimeSpan.FromSeconds(10), "cluster.local", NullLogger.Instance))
            {
                Assert.Equal(0, first.Restore(file, TimeSpan.FromSeconds(150)));
                first.Register(v3);
                first.Register(ratings);
                Assert.Equal(["node-1", "node-2"], RegistryStateFile.Read(file, out var problem).Select(r => r.NodeId).Order());
                Assert.Null(problem);
            }

            // Second run: both are served at once, with every field as registered.
            var time = new FakeTimeProvider();
            using var registry = new ServiceRegistry(time, TimeSpan.FromSeconds(10), "cluster.local", NullLogger.Instance);
            Assert.Equal(2, registry.Restore(file, TimeSpan.FromSeconds(150)));
            var reviews = Assert.Single(registry.Current.Find("reviews.default.svc.cluster.local")!.Endpoints);
            Assert.Equal(("127.0.0.5", 41234u, "v3", new EndpointLocality("r", "z", "s"), "reviews"),
                (reviews.Address, reviews.Ports[9080], reviews.Labels["version"], reviews.Locality, reviews.ServiceAccount));
            Assert.Equal(40000u, Assert.Single(registry.Current.Find("ratings.shop.svc.cluster.local")!.Endpoints).Ports[9080]);

            // reviews' workload reconnects; ratings' never does: it goes when the restore grace ends, reviews stays.
            using var stream = registry.Register(v3);
            time.Advance(TimeSpan.FromSeconds(149));
            Assert.NotNull(registry.Current.Find("ratings.shop.svc.cluster.local"));
            time.Advance(TimeSpan.FromSeconds(1));
            Assert.Null(registry.Current.Find("ratings.shop.svc.cluster.local"));
            Assert.Single(registry.Current.Find("reviews.default.svc.cluster.local")!.Endpoints);
            Assert.Equal(["node-1"], RegistryStateFile.Read(file, out _).Select(r => r.NodeId));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Restore_AnUnreadableFile_IsReportedAndStartsEmpty_ThenIsOverwritten()
    {
        var folder = Directory.CreateTempSubdirectory("mesh-registry-").FullName;
        try
        {
            var file = Path.Combine(folder, RegistryStateFile.FileName);
            File.WriteAllText(file, "{\"version\": 1, \"registrations\": [ {\"nodeId\": ");
            var logs = new RecordingLogger();
            using var registry = new ServiceRegistry(new FakeTimeProvider(), TimeSpan.FromSeconds(10), "cluster.local", logs);

            Assert.Equal(0, registry.Restore(file, TimeSpan.FromSeconds(150)));

            var warning = Assert.Single(logs.Lines, e => e.Level == Microsoft.Extensions.Logging.LogLevel.Warning);
            Assert.StartsWith($"Registry state file '{file}' cannot be read (", warning.Message, StringComparison.Ordinal);
            Assert.Empty(registry.Current.Services);
            Assert.Empty(RegistryStateFile.Read(file, out var problem));
            Assert.Null(problem);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void Restore_AWorkloadThatRestartedMeanwhile_ReplacesItsRestoredRegistrationAtOnce()
    {
        var folder = Directory.CreateTempSubdirectory("mesh-registry-").FullName;
        try
        {
            var file = Path.Combine(folder, RegistryStateFile.FileName);
            SelfRegistration Reviews(string nodeId, uint port) => new(nodeId, "reviews.default.svc.cluster.local", "default", "127.0.0.1",
                new Dictionary<uint, uint> { [9080] = port }, new Dictionary<string, string> { ["version"] = "v1" }, EndpointLocality.None, null, "reviews-v1");
            RegistryStateFile.Write(file, [Reviews("old-process", 41000)]);
            using var registry = new ServiceRegistry(new FakeTimeProvider(), TimeSpan.FromSeconds(10), "cluster.local", NullLogger.Instance);
            registry.Restore(file, TimeSpan.FromSeconds(150));
            Assert.Equal(41000u, Assert.Single(registry.Current.Find("reviews.default.svc.cluster.local")!.Endpoints).Ports[9080]);

            using var stream = registry.Register(Reviews("new-process", 42000));

            Assert.Equal(42000u, Assert.Single(registry.Current.Find("reviews.default.svc.cluster.local")!.Endpoints).Ports[9080]);
            Assert.Equal(["new-process"], RegistryStateFile.Read(file, out _).Select(r => r.NodeId));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}

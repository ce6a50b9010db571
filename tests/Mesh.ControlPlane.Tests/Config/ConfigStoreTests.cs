using Mesh.ControlPlane.Config;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Mesh.ControlPlane.Tests.Config;

public class ConfigStoreTests
{
    private const string BrokenWeights = """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: reviews
        spec:
          hosts: [reviews]
          http:
          - route:
            - destination: {host: reviews, subset: v1}
              weight: 50
            - destination: {host: reviews, subset: v2}
              weight: 20
        """;

    [Fact]
    public void Apply_BrokenFileKeepsLastGoodContentAndReportsFileAndLine()
    {
        var store = new ConfigStore("default", NullLogger.Instance);
        Assert.True(store.Apply("/cfg/reviews.yaml", TestYaml.ReviewsVirtualService));
        Assert.True(store.Apply("/cfg/se.yaml", TestYaml.ReviewsServiceEntry));
        var generation = store.Current.Generation;

        Assert.False(store.Apply("/cfg/reviews.yaml", BrokenWeights));

        var error = Assert.Single(store.LastErrors);
        Assert.Equal("/cfg/reviews.yaml", error.File);
        Assert.Equal(9, error.Line); // the first destination of the route list
        Assert.Contains("sum to 70", error.Reason, StringComparison.Ordinal);
        Assert.Equal(generation, store.Current.Generation);
        var vs = Assert.Single(store.Current.VirtualServices);
        Assert.Equal([80u, 20u], vs.Http[1].Route.Select(r => r.Weight));
        Assert.Single(store.Current.ServiceEntries);

        Assert.True(store.Apply("/cfg/reviews.yaml", TestYaml.ReviewsVirtualService.Replace("weight: 80", "weight: 60").Replace("weight: 20", "weight: 40")));
        Assert.Empty(store.LastErrors);
        Assert.Equal([60u, 40u], store.Current.VirtualServices[0].Http[1].Route.Select(r => r.Weight));
    }

    [Fact]
    public void Apply_RemovalDropsResourcesAndDuplicateKeysKeepFirstFile()
    {
        var store = new ConfigStore("default", NullLogger.Instance);
        store.Apply([("/cfg/a.yaml", TestYaml.ReviewsServiceEntry), ("/cfg/b.yaml", TestYaml.ReviewsServiceEntry.Replace("9080", "9090"))]);

        Assert.Equal(9080u, Assert.Single(store.Current.ServiceEntries).Ports[0].Number);
        Assert.Equal("/cfg/a.yaml", store.Current.ServiceEntries[0].Source.File);

        store.Apply("/cfg/a.yaml", null);
        Assert.Equal(9090u, Assert.Single(store.Current.ServiceEntries).Ports[0].Number);
    }

    [Fact]
    public void Watcher_LoadsDirectoryAndReloadsChangedFile()
    {
        using var dir = new TempDir();
        dir.Write("reviews.yaml", TestYaml.All);
        dir.Write("notes.txt", "not yaml: [");
        var time = new FakeTimeProvider();
        var store = new ConfigStore("default", NullLogger.Instance);
        using var watcher = new ConfigDirectoryWatcher(dir.Path, store, time, TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(5), NullLogger.Instance);
        watcher.Start();
        Assert.Single(store.Current.VirtualServices);
        Assert.Equal(2, store.Current.WorkloadEntries.Count);

        var broken = dir.Write("broken.yml", "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x}\nspec:\n  hosts: [a\n");
        dir.Write("reviews.yaml", TestYaml.ReviewsServiceEntry);
        time.Advance(TimeSpan.FromSeconds(5)); // the poll picks up changes even without file-system events

        Assert.Empty(store.Current.VirtualServices);
        Assert.Single(store.Current.ServiceEntries);
        var error = Assert.Single(store.LastErrors);
        Assert.Equal(broken, error.File);
        Assert.Equal(6, error.Line);
    }
}

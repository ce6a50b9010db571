using System.Collections.Frozen;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Mesh.Sdk.Resources;
using Mesh.Sdk.Routing;

namespace Mesh.Sdk.Tests.Routing;

public sealed class RouteTablesTests
{
    private const string ListenerName = "reviews.default.svc.cluster.local:9080";
    private static readonly HttpConnectionManager Hcm = new();

    private static MeshSnapshot Snapshot(long version, RouteConfiguration routes)
    {
        var listener = new ListenerResource(ListenerName, new Listener { Name = ListenerName }, Hcm, routes.Name, null);
        return new MeshSnapshot(
            version,
            new Dictionary<string, ListenerResource> { [ListenerName] = listener }.ToFrozenDictionary(),
            new Dictionary<string, RouteConfiguration> { [routes.Name] = routes }.ToFrozenDictionary(),
            FrozenDictionary<string, ClusterResource>.Empty,
            FrozenDictionary<string, ClusterLoadAssignment>.Empty);
    }

    private static RouteConfiguration Routes(string cluster)
        => Rds.Config(Rds.Host("vh", [ListenerName], Rds.Prefix("/", cluster)));

    [Fact]
    public void Update_CompilesPublishesAndReusesUnchangedTables()
    {
        var tables = new RouteTables(random: new Random(1));
        Assert.False(tables.TryGetTable(ListenerName, out _));
        var routes = Routes("v1");
        Assert.Empty(tables.Update(Snapshot(1, routes)));
        Assert.True(tables.TryGetTable(ListenerName, out var first));
        Assert.Equal("v1", first.Match(new TestRequest(ListenerName, "/")).Cluster);
        Assert.Equal(1, tables.Current.SnapshotVersion);

        tables.Update(Snapshot(2, routes));
        Assert.True(tables.TryGetTable(ListenerName, out var second));
        Assert.Same(first, second);
        Assert.Equal(2, tables.Current.SnapshotVersion);

        tables.Update(Snapshot(3, Routes("v2")));
        Assert.True(tables.TryGetTable(ListenerName, out var third));
        Assert.Equal("v2", third.Match(new TestRequest(ListenerName, "/")).Cluster);
    }

    [Fact]
    public void Update_KeepsLastGoodTableWhenNewRoutesFailToCompile()
    {
        var tables = new RouteTables();
        tables.Update(Snapshot(1, Routes("v1")));
        var bad = Rds.Config(Rds.Host("vh", [ListenerName], Rds.Regex("(a)\\1", "v2")));
        var errors = tables.Update(Snapshot(2, bad));
        var error = Assert.Single(errors);
        Assert.Equal("route configuration 'rc' virtual_hosts[0] 'vh' routes[0]: match.safe_regex: regex '(a)\\1' uses a backreference '\\1' at offset 3, which RE2 does not support", error.ToString());
        Assert.True(tables.TryGetTable(ListenerName, out var table));
        Assert.Equal("v1", table.Match(new TestRequest(ListenerName, "/")).Cluster);
        Assert.Equal(2, tables.Current.SnapshotVersion);
    }

    [Fact]
    public void Update_DropsListenersThatLeaveTheSnapshot()
    {
        var tables = new RouteTables();
        tables.Update(Snapshot(1, Routes("v1")));
        tables.Update(MeshSnapshot.Empty);
        Assert.False(tables.TryGetTable(ListenerName, out _));
        Assert.Empty(tables.Current.Listeners);
    }
}

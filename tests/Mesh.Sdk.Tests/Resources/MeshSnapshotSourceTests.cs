using System.Collections.Frozen;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Route.V3;
using Mesh.Sdk.Resources;
using Microsoft.Extensions.Time.Testing;

namespace Mesh.Sdk.Tests.Resources;

public sealed class MeshSnapshotSourceTests
{
    private static MeshSnapshot Snapshot(long version) => new(
        version,
        FrozenDictionary<string, ListenerResource>.Empty,
        FrozenDictionary<string, RouteConfiguration>.Empty,
        FrozenDictionary<string, ClusterResource>.Empty,
        FrozenDictionary<string, ClusterLoadAssignment>.Empty);

    [Fact]
    public void Publish_SwapsCurrent_FiresTokenAndEvent()
    {
        var source = new MeshSnapshotSource(new FakeTimeProvider());
        Assert.Same(MeshSnapshot.Empty, source.Current);
        var token = source.GetChangeToken();
        MeshSnapshot? seen = null;
        source.SnapshotChanged += s => seen = s;

        var first = Snapshot(1);
        source.Publish(first);
        Assert.True(token.HasChanged);
        Assert.Same(first, source.Current);
        Assert.Same(first, seen);
        Assert.False(source.GetChangeToken().HasChanged);
    }

    [Fact]
    public void Publish_RejectsVersionThatDoesNotGrow()
    {
        var source = new MeshSnapshotSource(new FakeTimeProvider());
        source.Publish(Snapshot(2));
        Assert.Throws<InvalidOperationException>(() => source.Publish(Snapshot(2)));
        Assert.Equal(2, source.Current.Version);
    }

    [Fact]
    public async Task WaitForVersion_CompletesOnPublish()
    {
        var source = new MeshSnapshotSource(new FakeTimeProvider());
        var wait = source.WaitForVersionAsync(2, TimeSpan.FromSeconds(5));
        source.Publish(Snapshot(1));
        Assert.False(wait.IsCompleted);
        source.Publish(Snapshot(2));
        Assert.Equal(2, (await wait.WaitAsync(TimeSpan.FromSeconds(10))).Version);
    }

    [Fact]
    public async Task WaitForListener_TimesOutOnTheInjectedClock()
    {
        var time = new FakeTimeProvider();
        var source = new MeshSnapshotSource(time);
        var wait = source.WaitForListenerAsync("reviews.default.svc.cluster.local:9080", TimeSpan.FromSeconds(3));
        time.Advance(TimeSpan.FromSeconds(2.9));
        await Task.Delay(30);
        Assert.False(wait.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(0.1));
        var ex = await Assert.ThrowsAsync<TimeoutException>(() => wait.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("within 3 s", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Wait_HonoursCancellation()
    {
        var source = new MeshSnapshotSource(new FakeTimeProvider());
        using var cts = new CancellationTokenSource();
        var wait = source.WaitAsync(s => s.Version > 10, TimeSpan.FromMinutes(1), cts.Token);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait.WaitAsync(TimeSpan.FromSeconds(10)));
    }
}

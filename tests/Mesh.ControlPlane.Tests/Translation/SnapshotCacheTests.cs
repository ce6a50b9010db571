using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Registry;
using Mesh.ControlPlane.Translation;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Mesh.ControlPlane.Tests.Translation;

public sealed class SnapshotCacheTests : IDisposable
{
    private static readonly TimeSpan Debounce = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(1);

    private readonly FakeTimeProvider _time = new();
    private readonly ServiceRegistry _registry;
    private readonly SnapshotCache _cache;
    private readonly List<(long Version, TimeSpan At)> _published = [];
    private readonly DateTimeOffset _start;

    public SnapshotCacheTests()
    {
        _start = _time.GetUtcNow();
        var store = new ConfigStore("default", NullLogger.Instance);
        _registry = new ServiceRegistry(_time, TimeSpan.FromSeconds(10), "cluster.local", NullLogger.Instance);
        _cache = new SnapshotCache(store, _registry, new XdsTranslator("cluster.local"), _time, Debounce, MaxDelay, NullLogger.Instance);
        _cache.Updated += s => _published.Add((s.Version, _time.GetUtcNow() - _start));
    }

    public void Dispose() => _cache.Dispose();

    [Fact]
    public void Schedule_ASingleChangeIsPublishedOneDebounceLater()
    {
        _cache.Schedule();
        _time.Advance(TimeSpan.FromMilliseconds(99));
        Assert.Empty(_published);

        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal([(1L, TimeSpan.FromMilliseconds(100))], _published);
    }

    [Fact]
    public void Schedule_ChangesWithinTheDebounceCoalesce()
    {
        for (var i = 0; i < 5; i++)
        {
            _cache.Schedule();
            _time.Advance(TimeSpan.FromMilliseconds(50));
        }

        // The last change came at 200 ms: one publication 100 ms later.
        _time.Advance(TimeSpan.FromMilliseconds(49));
        Assert.Empty(_published);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal([(1L, TimeSpan.FromMilliseconds(300))], _published);
    }

    [Fact]
    public void Schedule_ASteadyStreamOfChangesIsPublishedAtLeastOncePerMaximumDelay()
    {
        // A change every 50 ms for 3.5 s never leaves the 100 ms debounce quiet.
        for (var i = 0; i < 70; i++)
        {
            _cache.Schedule();
            _time.Advance(TimeSpan.FromMilliseconds(50));
        }

        // Pushed 1 s after the first change waiting, each time (the change at 1 s comes just after that push
        // and starts the next wait).
        Assert.Equal(
            [(1L, TimeSpan.FromSeconds(1)), (2L, TimeSpan.FromSeconds(2)), (3L, TimeSpan.FromSeconds(3))],
            _published);

        // When the stream stops, the rest goes out one debounce after the last change (at 3.45 s).
        _time.Advance(TimeSpan.FromMilliseconds(49));
        Assert.Equal(3, _published.Count);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal((4L, TimeSpan.FromMilliseconds(3550)), _published[^1]);
    }

    [Fact]
    public void Schedule_RegistryChangesAreDebouncedTheSameWay()
    {
        _registry.UpdateConfig(MeshConfig.Empty with { Generation = 1 });
        _time.Advance(Debounce);

        Assert.Single(_published);
    }

    [Fact]
    public void BuildUnpublished_IncludesANewRegistrationWithoutPublishing_AndTheNextPublicationHasAHigherVersion()
    {
        const string Cluster = "outbound|9080||reviews.default.svc.cluster.local";
        _cache.Rebuild();
        Assert.Equal([(1L, TimeSpan.Zero)], _published);

        // Nothing changed since the published snapshot: that one is returned.
        Assert.Same(_cache.Current, _cache.BuildUnpublished("nobody"));

        using var registration = _registry.Register(new SelfRegistration("reviews-1", "reviews.default.svc.cluster.local", "default", "10.0.0.7",
            new Dictionary<uint, uint> { [9080] = 41234 }, new Dictionary<string, string> { ["app"] = "reviews" }, EndpointLocality.None, null, null));
        var own = _cache.BuildUnpublished("reviews-1");
        Assert.Equal(2, own.Version);
        Assert.NotNull(own.Find(ResourceTypes.Cluster, Cluster, "default"));
        Assert.Null(_cache.Current.Find(ResourceTypes.Cluster, Cluster, "default"));
        Assert.Equal(1, _cache.Current.Version);
        Assert.Single(_published);

        // The registration's debounced push publishes a later version with the same content.
        _time.Advance(Debounce);
        Assert.Equal([(1L, TimeSpan.Zero), (3L, Debounce)], _published);
        Assert.Equal(own.Find(ResourceTypes.Cluster, Cluster, "default")!.Hash, _cache.Current.Find(ResourceTypes.Cluster, Cluster, "default")!.Hash);
        Assert.Same(_cache.Current, _cache.BuildUnpublished("reviews-1"));
    }
}

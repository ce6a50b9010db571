using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Registry;
using Microsoft.Extensions.Logging;

namespace Mesh.ControlPlane.Translation;

/// <summary>
/// Owns the current <see cref="XdsSnapshot"/>. Configuration and registry changes schedule a
/// rebuild after a debounce; each rebuild gets the next snapshot version and notifies streams.
/// </summary>
internal sealed partial class SnapshotCache : IDisposable
{
    private readonly ConfigStore _store;
    private readonly ServiceRegistry _registry;
    private readonly XdsTranslator _translator;
    private readonly TimeSpan _debounce;
    private readonly ILogger _logger;
    private readonly ITimer _timer;
    private readonly Lock _gate = new();
    private readonly Lock _notifyGate = new();
    private long _lastNotified;
    private XdsSnapshot _current = XdsSnapshot.Empty;
    private long _version;
    private bool _disposed;

    public SnapshotCache(ConfigStore store, ServiceRegistry registry, XdsTranslator translator, TimeProvider time, TimeSpan debounce, ILogger logger)
    {
        _store = store;
        _registry = registry;
        _translator = translator;
        _debounce = debounce;
        _logger = logger;
        _timer = time.CreateTimer(static s => ((SnapshotCache)s!).Rebuild(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _registry.Changed += OnRegistryChanged;
    }

    /// <summary>Raised after a new snapshot was published.</summary>
    public event Action<XdsSnapshot>? Updated;

    public XdsSnapshot Current => Volatile.Read(ref _current);

    private void OnRegistryChanged(RegistrySnapshot registry) => Schedule();

    /// <summary>Asks for a rebuild after the debounce interval (later calls within it coalesce).</summary>
    public void Schedule()
    {
        lock (_gate)
        {
            if (!_disposed)
            {
                _timer.Change(_debounce, Timeout.InfiniteTimeSpan);
            }
        }
    }

    /// <summary>Translates the current configuration and registry now.</summary>
    public void Rebuild()
    {
        XdsSnapshot next;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            // This rebuild covers any change already scheduled.
            _timer.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            next = _translator.Translate(_store.Current, _registry.Current, ++_version);
            Volatile.Write(ref _current, next);
        }

        // Rebuilds on different threads may finish out of order: subscribers see versions in order
        // and never an older snapshot after a newer one.
        lock (_notifyGate)
        {
            if (next.Version <= _lastNotified)
            {
                return;
            }

            _lastNotified = next.Version;
            Log.Published(_logger, next.Version, next.All(ResourceTypes.Listener).Count, next.All(ResourceTypes.Route).Count,
                next.All(ResourceTypes.Cluster).Count, next.All(ResourceTypes.Endpoint).Count);
            Updated?.Invoke(next);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
        }

        _registry.Changed -= OnRegistryChanged;
        _timer.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Snapshot version '{Version}': {Listeners} listeners, {Routes} routes, {Clusters} clusters, {Endpoints} load assignments.")]
        public static partial void Published(ILogger logger, long version, int listeners, int routes, int clusters, int endpoints);
    }
}

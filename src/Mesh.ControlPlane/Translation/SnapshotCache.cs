using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Registry;
using Microsoft.Extensions.Logging;

namespace Mesh.ControlPlane.Translation;

/// <summary>
/// Owns the current <see cref="XdsSnapshot"/>. Configuration and registry changes schedule a
/// rebuild after a debounce; each rebuild gets the next snapshot version and notifies streams.
/// Every change restarts the debounce, but never beyond the maximum delay after the first change
/// still waiting, so a steady stream of changes cannot hold pushes back (istiod's
/// <c>PILOT_DEBOUNCE_AFTER</c> / <c>PILOT_DEBOUNCE_MAX</c>). A stream whose workload has just
/// registered itself gets an unpublished snapshot that already includes it (<see cref="BuildUnpublished"/>).
/// </summary>
internal sealed partial class SnapshotCache : IDisposable
{
    private readonly ConfigStore _store;
    private readonly ServiceRegistry _registry;
    private readonly XdsTranslator _translator;
    private readonly TimeSpan _debounce;
    private readonly TimeSpan _maxDelay;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly ITimer _timer;
    private readonly Lock _gate = new();
    private readonly Lock _notifyGate = new();
    private long _lastNotified;
    private XdsSnapshot _current = XdsSnapshot.Empty;
    private MeshConfig? _currentConfig;
    private RegistrySnapshot? _currentRegistry;
    private long _version;
    private bool _disposed;
    private bool _pending;
    private long _firstPendingAt;

    /// <param name="store">The configuration.</param>
    /// <param name="registry">The services and endpoints.</param>
    /// <param name="translator">Istio → xDS.</param>
    /// <param name="time">Clock of the debounce timer.</param>
    /// <param name="debounce">Quiet time after the last change before a rebuild.</param>
    /// <param name="maxDelay">Longest a change waits for its rebuild while further changes keep arriving.</param>
    /// <param name="logger">Where publications are logged.</param>
    public SnapshotCache(ConfigStore store, ServiceRegistry registry, XdsTranslator translator, TimeProvider time, TimeSpan debounce, TimeSpan maxDelay, ILogger logger)
    {
        _store = store;
        _registry = registry;
        _translator = translator;
        _debounce = debounce;
        _maxDelay = maxDelay;
        _time = time;
        _logger = logger;
        _timer = time.CreateTimer(static s => ((SnapshotCache)s!).Rebuild(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _registry.Changed += OnRegistryChanged;
    }

    /// <summary>Raised after a new snapshot was published.</summary>
    public event Action<XdsSnapshot>? Updated;

    public XdsSnapshot Current => Volatile.Read(ref _current);

    private void OnRegistryChanged(RegistrySnapshot registry) => Schedule();

    /// <summary>
    /// Asks for a rebuild after the debounce interval (later calls within it coalesce), at the latest
    /// the maximum delay after the first call not yet covered by a rebuild.
    /// </summary>
    public void Schedule()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            if (!_pending)
            {
                _pending = true;
                _firstPendingAt = _time.GetTimestamp();
            }

            var left = _maxDelay - _time.GetElapsedTime(_firstPendingAt);
            var delay = left < _debounce ? left : _debounce;
            _timer.Change(delay > TimeSpan.Zero ? delay : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
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
            _pending = false;
            var config = _store.Current;
            var registry = _registry.Current;
            next = _translator.Translate(config, registry, ++_version);
            _currentConfig = config;
            _currentRegistry = registry;
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
            ReportTelemetryWarnings(next.Telemetry.Warnings);
            Log.Published(_logger, next.Version, next.All(ResourceTypes.Listener).Count, next.All(ResourceTypes.Route).Count,
                next.All(ResourceTypes.Cluster).Count, next.All(ResourceTypes.Endpoint).Count);
            Updated?.Invoke(next);
        }
    }

    /// <summary>
    /// Translates the current configuration and registry now without publishing the result, for a
    /// stream whose workload has just registered itself: that stream's first answer must include the
    /// registration, while other streams get it from the debounced push the registration scheduled.
    /// The snapshot takes the next version, so every snapshot published afterwards has a higher one
    /// and, being built later, includes the registration too. Returns <see cref="Current"/> when it
    /// was built from the same configuration and registry.
    /// </summary>
    /// <param name="nodeId">The registering node, for the log.</param>
    public XdsSnapshot BuildUnpublished(string nodeId)
    {
        XdsSnapshot next;
        lock (_gate)
        {
            var config = _store.Current;
            var registry = _registry.Current;
            if (_disposed || (ReferenceEquals(config, _currentConfig) && ReferenceEquals(registry, _currentRegistry)))
            {
                return _current;
            }

            next = _translator.Translate(config, registry, ++_version);
        }

        Log.BuiltUnpublished(_logger, next.Version, nodeId);
        return next;
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

    // Telemetry provider problems already reported, so each is logged once while it lasts.
    private HashSet<string> _reportedTelemetry = new(StringComparer.Ordinal);

    private void ReportTelemetryWarnings(IReadOnlyList<string> warnings)
    {
        var now = new HashSet<string>(warnings, StringComparer.Ordinal);
        foreach (var warning in warnings)
        {
            if (!_reportedTelemetry.Contains(warning))
            {
                Log.TelemetryProviderProblem(_logger, warning);
            }
        }

        _reportedTelemetry = now;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 3010, Level = LogLevel.Warning, Message = "Telemetry: {Problem}.")]
        public static partial void TelemetryProviderProblem(ILogger logger, string problem);

        [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Snapshot version '{Version}': {Listeners} listeners, {Routes} routes, {Clusters} clusters, {Endpoints} load assignments.")]
        public static partial void Published(ILogger logger, long version, int listeners, int routes, int clusters, int endpoints);

        [LoggerMessage(EventId = 3002, Level = LogLevel.Debug, Message = "Snapshot version '{Version}' built for the first answers to node '{NodeId}', which registered itself; other streams get the change with the next push.")]
        public static partial void BuiltUnpublished(ILogger logger, long version, string nodeId);
    }
}

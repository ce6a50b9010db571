using System.Collections.Frozen;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Route.V3;
using Mesh.Sdk.Resources;

namespace Mesh.Sdk.Xds.Internal;

/// <summary>
/// Follows references from the listeners the application asked for: Listener → RouteConfiguration (RDS) →
/// Clusters named by routes → ClusterLoadAssignment (EDS). Watches what is referenced, unwatches what no longer
/// is, and publishes a new <see cref="MeshSnapshot"/> after each update that changed what it holds.
/// </summary>
internal sealed class XdsDependencyTracker : IXdsResourceWatcher
{
    private readonly object _gate = new();
    private readonly XdsClient _client;
    private readonly MeshSnapshotSource _publisher;
    private readonly Dictionary<string, int> _listenerReferences = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ListenerResource> _listeners = new(StringComparer.Ordinal);
    private readonly Dictionary<string, RouteConfiguration> _routes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ClusterResource> _clusters = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ClusterLoadAssignment> _endpoints = new(StringComparer.Ordinal);
    private readonly HashSet<string> _missingListeners = new(StringComparer.Ordinal);
    private readonly HashSet<string> _missingClusters = new(StringComparer.Ordinal);
    private readonly Dictionary<(XdsResourceType Type, string Name), IDisposable?> _watches = [];
    private bool _reconciling;
    private bool _reconcileAgain;
    private bool _dirty;

    public XdsDependencyTracker(XdsClient client, MeshSnapshotSource publisher)
    {
        _client = client;
        _publisher = publisher;
        client.UpdateBatchCompleted += PublishIfChanged;
    }

    public IDisposable AddListener(string listenerName)
    {
        ArgumentException.ThrowIfNullOrEmpty(listenerName);
        lock (_gate)
        {
            _listenerReferences[listenerName] = _listenerReferences.GetValueOrDefault(listenerName) + 1;
            Reconcile();
            PublishIfChangedLocked();
        }

        return new ListenerHandle(this, listenerName);
    }

    private void RemoveListener(string listenerName)
    {
        lock (_gate)
        {
            if (!_listenerReferences.TryGetValue(listenerName, out var count))
            {
                return;
            }

            if (count > 1)
            {
                _listenerReferences[listenerName] = count - 1;
                return;
            }

            _listenerReferences.Remove(listenerName);
            Reconcile();
            PublishIfChangedLocked();
        }
    }

    public void OnResourceChanged(XdsResourceType type, string name, object value)
    {
        lock (_gate)
        {
            if (!_watches.ContainsKey((type, name)))
            {
                return;
            }

            switch (value)
            {
                case ListenerResource listener:
                    _listeners[name] = listener;
                    _missingListeners.Remove(name);
                    break;
                case RouteConfiguration routes:
                    _routes[name] = routes;
                    break;
                case ClusterResource cluster:
                    _clusters[name] = cluster;
                    _missingClusters.Remove(name);
                    break;
                case ClusterLoadAssignment endpoints:
                    _endpoints[name] = endpoints;
                    break;
            }

            _dirty = true;
            Reconcile();
        }
    }

    public void OnResourceDoesNotExist(XdsResourceType type, string name)
    {
        lock (_gate)
        {
            if (type == XdsResourceType.Listener && _watches.ContainsKey((type, name)) && _missingListeners.Add(name))
            {
                _dirty = true;
            }

            if (type == XdsResourceType.Cluster && _watches.ContainsKey((type, name)) && _missingClusters.Add(name))
            {
                _dirty = true;
            }

            if (Forget(type, name))
            {
                _dirty = true;
                Reconcile();
            }
        }
    }

    public void OnResourceError(XdsResourceType type, string name, string error)
    {
        // The client has logged the rejection and keeps the last accepted value; nothing changes here.
    }

    private void PublishIfChanged()
    {
        lock (_gate)
        {
            PublishIfChangedLocked();
        }
    }

    private void PublishIfChangedLocked()
    {
        if (!_dirty)
        {
            return;
        }

        _dirty = false;
        var snapshot = new MeshSnapshot(
            _publisher.Current.Version + 1,
            _listeners.ToFrozenDictionary(StringComparer.Ordinal),
            _routes.ToFrozenDictionary(StringComparer.Ordinal),
            _clusters.ToFrozenDictionary(StringComparer.Ordinal),
            _endpoints.ToFrozenDictionary(StringComparer.Ordinal))
        {
            MissingListeners = _missingListeners.ToFrozenSet(StringComparer.Ordinal),
            MissingClusters = _missingClusters.ToFrozenSet(StringComparer.Ordinal),
        };
        _publisher.Publish(snapshot);
    }

    private bool Forget(XdsResourceType type, string name)
    {
        if (type == XdsResourceType.Listener)
        {
            return _listeners.Remove(name);
        }

        if (type == XdsResourceType.RouteConfiguration)
        {
            return _routes.Remove(name);
        }

        if (type == XdsResourceType.Cluster)
        {
            return _clusters.Remove(name);
        }

        return _endpoints.Remove(name);
    }

    /// <summary>Brings the watches in line with what the current resources reference.</summary>
    private void Reconcile()
    {
        if (_reconciling)
        {
            // A watch handed back a cached value while reconciling: go round once more.
            _reconcileAgain = true;
            return;
        }

        _reconciling = true;
        try
        {
            using (_client.DeferRequests())
            {
                do
                {
                    _reconcileAgain = false;
                    ReconcileOnce();
                }
                while (_reconcileAgain);
            }
        }
        finally
        {
            _reconciling = false;
        }
    }

    private void ReconcileOnce()
    {
        var wanted = new HashSet<(XdsResourceType, string)>();
        var routeConfigurations = new List<RouteConfiguration>();
        foreach (var listenerName in _listenerReferences.Keys)
        {
            wanted.Add((XdsResourceType.Listener, listenerName));
            if (!_listeners.TryGetValue(listenerName, out var listener))
            {
                continue;
            }

            if (listener.InlineRouteConfiguration is { } inline)
            {
                routeConfigurations.Add(inline);
            }

            foreach (var rds in listener.RouteConfigNames)
            {
                wanted.Add((XdsResourceType.RouteConfiguration, rds));
                if (_routes.TryGetValue(rds, out var routes))
                {
                    routeConfigurations.Add(routes);
                }
            }
        }

        foreach (var routes in routeConfigurations)
        {
            foreach (var clusterName in ResourceReferences.ClusterNames(routes))
            {
                wanted.Add((XdsResourceType.Cluster, clusterName));
                if (_clusters.TryGetValue(clusterName, out var cluster) && cluster.EdsServiceName is { } eds)
                {
                    wanted.Add((XdsResourceType.Endpoints, eds));
                }
            }
        }

        foreach (var key in _watches.Keys.Where(k => !wanted.Contains(k)).ToList())
        {
            var handle = _watches[key];
            _watches.Remove(key);
            handle?.Dispose();
            if (key.Type == XdsResourceType.Listener && _missingListeners.Remove(key.Name))
            {
                _dirty = true;
            }

            if (key.Type == XdsResourceType.Cluster && _missingClusters.Remove(key.Name))
            {
                _dirty = true;
            }

            if (Forget(key.Type, key.Name))
            {
                _dirty = true;
            }
        }

        foreach (var key in wanted)
        {
            if (_watches.ContainsKey(key))
            {
                continue;
            }

            // Registered before Watch so that a cached value delivered during the call is kept.
            _watches[key] = null;
            var handle = _client.Watch(key.Item1, key.Item2, this);
            if (_watches.ContainsKey(key))
            {
                _watches[key] = handle;
            }
            else
            {
                handle.Dispose();
            }
        }
    }

    private sealed class ListenerHandle(XdsDependencyTracker tracker, string listenerName) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                tracker.RemoveListener(listenerName);
            }
        }
    }
}

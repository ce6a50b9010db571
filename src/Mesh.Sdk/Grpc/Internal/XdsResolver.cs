using Grpc.Core;
using Grpc.Net.Client.Balancer;
using Grpc.Net.Client.Configuration;
using Mesh.Sdk.LoadBalancing;
using Mesh.Sdk.Resources;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.Grpc.Internal;

/// <summary>
/// Resolves an <c>xds:///</c> target: finds its listener through <see cref="MeshRuntime.ResolveListenerAsync"/>, then
/// pushes every usable endpoint of every cluster the listener's routes name (one address per distinct
/// <c>host:port</c>) with a service config selecting the <c>mesh_xds</c> load balancer, and pushes again whenever
/// <see cref="MeshRuntime.Updated"/> fires and the set changed. Routing and endpoint choice per call happen in
/// <see cref="MeshGrpcPicker"/>.
/// </summary>
internal sealed partial class XdsResolver : Resolver
{
    private static readonly ServiceConfig MeshServiceConfig = new()
    {
        LoadBalancingConfigs = { new LoadBalancingConfig(MeshGrpcChannelOptionsExtensions.LoadBalancingPolicyName) },
    };

    private readonly MeshRuntime _runtime;
    private readonly string _authority;
    private readonly bool _hasHandler;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _disposed = new();
    private readonly Lock _gate = new();
    private Action<ResolverResult>? _listener;
    private MeshGrpcTarget? _target;
    private HashSet<string>? _pushed;
    private bool _resolving;
    private bool _resolveAgain;

    /// <param name="authority">The target as written (<c>echo:9090</c>); its listener is named after it (gRFC A27).</param>
    public XdsResolver(MeshRuntime runtime, string authority, bool hasHandler, ILogger logger)
    {
        _runtime = runtime;
        _authority = authority;
        _hasHandler = hasHandler;
        _logger = logger;
    }

    public override void Start(Action<ResolverResult> listener)
    {
        ArgumentNullException.ThrowIfNull(listener);
        lock (_gate)
        {
            if (_listener is not null)
            {
                throw new InvalidOperationException("The xds resolver was already started.");
            }

            _listener = listener;
        }

        _runtime.Updated += OnUpdated;
        BeginResolve();
    }

    public override void Refresh()
    {
        if (Volatile.Read(ref _target) is null)
        {
            BeginResolve();
        }
        else
        {
            Push(force: true);
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _runtime.Updated -= OnUpdated;
            _disposed.Cancel();
            _disposed.Dispose();
        }

        base.Dispose(disposing);
    }

    private void BeginResolve()
    {
        lock (_gate)
        {
            if (_disposed.IsCancellationRequested)
            {
                return;
            }

            if (_resolving)
            {
                // The resolution under way may already have decided "not in the mesh": go round once more after it.
                _resolveAgain = true;
                return;
            }

            _resolving = true;
        }

        _ = ResolveAsync();
    }

    private async Task ResolveAsync()
    {
        try
        {
            var listenerName = await _runtime.ResolveTargetAsync(_authority, _disposed.Token).ConfigureAwait(false);
            if (listenerName is null)
            {
                Log.NotInMesh(_logger, _authority);
                Publish(ResolverResult.ForFailure(new Status(
                    StatusCode.Unavailable,
                    $"Mesh.Sdk: 'xds:///{_authority}' is not in the mesh: the control plane has no listener '{_runtime.ListenerNameForTarget(_authority)}'.")));
                return;
            }

            Volatile.Write(ref _target, new MeshGrpcTarget(_authority, listenerName, _hasHandler));
            Log.Resolved(_logger, _authority, listenerName);
            Push(force: true);
        }
        catch (OperationCanceledException) when (_disposed.IsCancellationRequested)
        {
            // Channel disposed while resolving.
        }
        catch (ObjectDisposedException)
        {
            // The runtime or the resolver was disposed while resolving.
        }
        catch (Exception ex)
        {
            Log.ResolveFailed(_logger, _authority, ex);
            Publish(ResolverResult.ForFailure(new Status(StatusCode.Unavailable, $"Mesh.Sdk: resolving 'xds:///{_authority}' failed: {ex.Message}", ex)));
        }
        finally
        {
            bool again;
            lock (_gate)
            {
                _resolving = false;
                again = _resolveAgain;
                _resolveAgain = false;
            }

            if (again && Volatile.Read(ref _target) is null)
            {
                BeginResolve();
            }
        }
    }

    // Every snapshot is pushed, changed addresses or not: the balancer then publishes a new picker, which picks calls
    // queued for a cluster the previous snapshot did not have yet. A target found not in the mesh stays subscribed:
    // when its listener arrives later (the first answer came from a control-plane snapshot older than the service's
    // registration), it is resolved again, as the channel never asks for a refresh after a failed resolution.
    private void OnUpdated(MeshSnapshot snapshot)
    {
        if (Volatile.Read(ref _target) is null)
        {
            if (_runtime.Routes.TryGetTable(_runtime.ListenerNameForTarget(_authority), out _))
            {
                BeginResolve();
            }

            return;
        }

        Push(force: true);
    }

    private void Push(bool force)
    {
        var target = Volatile.Read(ref _target);
        if (target is null || _disposed.IsCancellationRequested)
        {
            return;
        }

        if (!_runtime.Routes.TryGetTable(target.ListenerName, out var table))
        {
            if (_runtime.Applied.MissingListeners.Contains(target.ListenerName))
            {
                Publish(ResolverResult.ForFailure(new Status(StatusCode.Unavailable, $"Mesh.Sdk: listener '{target.ListenerName}' was removed from the mesh.")));
                lock (_gate)
                {
                    _pushed = null;
                }
            }

            return;
        }

        var keys = new HashSet<string>(StringComparer.Ordinal);
        var addresses = new List<BalancerAddress>();
        var clusters = new HashSet<string>(StringComparer.Ordinal);
        foreach (var virtualHost in table.VirtualHosts)
        {
            foreach (var route in virtualHost.Routes)
            {
                foreach (var routeTarget in route.Targets)
                {
                    if (routeTarget.Cluster.Length == 0 || !clusters.Add(routeTarget.Cluster)
                        || !_runtime.Clusters.TryGetCluster(routeTarget.Cluster, out var cluster))
                    {
                        continue;
                    }

                    foreach (var endpoint in cluster.LoadBalancer.Endpoints.All)
                    {
                        if (endpoint.HealthClass != EndpointHealth.Excluded && keys.Add(endpoint.Key))
                        {
                            var address = new BalancerAddress(endpoint.Host, endpoint.Port);
                            address.Attributes.Set(MeshGrpcTarget.AttributeKey, target);
                            addresses.Add(address);
                        }
                    }
                }
            }
        }

        lock (_gate)
        {
            if (!force && _pushed is not null && _pushed.SetEquals(keys))
            {
                return;
            }

            _pushed = keys;
        }

        if (addresses.Count == 0)
        {
            Log.NoEndpoints(_logger, _authority, target.ListenerName, clusters.Count);
            Publish(ResolverResult.ForFailure(new Status(
                StatusCode.Unavailable,
                $"Mesh.Sdk: no cluster of listener '{target.ListenerName}' ({string.Join(", ", clusters)}) has endpoints.")));
            return;
        }

        var result = ResolverResult.ForResult(addresses, MeshServiceConfig, serviceConfigStatus: null);
        Log.Pushed(_logger, _authority, addresses.Count, clusters.Count);
        Publish(result);
    }

    private void Publish(ResolverResult result)
    {
        Action<ResolverResult>? listener;
        lock (_gate)
        {
            listener = _listener;
        }

        if (listener is not null && !_disposed.IsCancellationRequested)
        {
            listener(result);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(7001, LogLevel.Debug, "Target 'xds:///{Authority}' resolved to listener '{ListenerName}'.")]
        public static partial void Resolved(ILogger logger, string authority, string listenerName);

        [LoggerMessage(7002, LogLevel.Warning, "Target 'xds:///{Authority}' is not in the mesh: calls fail with UNAVAILABLE.")]
        public static partial void NotInMesh(ILogger logger, string authority);

        [LoggerMessage(7003, LogLevel.Warning, "Resolving target 'xds:///{Authority}' failed.")]
        public static partial void ResolveFailed(ILogger logger, string authority, Exception exception);

        [LoggerMessage(7004, LogLevel.Debug, "Target 'xds:///{Authority}': pushed {AddressCount} endpoint addresses of {ClusterCount} clusters.")]
        public static partial void Pushed(ILogger logger, string authority, int addressCount, int clusterCount);

        [LoggerMessage(7005, LogLevel.Warning, "Target 'xds:///{Authority}': the {ClusterCount} clusters of listener '{ListenerName}' have no endpoints.")]
        public static partial void NoEndpoints(ILogger logger, string authority, string listenerName, int clusterCount);
    }
}

using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Globalization;
using Grpc.Core;
using Grpc.Net.Client.Balancer;
using Mesh.Sdk.LoadBalancing;
using Mesh.Sdk.Resilience;
using Mesh.Sdk.Routing;
using GrpcPickContext = Grpc.Net.Client.Balancer.PickContext;
using MeshPickContext = Mesh.Sdk.LoadBalancing.PickContext;

namespace Mesh.Sdk.Grpc.Internal;

/// <summary>
/// Picks a subchannel for one call the way Envoy's router would: match the route in the listener's compiled table
/// (<c>/package.Service/Method</c> path, metadata as headers), choose the (weighted) cluster, apply the fault
/// filter's abort, check the cluster's <c>max_requests</c>, then ask the cluster's load balancer for an endpoint,
/// keeping to endpoints with a READY subchannel. Routes and clusters are read live from <see cref="MeshRuntime"/>, so
/// a route change applies to the next call without a new picker; the picker itself is rebuilt only when the set of
/// ready subchannels changes.
/// </summary>
internal sealed class MeshGrpcPicker : SubchannelPicker
{
    private static readonly Func<MeshEndpoint, object?, bool> NotReady =
        static (endpoint, state) => !((MeshGrpcPicker)state!)._ready.ContainsKey(endpoint.Key);

    private readonly MeshRuntime _runtime;
    private readonly MeshGrpcTarget _target;
    private readonly FrozenDictionary<string, Subchannel> _ready;
    private readonly Func<string, ConnectivityState?> _stateOf;
    private readonly Func<FrozenDictionary<string, Subchannel>> _latestReady;
    private ConcurrentDictionary<HttpRequestMessage, PendingCall>? _pending;
    private bool _retired;

    /// <summary>
    /// Istio's standard metrics: a call this picker drops (fault abort, circuit-breaker overflow) never reaches the
    /// mesh handler, so it is reported here, as Envoy's caller reports its local reply. <see langword="null"/> when off.
    /// </summary>
    public Mesh.Sdk.Telemetry.MeshMetrics? Metrics { get; init; }

    public MeshGrpcPicker(
        MeshRuntime runtime,
        MeshGrpcTarget target,
        FrozenDictionary<string, Subchannel> ready,
        Func<string, ConnectivityState?> stateOf,
        Func<FrozenDictionary<string, Subchannel>> latestReady)
    {
        _latestReady = latestReady;
        _runtime = runtime;
        _target = target;
        _ready = ready;
        _stateOf = stateOf;
    }

    public override PickResult Pick(GrpcPickContext context)
    {
        var request = context.Request;
        if (request is null)
        {
            return PickResult.ForFailure(new Status(StatusCode.Internal, "Mesh.Sdk: the call has no HTTP request to route."));
        }

        if (request.Options.TryGetValue(MeshGrpcCall.OptionKey, out var previous))
        {
            // An earlier pick for this request was not used.
            previous.Abandon();
            request.Options.Set(MeshGrpcCall.OptionKey, null!);
        }

        // A call this picker queued is picked again: it stops being pending (or stays, below, keeping its slot).
        var held = _pending is { } pending && pending.TryRemove(request, out var h) ? h : null;
        var result = PickCore(request, held);
        if (held is not null && !ReferenceEquals(_pending?.GetValueOrDefault(request), held))
        {
            held.Release();
        }

        return result;
    }

    private PickResult PickCore(HttpRequestMessage request, PendingCall? held)
    {
        var listener = _target.ListenerName;
        if (!_runtime.Routes.TryGetTable(listener, out var table))
        {
            return PickResult.ForFailure(new Status(StatusCode.Unavailable, $"Mesh.Sdk: listener '{listener}' has no route table."));
        }

        var routeRequest = new GrpcRouteRequest(request, _target.Authority);
        var match = table.Match(in routeRequest);
        if (!match.IsMatch)
        {
            return PickResult.ForFailure(new Status(
                StatusCode.Unavailable,
                $"Mesh.Sdk: no route of listener '{listener}' matches '{routeRequest.PathAndQuery}' for authority '{_target.Authority}'."));
        }

        var route = match.Route!;
        if (route.Action != RouteActionKind.Forward)
        {
            // gRPC's xDS clients accept such routes and fail the calls that match them with UNAVAILABLE ("matching
            // route has inappropriate action"); dropped, so wait-for-ready calls fail too instead of waiting.
            return PickResult.ForDrop(new Status(
                StatusCode.Unavailable,
                $"Mesh.Sdk: route '{route.Name}' of listener '{listener}' has a {(route.Action == RouteActionKind.Redirect ? "redirect" : "direct_response")} action, which a gRPC call cannot follow (matching route has inappropriate action)."));
        }

        var target = match.Target!;
        if (!_runtime.Clusters.TryGetCluster(target.Cluster, out var cluster))
        {
            if (!_runtime.Applied.IsComplete(listener))
            {
                // A new route names a cluster still on its way from the control plane: wait for it, as gRPC does.
                return PickResult.ForQueue();
            }

            return PickResult.ForFailure(new Status(
                GrpcStatusMapping.FromHttp(route.ClusterNotFoundStatus),
                $"Mesh.Sdk: cluster '{target.Cluster}' of route '{route.Name}' is unknown."));
        }

        var fault = target.Fault is { } policy ? policy.Evaluate(in routeRequest, target.Cluster, table.Random) : default;
        if (fault.IsAbort && (fault.Delay is null || !_target.HasMeshHandler))
        {
            return Dropped(cluster.Name, AbortStatus(fault, route), fault.Delay is null ? "FI" : "DI,FI");
        }

        var requests = cluster.CircuitBreakers.Default.Requests;
        if (!requests.TryAcquire(out var lease))
        {
            return Dropped(cluster.Name, new Status(StatusCode.Unavailable, requests.CreateOverflowException().Message), "UO");
        }

        ulong? hash = route.HashPolicies.Length > 0 && HashPolicy.TryComputeHash(route.HashPolicies, in routeRequest, out var h) ? h : null;
        var attempts = (int)Math.Clamp(route.RetryPolicy?.HostSelectionRetryMaxAttempts ?? 1, 3, 16);
        var endpoint = cluster.Pick(new MeshPickContext(hash, NotReady, this, attempts));
        if (endpoint is null)
        {
            lease.Dispose();
            if (cluster.Assignment is null && !_runtime.Applied.IsComplete(listener))
            {
                return PickResult.ForQueue();
            }

            return PickResult.ForFailure(new Status(StatusCode.Unavailable, $"Mesh.Sdk: cluster '{cluster.Name}' has no healthy upstream."));
        }

        if (!_ready.TryGetValue(endpoint.Key, out var subchannel) || endpoint.State.Outlier.IsEjected)
        {
            endpoint = FirstReady(cluster, skipEjected: true, out subchannel) ?? FirstReady(cluster, skipEjected: false, out subchannel);
            if (endpoint is null)
            {
                lease.Dispose();
                if (!Connecting(cluster))
                {
                    held?.Release();
                    return PickResult.ForFailure(new Status(StatusCode.Unavailable, $"Mesh.Sdk: no endpoint of cluster '{cluster.Name}' is reachable."));
                }

                // Waiting for a connection to an endpoint of the cluster: Envoy's pending request, bounded by
                // max_pending_requests. A call queued again keeps the slot it held.
                return HoldPending(request, cluster, held);
            }
        }

        var call = new MeshGrpcCall(this, listener, _target.Authority, route, target, cluster, endpoint, fault, lease);
        request.Options.Set(MeshGrpcCall.OptionKey, call);
        return PickResult.ForSubchannel(subchannel!, call);
    }

    /// <summary>
    /// Counts a call queued for a connection to its cluster against <c>max_pending_requests</c>: the slot it already
    /// held, else a new one (overflow → the call is dropped with the limit named). The slot is given back when the
    /// call is picked again, at the call's <c>grpc-timeout</c> (a queued call that ends is never picked again), or when
    /// this picker is replaced (grpc-dotnet picks every queued call again on the new picker, which counts it anew).
    /// </summary>
    private PickResult HoldPending(HttpRequestMessage request, ClusterRuntime cluster, PendingCall? held)
    {
        if (held is null || held.IsReleased || !ReferenceEquals(held.Counter, cluster.CircuitBreakers.Default.PendingRequests))
        {
            held?.Release();
            var counter = cluster.CircuitBreakers.Default.PendingRequests;
            if (!counter.TryAcquire(out var lease))
            {
                return Dropped(cluster.Name, new Status(StatusCode.Unavailable, counter.CreateOverflowException().Message), "UO");
            }

            held = new PendingCall(counter, lease);
            if (MeshGrpcHandler.TryGetGrpcTimeout(request, out var timeout) && timeout > TimeSpan.Zero)
            {
                held.ExpireAfter(_runtime.TimeProvider, timeout);
            }
        }

        var pending = LazyInitializer.EnsureInitialized(ref _pending, static () => new ConcurrentDictionary<HttpRequestMessage, PendingCall>());
        pending[request] = held;
        if (Volatile.Read(ref _retired))
        {
            // Replaced meanwhile: the call is picked again on the new picker.
            pending.TryRemove(request, out _);
            held.Release();
        }

        return PickResult.ForQueue();
    }

    /// <summary>This picker was replaced: every call it queued is picked again on the new one, so their pending slots go back.</summary>
    public void Retire()
    {
        Volatile.Write(ref _retired, true);
        if (_pending is { } pending)
        {
            foreach (var (request, call) in pending)
            {
                if (pending.TryRemove(new KeyValuePair<HttpRequestMessage, PendingCall>(request, call)))
                {
                    call.Release();
                }
            }
        }
    }

    /// <summary>
    /// Picks another READY endpoint of the call's cluster for a retry (Envoy's <c>previous_hosts</c> predicate):
    /// the cluster's load balancer with <paramref name="tried"/> excluded, else any ready host not tried, among the
    /// subchannels ready now (the balancer's latest picker, which may have more than the one that picked the call).
    /// Returns <see langword="false"/> when every ready host was tried.
    /// </summary>
    public bool TryPickRetry(ClusterRuntime cluster, List<MeshEndpoint> tried, int attempts, out MeshEndpoint? endpoint, out Subchannel? subchannel)
    {
        var ready = _latestReady();
        var state = (ready, tried);
        endpoint = cluster.Pick(new MeshPickContext(null, NotReadyOrTried, state, attempts));
        if (endpoint is not null && !NotReadyOrTried(endpoint, state) && !endpoint.State.Outlier.IsEjected && ready.TryGetValue(endpoint.Key, out subchannel))
        {
            return true;
        }

        foreach (var candidate in cluster.LoadBalancer.Endpoints.All)
        {
            if (candidate.HealthClass != EndpointHealth.Excluded && !candidate.State.Outlier.IsEjected && !NotReadyOrTried(candidate, state)
                && ready.TryGetValue(candidate.Key, out subchannel))
            {
                endpoint = candidate;
                return true;
            }
        }

        endpoint = null;
        subchannel = null;
        return false;
    }

    private static readonly Func<MeshEndpoint, object?, bool> NotReadyOrTried = static (endpoint, state) =>
    {
        var (ready, tried) = ((FrozenDictionary<string, Subchannel>, List<MeshEndpoint>))state!;
        if (!ready.ContainsKey(endpoint.Key))
        {
            return true;
        }

        foreach (var previous in tried)
        {
            if (previous.Key == endpoint.Key)
            {
                return true;
            }
        }

        return false;
    };

    /// <summary>
    /// Drops the call with <paramref name="status"/>, reporting it as the caller (a trailers-only answer: response code
    /// 200, the status, Envoy's <paramref name="flags"/>, no endpoint). A dropped call fails whatever its wait-for-ready,
    /// so it is reported once.
    /// </summary>
    private PickResult Dropped(string cluster, Status status, string flags)
    {
        if (Metrics is { } metrics)
        {
            var series = metrics.Outbound(cluster).Get(Mesh.Sdk.Telemetry.MeshMetrics.GrpcProtocol, 200, Mesh.Sdk.Telemetry.ResponseCodes.Text((int)status.StatusCode), flags);
            metrics.Record(series, 0, 0, 0, 0, 0);
        }

        return PickResult.ForDrop(status);
    }

    /// <summary>The status of an abort: <c>grpc_status</c> as given, an <c>http_status</c> mapped as gRPC maps HTTP statuses.</summary>
    public static Status AbortStatus(FaultDecision fault, CompiledRoute route)
    {
        var code = fault.GrpcStatus is { } grpc ? (StatusCode)grpc : GrpcStatusMapping.FromHttp(fault.HttpStatus ?? 503);
        var detail = fault.HttpStatus is { } http
            ? string.Create(CultureInfo.InvariantCulture, $"fault filter abort (HTTP {http}) on route '{route.Name}'")
            : string.Create(CultureInfo.InvariantCulture, $"fault filter abort on route '{route.Name}'");
        return new Status(code, detail);
    }

    private MeshEndpoint? FirstReady(ClusterRuntime cluster, bool skipEjected, out Subchannel? subchannel)
    {
        var all = cluster.LoadBalancer.Endpoints.All;
        var count = all.Count;
        var start = count > 1 ? Random.Shared.Next(count) : 0;
        for (var i = 0; i < count; i++)
        {
            var endpoint = all[(start + i) % count];
            if (endpoint.HealthClass == EndpointHealth.Excluded || (skipEjected && endpoint.State.Outlier.IsEjected))
            {
                continue;
            }

            if (_ready.TryGetValue(endpoint.Key, out subchannel))
            {
                return endpoint;
            }
        }

        subchannel = null;
        return null;
    }

    // Whether some usable endpoint may still become ready (no subchannel yet, idle, connecting, or ready after this
    // picker was built): then the call waits for the next picker, as gRPC does while a channel connects; when all are
    // in transient failure it fails now.
    private bool Connecting(ClusterRuntime cluster)
    {
        foreach (var endpoint in cluster.LoadBalancer.Endpoints.All)
        {
            if (endpoint.HealthClass == EndpointHealth.Excluded)
            {
                continue;
            }

            // READY here but not in this picker: the balancer is about to publish a picker that has it.
            if (_stateOf(endpoint.Key) is not (ConnectivityState.TransientFailure or ConnectivityState.Shutdown))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>A queued call's <c>max_pending_requests</c> slot, given back once.</summary>
    private sealed class PendingCall(CircuitBreakerCounter counter, CircuitBreakerLease lease)
    {
        private int _released;
        private ITimer? _timer;

        public CircuitBreakerCounter Counter { get; } = counter;

        public bool IsReleased => Volatile.Read(ref _released) != 0;

        public void ExpireAfter(TimeProvider time, TimeSpan timeout)
            => _timer = time.CreateTimer(static state => ((PendingCall)state!).Release(), this, timeout, Timeout.InfiniteTimeSpan);

        public void Release()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                _timer?.Dispose();
                lease.Dispose();
            }
        }
    }
}

using Grpc.Net.Client.Balancer;
using Mesh.Sdk.LoadBalancing;
using Mesh.Sdk.Resilience;
using Mesh.Sdk.Routing;

namespace Mesh.Sdk.Grpc.Internal;

/// <summary>
/// What the picker decided for one gRPC call (route, target, cluster, endpoint, fault), carried to
/// <see cref="MeshGrpcHandler"/> in <see cref="HttpRequestMessage.Options"/>, and the call's
/// <see cref="ISubchannelCallTracker"/>: active-request counts, the cluster's <c>max_requests</c> slot and, when no
/// handler saw the call, local-origin failures for outlier detection. One allocation per call.
/// </summary>
internal sealed class MeshGrpcCall : ISubchannelCallTracker
{
    /// <summary>The request option holding the call.</summary>
    public static readonly HttpRequestOptionsKey<MeshGrpcCall> OptionKey = new("Mesh.Sdk.Grpc.Call");

    private CircuitBreakerLease _lease;
    private int _state; // 0 created, 1 started, 2 completed

    public MeshGrpcCall(MeshGrpcPicker picker, string listenerName, string authority, CompiledRoute route, RouteTarget target, ClusterRuntime cluster, MeshEndpoint endpoint, FaultDecision fault, CircuitBreakerLease lease)
    {
        _lease = lease;
        Picker = picker;
        ListenerName = listenerName;
        Authority = authority;
        Route = route;
        Target = target;
        Cluster = cluster;
        Endpoint = endpoint;
        CurrentEndpoint = endpoint;
        Fault = fault;
    }

    /// <summary>The picker that chose the endpoint, for retries on another host.</summary>
    public MeshGrpcPicker Picker { get; }

    public string ListenerName { get; }

    /// <summary>The authority routes matched: the channel's target as written (<c>reviews:9080</c>).</summary>
    public string Authority { get; }

    public CompiledRoute Route { get; }

    public RouteTarget Target { get; }

    public ClusterRuntime Cluster { get; }

    /// <summary>The endpoint the picker chose.</summary>
    public MeshEndpoint Endpoint { get; }

    /// <summary>The endpoint the current attempt goes to: <see cref="Endpoint"/> until a retry moves to another host.</summary>
    public MeshEndpoint CurrentEndpoint { get; set; }

    /// <summary>The fault decision left for the handler (a delay, possibly followed by an abort).</summary>
    public FaultDecision Fault { get; }

    /// <summary>Set by <see cref="MeshGrpcHandler"/>: it reports outcomes per attempt, so the tracker does not.</summary>
    public bool HandledByMeshHandler { get; set; }

    public void Start()
    {
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
        {
            return;
        }

        Endpoint.State.RequestStarted();
    }

    /// <summary>
    /// Gives the <c>max_requests</c> slot back when the call was never started: grpc-dotnet picks again for the same
    /// request when the chosen subchannel stopped being ready before use.
    /// </summary>
    public void Abandon()
    {
        if (Interlocked.CompareExchange(ref _state, 2, 0) == 0)
        {
            _lease.Dispose();
        }
    }

    public void Complete(CompletionContext context)
    {
        if (Interlocked.Exchange(ref _state, 2) != 1)
        {
            return;
        }

        CurrentEndpoint.State.RequestCompleted();
        _lease.Dispose();
        if (context.Error is not null && !HandledByMeshHandler && context.Error is not OperationCanceledException)
        {
            Cluster.ReportLocalOrigin(CurrentEndpoint, LocalOriginOutcome.ConnectFailed);
        }
    }
}

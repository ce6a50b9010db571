using Grpc.Net.Client.Balancer;
using Mesh.Sdk.LoadBalancing;
using Mesh.Sdk.Resilience;
using Mesh.Sdk.Routing;

namespace Mesh.Sdk.Grpc.Internal;

/// <summary>
/// What the picker decided for one gRPC call (route, target, cluster, endpoint, fault), carried to
/// <see cref="MeshGrpcHandler"/> in <see cref="HttpRequestMessage.Options"/>, and the call's
/// <see cref="ISubchannelCallTracker"/>: active-request counts, the cluster's <c>max_requests</c> slot and, when no
/// handler saw the call, local-origin failures for outlier detection. grpc-dotnet completes a tracker when the
/// response headers arrive; with the mesh handler in the chain the call instead ends when its response stream ends
/// (<see cref="EndStream"/>), so streaming calls hold their slot and count for as long as they run.
/// </summary>
internal sealed class MeshGrpcCall : ISubchannelCallTracker
{
    /// <summary>The request option holding the call.</summary>
    public static readonly HttpRequestOptionsKey<MeshGrpcCall> OptionKey = new("Mesh.Sdk.Grpc.Call");

    private const int StreamOpen = 1;
    private const int StreamEnded = 2;

    private CircuitBreakerLease _lease;
    private int _state; // 0 created, 1 started, 2 completed
    private int _stream; // 0 not followed, 1 open (completes at EndStream), 2 ended

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

    /// <summary>Envoy's response flags of a call the handler answered itself (<c>UT</c>, <c>DI,FI</c>), for the metrics.</summary>
    public string? ResponseFlags { get; set; }

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

    /// <summary>
    /// Called by grpc-dotnet when the response headers arrive (or the request failed). A call whose response stream
    /// <see cref="MeshGrpcHandler"/> is following keeps its <c>max_requests</c> slot and its active-request count
    /// until <see cref="EndStream"/>; any other call gives them back now.
    /// </summary>
    public void Complete(CompletionContext context)
    {
        if (context.Error is null && Volatile.Read(ref _stream) == StreamOpen)
        {
            return;
        }

        Finish(context.Error);
    }

    /// <summary>
    /// Marks the call as lasting until its response stream ends: set by <see cref="MeshGrpcHandler"/> on the response
    /// it returns, before grpc-dotnet completes the tracker at the response headers.
    /// </summary>
    public void HoldUntilStreamEnds() => Interlocked.CompareExchange(ref _stream, StreamOpen, 0);

    /// <summary>The response stream was read to its end or disposed: the call is over. Idempotent.</summary>
    public void EndStream()
    {
        if (Interlocked.Exchange(ref _stream, StreamEnded) == StreamOpen)
        {
            Finish(null);
        }
    }

    private void Finish(Exception? error)
    {
        if (Interlocked.Exchange(ref _state, 2) != 1)
        {
            return;
        }

        CurrentEndpoint.State.RequestCompleted();
        _lease.Dispose();
        if (error is not null && !HandledByMeshHandler && error is not OperationCanceledException)
        {
            Cluster.ReportLocalOrigin(CurrentEndpoint, LocalOriginOutcome.ConnectFailed);
        }
    }
}

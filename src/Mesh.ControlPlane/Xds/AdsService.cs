using System.Threading.Channels;
using Envoy.Service.Discovery.V3;
using Grpc.Core;
using Mesh.ControlPlane.Registry;
using Mesh.ControlPlane.Translation;
using Microsoft.Extensions.Logging;

namespace Mesh.ControlPlane.Xds;

/// <summary>Shared state every ADS stream needs.</summary>
internal sealed record AdsContext(SnapshotCache Cache, ServiceRegistry Registry, string DefaultNamespace, string Domain, ILoggerFactory LoggerFactory, CancellationToken Stopping)
{
    /// <summary>Where pushes, rejects and connected clients are counted.</summary>
    public Monitoring.ControlPlaneMetrics Metrics { get; init; } = new();

    /// <summary>The clock push and convergence times are measured with.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Shared by every stream, so a client that reconnects and fails again in a loop is counted too.</summary>
    public RepeatedLogLimiter Warnings { get; init; } = new(TimeProvider.System, RepeatedLogLimiter.DefaultInterval);
}

/// <summary>
/// envoy.service.discovery.v3.AggregatedDiscoveryService: State-of-the-World and Delta ADS.
/// Each stream runs one loop that handles, in order, the client's requests and snapshot updates,
/// so per-stream state needs no locks and responses are never written concurrently.
/// </summary>
internal sealed class AdsService(AdsContext context) : AggregatedDiscoveryService.AggregatedDiscoveryServiceBase
{
    private static long s_streamIds;

    public override Task StreamAggregatedResources(IAsyncStreamReader<DiscoveryRequest> requestStream, IServerStreamWriter<DiscoveryResponse> responseStream,
        ServerCallContext callContext)
    {
        var stream = new SotwStream(context, Interlocked.Increment(ref s_streamIds), callContext.Peer, responseStream);
        return RunAsync(requestStream, stream, callContext);
    }

    public override Task DeltaAggregatedResources(IAsyncStreamReader<DeltaDiscoveryRequest> requestStream, IServerStreamWriter<DeltaDiscoveryResponse> responseStream,
        ServerCallContext callContext)
    {
        var stream = new DeltaStream(context, Interlocked.Increment(ref s_streamIds), callContext.Peer, responseStream);
        return RunAsync(requestStream, stream, callContext);
    }

    private async Task RunAsync<TRequest>(IAsyncStreamReader<TRequest> requests, AdsStream<TRequest> stream, ServerCallContext callContext)
        where TRequest : class
    {
        // Streams end when the client goes away or the control plane stops (Kestrel would otherwise wait for them).
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(callContext.CancellationToken, context.Stopping);
        var cancellationToken = linked.Token;
        var events = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true });
        void OnUpdated(XdsSnapshot snapshot) => events.Writer.TryWrite(new Published(context.Time.GetTimestamp()));
        context.Cache.Updated += OnUpdated;
        var reader = Task.Run(async () =>
        {
            try
            {
                while (await requests.MoveNext(cancellationToken).ConfigureAwait(false))
                {
                    events.Writer.TryWrite(requests.Current);
                }

                events.Writer.TryComplete();
            }
            catch (Exception ex)
            {
                events.Writer.TryComplete(ex);
            }
        }, CancellationToken.None);

        try
        {
            await foreach (var item in events.Reader.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                if (item is Published published)
                {
                    var written = stream.Written;
                    await stream.OnSnapshotAsync(context.Cache.Current, cancellationToken).ConfigureAwait(false);
                    if (stream.Written != written)
                    {
                        // istiod's convergence time: from the new configuration to this client having been sent it.
                        context.Metrics.Converged(context.Time.GetElapsedTime(published.Timestamp));
                    }
                }
                else
                {
                    await stream.OnRequestAsync((TRequest)item, context.Cache.Current, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (Exception ex) when (cancellationToken.IsCancellationRequested || ClientCloseLogFilter.IsClientGone(ex))
        {
            // The client went away (reset, disconnect) or the control plane is stopping: normal, the stream's
            // close line (on Dispose) is all that is logged.
        }
        catch (Exception ex)
        {
            // A real failure: logged once as a warning with the exception, and the client gets INTERNAL (rethrowing
            // would make grpc-dotnet log it again).
            stream.LogFailure(ex);
            callContext.Status = new Status(StatusCode.Internal, $"ADS stream failed: {ex.Message}");
        }
        finally
        {
            context.Cache.Updated -= OnUpdated;
            stream.Dispose();
            await reader.ConfigureAwait(false);
        }
    }
}

/// <summary>A snapshot was published at <paramref name="Timestamp"/> (<see cref="TimeProvider.GetTimestamp"/>).</summary>
internal sealed record Published(long Timestamp);

/// <summary>What SotW and Delta streams share: the node, self-registration and logging.</summary>
internal abstract partial class AdsStream<TRequest>(AdsContext context, long streamId, string peer) : IDisposable
{
    private IDisposable? _registration;
    private XdsSnapshot? _ownSnapshot;
    private long _nonce;

    protected AdsContext Context { get; } = context;

    protected ILogger Logger { get; } = context.LoggerFactory.CreateLogger("Mesh.ControlPlane.Xds.AdsStream");

    protected NodeInfo? Node { get; private set; }

    protected string NodeId => Node?.Id ?? string.Empty;

    protected string Namespace => Node?.Namespace ?? Context.DefaultNamespace;

    /// <summary>The client's namespace and labels: source-restricted routes are resolved against them.</summary>
    protected ClientScope Scope => Node?.Scope ?? ClientScope.InNamespace(Context.DefaultNamespace);

    public abstract Task OnRequestAsync(TRequest request, XdsSnapshot snapshot, CancellationToken cancellationToken);

    public abstract Task OnSnapshotAsync(XdsSnapshot snapshot, CancellationToken cancellationToken);

    /// <summary>How many responses this stream has written.</summary>
    public long Written { get; private set; }

    /// <summary>Counts a response written, started at <paramref name="started"/> (<see cref="TimeProvider.GetTimestamp"/>).</summary>
    protected void RecordPush(string typeUrl, long started)
    {
        Written++;
        Context.Metrics.Pushed(typeUrl, Context.Time.GetElapsedTime(started));
    }

    protected long Now() => Context.Time.GetTimestamp();

    protected string NextNonce() => (++_nonce).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// Takes the node from the stream's first request (registering its workload if it announces one)
    /// and returns the snapshot to answer from: <paramref name="published"/>, or, until a published
    /// snapshot includes this stream's registration, one built right after registering.
    /// </summary>
    protected XdsSnapshot Admit(Envoy.Config.Core.V3.Node? node, XdsSnapshot published)
    {
        if (Node is null)
        {
            SetNode(node);
        }

        return Effective(published);
    }

    /// <summary>
    /// The snapshot this stream serves from: the published one, unless it predates the snapshot built
    /// when this stream's workload registered (published snapshots built later have higher versions and
    /// include the registration).
    /// </summary>
    protected XdsSnapshot Effective(XdsSnapshot published)
    {
        if (_ownSnapshot is null)
        {
            return published;
        }

        if (published.Version >= _ownSnapshot.Version)
        {
            _ownSnapshot = null;
            return published;
        }

        return _ownSnapshot;
    }

    private void SetNode(Envoy.Config.Core.V3.Node? node)
    {
        Node = NodeInfo.From(node, Context.DefaultNamespace, Context.Domain);
        Log.StreamOpened(Logger, streamId, Node.Id, peer, GetType().Name);
        Context.Metrics.ClientConnected(Node.ClientVersion);
        if (Node.RegistrationProblem is { } problem)
        {
            Log.RegistrationRejected(Logger, Node.Id, problem);
        }
        else if (Node.Registration is { } registration)
        {
            // The registry takes the registration at once and schedules the debounced push to every
            // stream; this stream answers its first request from a snapshot that already includes it,
            // so a workload subscribing to its own service is not told the service does not exist.
            _registration = Context.Registry.Register(registration);
            _ownSnapshot = Context.Cache.BuildUnpublished(Node.Id);
        }
    }

    protected void LogAck(string typeUrl, string nonce, string version) => Log.Ack(Logger, NodeId, typeUrl, nonce, version);

    /// <summary>A NACK is a warning with its detail the first time, then once per interval with the count of identical ones held back.</summary>
    protected void LogNack(string typeUrl, string nonce, string? version, string detail)
    {
        Context.Metrics.Rejected(typeUrl);
        if (!Context.Warnings.ShouldLog($"nack|{NodeId}|{typeUrl}|{detail}", out var repeats, out var window))
        {
            Log.NackAgain(Logger, NodeId, typeUrl, nonce, version ?? string.Empty);
        }
        else if (repeats > 0)
        {
            Log.NackRepeated(Logger, NodeId, typeUrl, nonce, version ?? string.Empty, detail, repeats, Math.Round(window.TotalSeconds));
        }
        else
        {
            Log.Nack(Logger, NodeId, typeUrl, nonce, version ?? string.Empty, detail);
        }
    }

    protected void LogStale(string typeUrl, string nonce)
    {
        Context.Metrics.NonceExpired(typeUrl);
        Log.StaleNonce(Logger, NodeId, typeUrl, nonce);
    }

    protected void LogSent(string typeUrl, string version, string nonce, int count, int removed) => Log.Sent(Logger, NodeId, typeUrl, version, nonce, count, removed);

    protected void LogUnknownType(string typeUrl) => Log.UnknownType(Logger, NodeId, typeUrl);

    /// <summary>Logs a failure that ended the stream (not a client closing it).</summary>
    /// <remarks>One line at Warning (identical failures counted per interval); the exception with its stack at Debug.</remarks>
    public void LogFailure(Exception exception)
    {
        var reason = exception.Message.TrimEnd('.');
        if (!Context.Warnings.ShouldLog($"failed|{NodeId}|{exception.GetType().FullName}|{reason}", out var repeats, out var window))
        {
            Log.StreamFailedAgain(Logger, streamId, NodeId, reason);
        }
        else if (repeats > 0)
        {
            Log.StreamFailedRepeated(Logger, streamId, NodeId, reason, repeats, Math.Round(window.TotalSeconds));
        }
        else
        {
            Log.StreamFailed(Logger, streamId, NodeId, reason);
        }

        Log.StreamFailure(Logger, streamId, exception);
    }

    public void Dispose()
    {
        Log.StreamClosed(Logger, streamId, NodeId);
        if (Node is { } node)
        {
            Context.Metrics.ClientDisconnected(node.ClientVersion);
        }

        _registration?.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 4001, Level = LogLevel.Information, Message = "ADS stream {StreamId} opened by node '{NodeId}' from '{Peer}' ({Kind}).")]
        public static partial void StreamOpened(ILogger logger, long streamId, string nodeId, string peer, string kind);

        [LoggerMessage(EventId = 4002, Level = LogLevel.Information, Message = "ADS stream {StreamId} of node '{NodeId}' closed.")]
        public static partial void StreamClosed(ILogger logger, long streamId, string nodeId);

        [LoggerMessage(EventId = 4003, Level = LogLevel.Debug, Message = "Node '{NodeId}' ACKed '{TypeUrl}' nonce '{Nonce}' version '{Version}'.")]
        public static partial void Ack(ILogger logger, string nodeId, string typeUrl, string nonce, string version);

        [LoggerMessage(EventId = 4004, Level = LogLevel.Warning, Message = "Node '{NodeId}' rejected (NACK) '{TypeUrl}' nonce '{Nonce}' version '{Version}': {Detail}")]
        public static partial void Nack(ILogger logger, string nodeId, string typeUrl, string nonce, string version, string detail);

        [LoggerMessage(EventId = 4005, Level = LogLevel.Debug, Message = "Node '{NodeId}' sent stale nonce '{Nonce}' for '{TypeUrl}'; ignored.")]
        public static partial void StaleNonce(ILogger logger, string nodeId, string typeUrl, string nonce);

        [LoggerMessage(EventId = 4006, Level = LogLevel.Debug, Message = "Sent node '{NodeId}' '{TypeUrl}' version '{Version}' nonce '{Nonce}': {Count} resources, {Removed} removed.")]
        public static partial void Sent(ILogger logger, string nodeId, string typeUrl, string version, string nonce, int count, int removed);

        [LoggerMessage(EventId = 4007, Level = LogLevel.Warning, Message = "Node '{NodeId}' asked for unsupported type '{TypeUrl}'; ignored.")]
        public static partial void UnknownType(ILogger logger, string nodeId, string typeUrl);

        [LoggerMessage(EventId = 4010, Level = LogLevel.Warning, Message = "Node '{NodeId}' rejected (NACK) '{TypeUrl}' nonce '{Nonce}' version '{Version}': {Detail} (repeated {Repeats} times in the last {WindowSeconds} s)")]
        public static partial void NackRepeated(ILogger logger, string nodeId, string typeUrl, string nonce, string version, string detail, int repeats, double windowSeconds);

        [LoggerMessage(EventId = 4011, Level = LogLevel.Debug, Message = "Node '{NodeId}' rejected (NACK) '{TypeUrl}' nonce '{Nonce}' version '{Version}' again, as logged before.")]
        public static partial void NackAgain(ILogger logger, string nodeId, string typeUrl, string nonce, string version);

        [LoggerMessage(EventId = 4009, Level = LogLevel.Warning, Message = "ADS stream {StreamId} of node '{NodeId}' failed: {Reason}.")]
        public static partial void StreamFailed(ILogger logger, long streamId, string nodeId, string reason);

        [LoggerMessage(EventId = 4012, Level = LogLevel.Warning, Message = "ADS stream {StreamId} of node '{NodeId}' failed: {Reason} (repeated {Repeats} times in the last {WindowSeconds} s).")]
        public static partial void StreamFailedRepeated(ILogger logger, long streamId, string nodeId, string reason, int repeats, double windowSeconds);

        [LoggerMessage(EventId = 4013, Level = LogLevel.Debug, Message = "ADS stream {StreamId} of node '{NodeId}' failed again: {Reason}.")]
        public static partial void StreamFailedAgain(ILogger logger, long streamId, string nodeId, string reason);

        [LoggerMessage(EventId = 4014, Level = LogLevel.Debug, Message = "ADS stream {StreamId} failed with this exception.")]
        public static partial void StreamFailure(ILogger logger, long streamId, Exception exception);

        [LoggerMessage(EventId = 4008, Level = LogLevel.Warning, Message = "Node '{NodeId}' announced itself but cannot be registered: {Problem}.")]
        public static partial void RegistrationRejected(ILogger logger, string nodeId, string problem);
    }
}

using System.Reflection;
using System.Threading.Channels;
using Envoy.Config.Core.V3;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Mesh.Sdk.Resources;
using Mesh.Sdk.Xds.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Sdk.Xds;

/// <summary>
/// The ADS client: one stream to the first bootstrap server, State of the World or Delta, with watches per
/// resource type and name, validation and ACK/NACK, reconnection with gRPC's backoff capped at 3 s, and dependency following
/// from listeners down to endpoints (see <see cref="AddListener"/>) into <see cref="Snapshots"/>.
/// </summary>
internal sealed partial class XdsClient : IAsyncDisposable
{
    private const int InvalidArgument = 3;

    /// <summary>The <see cref="RepeatedWarningLimiter"/> group of connection failures (resource types are the others).</summary>
    private const string ConnectionGroup = "connection";

    /// <summary>gRPC's wait for a subscribed resource before it is reported as not existing.</summary>
    public static readonly TimeSpan DefaultResourceTimeout = TimeSpan.FromSeconds(15);

    private readonly Lock _gate = new();
    private readonly IAdsTransport _transport;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly ExponentialBackoff _backoff;

    // Connection failures and NACKs that repeat are counted, not repeated in the log (guarded by _gate).
    private readonly RepeatedWarningLimiter _warnings;
    private readonly Node _node;
    private readonly bool _ignoreResourceDeletion;
    private readonly TimeSpan _resourceTimeout;
    private readonly Dictionary<XdsResourceType, TypeState> _types = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly XdsDependencyTracker _tracker;
    private readonly MeshSnapshotSource _snapshots;
    private StreamState? _stream;
    private int _deferDepth;
    private Task? _loop;

    public XdsClient(
        XdsBootstrap bootstrap,
        XdsClientOptions options,
        IAdsTransport transport,
        TimeProvider timeProvider,
        Random random,
        ILoggerFactory? loggerFactory = null,
        BackoffSettings? backoff = null,
        TimeSpan? resourceTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(bootstrap);
        ArgumentNullException.ThrowIfNull(options);
        var server = bootstrap.Servers[0];
        Protocol = options.ResolveProtocol(server);
        _transport = transport;
        _timeProvider = timeProvider;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<XdsClient>();
        _backoff = new ExponentialBackoff(random, backoff ?? BackoffSettings.Ads);
        _warnings = new RepeatedWarningLimiter(timeProvider, RepeatedWarningLimiter.DefaultInterval);
        _ignoreResourceDeletion = server.HasFeature(XdsServerConfig.IgnoreResourceDeletionFeature);
        _resourceTimeout = resourceTimeout ?? DefaultResourceTimeout;
        _node = BuildNode(bootstrap.Node);
        foreach (var type in XdsResourceType.All)
        {
            _types[type] = new TypeState(type);
        }

        _snapshots = new MeshSnapshotSource(timeProvider);
        _tracker = new XdsDependencyTracker(this, _snapshots);
        foreach (var listener in options.Listeners)
        {
            _tracker.AddListener(listener);
        }
    }

    /// <summary>Creates a client speaking gRPC to the first server of <paramref name="bootstrap"/>.</summary>
    /// <param name="bootstrap">The bootstrap; its first server is used.</param>
    /// <param name="options">Client options.</param>
    /// <param name="timeProvider">The clock of the backoff and the resource timers.</param>
    /// <param name="loggerFactory">Where the client and its gRPC channels log.</param>
    /// <param name="backoff">The ADS retry backoff; <see cref="BackoffSettings.Ads"/> when null (tests shorten it).</param>
    public static XdsClient Create(XdsBootstrap bootstrap, XdsClientOptions options, TimeProvider timeProvider, ILoggerFactory? loggerFactory = null, BackoffSettings? backoff = null)
    {
        var transport = new GrpcAdsTransport(bootstrap.Servers[0], loggerFactory ?? NullLoggerFactory.Instance);
        return new XdsClient(bootstrap, options, transport, timeProvider, new Random(), loggerFactory, backoff);
    }

    public XdsProtocol Protocol { get; }

    /// <summary>The validated snapshots published after each accepted update.</summary>
    public IMeshSnapshotSource Snapshots => _snapshots;

    /// <summary>Raised after each response's notifications have been delivered, on the ADS reader.</summary>
    internal event Action? UpdateBatchCompleted;

    /// <summary>Starts the ADS stream loop.</summary>
    public void Start()
    {
        lock (_gate)
        {
            _loop ??= Task.Run(() => RunAsync(_stopping.Token));
        }
    }

    /// <summary>
    /// Asks for a listener and, transitively, the routes, clusters and endpoints it uses. Disposing the result
    /// drops the interest (reference counted); unreferenced resources are unwatched.
    /// </summary>
    public IDisposable AddListener(string listenerName) => _tracker.AddListener(listenerName);

    /// <summary>Watches one resource. The last watcher of a name leaving unsubscribes it.</summary>
    public IDisposable Watch(XdsResourceType type, string name, IXdsResourceWatcher watcher)
    {
        ArgumentNullException.ThrowIfNull(type);
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(watcher);
        object? cached;
        bool doesNotExist;
        lock (_gate)
        {
            var state = _types[type];
            if (!state.Resources.TryGetValue(name, out var resource))
            {
                resource = new ResourceState();
                state.Resources[name] = resource;
                state.MarkSubscribed(name);
                Log.Subscribed(_logger, type.ShortName, name);
                FlushLocked();
            }
            else
            {
                // Watched again before a deferred unwatch went out: keep the subscription and the cached value.
                state.PendingRemoval.Remove(name);
            }

            resource.Watchers.Add(watcher);
            cached = resource.Value;
            doesNotExist = resource.DoesNotExist;
        }

        if (cached is not null)
        {
            watcher.OnResourceChanged(type, name, cached);
        }
        else if (doesNotExist)
        {
            watcher.OnResourceDoesNotExist(type, name);
        }

        return new WatchHandle(this, type, name, watcher);
    }

    private void Unwatch(XdsResourceType type, string name, IXdsResourceWatcher watcher)
    {
        lock (_gate)
        {
            var state = _types[type];
            if (!state.Resources.TryGetValue(name, out var resource) || !resource.Watchers.Remove(watcher) || resource.Watchers.Count > 0)
            {
                return;
            }

            if (_deferDepth > 0)
            {
                // Decided at flush time: a watch of the same name in the same batch keeps the cached value,
                // which the server would not send again for an unchanged subscription.
                state.PendingRemoval.Add(name);
                return;
            }

            RemoveLocked(state, name);
            FlushLocked();
        }
    }

    private void RemoveLocked(TypeState state, string name)
    {
        if (state.Resources.Remove(name, out var resource))
        {
            resource.StopTimer();
        }

        state.MarkUnsubscribed(name);
        Log.Unsubscribed(_logger, state.Type.ShortName, name);
    }

    /// <summary>Holds subscription requests back until the returned scope ends, so that several changes go out as one.</summary>
    internal DeferScope DeferRequests()
    {
        lock (_gate)
        {
            _deferDepth++;
        }

        return new DeferScope(this);
    }

    private void EndDefer()
    {
        lock (_gate)
        {
            if (--_deferDepth == 0)
            {
                FlushLocked();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        Task? loop;
        lock (_gate)
        {
            loop = _loop;
        }

        if (loop is not null)
        {
            try
            {
                await loop.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        await _transport.DisposeAsync().ConfigureAwait(false);
        _stopping.Dispose();
    }

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        var failedAttempts = 0;
        while (!cancellationToken.IsCancellationRequested)
        {
            var attemptStarted = _timeProvider.GetTimestamp();
            var outcome = await RunStreamAsync(failedAttempts, cancellationToken).ConfigureAwait(false);
            if (cancellationToken.IsCancellationRequested)
            {
                break;
            }

            if (outcome.SawResponse)
            {
                // gRPC's xDS clients: a stream that got a response was a success, so the next wait starts over.
                _backoff.Reset();
                failedAttempts = 0;
            }

            // gRPC's connection backoff counts from the start of the attempt (as grpc-java's xDS client does): a
            // stream that lived longer than the delay is retried at once, a slow failure waits only the rest.
            var delay = _backoff.NextDelay() - _timeProvider.GetElapsedTime(attemptStarted);
            if (delay < TimeSpan.Zero)
            {
                delay = TimeSpan.Zero;
            }

            if (outcome.Failure is { } failure)
            {
                failedAttempts++;
                LogAttemptFailed(failure, outcome.SendFailed, delay, failedAttempts);
            }
            else
            {
                Log.StreamEnded(_logger, _transport.Target, Math.Round(delay.TotalSeconds, 1));
            }

            try
            {
                await Task.Delay(delay, _timeProvider, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    /// <summary>One line per failed attempt: a warning the first time a reason is seen and once per interval after (with the count held back), Debug otherwise; the exception at Debug.</summary>
    private void LogAttemptFailed(Exception failure, bool sendFailed, TimeSpan delay, int attempt)
    {
        var reason = Describe(failure);
        var target = _transport.Target;
        var seconds = Math.Round(delay.TotalSeconds, 1);
        bool log;
        int repeats;
        TimeSpan window;
        lock (_gate)
        {
            log = _warnings.ShouldLog(ConnectionGroup, reason, out repeats, out window);
        }

        if (!log)
        {
            Log.StreamFailedAgain(_logger, target, reason, seconds, attempt);
        }
        else if (repeats > 0)
        {
            Log.StreamFailedRepeatedly(_logger, target, reason, seconds, attempt, repeats, Math.Round(window.TotalSeconds));
        }
        else if (sendFailed)
        {
            Log.SendFailed(_logger, target, reason, seconds, attempt);
        }
        else
        {
            Log.StreamFailed(_logger, target, reason, seconds, attempt);
        }

        Log.StreamFailureDetail(_logger, target, attempt, failure);
    }

    /// <summary>A failure in one line: the gRPC status and detail, and the socket error under it when there is one.</summary>
    internal static string Describe(Exception failure)
    {
        if (failure is RpcException rpc)
        {
            var text = string.IsNullOrEmpty(rpc.Status.Detail) ? rpc.StatusCode.ToString() : $"{rpc.StatusCode}: {rpc.Status.Detail}";
            var inner = rpc.Status.DebugException;
            while (inner?.InnerException is not null && inner is not System.Net.Sockets.SocketException)
            {
                inner = inner.InnerException;
            }

            return inner is null || rpc.Status.Detail.Contains(inner.Message, StringComparison.Ordinal) ? text : $"{text} ({inner.Message})";
        }

        return failure.Message;
    }

    private async Task<StreamOutcome> RunStreamAsync(int failedAttempts, CancellationToken cancellationToken)
    {
        using var streamCancellation = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var token = streamCancellation.Token;
        var sawResponse = false;
        Exception? failure = null;
        var sendFailed = false;
        var outgoing = Channel.CreateUnbounded<IMessage>(new UnboundedChannelOptions { SingleReader = true });
        var stream = new StreamState(outgoing.Writer);
        if (failedAttempts == 0)
        {
            Log.StreamStarting(_logger, _transport.Target, Protocol.ToString());
        }
        else
        {
            Log.StreamRetrying(_logger, _transport.Target, Protocol.ToString(), failedAttempts + 1);
        }

        IAsyncDisposable? call = null;
        Task? writer = null;
        try
        {
            if (Protocol == XdsProtocol.Delta)
            {
                var deltaCall = _transport.OpenDelta(token);
                call = deltaCall;
                StartStream(stream);
                writer = WriteAsync(outgoing.Reader, m => deltaCall.SendAsync((DeltaDiscoveryRequest)m, token), stream, streamCancellation);
                while (await deltaCall.ReceiveAsync(token).ConfigureAwait(false) is { } response)
                {
                    OnResponse(ref sawResponse, failedAttempts);
                    HandleDelta(response, stream);
                }
            }
            else
            {
                var sotwCall = _transport.OpenSotw(token);
                call = sotwCall;
                StartStream(stream);
                writer = WriteAsync(outgoing.Reader, m => sotwCall.SendAsync((DiscoveryRequest)m, token), stream, streamCancellation);
                while (await sotwCall.ReceiveAsync(token).ConfigureAwait(false) is { } response)
                {
                    OnResponse(ref sawResponse, failedAttempts);
                    HandleSotw(response, stream);
                }
            }
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            // A failed send cancels the stream; the reader then sees its own cancellation, and the send's error is
            // the attempt's reason (one line per attempt, not one per side).
            if (stream.SendFailure is { } sendFailure && (ex is OperationCanceledException || IsCancelled(ex)))
            {
                failure = sendFailure;
                sendFailed = true;
            }
            else
            {
                failure = ex;
            }
        }
        catch (Exception) when (cancellationToken.IsCancellationRequested)
        {
            // Disposal: gRPC reports the cancelled call as RpcException(Cancelled).
        }
        finally
        {
            lock (_gate)
            {
                if (_stream == stream)
                {
                    _stream = null;
                    foreach (var state in _types.Values)
                    {
                        foreach (var resource in state.Resources.Values)
                        {
                            resource.StopTimer();
                        }
                    }
                }
            }

            outgoing.Writer.TryComplete();
            await streamCancellation.CancelAsync().ConfigureAwait(false);
            if (writer is not null)
            {
                await writer.ConfigureAwait(false);
            }

            if (call is not null)
            {
                await call.DisposeAsync().ConfigureAwait(false);
            }
        }

        if (failure is null && stream.SendFailure is { } lateSendFailure && !cancellationToken.IsCancellationRequested)
        {
            failure = lateSendFailure;
            sendFailed = true;
        }

        return new StreamOutcome(sawResponse, failure, sendFailed);
    }

    private static bool IsCancelled(Exception ex) => ex is RpcException { StatusCode: StatusCode.Cancelled };

    private void OnResponse(ref bool sawResponse, int failedAttempts)
    {
        if (sawResponse)
        {
            return;
        }

        sawResponse = true;
        if (failedAttempts > 0)
        {
            lock (_gate)
            {
                // The outage is over: the next one's first failure is a warning again.
                _warnings.Clear(ConnectionGroup);
            }

            Log.StreamRestored(_logger, _transport.Target, failedAttempts);
        }
    }

    private async Task WriteAsync(ChannelReader<IMessage> reader, Func<IMessage, Task> send, StreamState stream, CancellationTokenSource streamCancellation)
    {
        try
        {
            await foreach (var message in reader.ReadAllAsync(streamCancellation.Token).ConfigureAwait(false))
            {
                await send(message).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception ex) when (streamCancellation.IsCancellationRequested)
        {
            // The stream is being torn down (disposal, or the reader saw it end): gRPC fails the pending
            // write with RpcException(Cancelled). Nothing is lost that a new stream would not resend.
            Log.SendStopped(_logger, _transport.Target, ex.Message);
        }
        catch (Exception ex)
        {
            // Reported once, by the attempt's failure line; the reader ends with the cancellation.
            stream.SendFailure = ex;
            await streamCancellation.CancelAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Makes <paramref name="stream"/> current and re-sends every subscription on it.</summary>
    private void StartStream(StreamState stream)
    {
        lock (_gate)
        {
            _stream = stream;
            foreach (var type in XdsResourceType.All)
            {
                var state = _types[type];
                state.Nonce = string.Empty;
                state.Sotw.Reset();
                state.ClearPending();
                if (state.Resources.Count == 0)
                {
                    continue;
                }

                if (Protocol == XdsProtocol.Delta)
                {
                    var request = new DeltaDiscoveryRequest { TypeUrl = type.TypeUrl };
                    foreach (var (name, resource) in state.Resources)
                    {
                        request.ResourceNamesSubscribe.Add(name);
                        if (resource.Version is { } version && resource.Value is not null)
                        {
                            request.InitialResourceVersions[name] = version;
                        }
                    }

                    EnqueueLocked(request);
                }
                else
                {
                    SendSotwLocked(state, errorDetail: null);
                }

                StartTimersLocked(state);
            }
        }
    }

    /// <summary>Starts the does-not-exist timer of every resource of the type that has no value yet.</summary>
    private void StartTimersLocked(TypeState state)
    {
        if (_stream is not { } stream)
        {
            return;
        }

        foreach (var (name, resource) in state.Resources)
        {
            if (resource.Value is not null || resource.DoesNotExist || resource.Timer is not null)
            {
                continue;
            }

            var type = state.Type;
            var key = name;
            resource.Timer = _timeProvider.CreateTimer(
                _ => OnResourceTimeout(type, key, resource, stream),
                null,
                _resourceTimeout,
                Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>
    /// How long the client waits for another response before taking a never-received name left out of a response
    /// that may have crossed its subscription (<see cref="SotwSubscriptionTracker.IsUnconfirmed"/>) as not existing.
    /// </summary>
    internal static readonly TimeSpan AbsenceConfirmationDelay = TimeSpan.FromMilliseconds(300);

    private void StartAbsenceTimerLocked(XdsResourceType type, string name, ResourceState resource, StreamState stream)
    {
        // Replaces the does-not-exist timer: the name is decided sooner, by the next response or this timer.
        resource.StopTimer();
        resource.Timer = _timeProvider.CreateTimer(
            _ => OnResourceTimeout(type, name, resource, stream, AbsenceConfirmationDelay),
            null,
            AbsenceConfirmationDelay,
            Timeout.InfiniteTimeSpan);
    }

    private void OnResourceTimeout(XdsResourceType type, string name, ResourceState resource, StreamState stream) => OnResourceTimeout(type, name, resource, stream, null);

    private void OnResourceTimeout(XdsResourceType type, string name, ResourceState resource, StreamState stream, TimeSpan? absenceDelay)
    {
        var notifications = new List<Notification>();
        lock (_gate)
        {
            if (_stream != stream || resource.Timer is null || resource.Value is not null || resource.DoesNotExist
                || !_types[type].Resources.TryGetValue(name, out var current) || current != resource)
            {
                return;
            }

            resource.StopTimer();
            resource.DoesNotExist = true;
            if (absenceDelay is { } delay)
            {
                Log.AbsenceConfirmed(_logger, type.ShortName, name, delay.TotalMilliseconds);
            }
            else
            {
                Log.ResourceTimedOut(_logger, type.ShortName, name, _resourceTimeout.TotalSeconds);
            }

            Notify(notifications, resource, n => n.Watcher.OnResourceDoesNotExist(type, name));
        }

        Dispatch(notifications);
    }

    private DiscoveryRequest SotwRequestLocked(TypeState state, Google.Rpc.Status? errorDetail)
    {
        var request = new DiscoveryRequest
        {
            TypeUrl = state.Type.TypeUrl,
            VersionInfo = state.Version,
            ResponseNonce = state.Nonce,
        };
        request.ResourceNames.AddRange(state.Resources.Keys.Order(StringComparer.Ordinal));
        if (errorDetail is not null)
        {
            request.ErrorDetail = errorDetail;
        }

        return request;
    }

    /// <summary>Sends a State of the World request of the type with every watched name, and records it for <see cref="TypeState.Sotw"/>.</summary>
    private void SendSotwLocked(TypeState state, Google.Rpc.Status? errorDetail)
    {
        if (_stream is null)
        {
            return;
        }

        var request = SotwRequestLocked(state, errorDetail);
        EnqueueLocked(request);
        state.Sotw.OnRequestSent(request.ResponseNonce, request.ResourceNames);
    }

    private void EnqueueLocked(IMessage request)
    {
        if (_stream is not { } stream)
        {
            return;
        }

        if (!stream.NodeSent)
        {
            stream.NodeSent = true;
            switch (request)
            {
                case DiscoveryRequest sotw:
                    sotw.Node = _node;
                    break;
                case DeltaDiscoveryRequest delta:
                    delta.Node = _node;
                    break;
            }
        }

        stream.Writer.TryWrite(request);
    }

    /// <summary>Sends pending subscription changes, one request per type, unless deferred or disconnected.</summary>
    private void FlushLocked()
    {
        if (_deferDepth > 0)
        {
            return;
        }

        foreach (var state in _types.Values)
        {
            foreach (var name in state.PendingRemoval)
            {
                if (state.Resources.TryGetValue(name, out var resource) && resource.Watchers.Count == 0)
                {
                    RemoveLocked(state, name);
                }
            }

            state.PendingRemoval.Clear();
        }

        if (_stream is null)
        {
            return;
        }

        foreach (var type in XdsResourceType.All)
        {
            var state = _types[type];
            if (!state.SubscriptionDirty)
            {
                continue;
            }

            if (Protocol == XdsProtocol.Delta)
            {
                var request = new DeltaDiscoveryRequest { TypeUrl = type.TypeUrl };
                request.ResourceNamesSubscribe.AddRange(state.PendingSubscribe.Order(StringComparer.Ordinal));
                request.ResourceNamesUnsubscribe.AddRange(state.PendingUnsubscribe.Order(StringComparer.Ordinal));
                if (request.ResourceNamesSubscribe.Count > 0 || request.ResourceNamesUnsubscribe.Count > 0)
                {
                    EnqueueLocked(request);
                }
            }
            else if (!state.Sotw.IsLastSent(state.Resources.Keys))
            {
                // Names that came and went within one batch leave the request as it was: nothing to send.
                SendSotwLocked(state, errorDetail: null);
            }

            state.ClearPending();
            StartTimersLocked(state);
        }
    }

    private void HandleSotw(DiscoveryResponse response, StreamState stream)
    {
        var notifications = new List<Notification>();
        lock (_gate)
        {
            if (_stream != stream)
            {
                return;
            }

            var type = XdsResourceType.FromTypeUrl(response.TypeUrl);
            if (type is null)
            {
                LogUnknownTypeLocked(response.TypeUrl);
                var nack = new DiscoveryRequest
                {
                    TypeUrl = response.TypeUrl,
                    ResponseNonce = response.Nonce,
                    ErrorDetail = new Google.Rpc.Status { Code = InvalidArgument, Message = $"unsupported resource type '{response.TypeUrl}'" },
                };
                EnqueueLocked(nack);
                return;
            }

            var state = _types[type];
            state.Nonce = response.Nonce;
            state.Sotw.OnResponse(response.Nonce, response.VersionInfo);
            var errors = new List<string>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var allNamed = true;
            for (var i = 0; i < response.Resources.Count; i++)
            {
                var any = response.Resources[i];
                string? name = null;
                try
                {
                    var (message, wrapperName) = Unpack(any, type);
                    name = type.NameOf(message);
                    if (string.IsNullOrEmpty(name))
                    {
                        name = wrapperName;
                    }

                    if (string.IsNullOrEmpty(name))
                    {
                        throw new XdsValidationException("has no name");
                    }

                    if (!seen.Add(name))
                    {
                        throw new XdsValidationException("appears more than once in the response");
                    }

                    if (!state.Resources.TryGetValue(name, out var resource))
                    {
                        continue;
                    }

                    var value = type.Validate(message);
                    Accept(type, name, resource, value, response.VersionInfo, notifications);
                }
                catch (Exception ex) when (ex is XdsValidationException or InvalidProtocolBufferException)
                {
                    if (name is null)
                    {
                        allNamed = false;
                    }

                    var reason = $"{type.ShortName} resource '{name ?? $"#{i}"}': {ex.Message}";
                    errors.Add(reason);
                    Log.ResourceRejected(_logger, type.ShortName, name ?? $"#{i}", ex.Message);
                    if (name is not null && state.Resources.TryGetValue(name, out var rejected))
                    {
                        Notify(notifications, rejected, n => n.Watcher.OnResourceError(type, name, reason));
                    }
                }
            }

            if (type.AllResourcesRequiredInSotw && allNamed)
            {
                foreach (var (name, resource) in state.Resources)
                {
                    if (seen.Contains(name))
                    {
                        continue;
                    }

                    if (resource.Value is null && !state.Sotw.ServerHasSeen(name))
                    {
                        // This response answers a request sent before the name was subscribed (the server
                        // reads requests in order): its absence says nothing yet. A later response, or the
                        // does-not-exist timer, decides.
                        Log.AbsenceNotConclusive(_logger, type.ShortName, name, response.Nonce);
                        continue;
                    }

                    if (resource.Value is null && state.Sotw.IsUnconfirmed(name))
                    {
                        // This response may be a push that crossed the request adding the name (a new version,
                        // e.g. removals after a route change): a server that ignored that request as stale answers
                        // the ACK of this push with the name; a server that had it says nothing more. The next
                        // response decides, or its silence for AbsenceConfirmationDelay.
                        Log.AbsenceUnconfirmed(_logger, type.ShortName, name, response.Nonce, AbsenceConfirmationDelay.TotalMilliseconds);
                        StartAbsenceTimerLocked(type, name, resource, stream);
                        continue;
                    }

                    // gRFC A53: the feature protects resources already received; a name never received
                    // that the server leaves out although it asked for it does not exist, and its watchers
                    // hear so now.
                    if (_ignoreResourceDeletion && resource.Value is not null)
                    {
                        Log.DeletionIgnored(_logger, type.ShortName, name);
                        continue;
                    }

                    Delete(type, name, resource, notifications);
                }
            }

            Google.Rpc.Status? errorDetail = null;
            if (errors.Count > 0)
            {
                errorDetail = new Google.Rpc.Status { Code = InvalidArgument, Message = string.Join("\n", errors) };
                LogNackLocked(type, response.VersionInfo, response.Nonce, state.Version, errors.Count, errorDetail.Message);
            }
            else
            {
                state.Version = response.VersionInfo;
                LogAckLocked(type, response.VersionInfo, response.Nonce);
            }

            SendSotwLocked(state, errorDetail);
            state.ClearPending();
        }

        Dispatch(notifications);
    }

    private void HandleDelta(DeltaDiscoveryResponse response, StreamState stream)
    {
        var notifications = new List<Notification>();
        lock (_gate)
        {
            if (_stream != stream)
            {
                return;
            }

            var type = XdsResourceType.FromTypeUrl(response.TypeUrl);
            var ack = new DeltaDiscoveryRequest { TypeUrl = response.TypeUrl, ResponseNonce = response.Nonce };
            if (type is null)
            {
                LogUnknownTypeLocked(response.TypeUrl);
                ack.ErrorDetail = new Google.Rpc.Status { Code = InvalidArgument, Message = $"unsupported resource type '{response.TypeUrl}'" };
                EnqueueLocked(ack);
                return;
            }

            var state = _types[type];
            var errors = new List<string>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            for (var i = 0; i < response.Resources.Count; i++)
            {
                var wrapper = response.Resources[i];
                var name = string.IsNullOrEmpty(wrapper.Name) ? wrapper.ResourceName?.Name : wrapper.Name;
                try
                {
                    if (string.IsNullOrEmpty(name))
                    {
                        throw new XdsValidationException("has no name");
                    }

                    if (!seen.Add(name))
                    {
                        throw new XdsValidationException("appears more than once in the response");
                    }

                    if (!state.Resources.TryGetValue(name, out var resource))
                    {
                        continue;
                    }

                    if (wrapper.Resource_ is null)
                    {
                        throw new XdsValidationException("carries no resource");
                    }

                    var (message, _) = Unpack(wrapper.Resource_, type);
                    var innerName = type.NameOf(message);
                    if (!string.IsNullOrEmpty(innerName) && innerName != name)
                    {
                        throw new XdsValidationException($"is named '{innerName}' inside");
                    }

                    var value = type.Validate(message);
                    Accept(type, name, resource, value, wrapper.Version, notifications);
                }
                catch (Exception ex) when (ex is XdsValidationException or InvalidProtocolBufferException)
                {
                    var reason = $"{type.ShortName} resource '{name ?? $"#{i}"}': {ex.Message}";
                    errors.Add(reason);
                    Log.ResourceRejected(_logger, type.ShortName, name ?? $"#{i}", ex.Message);
                    if (name is not null && state.Resources.TryGetValue(name, out var rejected))
                    {
                        Notify(notifications, rejected, n => n.Watcher.OnResourceError(type, name, reason));
                    }
                }
            }

            foreach (var name in response.RemovedResources.Concat(response.RemovedResourceNames.Select(static r => r.Name)))
            {
                if (!state.Resources.TryGetValue(name, out var resource))
                {
                    continue;
                }

                if (_ignoreResourceDeletion && type.AllResourcesRequiredInSotw && resource.Value is not null)
                {
                    Log.DeletionIgnored(_logger, type.ShortName, name);
                    continue;
                }

                Delete(type, name, resource, notifications);
            }

            if (errors.Count > 0)
            {
                ack.ErrorDetail = new Google.Rpc.Status { Code = InvalidArgument, Message = string.Join("\n", errors) };
                LogNackLocked(type, response.SystemVersionInfo, response.Nonce, string.Empty, errors.Count, ack.ErrorDetail.Message);
            }
            else
            {
                LogAckLocked(type, response.SystemVersionInfo, response.Nonce);
            }

            EnqueueLocked(ack);
        }

        Dispatch(notifications);
    }

    /// <summary>
    /// A NACK is a warning with its error text the first time, then once per interval with the count of identical
    /// rejections (same type and text; versions and nonces differ) held back; each is still sent to the server.
    /// </summary>
    private void LogNackLocked(XdsResourceType type, string version, string nonce, string accepted, int count, string error)
    {
        if (!_warnings.ShouldLog(type.ShortName, error, out var repeats, out var window))
        {
            Log.NackedAgain(_logger, type.ShortName, version, nonce, count);
        }
        else if (repeats > 0)
        {
            Log.NackedRepeatedly(_logger, type.ShortName, version, nonce, accepted, count, error, repeats, Math.Round(window.TotalSeconds));
        }
        else
        {
            Log.Nacked(_logger, type.ShortName, version, nonce, accepted, count, error);
        }
    }

    private void LogAckLocked(XdsResourceType type, string version, string nonce)
    {
        Log.Acked(_logger, type.ShortName, version, nonce);
        if (_warnings.Clear(type.ShortName) is > 0 and var held)
        {
            Log.RejectionsEnded(_logger, type.ShortName, version, held);
        }
    }

    private void LogUnknownTypeLocked(string typeUrl)
    {
        if (!_warnings.ShouldLog("unknown-type", typeUrl, out var repeats, out var window))
        {
            Log.UnknownTypeAgain(_logger, typeUrl);
        }
        else if (repeats > 0)
        {
            Log.UnknownTypeRepeatedly(_logger, typeUrl, repeats, Math.Round(window.TotalSeconds));
        }
        else
        {
            Log.UnknownType(_logger, typeUrl);
        }
    }

    private static (IMessage Message, string? WrapperName) Unpack(Any any, XdsResourceType type)
    {
        string? wrapperName = null;
        if (any.TypeUrl == XdsResourceType.ResourceWrapperTypeUrl)
        {
            var wrapper = XdsResourceType.Parse(Resource.Parser, any.Value);
            wrapperName = wrapper.Name;
            any = wrapper.Resource_ ?? throw new XdsValidationException("Resource wrapper carries no resource");
        }

        if (any.TypeUrl != type.TypeUrl)
        {
            throw new XdsValidationException($"has type '{any.TypeUrl}' in a response for '{type.TypeUrl}'");
        }

        return (type.Decode(any.Value), wrapperName);
    }

    private void Accept(XdsResourceType type, string name, ResourceState resource, object value, string version, List<Notification> notifications)
    {
        resource.StopTimer();
        resource.Version = version;
        resource.DoesNotExist = false;
        if (resource.Value is not null && resource.Value.Equals(value))
        {
            return;
        }

        resource.Value = value;
        Log.ResourceAccepted(_logger, type.ShortName, name, version);
        Notify(notifications, resource, n => n.Watcher.OnResourceChanged(type, name, value));
    }

    private void Delete(XdsResourceType type, string name, ResourceState resource, List<Notification> notifications)
    {
        resource.StopTimer();
        if (resource.DoesNotExist)
        {
            return;
        }

        resource.Value = null;
        resource.Version = null;
        resource.DoesNotExist = true;
        Log.ResourceDeleted(_logger, type.ShortName, name);
        Notify(notifications, resource, n => n.Watcher.OnResourceDoesNotExist(type, name));
    }

    private static void Notify(List<Notification> notifications, ResourceState resource, Action<Notification> action)
    {
        foreach (var watcher in resource.Watchers)
        {
            notifications.Add(new Notification(watcher, action));
        }
    }

    private void Dispatch(List<Notification> notifications)
    {
        using (DeferRequests())
        {
            foreach (var notification in notifications)
            {
                try
                {
                    notification.Action(notification);
                }
                catch (Exception ex)
                {
                    Log.WatcherFailed(_logger, ex.Message, ex);
                }
            }

            try
            {
                UpdateBatchCompleted?.Invoke();
            }
            catch (Exception ex)
            {
                Log.WatcherFailed(_logger, ex.Message, ex);
            }
        }
    }

    private static Node BuildNode(XdsNodeConfig config)
    {
        var node = new Node
        {
            Id = config.Id,
            Cluster = config.Cluster,
            UserAgentName = "Mesh.Sdk",
            UserAgentVersion = typeof(XdsClient).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0",
            Metadata = JsonToProtobuf.ToStruct(config.Metadata),
        };
        node.ClientFeatures.Add("envoy.lb.does_not_support_overprovisioning");
        node.ClientFeatures.Add("xds.config.resource-in-sotw");
        if (config.Locality is { } locality)
        {
            node.Locality = new Locality { Region = locality.Region, Zone = locality.Zone, SubZone = locality.SubZone };
        }

        return node;
    }

    internal readonly struct DeferScope(XdsClient client) : IDisposable
    {
        public void Dispose() => client.EndDefer();
    }

    private sealed record Notification(IXdsResourceWatcher Watcher, Action<Notification> Action);

    private readonly record struct StreamOutcome(bool SawResponse, Exception? Failure, bool SendFailed);

    private sealed class StreamState(ChannelWriter<IMessage> writer)
    {
        public ChannelWriter<IMessage> Writer { get; } = writer;

        /// <summary>Why a send failed while the stream was up; the attempt's failure when it is the cause.</summary>
        public Exception? SendFailure { get; set; }

        public bool NodeSent { get; set; }
    }

    private sealed class ResourceState
    {
        public HashSet<IXdsResourceWatcher> Watchers { get; } = [];

        public object? Value { get; set; }

        public string? Version { get; set; }

        public bool DoesNotExist { get; set; }

        /// <summary>Reports the resource as not existing when the server stays silent about it.</summary>
        public ITimer? Timer { get; set; }

        public void StopTimer()
        {
            Timer?.Dispose();
            Timer = null;
        }
    }

    private sealed class TypeState(XdsResourceType type)
    {
        public XdsResourceType Type { get; } = type;

        public Dictionary<string, ResourceState> Resources { get; } = new(StringComparer.Ordinal);

        /// <summary>State of the World: the version last accepted in full.</summary>
        public string Version { get; set; } = string.Empty;

        /// <summary>State of the World: the nonce of the last response on the current stream.</summary>
        public string Nonce { get; set; } = string.Empty;

        /// <summary>State of the World: which names the server has seen on the current stream.</summary>
        public SotwSubscriptionTracker Sotw { get; } = new();

        public bool SubscriptionDirty { get; private set; }

        public HashSet<string> PendingSubscribe { get; } = new(StringComparer.Ordinal);

        public HashSet<string> PendingUnsubscribe { get; } = new(StringComparer.Ordinal);

        /// <summary>Names whose last watcher left while requests were deferred.</summary>
        public HashSet<string> PendingRemoval { get; } = new(StringComparer.Ordinal);

        public void MarkSubscribed(string name)
        {
            SubscriptionDirty = true;
            if (!PendingUnsubscribe.Remove(name))
            {
                PendingSubscribe.Add(name);
            }
        }

        public void MarkUnsubscribed(string name)
        {
            SubscriptionDirty = true;
            if (!PendingSubscribe.Remove(name))
            {
                PendingUnsubscribe.Add(name);
            }
        }

        public void ClearPending()
        {
            SubscriptionDirty = false;
            PendingSubscribe.Clear();
            PendingUnsubscribe.Clear();
        }
    }

    private sealed class WatchHandle(XdsClient client, XdsResourceType type, string name, IXdsResourceWatcher watcher) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                client.Unwatch(type, name, watcher);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(100, LogLevel.Information, "Opening {Protocol} ADS stream to '{Target}'.")]
        public static partial void StreamStarting(ILogger logger, string target, string protocol);

        [LoggerMessage(101, LogLevel.Information, "ADS stream to '{Target}' was closed by the server; reopening in {DelaySeconds} s. The last accepted configuration stays in force.")]
        public static partial void StreamEnded(ILogger logger, string target, double delaySeconds);

        [LoggerMessage(102, LogLevel.Warning, "ADS stream to '{Target}' failed: {Reason}; retrying in {DelaySeconds} s (attempt {Attempt}). The last accepted configuration stays in force.")]
        public static partial void StreamFailed(ILogger logger, string target, string reason, double delaySeconds, int attempt);

        [LoggerMessage(104, LogLevel.Warning, "Sending on the ADS stream to '{Target}' failed: {Reason}; retrying in {DelaySeconds} s (attempt {Attempt}).")]
        public static partial void SendFailed(ILogger logger, string target, string reason, double delaySeconds, int attempt);

        [LoggerMessage(118, LogLevel.Warning, "ADS stream to '{Target}' failed: {Reason}; retrying in {DelaySeconds} s (attempt {Attempt}). The same failure happened {Repeats} more times in the last {WindowSeconds} s.")]
        public static partial void StreamFailedRepeatedly(ILogger logger, string target, string reason, double delaySeconds, int attempt, int repeats, double windowSeconds);

        [LoggerMessage(119, LogLevel.Debug, "ADS stream to '{Target}' failed again: {Reason}; retrying in {DelaySeconds} s (attempt {Attempt}).")]
        public static partial void StreamFailedAgain(ILogger logger, string target, string reason, double delaySeconds, int attempt);

        [LoggerMessage(120, LogLevel.Debug, "ADS stream attempt {Attempt} to '{Target}' failed with this exception.")]
        public static partial void StreamFailureDetail(ILogger logger, string target, int attempt, Exception exception);

        [LoggerMessage(121, LogLevel.Information, "ADS stream to '{Target}' is back after {FailedAttempts} failed attempts.")]
        public static partial void StreamRestored(ILogger logger, string target, int failedAttempts);

        [LoggerMessage(122, LogLevel.Debug, "Opening {Protocol} ADS stream to '{Target}' (attempt {Attempt}).")]
        public static partial void StreamRetrying(ILogger logger, string target, string protocol, int attempt);

        [LoggerMessage(105, LogLevel.Debug, "Subscribed to {Type} resource '{Name}'.")]
        public static partial void Subscribed(ILogger logger, string type, string name);

        [LoggerMessage(106, LogLevel.Debug, "Unsubscribed from {Type} resource '{Name}'.")]
        public static partial void Unsubscribed(ILogger logger, string type, string name);

        [LoggerMessage(107, LogLevel.Debug, "Rejected {Type} resource '{Name}': {Reason}. The last accepted version stays in force.")]
        public static partial void ResourceRejected(ILogger logger, string type, string name, string reason);

        [LoggerMessage(108, LogLevel.Debug, "Accepted {Type} resource '{Name}' version '{Version}'.")]
        public static partial void ResourceAccepted(ILogger logger, string type, string name, string version);

        [LoggerMessage(109, LogLevel.Information, "{Type} resource '{Name}' does not exist.")]
        public static partial void ResourceDeleted(ILogger logger, string type, string name);

        [LoggerMessage(110, LogLevel.Warning, "{Type} resource '{Name}' was removed by the server; kept because of server feature 'ignore_resource_deletion'.")]
        public static partial void DeletionIgnored(ILogger logger, string type, string name);

        [LoggerMessage(111, LogLevel.Debug, "ACK {Type} version '{Version}' nonce '{Nonce}'.")]
        public static partial void Acked(ILogger logger, string type, string version, string nonce);

        [LoggerMessage(112, LogLevel.Warning, "NACK {Type} version '{Version}' nonce '{Nonce}' ({Count} invalid resources); staying on version '{Accepted}': {Error}")]
        public static partial void Nacked(ILogger logger, string type, string version, string nonce, string accepted, int count, string error);

        [LoggerMessage(123, LogLevel.Warning, "NACK {Type} version '{Version}' nonce '{Nonce}' ({Count} invalid resources); staying on version '{Accepted}': {Error} The same rejection was sent {Repeats} more times in the last {WindowSeconds} s.")]
        public static partial void NackedRepeatedly(ILogger logger, string type, string version, string nonce, string accepted, int count, string error, int repeats, double windowSeconds);

        [LoggerMessage(124, LogLevel.Debug, "NACK {Type} version '{Version}' nonce '{Nonce}' repeats an earlier rejection ({Count} invalid resources).")]
        public static partial void NackedAgain(ILogger logger, string type, string version, string nonce, int count);

        [LoggerMessage(125, LogLevel.Information, "{Type} version '{Version}' accepted; the earlier rejection was repeated {Repeats} more times since it was last logged.")]
        public static partial void RejectionsEnded(ILogger logger, string type, string version, int repeats);

        [LoggerMessage(113, LogLevel.Warning, "Ignoring response of unknown resource type '{TypeUrl}'.")]
        public static partial void UnknownType(ILogger logger, string typeUrl);

        [LoggerMessage(126, LogLevel.Warning, "Ignoring response of unknown resource type '{TypeUrl}' (and {Repeats} more in the last {WindowSeconds} s).")]
        public static partial void UnknownTypeRepeatedly(ILogger logger, string typeUrl, int repeats, double windowSeconds);

        [LoggerMessage(127, LogLevel.Debug, "Ignoring response of unknown resource type '{TypeUrl}' again.")]
        public static partial void UnknownTypeAgain(ILogger logger, string typeUrl);

        [LoggerMessage(115, LogLevel.Warning, "{Type} resource '{Name}' was not received within {Seconds} s of subscribing; treating it as not existing.")]
        public static partial void ResourceTimedOut(ILogger logger, string type, string name, double seconds);

        [LoggerMessage(114, LogLevel.Error, "An xDS watcher failed: {Reason}")]
        public static partial void WatcherFailed(ILogger logger, string reason, Exception exception);

        [LoggerMessage(116, LogLevel.Debug, "Sending on the ADS stream to '{Target}' stopped with the stream: {Reason}")]
        public static partial void SendStopped(ILogger logger, string target, string reason);

        [LoggerMessage(117, LogLevel.Debug, "{Type} resource '{Name}' is not in response nonce '{Nonce}', which answers a request sent before it was subscribed; waiting for the next response.")]
        public static partial void AbsenceNotConclusive(ILogger logger, string type, string name, string nonce);

        [LoggerMessage(128, LogLevel.Debug, "{Type} resource '{Name}' is not in response nonce '{Nonce}', a new version that may have crossed the request subscribing it; the next response decides, or {Milliseconds} ms without one.")]
        public static partial void AbsenceUnconfirmed(ILogger logger, string type, string name, string nonce, double milliseconds);

        [LoggerMessage(129, LogLevel.Information, "{Type} resource '{Name}' does not exist: no response brought it within {Milliseconds} ms of one leaving it out.")]
        public static partial void AbsenceConfirmed(ILogger logger, string type, string name, double milliseconds);
    }
}

using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using Envoy.Config.Core.V3;
using Grpc.Core;
using Grpc.Net.Client.Balancer;
using Mesh.Sdk.Http;
using Mesh.Sdk.LoadBalancing;
using Mesh.Sdk.Resilience;
using Mesh.Sdk.Routing;
using Mesh.Sdk.Telemetry;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.Grpc.Internal;

/// <summary>
/// The per-call policies of the matched route that a picker cannot apply, in the channel's HTTP handler chain
/// (grpc-dotnet's balancer handler runs first, so the call is already routed and its <see cref="MeshGrpcCall"/> is in
/// the request options): the fault filter's delay (then its abort), the route timeout and
/// <c>max_stream_duration</c> as a deadline, and the retry policy on gRPC status codes. Each attempt's outcome feeds
/// the cluster's outlier detection. Requests of other channels pass through untouched.
/// </summary>
/// <remarks>
/// Like Envoy, retries and outlier detection read the <c>grpc-status</c> of trailers-only responses (a call failed
/// before sending a message); a status that arrives in trailers after messages is the call's own business. Retries
/// re-send the call, on another ready host when the route has the <c>previous_hosts</c> predicate (else on the same
/// subchannel), replaying its messages from a copy kept while they fit the buffer limit (<see cref="ReplayableContent"/>):
/// a client stream keeps streaming across attempts, and a call past the limit is committed (gRFC A6).
/// </remarks>
internal sealed partial class MeshGrpcHandler : DelegatingHandler
{
    private const string GrpcTimeoutHeader = "grpc-timeout";

    // grpc-dotnet's BalancerHttpHandler request options (internal names, stable since 2.37).
    private static readonly HttpRequestOptionsKey<Subchannel> SubchannelOption = new("Subchannel");
    private static readonly HttpRequestOptionsKey<BalancerAddress> CurrentAddressOption = new("CurrentAddress");

    private readonly MeshRuntime _runtime;
    private readonly MeshTransports? _transports;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly MeshMetrics? _metrics;
    private readonly Lock _hookGate = new();
    private volatile bool _hookTried;
    private volatile bool _hooked;

    /// <summary>Creates the handler.</summary>
    /// <param name="runtime">The mesh: clusters for mirror policies, the time provider.</param>
    /// <param name="transports">The per-cluster transports shadow copies of mirrored calls go through; without them calls are not mirrored.</param>
    /// <param name="logger">The logger.</param>
    /// <param name="metrics">Istio's standard metrics, reported for every call as the caller; <see langword="null"/> when off.</param>
    public MeshGrpcHandler(MeshRuntime runtime, MeshTransports? transports, ILogger<MeshGrpcHandler> logger, MeshMetrics? metrics = null)
    {
        _metrics = metrics;
        _runtime = runtime;
        _transports = transports;
        _time = runtime.TimeProvider;
        _logger = logger;
    }

    /// <summary>Whether <paramref name="handler"/> is, or wraps, a <see cref="MeshGrpcHandler"/>.</summary>
    public static bool IsInChain(HttpMessageHandler? handler)
    {
        while (handler is DelegatingHandler delegating)
        {
            if (delegating is MeshGrpcHandler)
            {
                return true;
            }

            handler = delegating.InnerHandler;
        }

        return false;
    }

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (!_hookTried)
        {
            HookMutualTls();
        }

        if (!request.Options.TryGetValue(MeshGrpcCall.OptionKey, out var call))
        {
            return base.SendAsync(request, cancellationToken);
        }

        call.HandledByMeshHandler = true;
        return SendMeshedAsync(request, call, cancellationToken);
    }

    /// <summary>
    /// Puts Istio mutual TLS into the channel's connections: grpc-dotnet's balancer owns the inner
    /// <see cref="SocketsHttpHandler"/>'s <c>ConnectCallback</c> (it hands over the subchannel's socket), set when the
    /// channel was built; before the handler's first request this wraps that callback so a connection made for a call
    /// whose endpoint requires mesh mTLS runs the handshake over the subchannel's socket (ALPN <c>h2</c>) and
    /// SocketsHttpHandler speaks HTTP/2 inside it. Done once, on the first request through this handler.
    /// </summary>
    private void HookMutualTls()
    {
        lock (_hookGate)
        {
            if (_hookTried)
            {
                return;
            }

            var inner = InnerHandler;
            while (inner is DelegatingHandler delegating)
            {
                inner = delegating.InnerHandler;
            }

            if (inner is SocketsHttpHandler sockets)
            {
                if (sockets.Properties.TryGetValue(MutualTlsHookKey, out var hooked) && hooked is true)
                {
                    _hooked = true;
                }
                else if (sockets.ConnectCallback is { } original)
                {
                    try
                    {
                        var mutualTls = _transports?.MutualTls;
                        sockets.ConnectCallback = async (context, cancellationToken) =>
                        {
                            var stream = await original(context, cancellationToken).ConfigureAwait(false);
                            if (!context.InitialRequestMessage.Options.TryGetValue(MeshGrpcCall.OptionKey, out var call)
                                || call.CurrentEndpoint.Transport is not { Kind: UpstreamTransport.IstioMutual } transport)
                            {
                                return stream;
                            }

                            if (mutualTls is null)
                            {
                                await stream.DisposeAsync().ConfigureAwait(false);
                                throw MeshTransports.SecurityDisabled(call.Cluster.Name, call.CurrentEndpoint.Key);
                            }

                            var secured = await mutualTls.AuthenticateAsync(stream, call.Cluster.Name, call.CurrentEndpoint.Key, transport, http2: true, cancellationToken).ConfigureAwait(false);

                            // The identity the server proved: the caller's destination_principal in Istio's metrics.
                            call.CurrentEndpoint.State.PeerPrincipal = WorkloadLabels.PrincipalOf(secured);
                            return secured;
                        };
                        sockets.Properties[MutualTlsHookKey] = true;
                        _hooked = true;
                    }
                    catch (InvalidOperationException)
                    {
                        // The handler had already sent requests (shared with another channel): it cannot be changed now.
                    }
                }
            }

            _hookTried = true;
        }
    }

    private const string MutualTlsHookKey = "Mesh.Sdk.MutualTls";

    private async Task<HttpResponseMessage> SendMeshedAsync(HttpRequestMessage request, MeshGrpcCall call, CancellationToken cancellationToken)
    {
        if (call.CurrentEndpoint.Transport.Kind == UpstreamTransport.IstioMutual)
        {
            if (!_hooked)
            {
                throw new HttpRequestException(HttpRequestError.ConnectionError,
                    $"Cluster '{call.Cluster.Name}' requires Istio mutual TLS, but this channel's HTTP handler cannot originate it: "
                    + "give the xds:/// channel its own SocketsHttpHandler (GrpcChannelOptions.HttpHandler unset, or one no other channel has used).");
            }

            _transports?.ReportIfMutualWithoutCertificates(call.Cluster.Name, call.CurrentEndpoint);
        }

        var report = _metrics is { } metrics ? GrpcCallMetrics.Start(metrics, call, request, _time) : null;
        HttpResponseMessage response;
        try
        {
            response = await SendRoutedAsync(request, call, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (report is not null && report.Failed(ex))
        {
            throw;
        }

        // Response header operations of every level, on the response headers only: trailers (the call's status and
        // trailing metadata) are left as the server sent them.
        call.Target.ResponseHeaders.ApplyTo(response);
        if (response.Content is { } content && StatusOf(response, out _) is null)
        {
            // Messages follow: the call lasts until the caller has read the stream to its end or disposed it, not
            // until these headers (where grpc-dotnet completes the call tracker).
            call.HoldUntilStreamEnds();
            response.Content = new CallEndContent(content, call, report);
            if (report is not null)
            {
                report.Response = response;
            }
        }
        else if (report is not null)
        {
            report.Response = response;
            report.End(complete: true);
        }

        return response;
    }

    private async Task<HttpResponseMessage> SendRoutedAsync(HttpRequestMessage request, MeshGrpcCall call, CancellationToken cancellationToken)
    {
        var route = call.Route;
        var timeout = EffectiveTimeout(route, request);
        var policy = route.RetryPolicy;
        if (EnvoyRequestHeaders.MayHaveAny(request))
        {
            // Retry and timeout overrides in the call's metadata, consumed as Envoy's router does (see docs/http.md).
            var overridden = timeout ?? Timeout.InfiniteTimeSpan;
            var ignoredStatus = 504;
            EnvoyRequestHeaders.Consume(request, ref policy, ref overridden, ref ignoredStatus);
            timeout = overridden == Timeout.InfiniteTimeSpan ? null : overridden;
        }

        if (route.MaxStreamDuration is { } maxStream && IsFinite(maxStream))
        {
            // The server enforces the bound for the whole stream, past the response headers this handler sees.
            LowerGrpcTimeout(request, maxStream);
        }

        using var timeoutSource = timeout is { } t ? new CancellationTokenSource(t, _time) : null;
        using var linked = timeoutSource is null ? null : CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeoutSource.Token);
        var token = linked?.Token ?? cancellationToken;
        try
        {
            if (call.Fault.Delay is { } delay)
            {
                Log.FaultDelay(_logger, route.Name, delay.TotalMilliseconds);
                await Task.Delay(delay, _time, token).ConfigureAwait(false);
            }

            if (call.Fault.IsAbort)
            {
                call.ResponseFlags = call.Fault.Delay is null ? "FI" : "DI,FI";
                return TrailersOnly(request, MeshGrpcPicker.AbortStatus(call.Fault, route));
            }

            var upstreamAuthority = ApplyRequestActions(request, call);
            var original = request.Content;
            ReplayableContent? body = null;
            if (original is not null && (policy is { NumRetries: > 0 } || route.MirrorPolicies.Length > 0))
            {
                // gRFC A6 / Envoy: the messages stream to the first attempt and a copy is kept for retries and mirrors up
                // to the buffer limit; past it (or once response headers arrive) the call is committed.
                body = new ReplayableContent(original, _runtime.Options.RequestBufferLimitBytes, cancellationToken, _logger, route.Name);
                request.Content = body;
            }

            try
            {
                if (route.MirrorPolicies.Length > 0 && body is not null)
                {
                    StartMirrors(request, call, body, original!, upstreamAuthority);
                }

                return await SendWithRetriesAsync(request, call, policy, body, token).ConfigureAwait(false);
            }
            finally
            {
                if (body is not null)
                {
                    body.Commit();
                    request.Content = original;
                }
            }
        }
        catch (OperationCanceledException) when (timeoutSource is { IsCancellationRequested: true } && !cancellationToken.IsCancellationRequested)
        {
            call.Cluster.ReportLocalOrigin(call.CurrentEndpoint, LocalOriginOutcome.Timeout);
            Log.RouteTimeout(_logger, route.Name, call.Cluster.Name, timeout!.Value.TotalMilliseconds);
            call.ResponseFlags = "UT";
            return TrailersOnly(request, new Status(
                StatusCode.DeadlineExceeded,
                string.Create(CultureInfo.InvariantCulture, $"Mesh.Sdk: route '{route.Name}' timed out after {timeout!.Value.TotalMilliseconds} ms")));
        }
    }

    private async Task<HttpResponseMessage> SendWithRetriesAsync(HttpRequestMessage request, MeshGrpcCall call, RetryPolicy? policy, ReplayableContent? body, CancellationToken token)
    {
        var retriesLeft = policy is not null ? (int)Math.Min(policy.NumRetries, 100) : 0;
        var attempt = 0;
        List<MeshEndpoint>? tried = null;
        while (true)
        {
            attempt++;
            CircuitBreakerLease retryLease = default;
            try
            {
                if (attempt > 1)
                {
                    if (body is { CanReplay: false })
                    {
                        // The client stream grew past the buffer limit during the back-off: nothing whole to send again.
                        return TrailersOnly(request, new Status(
                            StatusCode.Unavailable,
                            string.Create(CultureInfo.InvariantCulture, $"Mesh.Sdk: exceeded the request buffer limit of {_runtime.Options.RequestBufferLimitBytes} bytes while retrying upstream (route '{call.Route.Name}', Mesh:RequestBufferLimitBytes)")));
                    }

                    // CanRetry checked the limit; a race past it only costs the slot accounting of one retry.
                    call.Cluster.CircuitBreakers.TryAcquireRetry(RoutingPriority.Default, out retryLease);
                }

                using var perTryTimer = policy?.PerTryTimeout is { } perTryTimeout && IsFinite(perTryTimeout)
                    ? new CancellationTokenSource(perTryTimeout, _time)
                    : null;
                using var perTry = perTryTimer is null ? null : CancellationTokenSource.CreateLinkedTokenSource(token, perTryTimer.Token);

                HttpResponseMessage response;
                try
                {
                    response = Mesh.Sdk.Telemetry.Tracing.MeshTracer.For(_runtime) is { Enabled: true } tracer
                        ? await tracer.SendGrpcAsync(base.SendAsync, request, call.Cluster.Name, perTry?.Token ?? token).ConfigureAwait(false)
                        : await base.SendAsync(request, perTry?.Token ?? token).ConfigureAwait(false);
                }
                catch (HttpRequestException ex) when (!token.IsCancellationRequested)
                {
                    call.Cluster.ReportLocalOrigin(call.CurrentEndpoint, LocalOriginOutcome.ConnectFailed);
                    var kind = MeshHttpHandler.ClassifyFailure(ex) switch
                    {
                        MeshHttpHandler.AttemptFailure.ConnectFailure => UpstreamReset.ConnectFailure,
                        MeshHttpHandler.AttemptFailure.RefusedStream => UpstreamReset.RefusedStream,
                        _ => UpstreamReset.Reset,
                    };
                    if (retriesLeft > 0 && CanReplay(body) && policy!.IsRetriableReset(kind) && CanRetry(call))
                    {
                        retriesLeft--;
                        await BackOffAsync(policy, attempt, call, kind.ToString(), token).ConfigureAwait(false);
                        MoveToAnotherHost(request, call, policy, ref tried);
                        continue;
                    }

                    throw;
                }
                catch (OperationCanceledException) when (perTryTimer is { IsCancellationRequested: true } && !token.IsCancellationRequested)
                {
                    call.Cluster.ReportLocalOrigin(call.CurrentEndpoint, LocalOriginOutcome.Timeout);
                    // Envoy resets the attempt locally: retried under reset, 5xx, gateway-error (not deadline-exceeded).
                    if (retriesLeft > 0 && CanReplay(body) && policy!.IsRetriableReset(UpstreamReset.PerTryTimeout) && CanRetry(call))
                    {
                        retriesLeft--;
                        await BackOffAsync(policy, attempt, call, "per-try timeout", token).ConfigureAwait(false);
                        MoveToAnotherHost(request, call, policy, ref tried);
                        continue;
                    }

                    call.ResponseFlags = "UT";
                    return TrailersOnly(request, new Status(
                        StatusCode.DeadlineExceeded,
                        string.Create(CultureInfo.InvariantCulture, $"Mesh.Sdk: route '{call.Route.Name}' per-try timeout of {policy!.PerTryTimeout!.Value.TotalMilliseconds} ms exceeded")));
                }

                var status = StatusOf(response, out var httpStatus);
                call.Cluster.ReportResponse(call.CurrentEndpoint, status is { } s ? GrpcStatusMapping.ToHttp(s) : httpStatus);
                if (status is { } code && code != StatusCode.OK && retriesLeft > 0 && CanReplay(body)
                    && IsRetriable(policy!, response, code, httpStatus)
                    && CanRetry(call))
                {
                    retriesLeft--;
                    response.Dispose();
                    await BackOffAsync(policy!, attempt, call, code.ToString(), token).ConfigureAwait(false);
                    MoveToAnotherHost(request, call, policy!, ref tried);
                    continue;
                }

                return response;
            }
            finally
            {
                retryLease.Dispose();
            }
        }
    }

    private static bool CanReplay(ReplayableContent? body) => body is null || body.CanReplay;

    private static bool IsRetriable(RetryPolicy policy, HttpResponseMessage response, StatusCode code, int httpStatus)
    {
        if (response.Headers.NonValidated.Contains(RetryPolicy.RateLimitedHeader))
        {
            // Envoy never retries a response of a rate-limiting Envoy unless asked to (envoy-ratelimited).
            return policy.RetriesRateLimited;
        }

        return policy.IsRetriableGrpcStatus((int)code) || (httpStatus != 200 && policy.IsRetriableStatus(httpStatus));
    }

    /// <summary>
    /// With the route's <c>previous_hosts</c> retry predicate, points the request at another READY endpoint of the
    /// cluster: grpc-dotnet's balancer handler has already chosen the subchannel for this request, so the retry
    /// rewrites what it set (the URI's host and port, and its <c>Subchannel</c>/<c>CurrentAddress</c> request options,
    /// which its connect callback reads). Without those options (another grpc-dotnet version) the retry stays on the
    /// same host.
    /// </summary>
    private void MoveToAnotherHost(HttpRequestMessage request, MeshGrpcCall call, RetryPolicy policy, ref List<MeshEndpoint>? tried)
    {
        if (!policy.RetryOnDifferentHost || request.RequestUri is not { IsAbsoluteUri: true } uri
            || !request.Options.TryGetValue(SubchannelOption, out _) || !request.Options.TryGetValue(CurrentAddressOption, out _))
        {
            return;
        }

        tried ??= [call.CurrentEndpoint];
        var attempts = (int)Math.Clamp(policy.HostSelectionRetryMaxAttempts, 1, 16);
        if (!call.Picker.TryPickRetry(call.Cluster, tried, attempts, out var endpoint, out var subchannel) || subchannel!.CurrentAddress is not { } address)
        {
            return;
        }

        tried.Add(endpoint!);
        request.RequestUri = new UriBuilder(uri) { Host = address.EndPoint.Host, Port = address.EndPoint.Port }.Uri;
        request.Options.Set(SubchannelOption, subchannel);
        request.Options.Set(CurrentAddressOption, address);
        if (call.Route.AutoHostRewrite && call.Target.HostRewriteLiteral is null)
        {
            request.Headers.Host = endpoint!.Hostname.Length > 0 ? endpoint.Hostname : endpoint.Key;
        }

        call.CurrentEndpoint.State.RequestCompleted();
        endpoint!.State.RequestStarted();
        Log.RetryHost(_logger, call.Route.Name, call.CurrentEndpoint.Key, endpoint.Key);
        call.CurrentEndpoint = endpoint;
    }

    /// <summary>
    /// Applies the matched route's request-side actions once per call, before the first attempt: the
    /// <c>:authority</c> sent upstream (<c>host_rewrite_literal</c> of the weighted cluster or route,
    /// <c>auto_host_rewrite</c>, else the channel's target as gRPC's xDS clients send it), <c>x-forwarded-host</c>
    /// when asked for and rewritten, request header operations of every level (compiled by the route table in Envoy's
    /// order), and <c>prefix_rewrite</c>/<c>regex_rewrite</c> of the method path. Returns the upstream authority.
    /// </summary>
    private static string ApplyRequestActions(HttpRequestMessage request, MeshGrpcCall call)
    {
        var route = call.Route;
        var target = call.Target;
        var endpoint = call.CurrentEndpoint;
        var upstreamAuthority = target.HostRewriteLiteral
            ?? (route.AutoHostRewrite ? (endpoint.Hostname.Length > 0 ? endpoint.Hostname : endpoint.Key) : call.Authority);
        if (route.AppendXForwardedHost && !string.Equals(upstreamAuthority, call.Authority, StringComparison.Ordinal))
        {
            request.Headers.TryAddWithoutValidation("x-forwarded-host", call.Authority);
        }

        request.Headers.Host = upstreamAuthority;
        target.RequestHeaders.ApplyTo(request);
        if (request.RequestUri is { IsAbsoluteUri: true } uri)
        {
            var pathAndQuery = uri.PathAndQuery;
            var rewritten = route.RewritePath(pathAndQuery);
            if (!ReferenceEquals(rewritten, pathAndQuery))
            {
                request.RequestUri = new Uri(string.Concat(uri.GetLeftPart(UriPartial.Authority), rewritten));
            }
        }

        return upstreamAuthority;
    }

    /// <summary>
    /// Starts the route's request mirrors: for each sampled policy whose cluster is known, a shadow copy of the call
    /// (method path, metadata and messages as sent upstream, authority with <c>-shadow</c> unless disabled) goes to an
    /// endpoint of the mirror cluster, fire-and-forget, once the request's messages have been read to their end and fit
    /// the buffer limit (Envoy shadows a request when its body is complete and was buffered). Unary, client- and
    /// server-streaming calls alike; a stream past the limit, or one still open when the call ends, is not mirrored.
    /// </summary>
    private void StartMirrors(HttpRequestMessage request, MeshGrpcCall call, ReplayableContent body, HttpContent original, string upstreamAuthority)
    {
        if (_transports is null || request.RequestUri is not { IsAbsoluteUri: true } uri)
        {
            return;
        }

        List<(HttpRequestMessage Copy, ClusterRuntime Cluster)>? copies = null;
        foreach (var mirror in call.Route.MirrorPolicies)
        {
            if (!mirror.ShouldMirror(Random.Shared))
            {
                continue;
            }

            if (!_runtime.Clusters.TryGetCluster(mirror.Cluster, out var cluster))
            {
                Log.MirrorFailed(_logger, mirror.Cluster, "the cluster is not known");
                continue;
            }

            var copy = new HttpRequestMessage(HttpMethod.Post, (Uri?)null)
            {
                Version = HttpVersion.Version20,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            };
            foreach (var header in request.Headers.NonValidated)
            {
                if (!string.Equals(header.Key, "host", StringComparison.OrdinalIgnoreCase))
                {
                    copy.Headers.TryAddWithoutValidation(header.Key, header.Value);
                }
            }

            copy.Headers.Host = mirror.ShadowAuthority(upstreamAuthority);
            (copies ??= []).Add((copy, cluster));
        }

        if (copies is null)
        {
            return;
        }

        body.WhenComplete(static (whole, state) => ((MirrorBatch)state!).Send(whole), new MirrorBatch(this, copies, original, uri.PathAndQuery, call.Route.Timeout));
    }

    /// <summary>The shadow copies of one call, waiting for its request messages to be read to their end.</summary>
    private sealed class MirrorBatch(MeshGrpcHandler handler, List<(HttpRequestMessage Copy, ClusterRuntime Cluster)> copies, HttpContent original, string pathAndQuery, TimeSpan timeout)
    {
        public void Send(byte[]? whole)
        {
            foreach (var (copy, cluster) in copies)
            {
                if (whole is null)
                {
                    Log.MirrorFailed(handler._logger, cluster.Name, "the request messages passed the buffer limit or were not read to their end");
                    copy.Dispose();
                    continue;
                }

                copy.Content = new ByteArrayContent(whole);
                foreach (var header in original.Headers.NonValidated)
                {
                    if (!string.Equals(header.Key, "content-length", StringComparison.OrdinalIgnoreCase))
                    {
                        copy.Content.Headers.TryAddWithoutValidation(header.Key, header.Value);
                    }
                }

                _ = handler.MirrorAsync(copy, cluster, pathAndQuery, timeout);
            }
        }
    }

    private async Task MirrorAsync(HttpRequestMessage copy, ClusterRuntime cluster, string pathAndQuery, TimeSpan timeout)
    {
        // Fire and forget: the caller never waits for, or sees, the shadow; its response is read and dropped.
        await Task.Yield();
        using (copy)
        {
            if (!cluster.CircuitBreakers.TryAcquireRequest(RoutingPriority.Default, out var lease))
            {
                Log.MirrorFailed(_logger, cluster.Name, "the cluster is over its max_requests limit");
                return;
            }

            using (lease)
            {
                var endpoint = cluster.Pick(new Mesh.Sdk.LoadBalancing.PickContext());
                if (endpoint is null)
                {
                    Log.MirrorFailed(_logger, cluster.Name, "no healthy upstream");
                    return;
                }

                copy.RequestUri = new Uri(string.Concat(cluster.SendsTls ? "https://" : "http://", endpoint.Key, pathAndQuery));
                using var cts = IsFinite(timeout) ? new CancellationTokenSource(timeout, _time) : new CancellationTokenSource(CompiledRoute.DefaultTimeout, _time);
                endpoint.State.RequestStarted();
                try
                {
                    using var response = await _transports!.Get(cluster, endpoint).SendAsync(copy, cts.Token).ConfigureAwait(false);
                    await response.Content.CopyToAsync(Stream.Null, cts.Token).ConfigureAwait(false);
                    var status = StatusOf(response, out var httpStatus) ?? TrailerStatus(response);
                    cluster.ReportResponse(endpoint, status is { } code ? GrpcStatusMapping.ToHttp(code) : httpStatus);
                }
                catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException or IOException)
                {
                    Log.MirrorFailed(_logger, cluster.Name, ex.Message);
                }
                finally
                {
                    endpoint.State.RequestCompleted();
                }
            }
        }
    }

    private static StatusCode? TrailerStatus(HttpResponseMessage response)
        => response.TrailingHeaders.NonValidated.TryGetValues("grpc-status", out var values)
            && int.TryParse(values.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var code)
            ? (StatusCode)code
            : null;

    private bool CanRetry(MeshGrpcCall call)
    {
        var retries = call.Cluster.CircuitBreakers.Default.Retries;
        if (retries.Count < retries.Limit)
        {
            return true;
        }

        Log.RetryOverflow(_logger, call.Cluster.Name);
        return false;
    }

    private async Task BackOffAsync(RetryPolicy policy, int attempt, MeshGrpcCall call, string reason, CancellationToken token)
    {
        var backOff = policy.BackOff(attempt, Random.Shared);
        Log.Retrying(_logger, call.Route.Name, call.CurrentEndpoint.Key, reason, attempt, backOff.TotalMilliseconds);
        if (backOff > TimeSpan.Zero)
        {
            await Task.Delay(backOff, _time, token).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The gRPC status of a response when it is known from its headers: trailers-only (<c>grpc-status</c> in the
    /// headers), or an HTTP status other than 200 mapped as gRPC does. <see langword="null"/> when messages follow.
    /// </summary>
    internal static StatusCode? StatusOf(HttpResponseMessage response, out int httpStatus)
    {
        httpStatus = (int)response.StatusCode;
        if (httpStatus != 200)
        {
            return GrpcStatusMapping.FromHttp(httpStatus);
        }

        if (response.Headers.NonValidated.TryGetValues("grpc-status", out var values)
            && int.TryParse(values.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var code))
        {
            return (StatusCode)code;
        }

        return null;
    }

    /// <summary>
    /// Envoy's timeout for a gRPC call: with <c>grpc_timeout_header_max</c> set, the client's <c>grpc-timeout</c>
    /// (capped, minus <c>grpc_timeout_header_offset</c>) replaces the route timeout; <c>max_stream_duration</c> bounds both.
    /// </summary>
    internal static TimeSpan? EffectiveTimeout(CompiledRoute route, HttpRequestMessage request)
    {
        TimeSpan? timeout = IsFinite(route.Timeout) ? route.Timeout : null;
        if (route.GrpcTimeoutHeaderMax is { } headerMax && TryGetGrpcTimeout(request, out var fromHeader))
        {
            var value = IsFinite(headerMax) && headerMax < fromHeader ? headerMax : fromHeader;
            if (route.GrpcTimeoutHeaderOffset is { } offset && IsFinite(offset))
            {
                value = value > offset ? value - offset : TimeSpan.FromMilliseconds(1);
            }

            timeout = value;
        }

        if (route.MaxStreamDuration is { } maxStream && IsFinite(maxStream))
        {
            timeout = timeout is { } t && t < maxStream ? t : maxStream;
        }

        return timeout;
    }

    private static bool IsFinite(TimeSpan value) => value > TimeSpan.Zero && value != Timeout.InfiniteTimeSpan;

    internal static bool TryGetGrpcTimeout(HttpRequestMessage request, out TimeSpan timeout)
    {
        timeout = default;
        if (!request.Headers.NonValidated.TryGetValues(GrpcTimeoutHeader, out var values))
        {
            return false;
        }

        var text = values.ToString();
        if (text.Length < 2 || !long.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.None, CultureInfo.InvariantCulture, out var amount))
        {
            return false;
        }

        timeout = text[^1] switch
        {
            'H' => TimeSpan.FromHours(amount),
            'M' => TimeSpan.FromMinutes(amount),
            'S' => TimeSpan.FromSeconds(amount),
            'm' => TimeSpan.FromMilliseconds(amount),
            'u' => TimeSpan.FromMicroseconds(amount),
            'n' => TimeSpan.FromTicks(amount / 100),
            _ => TimeSpan.MinValue,
        };
        return timeout >= TimeSpan.Zero;
    }

    private static void LowerGrpcTimeout(HttpRequestMessage request, TimeSpan bound)
    {
        if (TryGetGrpcTimeout(request, out var existing) && existing <= bound)
        {
            return;
        }

        request.Headers.Remove(GrpcTimeoutHeader);
        // At most 8 digits: milliseconds up to ~27 hours, then whole seconds.
        var millis = (long)Math.Ceiling(bound.TotalMilliseconds);
        var value = millis < 100_000_000
            ? millis.ToString(CultureInfo.InvariantCulture) + "m"
            : ((long)Math.Ceiling(bound.TotalSeconds)).ToString(CultureInfo.InvariantCulture) + "S";
        request.Headers.TryAddWithoutValidation(GrpcTimeoutHeader, value);
    }

    /// <summary>A trailers-only gRPC response carrying <paramref name="status"/>, as Envoy answers locally.</summary>
    internal static HttpResponseMessage TrailersOnly(HttpRequestMessage request, Status status)
    {
        var response = new HttpResponseMessage(HttpStatusCode.OK)
        {
            RequestMessage = request,
            Version = HttpVersion.Version20,
            Content = new ByteArrayContent([]),
        };
        response.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        response.Headers.TryAddWithoutValidation("grpc-status", ((int)status.StatusCode).ToString(CultureInfo.InvariantCulture));
        if (status.Detail.Length > 0)
        {
            response.Headers.TryAddWithoutValidation("grpc-message", Uri.EscapeDataString(status.Detail));
        }

        return response;
    }

    private static partial class Log
    {
        [LoggerMessage(7010, LogLevel.Debug, "Route '{RouteName}': fault filter delays the call by {DelayMs} ms.")]
        public static partial void FaultDelay(ILogger logger, string routeName, double delayMs);

        [LoggerMessage(7011, LogLevel.Debug, "Route '{RouteName}': timeout of {TimeoutMs} ms to cluster '{ClusterName}' exceeded; answering DEADLINE_EXCEEDED.")]
        public static partial void RouteTimeout(ILogger logger, string routeName, string clusterName, double timeoutMs);

        [LoggerMessage(7012, LogLevel.Debug, "Route '{RouteName}': retrying the call to '{Endpoint}' after {Reason} (attempt {Attempt}, back-off {BackOffMs} ms).")]
        public static partial void Retrying(ILogger logger, string routeName, string endpoint, string reason, int attempt, double backOffMs);

        [LoggerMessage(7014, LogLevel.Debug, "Route '{RouteName}': the retry moves from '{From}' to '{To}' (previous_hosts).")]
        public static partial void RetryHost(ILogger logger, string routeName, string from, string to);

        [LoggerMessage(7015, LogLevel.Debug, "Mirror of a call to cluster '{ClusterName}' failed: {Reason}")]
        public static partial void MirrorFailed(ILogger logger, string clusterName, string reason);

        [LoggerMessage(7013, LogLevel.Warning, "Cluster '{ClusterName}' is over its max_retries limit; the call is not retried.")]
        public static partial void RetryOverflow(ILogger logger, string clusterName);
    }
}

using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using Envoy.Config.Core.V3;
using Mesh.Sdk.LoadBalancing;
using Mesh.Sdk.Resilience;
using Mesh.Sdk.Routing;
using Mesh.Sdk.Telemetry;
using Mesh.Sdk.Telemetry.Tracing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Sdk.Http;

/// <summary>
/// The outbound data plane for <see cref="HttpClient"/>: a request to a host in the mesh is routed by the
/// listener's compiled route table, faults, circuit breakers, load balancing, retries and timeouts of the matched
/// route and cluster, and sent to the chosen endpoint over that endpoint's own <see cref="SocketsHttpHandler"/>
/// (<see cref="MeshTransports"/>), keeping its URI and <c>Host</c>. The response body holds the request's
/// circuit-breaker slots until it is finished (<see cref="LeasedContent"/>). Requests to hosts outside the mesh go
/// to the inner handler untouched.
/// See docs/http.md.
/// </summary>
internal sealed partial class MeshHttpHandler : DelegatingHandler
{
    /// <summary>Response header naming why the SDK answered locally, with Envoy's response flags (NR, UO, UH, UT, UF, FI, NC).</summary>
    public const string ResponseFlagsHeader = "x-mesh-response-flags";

    /// <summary>Set to <c>true</c> on responses refused by a circuit breaker, as Envoy does.</summary>
    public const string OverloadedHeader = "x-envoy-overloaded";

    /// <summary>The attempt number, on requests and responses when the route asks for it.</summary>
    public const string AttemptCountHeader = "x-envoy-attempt-count";

    // How many times one request is matched again because its route table was replaced while it waited for the
    // route's cluster; bounds a request against a stream of route changes.
    private const int MaxRematches = 3;

    private static readonly Func<MeshEndpoint, object?, bool> PreviousHosts = PickContext.PreviousHosts;

    private readonly MeshRuntime _runtime;
    private readonly MeshTransports _transports;
    private readonly ILogger _logger;
    private readonly MeshMetrics? _metrics;
    private readonly MeshTracer? _tracer;

    public MeshHttpHandler(MeshRuntime runtime, MeshTransports transports, ILogger<MeshHttpHandler>? logger = null, MeshMetrics? metrics = null, MeshTracer? tracer = null)
    {
        _tracer = tracer;
        _runtime = runtime;
        _transports = transports;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _metrics = metrics;
    }

    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var uri = request.RequestUri;
        if (uri is null || !uri.IsAbsoluteUri || !(uri.Scheme is "http" or "https"))
        {
            return base.SendAsync(request, cancellationToken);
        }

        // Not async itself: a host already resolved passes through with the inner handler's own task.
        var resolving = _runtime.ResolveListenerAsync(uri.IdnHost, uri.Port, cancellationToken);
        if (!resolving.IsCompletedSuccessfully)
        {
            return ResolveAndSendAsync(request, uri, resolving, cancellationToken);
        }

        return resolving.Result is { } listener
            ? SendRecordedAsync(request, uri, listener, cancellationToken).AsTask()
            : base.SendAsync(request, cancellationToken);
    }

    private async Task<HttpResponseMessage> ResolveAndSendAsync(HttpRequestMessage request, Uri uri, ValueTask<string?> resolving, CancellationToken cancellationToken)
    {
        var listener = await resolving.ConfigureAwait(false);
        if (listener is null)
        {
            return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }

        return await SendRecordedAsync(request, uri, listener, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Sends a meshed request and, with metrics on, reports it as Istio's caller does (<c>reporter="source"</c>): the
    /// chosen endpoint's workload, the cluster's service, the response code and flags, the time to the response
    /// headers. The request carries this workload's peer metadata headers so the callee can label its side.
    /// </summary>
    private async ValueTask<HttpResponseMessage> SendRecordedAsync(HttpRequestMessage request, Uri uri, string listener, CancellationToken cancellationToken)
    {
        if (_metrics is not { } metrics)
        {
            return await SendMeshedAsync(request, uri, listener, call: null, cancellationToken).ConfigureAwait(false);
        }

        metrics.AddPeerMetadata(request.Headers);
        var call = new OutboundCall();
        var time = _runtime.TimeProvider;
        var start = time.GetTimestamp();
        HttpResponseMessage response;
        try
        {
            response = await SendMeshedAsync(request, uri, listener, call, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception) when (RecordFailure(metrics, call, request, time.GetElapsedTime(start)))
        {
            throw;
        }

        RecordResponse(metrics, call, request, response, time.GetElapsedTime(start));
        return response;
    }

    private static void RecordResponse(MeshMetrics metrics, OutboundCall call, HttpRequestMessage request, HttpResponseMessage response, TimeSpan elapsed)
    {
        var protocol = MeshMetrics.Protocol(ContentTypeOf(request.Content));
        var grpcStatus = string.Empty;
        if (ReferenceEquals(protocol, MeshMetrics.GrpcProtocol) && response.Headers.NonValidated.TryGetValues("grpc-status", out var grpc))
        {
            grpcStatus = grpc.ToString();
        }

        string flags;
        if (response.Headers.NonValidated.TryGetValues(ResponseFlagsHeader, out var local))
        {
            flags = local.ToString();
            if (call.DelayInjected && flags == "FI")
            {
                flags = "DI,FI";
            }
        }
        else
        {
            flags = call.RetriesExhausted ? "URX" : call.DelayInjected ? "DI" : MeshMetrics.NoFlags;
        }

        var set = call.Endpoint is { } endpoint ? metrics.Outbound(call.Cluster!, endpoint) : metrics.Outbound(call.Cluster);
        var series = set.Get(protocol, (int)response.StatusCode, grpcStatus, flags);
        metrics.Record(series, elapsed.TotalMilliseconds, request.Content?.Headers.ContentLength ?? 0, response.Content.Headers.ContentLength ?? 0);
    }

    /// <summary>A request that ended without a response: code 0, <c>DC</c> when the caller cancelled it. Never catches.</summary>
    private static bool RecordFailure(MeshMetrics metrics, OutboundCall call, HttpRequestMessage request, TimeSpan elapsed)
    {
        var set = call.Endpoint is { } endpoint ? metrics.Outbound(call.Cluster!, endpoint) : metrics.Outbound(call.Cluster);
        var series = set.Get(MeshMetrics.Protocol(ContentTypeOf(request.Content)), 0, string.Empty, "DC");
        metrics.Record(series, elapsed.TotalMilliseconds, request.Content?.Headers.ContentLength ?? 0, 0);
        return false;
    }

    private static string? ContentTypeOf(HttpContent? content)
        => content is not null && content.Headers.NonValidated.TryGetValues("Content-Type", out var values) ? values.ToString() : null;

    /// <summary>What the metrics of one outbound request need from the routing: the cluster, the endpoint, the faults and retries.</summary>
    private sealed class OutboundCall
    {
        public string? Cluster;
        public MeshEndpoint? Endpoint;
        public bool DelayInjected;
        public bool RetriesExhausted;
    }

    // ValueTask: a request whose upstream answers synchronously completes without allocating a Task per level.
    private async ValueTask<HttpResponseMessage> SendMeshedAsync(HttpRequestMessage request, Uri originalUri, string listener, OutboundCall? call, CancellationToken cancellationToken, int rematches = 0)
    {
        if (!_runtime.Routes.TryGetTable(listener, out var table))
        {
            return Local(request, 503, "NC", $"Mesh.Sdk: listener '{listener}' has no route configuration in force (not received yet, or rejected; see the log)");
        }

        var view = new HttpRequestRouteRequest(request, _runtime.InstanceAddress, request.Headers.Host ?? _transports.AuthorityOf(originalUri));
        var match = table.Match(in view);
        if (!match.IsMatch)
        {
            var why = match.Status == RouteMatchStatus.NoVirtualHost
                ? "no virtual host matches the authority"
                : $"no route of virtual host '{match.VirtualHost!.Name}' matches";
            Log.NoRoute(_logger, view.Method, view.Authority, view.PathAndQuery, table.Name);
            return Local(request, RouteMatchResult.NoRouteStatus, "NR", $"Mesh.Sdk: no route for {view.Method} '{view.Authority}{view.PathAndQuery}' in route configuration '{table.Name}' of listener '{listener}': {why}");
        }

        var route = match.Route!;
        var target = match.Target!;
        if (call is not null)
        {
            call.Cluster = target.Cluster;
        }
        switch (route.Action)
        {
            case RouteActionKind.Redirect:
            {
                var redirect = new HttpResponseMessage((HttpStatusCode)route.Redirect!.StatusCode) { RequestMessage = request };
                redirect.Headers.Location = new Uri(route.BuildRedirectLocation(in view), UriKind.RelativeOrAbsolute);
                target.ResponseHeaders.ApplyTo(redirect);
                return redirect;
            }

            case RouteActionKind.DirectResponse:
            {
                var direct = route.DirectResponse!;
                var response = new HttpResponseMessage((HttpStatusCode)direct.Status) { RequestMessage = request, Content = new ByteArrayContent(direct.Body.ToArray()) };
                target.ResponseHeaders.ApplyTo(response);
                return response;
            }
        }

        if (target.Fault is { } fault && TryStartFault(fault, in view, target.Cluster, table.Random, out var decision, out var counted))
        {
            if (call is not null && decision.Delay is { } injected && injected > TimeSpan.Zero)
            {
                call.DelayInjected = true;
            }

            if (await InjectAsync(request, decision, counted, cancellationToken).ConfigureAwait(false) is { } faulted)
            {
                target.ResponseHeaders.ApplyTo(faulted);
                return faulted;
            }
        }

        var cluster = await _runtime.GetClusterAsync(target.Cluster, listener, table, cancellationToken).ConfigureAwait(false);
        if (cluster is null && rematches < MaxRematches
            && _runtime.Routes.TryGetTable(listener, out var current) && !ReferenceEquals(current, table))
        {
            // Matched against a route table replaced since (a route change can remove the cluster the old route
            // named in the same update): match the request again against the table in force.
            return await SendMeshedAsync(request, originalUri, listener, call, cancellationToken, rematches + 1).ConfigureAwait(false);
        }

        if (cluster is null)
        {
            return Local(request, route.ClusterNotFoundStatus, "NC", $"Mesh.Sdk: cluster '{target.Cluster}' of route '{route.Name}' is not known (not received from the control plane yet, or rejected; see the log)");
        }

        var authority = view.Authority;
        var pathAndQuery = route.RewritePath(view.PathAndQuery);
        var hash = route.HashPolicies.Length > 0 && HashPolicy.TryComputeHash(route.HashPolicies, in view, out var h) ? h : (ulong?)null;
        var policy = route.RetryPolicy;
        var timeout = route.Timeout;
        var timeoutStatus = 504;
        if (EnvoyRequestHeaders.MayHaveAny(request))
        {
            // The trusted application may override retries and timeouts as Envoy's router lets internal callers;
            // consumed here, before mirrors copy the headers, as Envoy's router does.
            EnvoyRequestHeaders.Consume(request, ref policy, ref timeout, ref timeoutStatus);
        }

        var originalContent = request.Content;
        ReplayableContent? body = null;
        if (originalContent is not null && (policy is { NumRetries: > 0 } || route.MirrorPolicies.Length > 0)
            && !ReplayableContent.IsReplayableAsIs(originalContent, _runtime.Options.RequestBufferLimitBytes))
        {
            // Envoy streams the body to the first attempt and keeps a copy, up to the buffer limit, for retries and
            // mirrors; a body past the limit is not retried. Byte-array bodies within the limit are sent again as they are.
            body = new ReplayableContent(originalContent, _runtime.Options.RequestBufferLimitBytes, cancellationToken, _logger, route.Name);
            request.Content = body;
        }

        // The request keeps its URI and Host (the endpoint's pool dials the endpoint); only rewrites touch them.
        var upstreamUri = UpstreamUri(originalUri, pathAndQuery, cluster);
        var rewritesHost = route.AutoHostRewrite || target.HostRewriteLiteral is not null;
        var originalHost = rewritesHost ? request.Headers.Host : null;
        try
        {
            // Envoy's order (finalizeRequestHeaders): header mutations, then the host rewrite (with
            // x-forwarded-host), then the path rewrite.
            target.RequestHeaders.ApplyTo(request);
            var forwardsHost = rewritesHost && route.AppendXForwardedHost
                && (route.AutoHostRewrite || !string.Equals(target.HostRewriteLiteral, authority, StringComparison.Ordinal));
            if (target.HostRewriteLiteral is { } literal)
            {
                if (forwardsHost)
                {
                    request.Headers.TryAddWithoutValidation("x-forwarded-host", authority);
                }

                request.Headers.Host = literal;
            }

            if (!ReferenceEquals(upstreamUri, originalUri))
            {
                request.RequestUri = upstreamUri;
            }

            if (route.MirrorPolicies.Length > 0)
            {
                // Envoy shadows this finalized request. The auto host rewrite is applied per endpoint when an
                // attempt is sent, after the shadow's copy, so the shadow keeps the original authority.
                await StartMirrorsAsync(request, originalContent, body, route, timeout, originalUri, target.HostRewriteLiteral ?? authority, pathAndQuery, table.Random, cancellationToken).ConfigureAwait(false);
            }

            if (forwardsHost && target.HostRewriteLiteral is null)
            {
                request.Headers.TryAddWithoutValidation("x-forwarded-host", authority);
            }

            var response = await SendWithRetriesAsync(request, body, route, policy, timeout, timeoutStatus, cluster, hash, table.Random, call, cancellationToken).ConfigureAwait(false);
            target.ResponseHeaders.ApplyTo(response);
            return response;
        }
        finally
        {
            if (body is not null)
            {
                // No more attempts: the copy goes back to the pool; a body still streaming goes on to the last attempt.
                body.Commit();
                request.Content = originalContent;
            }

            if (!ReferenceEquals(upstreamUri, originalUri))
            {
                request.RequestUri = originalUri;
            }

            if (rewritesHost)
            {
                request.Headers.Host = originalHost;
            }
        }
    }

    /// <summary>
    /// The URI sent upstream: the request's own, unless the route rewrote the path or the cluster speaks TLS to a
    /// request written as <c>http://</c>. The authority stays the application's; the endpoint pool dials the endpoint.
    /// </summary>
    private static Uri UpstreamUri(Uri original, string pathAndQuery, ClusterRuntime cluster)
    {
        var scheme = cluster.SendsTls ? Uri.UriSchemeHttps : original.Scheme;
        if (ReferenceEquals(scheme, original.Scheme) || string.Equals(scheme, original.Scheme, StringComparison.Ordinal))
        {
            // PathAndQuery of the same Uri is cached: an unrewritten path is the same instance.
            if (ReferenceEquals(pathAndQuery, original.PathAndQuery) || string.Equals(pathAndQuery, original.PathAndQuery, StringComparison.Ordinal))
            {
                return original;
            }
        }

        return new Uri(string.Concat(scheme, "://", original.Authority, pathAndQuery));
    }

    private async ValueTask<HttpResponseMessage> SendWithRetriesAsync(
        HttpRequestMessage request,
        ReplayableContent? body,
        CompiledRoute route,
        RetryPolicy? policy,
        TimeSpan timeout,
        int timeoutStatus,
        ClusterRuntime cluster,
        ulong? hash,
        Random random,
        OutboundCall? call,
        CancellationToken cancellationToken)
    {
        var breakers = cluster.CircuitBreakers;
        if (!breakers.TryAcquireRequest(RoutingPriority.Default, out var requestLease))
        {
            return Overflow(request, breakers.Default.Requests);
        }

        var retries = policy is null || !RequestAllowsRetry(policy, request) ? 0u : policy.NumRetries;
        var time = _runtime.TimeProvider;

        // HTTP/1.1 holds a connection per request in flight: such requests take a max_connections slot and wait
        // as pending (max_pending_requests) when none is free. HTTP/2 multiplexes over the endpoints' pools.
        var occupiesConnection = request.Version.Major < 2
            && (request.VersionPolicy != HttpVersionPolicy.RequestVersionOrHigher || request.RequestUri!.Scheme == Uri.UriSchemeHttp);

        // The route timeout covers every attempt and back-off, and what is left of it the response body; the
        // caller's token cancels everything until the response is returned. Without a route timeout (istiod's
        // default) the caller's token is the route token: no source, no registration, no body wrapper.
        var routeCts = timeout == Timeout.InfiniteTimeSpan ? null : new CancellationTokenSource(timeout, time);
        var callerLink = routeCts is null ? default : cancellationToken.UnsafeRegister(static s => Cancel((CancellationTokenSource)s!), routeCts);
        var routeToken = routeCts?.Token ?? cancellationToken;

        MeshEndpoint? previous = null;
        List<MeshEndpoint>? tried = null;
        var retryLease = default(CircuitBreakerLease);
        try
        {
            for (var attempt = 1; ; attempt++)
            {
                var connectionLease = default(CircuitBreakerLease);
                if (occupiesConnection)
                {
                    var acquiring = breakers.AcquireConnectionAsync(RoutingPriority.Default, routeToken);
                    try
                    {
                        connectionLease = acquiring.IsCompletedSuccessfully ? acquiring.Result : await acquiring.ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                    {
                        return RouteTimeout(request, route, timeout, timeoutStatus);
                    }

                    if (!connectionLease.IsAcquired)
                    {
                        return Overflow(request, breakers.Default.PendingRequests);
                    }
                }

                object? excluded = (object?)tried ?? previous;
                var exclude = policy is { RetryOnDifferentHost: true } && excluded is not null ? PreviousHosts : null;
                var context = new PickContext(hash, exclude, excluded, (int)Math.Clamp(policy?.HostSelectionRetryMaxAttempts ?? 1, 0, int.MaxValue));
                var endpoint = cluster.Pick(in context);
                if (endpoint is null)
                {
                    connectionLease.Dispose();
                    return Local(request, 503, "UH", $"Mesh.Sdk: no healthy upstream in cluster '{cluster.Name}' (every endpoint is unhealthy, ejected or absent)");
                }

                if (call is not null)
                {
                    call.Endpoint = endpoint;
                }

                if (route.AutoHostRewrite)
                {
                    request.Headers.Host = endpoint.Hostname.Length > 0 ? endpoint.Hostname : endpoint.Key;
                }

                if (route.IncludeRequestAttemptCount)
                {
                    request.Headers.Remove(AttemptCountHeader);
                    request.Headers.TryAddWithoutValidation(AttemptCountHeader, attempt.ToString(CultureInfo.InvariantCulture));
                }

                if (attempt > 1 && body is { CanReplay: false })
                {
                    // The body grew past the buffer limit during the back-off: there is nothing whole to send again.
                    connectionLease.Dispose();
                    return Local(request, 507, "-", $"Mesh.Sdk: exceeded the request buffer limit of {_runtime.Options.RequestBufferLimitBytes} bytes while retrying upstream (route '{route.Name}', Mesh:RequestBufferLimitBytes)");
                }

                HttpResponseMessage? response = null;
                var failure = AttemptFailure.None;
                string? failureDetail = null;
                var perTry = policy?.PerTryTimeout;
                var tryCts = perTry is { } t ? new CancellationTokenSource(t, time) : null;
                var tryLink = tryCts is null ? default : routeToken.UnsafeRegister(static s => Cancel((CancellationTokenSource)s!), tryCts);
                endpoint.State.RequestStarted();
                try
                {
                    var transport = _transports.Get(cluster, endpoint);
                    response = _tracer is { Enabled: true } tracer
                        ? await SendTracedAsync(tracer, transport, request, route.Operation, cluster.Name, endpoint, tryCts?.Token ?? routeToken).ConfigureAwait(false)
                        : await transport.SendAsync(request, tryCts?.Token ?? routeToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && routeToken.IsCancellationRequested)
                {
                    cluster.ReportLocalOrigin(endpoint, LocalOriginOutcome.Timeout);
                    return RouteTimeout(request, route, timeout, timeoutStatus);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && tryCts is { IsCancellationRequested: true })
                {
                    cluster.ReportLocalOrigin(endpoint, LocalOriginOutcome.Timeout);
                    failure = AttemptFailure.PerTryTimeout;
                }
                catch (HttpRequestException ex) when (!cancellationToken.IsCancellationRequested)
                {
                    cluster.ReportLocalOrigin(endpoint, LocalOriginOutcome.ConnectFailed);
                    failure = ClassifyFailure(ex);
                    failureDetail = ex.Message;
                }
                finally
                {
                    tryLink.Dispose();
                    tryCts?.Dispose();
                    retryLease.Dispose();
                    retryLease = default;
                    if (response is null)
                    {
                        // No response holds the attempt: give back its connection slot and active request now.
                        LeasedContent.Release(default, connectionLease, endpoint.State);
                    }
                }

                if (response is not null)
                {
                    cluster.ReportResponse(endpoint, (int)response.StatusCode);
                }

                // A body that grew past the buffer limit cannot be sent again: the request is no longer retried.
                var retriable = attempt <= retries && policy is not null && (body is null || body.CanReplay) && failure switch
                {
                    AttemptFailure.None => IsRetriable(policy, response!),
                    AttemptFailure.ConnectFailure => policy.IsRetriableReset(UpstreamReset.ConnectFailure),
                    AttemptFailure.RefusedStream => policy.IsRetriableReset(UpstreamReset.RefusedStream),
                    AttemptFailure.PerTryTimeout => policy.IsRetriableReset(UpstreamReset.PerTryTimeout),
                    _ => policy.IsRetriableReset(UpstreamReset.Reset),
                };

                if (retriable && breakers.TryAcquireRetry(RoutingPriority.Default, out retryLease))
                {
                    if (response is not null)
                    {
                        response.Dispose();
                        LeasedContent.Release(default, connectionLease, endpoint.State);
                    }

                    if (previous is not null)
                    {
                        tried ??= [previous];
                        tried.Add(endpoint);
                    }

                    previous = endpoint;
                    try
                    {
                        await Task.Delay(policy!.BackOff(attempt, random), time, routeToken).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                    {
                        return RouteTimeout(request, route, timeout, timeoutStatus);
                    }

                    continue;
                }

                if (retriable)
                {
                    Log.RetryOverflow(_logger, cluster.Name, breakers: breakers.Default.Retries.Limit);
                }
                else if (call is not null && retries > 0 && attempt > retries && response is not null && IsRetriable(policy!, response))
                {
                    // Envoy's URX: the last attempt's response would have been retried, but no retry was left.
                    call.RetriesExhausted = true;
                }

                if (response is null)
                {
                    return failure == AttemptFailure.PerTryTimeout
                        ? Local(request, timeoutStatus, "UT", $"Mesh.Sdk: upstream request timeout: no response from '{endpoint.Key}' of cluster '{cluster.Name}' within the per-try timeout {perTry} (attempt {attempt})")
                        : Local(request, 503, failure == AttemptFailure.ConnectFailure ? "UF" : "UR", $"Mesh.Sdk: upstream connect error or disconnect/reset before headers from '{endpoint.Key}' of cluster '{cluster.Name}' (attempt {attempt}): {Sanitize(failureDetail)}");
                }

                if (route.IncludeAttemptCountInResponse)
                {
                    response.Headers.TryAddWithoutValidation(AttemptCountHeader, attempt.ToString(CultureInfo.InvariantCulture));
                }

                if (routeCts is not null && LeasedContent.HasBody(response, request.Method))
                {
                    // Envoy's route timeout lasts until the end of the response: the rest of it bounds the body.
                    callerLink.Dispose();
                    callerLink = default;
                    RouteDeadlineContent.Attach(response, routeCts, route, cluster, endpoint);
                    routeCts = null;
                }

                // The body now holds the request's slot, its connection slot and the endpoint's active request.
                LeasedContent.Attach(response, request.Method, requestLease, connectionLease, endpoint.State);
                requestLease = default;
                return response;
            }
        }
        finally
        {
            retryLease.Dispose();
            requestLease.Dispose();
            callerLink.Dispose();
            routeCts?.Dispose();
        }
    }

    /// <summary>
    /// Sends one attempt inside its own client span (see docs/telemetry.md, Traces): the span's context goes on the
    /// request as <c>traceparent</c> and B3 headers, and the request gets an <c>x-request-id</c> when it has none, as
    /// Envoy's outbound sidecar generates one at the first hop.
    /// </summary>
    private static async Task<HttpResponseMessage> SendTracedAsync(MeshTracer tracer, HttpMessageInvoker transport, HttpRequestMessage request, string? operation, string cluster, MeshEndpoint endpoint, CancellationToken cancellationToken)
    {
        if (!request.Headers.Contains(TraceHeaders.RequestId))
        {
            request.Headers.TryAddWithoutValidation(TraceHeaders.RequestId, Guid.NewGuid().ToString());
        }

        var span = tracer.StartClient(request, cluster, endpoint, operation);
        if (span is null)
        {
            return await transport.SendAsync(request, cancellationToken).ConfigureAwait(false);
        }

        HttpResponseMessage? response = null;
        try
        {
            response = await transport.SendAsync(request, cancellationToken).ConfigureAwait(false);
            return response;
        }
        finally
        {
            MeshTracer.StopClient(span, response, response is null ? (cancellationToken.IsCancellationRequested ? "UT" : "UF") : null);
        }
    }

    /// <summary>Evaluates the fault filter; <paramref name="counted"/> tells whether a <c>max_active_faults</c> slot was taken.</summary>
    private bool TryStartFault(FaultPolicy fault, in HttpRequestRouteRequest view, string cluster, Random random, out FaultDecision decision, out bool counted)
    {
        counted = false;
        decision = fault.Evaluate(in view, cluster, random);
        if (decision.Delay is null && !decision.IsAbort)
        {
            return false;
        }

        if (fault.MaxActiveFaults is { } limit)
        {
            ref var active = ref _transports.ActiveFaults;
            if (Interlocked.Increment(ref active) > limit)
            {
                Interlocked.Decrement(ref active);
                return false;
            }

            counted = true;
        }

        return true;
    }

    private async ValueTask<HttpResponseMessage?> InjectAsync(HttpRequestMessage request, FaultDecision decision, bool counted, CancellationToken cancellationToken)
    {
        try
        {
            if (decision.Delay is { } delay && delay > TimeSpan.Zero)
            {
                await Task.Delay(delay, _runtime.TimeProvider, cancellationToken).ConfigureAwait(false);
            }

            if (decision.HttpStatus is { } status)
            {
                return Local(request, status, "FI", "Mesh.Sdk: fault filter abort");
            }

            if (decision.GrpcStatus is { } grpc)
            {
                var response = new HttpResponseMessage(HttpStatusCode.OK) { RequestMessage = request, Version = HttpVersion.Version20, Content = new ByteArrayContent([]) };
                response.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
                response.Headers.TryAddWithoutValidation("grpc-status", grpc.ToString(CultureInfo.InvariantCulture));
                response.Headers.TryAddWithoutValidation("grpc-message", "fault filter abort");
                response.Headers.TryAddWithoutValidation(ResponseFlagsHeader, "FI");
                return response;
            }

            return null;
        }
        finally
        {
            if (counted)
            {
                Interlocked.Decrement(ref _transports.ActiveFaults);
            }
        }
    }

    /// <summary>
    /// Starts the route's mirrors: for each sampled policy whose cluster is known, a copy of the request as it goes
    /// upstream (method, headers after the route's mutations, rewritten path, <paramref name="authority"/> with
    /// <c>-shadow</c> unless disabled) is sent to an endpoint of the shadow cluster, fire and forget, with the whole body:
    /// at once when there is none or it is a byte-array body within the buffer limit, else when the body has been read
    /// to its end and fit the limit (Envoy shadows the request once its body is complete and only if it was buffered:
    /// a body past the limit is not mirrored).
    /// </summary>
    private async ValueTask StartMirrorsAsync(HttpRequestMessage request, HttpContent? content, ReplayableContent? body, CompiledRoute route, TimeSpan timeout, Uri originalUri, string authority, string pathAndQuery, Random random, CancellationToken cancellationToken)
    {
        List<PendingMirror>? waiting = null;
        byte[]? bytes = null;
        foreach (var mirror in route.MirrorPolicies)
        {
            if (!mirror.ShouldMirror(random) || !_runtime.Clusters.TryGetCluster(mirror.Cluster, out var cluster))
            {
                continue;
            }

            var copy = new HttpRequestMessage(request.Method, originalUri) { Version = request.Version, VersionPolicy = request.VersionPolicy };
            foreach (var header in request.Headers.NonValidated)
            {
                copy.Headers.TryAddWithoutValidation(header.Key, header.Value);
            }

            if (route.IncludeRequestAttemptCount)
            {
                // Envoy sets the count (1) before the shadow's headers are copied.
                copy.Headers.Remove(AttemptCountHeader);
                copy.Headers.TryAddWithoutValidation(AttemptCountHeader, "1");
            }

            copy.Headers.Host = mirror.ShadowAuthority(authority);
            if (content is null)
            {
                _ = MirrorAsync(copy, cluster, pathAndQuery, timeout);
            }
            else if (body is null)
            {
                bytes ??= await content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
                copy.Content = BodyCopy(content, bytes);
                _ = MirrorAsync(copy, cluster, pathAndQuery, timeout);
            }
            else
            {
                (waiting ??= []).Add(new PendingMirror(copy, cluster, pathAndQuery, timeout));
            }
        }

        if (waiting is not null)
        {
            body!.WhenComplete(static (whole, state) => ((MirrorBatch)state!).Send(whole), new MirrorBatch(this, waiting, content!, route.Name, _runtime.Options.RequestBufferLimitBytes));
        }
    }

    private static ByteArrayContent BodyCopy(HttpContent original, byte[] bytes)
    {
        var copy = new ByteArrayContent(bytes);
        foreach (var header in original.Headers.NonValidated)
        {
            if (!string.Equals(header.Key, "Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                copy.Headers.TryAddWithoutValidation(header.Key, header.Value);
            }
        }

        return copy;
    }

    private sealed record PendingMirror(HttpRequestMessage Copy, ClusterRuntime Cluster, string PathAndQuery, TimeSpan Timeout);

    /// <summary>The mirrors of one request waiting for its body to be read to the end.</summary>
    private sealed class MirrorBatch(MeshHttpHandler handler, List<PendingMirror> mirrors, HttpContent content, string routeName, long limit)
    {
        public void Send(byte[]? whole)
        {
            foreach (var mirror in mirrors)
            {
                if (whole is null)
                {
                    Log.MirrorDropped(handler._logger, mirror.Cluster.Name, routeName, limit);
                    mirror.Copy.Dispose();
                    continue;
                }

                mirror.Copy.Content = BodyCopy(content, whole);
                _ = handler.MirrorAsync(mirror.Copy, mirror.Cluster, mirror.PathAndQuery, mirror.Timeout);
            }
        }
    }

    private async Task MirrorAsync(HttpRequestMessage copy, ClusterRuntime cluster, string pathAndQuery, TimeSpan timeout)
    {
        // Fire and forget: never affects the main request; the shadow's response is discarded.
        await Task.Yield();
        using (copy)
        {
            if (!cluster.CircuitBreakers.TryAcquireRequest(RoutingPriority.Default, out var lease))
            {
                return;
            }

            using (lease)
            {
                var context = new PickContext();
                var endpoint = cluster.Pick(in context);
                var connection = default(CircuitBreakerLease);
                if (endpoint is null
                    || (copy.Version.Major < 2 && !cluster.CircuitBreakers.TryAcquireConnection(RoutingPriority.Default, out connection)))
                {
                    return;
                }

                copy.RequestUri = UpstreamUri(copy.RequestUri!, pathAndQuery, cluster);
                using var cts = timeout == Timeout.InfiniteTimeSpan ? new CancellationTokenSource() : new CancellationTokenSource(timeout, _runtime.TimeProvider);
                endpoint.State.RequestStarted();
                try
                {
                    using var response = await _transports.Get(cluster, endpoint).SendAsync(copy, cts.Token).ConfigureAwait(false);
                    cluster.ReportResponse(endpoint, (int)response.StatusCode);
                }
                catch (Exception ex) when (ex is HttpRequestException or OperationCanceledException)
                {
                    Log.MirrorFailed(_logger, cluster.Name, ex.Message);
                }
                finally
                {
                    LeasedContent.Release(default, connection, endpoint.State);
                }
            }
        }
    }

    private static bool RequestAllowsRetry(RetryPolicy policy, HttpRequestMessage request)
    {
        var headers = policy.RetriableRequestHeaders;
        if (headers.Length == 0)
        {
            return true;
        }

        var view = new HttpRequestRouteRequest(request);
        for (var i = 0; i < headers.Length; i++)
        {
            if (headers[i].Matches(in view))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// How an attempt without a response ended, as Envoy's reset reasons tell them apart: a connection that could not
    /// be made, an HTTP/2 REFUSED_STREAM (the upstream did not process the request), or any other reset.
    /// </summary>
    internal static AttemptFailure ClassifyFailure(HttpRequestException exception)
    {
        if (exception.HttpRequestError == HttpRequestError.ConnectionError)
        {
            return AttemptFailure.ConnectFailure;
        }

        for (Exception? inner = exception; inner is not null; inner = inner.InnerException)
        {
            if (inner is HttpProtocolException { ErrorCode: RefusedStreamErrorCode })
            {
                return AttemptFailure.RefusedStream;
            }
        }

        return AttemptFailure.Reset;
    }

    private static bool IsRetriable(RetryPolicy policy, HttpResponseMessage response)
    {
        if (response.Headers.NonValidated.Contains(RetryPolicy.RateLimitedHeader))
        {
            // Envoy never retries a response of a rate-limiting Envoy unless asked to (envoy-ratelimited).
            return policy.RetriesRateLimited;
        }

        if (policy.IsRetriableStatus((int)response.StatusCode))
        {
            return true;
        }

        if (response.Headers.NonValidated.TryGetValues("grpc-status", out var grpc)
            && int.TryParse(grpc.ToString(), NumberStyles.None, CultureInfo.InvariantCulture, out var code)
            && policy.IsRetriableGrpcStatus(code))
        {
            return true;
        }

        var retriableHeaders = policy.RetriableHeaders;
        if (retriableHeaders.Length > 0)
        {
            var view = new ResponseHeadersView(response);
            for (var i = 0; i < retriableHeaders.Length; i++)
            {
                if (retriableHeaders[i].Matches(in view))
                {
                    return true;
                }
            }
        }

        return false;
    }

    private HttpResponseMessage RouteTimeout(HttpRequestMessage request, CompiledRoute route, TimeSpan timeout, int status)
    {
        Log.RouteTimeout(_logger, route.Name, timeout);
        return Local(request, status, "UT", $"Mesh.Sdk: upstream request timeout: route '{route.Name}' timeout {timeout} elapsed");
    }

    private static HttpResponseMessage Overflow(HttpRequestMessage request, CircuitBreakerCounter counter)
    {
        var response = Local(request, 503, "UO", $"Mesh.Sdk: cluster '{counter.ClusterName}' is over its {counter.LimitName} limit of {counter.Limit.ToString(CultureInfo.InvariantCulture)}; the request was not sent (circuit breaker)");
        response.Headers.TryAddWithoutValidation(OverloadedHeader, "true");
        return response;
    }

    /// <summary>A response the SDK makes itself; the reason phrase carries the message, so <c>EnsureSuccessStatusCode</c> shows it.</summary>
    internal static HttpResponseMessage Local(HttpRequestMessage request, int status, string flags, string message)
    {
        var response = new HttpResponseMessage((HttpStatusCode)status)
        {
            RequestMessage = request,
            ReasonPhrase = Sanitize(message),

            // A 204 (x-envoy-upstream-rq-timeout-alt-response) has no body.
            Content = status == 204 ? new ByteArrayContent([]) : new StringContent(message + "\n"),
        };
        response.Headers.TryAddWithoutValidation(ResponseFlagsHeader, flags);
        return response;
    }

    private static string Sanitize(string? text) => text is null ? string.Empty : text.ReplaceLineEndings(" ");

    private static void Cancel(CancellationTokenSource source)
    {
        try
        {
            source.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The attempt already finished.
        }
    }

    // HTTP/2 error code REFUSED_STREAM (RFC 9113, section 7).
    private const long RefusedStreamErrorCode = 0x7;

    internal enum AttemptFailure
    {
        None,
        ConnectFailure,
        RefusedStream,
        Reset,
        PerTryTimeout,
    }

    /// <summary>Response headers seen through <see cref="IRouteRequest"/>, for <c>retriable_headers</c>.</summary>
    private readonly struct ResponseHeadersView(HttpResponseMessage response) : IRouteRequest
    {
        public string Authority => string.Empty;

        public string PathAndQuery => string.Empty;

        public string Method => string.Empty;

        public string Scheme => string.Empty;

        public IPAddress? SourceAddress => null;

        public bool TryGetHeader(string name, [NotNullWhen(true)] out string? value)
        {
            if (response.Headers.NonValidated.TryGetValues(name, out var values)
                || (response.Content is { } content && content.Headers.NonValidated.TryGetValues(name, out values)))
            {
                value = values.Count == 1 ? values.ToString() : string.Join(',', values);
                return true;
            }

            value = null;
            return false;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1100, LogLevel.Debug, "No route for {Method} '{Authority}{PathAndQuery}' in route configuration '{RouteConfigName}'.")]
        public static partial void NoRoute(ILogger logger, string method, string authority, string pathAndQuery, string routeConfigName);

        [LoggerMessage(1101, LogLevel.Debug, "Route '{RouteName}' timed out after {Timeout}.")]
        public static partial void RouteTimeout(ILogger logger, string routeName, TimeSpan timeout);

        [LoggerMessage(1102, LogLevel.Debug, "Mirror request to cluster '{ClusterName}' failed: {Reason}")]
        public static partial void MirrorFailed(ILogger logger, string clusterName, string reason);

        [LoggerMessage(1103, LogLevel.Debug, "Retry not attempted: cluster '{ClusterName}' is at its max_retries limit of {Breakers}.")]
        public static partial void RetryOverflow(ILogger logger, string clusterName, long breakers);

        [LoggerMessage(1105, LogLevel.Debug, "Mirror to cluster '{ClusterName}' of route '{RouteName}' not sent: the request body passed the buffer limit of {Limit} bytes or could not be read to its end.")]
        public static partial void MirrorDropped(ILogger logger, string clusterName, string routeName, long limit);
    }
}

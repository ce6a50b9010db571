using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Mesh.Sdk.LoadBalancing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Sdk.Telemetry.Tracing;

/// <summary>
/// The mesh's tracing for one workload (one per service container): starts a server span per inbound request and a
/// client span per outbound attempt from the <see cref="MeshTelemetry.ActivitySourceName"/> source, decides sampling
/// as Envoy does (an incoming decision is honoured; otherwise <c>random_sampling</c> decides at the first hop), tags
/// the spans as Istio's sidecar does, and hands the sampled spans of this workload, and only those, to the exporter of
/// the <see cref="TracingPolicy"/> in force. Without a policy it starts no spans at all.
/// </summary>
internal sealed partial class MeshTracer : IDisposable
{
    /// <summary>The <see cref="Activity"/> custom property naming the tracer that started a span.</summary>
    private const string OwnerProperty = "Mesh.Sdk.Tracer";

    internal static readonly ActivitySource Source = new(MeshTelemetry.ActivitySourceName);

    // The sampling decision of the span being created on this thread: the listener's Sample callback runs inside
    // CreateActivity, synchronously. 0: not a mesh span being created; 1: propagate only; 2: record.
    [ThreadStatic]
    private static int t_decision;

    private static readonly ActivityListener Listener = CreateListener();

    // The tracer of each runtime, for handlers not built from the service provider (xds:/// gRPC channels).
    private static readonly ConditionalWeakTable<MeshRuntime, MeshTracer> ByRuntime = new();

    private readonly ConcurrentDictionary<string, string> _clientNames = new(StringComparer.Ordinal);
    private readonly Func<TracingPolicy, SpanExport> _exportFactory;
    private readonly ILogger _logger;
    private readonly KeyValuePair<string, object?>[] _ownTags;
    private readonly Lock _gate = new();
    private volatile State? _state;
    private object? _lastOutbound;
    private object? _lastInbound;
    private bool _lastOutboundRejected;
    private bool _disposed;

    public MeshTracer(TracerIdentity identity, Func<TracingPolicy, SpanExport> exportFactory, ILogger? logger = null)
    {
        _ = Listener;
        Identity = identity;
        _exportFactory = exportFactory;
        _logger = logger ?? NullLogger.Instance;
        _ownTags =
        [
            new("component", "proxy"),
            new("node_id", identity.NodeId),
            new("istio.canonical_service", identity.CanonicalService),
            new("istio.canonical_revision", identity.CanonicalRevision),
            new("istio.namespace", identity.Namespace),
            new("istio.mesh_id", identity.MeshId),
            new("istio.cluster_id", identity.ClusterId),
        ];
    }

    /// <summary>The tracer of <paramref name="runtime"/>'s workload, once the service provider made it.</summary>
    public static MeshTracer? For(MeshRuntime runtime) => ByRuntime.TryGetValue(runtime, out var tracer) ? tracer : null;

    internal static void Register(MeshRuntime runtime, MeshTracer tracer) => ByRuntime.AddOrUpdate(runtime, tracer);

    /// <summary>
    /// Sends one gRPC attempt inside its own client span (the endpoint is picked below, by grpc-dotnet's picker: the
    /// span names the cluster; <c>grpc.status_code</c> is tagged for trailers-only responses).
    /// </summary>
    public async Task<HttpResponseMessage> SendGrpcAsync(Func<HttpRequestMessage, CancellationToken, Task<HttpResponseMessage>> send, HttpRequestMessage request, string cluster, CancellationToken cancellationToken)
    {
        var span = StartClient(request, cluster, endpoint: null);
        if (span is null)
        {
            return await send(request, cancellationToken).ConfigureAwait(false);
        }

        HttpResponseMessage? response = null;
        try
        {
            response = await send(request, cancellationToken).ConfigureAwait(false);
            if (span.IsAllDataRequested && response.Headers.NonValidated.TryGetValues("grpc-status", out var status))
            {
                span.SetTag("grpc.status_code", status.ToString());
            }

            return response;
        }
        finally
        {
            StopClient(span, response, response is null ? "UF" : null);
        }
    }

    /// <summary>Who this workload is, for span names and tags.</summary>
    public TracerIdentity Identity { get; }

    /// <summary>The policy of outbound requests (the outbound HttpConnectionManagers'), or <see langword="null"/>.</summary>
    public TracingPolicy? ClientPolicy => _state?.Client;

    /// <summary>The policy of inbound requests (the inbound listener's HttpConnectionManager), or <see langword="null"/>.</summary>
    public TracingPolicy? ServerPolicy => _state?.Server;

    /// <summary>Whether client spans are started (an outbound policy is in force).</summary>
    public bool Enabled => _state?.Client is not null;

    /// <summary>Whether server spans are started (an inbound policy is in force).</summary>
    public bool ServerEnabled => _state?.Server is not null;

    /// <summary>The exporter in force (tests flush it).</summary>
    internal SpanExport? Export => _state?.Export;

    /// <summary>Puts <paramref name="policy"/> in force on both sides (<see langword="null"/> turns tracing off).</summary>
    public void Apply(TracingPolicy? policy) => Apply(policy, policy, client: true, server: true);

    /// <summary>Puts the outbound HttpConnectionManagers' policy in force.</summary>
    public void ApplyClient(TracingPolicy? policy) => Apply(policy, null, client: true, server: false);

    /// <summary>Puts the inbound listener's policy in force.</summary>
    public void ApplyServer(TracingPolicy? policy) => Apply(null, policy, client: false, server: true);

    /// <summary>
    /// Changes the policies. The workload has one exporter, the inbound policy's (else the outbound one's): a change
    /// of sampling or tags keeps it; a change of provider or collector starts a new one and flushes and shuts down the
    /// old one in the background.
    /// </summary>
    private void Apply(TracingPolicy? clientPolicy, TracingPolicy? serverPolicy, bool client, bool server)
    {
        SpanExport? retired = null;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            var current = _state;
            var nextClient = client ? clientPolicy : current?.Client;
            var nextServer = server ? serverPolicy : current?.Server;
            if (Equals(current?.Client, nextClient) && Equals(current?.Server, nextServer))
            {
                return;
            }

            var exporting = nextServer ?? nextClient;
            if (exporting is null)
            {
                retired = current?.Export;
                _state = null;
            }
            else if (current is not null && current.Export.Policy.SameExporter(exporting))
            {
                _state = new State(nextClient, nextServer, current.Export);
            }
            else
            {
                retired = current?.Export;
                _state = new State(nextClient, nextServer, _exportFactory(exporting));
            }

            Log.PolicyApplied(_logger, Describe(nextClient), Describe(nextServer));
        }

        if (retired is not null)
        {
            // Flushing goes over the network: never on the thread applying configuration.
            _ = Task.Run(retired.Dispose);
        }
    }

    private static string Describe(TracingPolicy? policy)
        => policy is null ? "off" : $"{policy.Provider} {policy.CollectorUri} random_sampling {policy.RandomSampling.ToString(CultureInfo.InvariantCulture)}%";

    /// <summary>
    /// Follows the outbound HttpConnectionManagers (istiod gives every outbound listener of a proxy the same tracing):
    /// the first listener's <c>tracing</c> is the client policy; none means client spans are off. A tracing that does
    /// not compile is logged and the last good policy stays in force.
    /// </summary>
    public void OnOutbound(Routing.RouteTableSet routes)
    {
        Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager.Types.Tracing? tracing = null;
        string? where = null;
        foreach (var listener in routes.Listeners)
        {
            if (routes.TryGetEntry(listener, out var entry) && entry.HttpConnectionManager.Tracing is { } found)
            {
                tracing = found;
                where = $"listener '{listener}'";
                break;
            }
        }

        if (Equals(tracing, _lastOutbound) && (tracing is null || _state is not null || _lastOutboundRejected))
        {
            return;
        }

        _lastOutbound = tracing;
        _lastOutboundRejected = false;
        try
        {
            ApplyClient(TracingPolicyCompiler.Compile(tracing, where ?? "outbound"));
        }
        catch (TracingConfigException ex)
        {
            _lastOutboundRejected = true;
            Log.Rejected(_logger, where ?? "outbound", ex.Message);
        }
    }

    /// <summary>Follows the inbound listener of a port: its HttpConnectionManager's <c>tracing</c> is the server policy.</summary>
    public void OnInbound(Envoy.Config.Listener.V3.Listener listener)
    {
        var where = $"inbound listener '{listener.Name}'";
        try
        {
            var tracing = TracingPolicyCompiler.InboundTracing(listener);
            if (Equals(tracing, Interlocked.Exchange(ref _lastInbound, tracing)))
            {
                // Unchanged (a listener without tracing leaves alone what was never turned on by one).
                return;
            }

            ApplyServer(TracingPolicyCompiler.Compile(tracing, where));
        }
        catch (Exception ex) when (ex is TracingConfigException or Google.Protobuf.InvalidProtocolBufferException)
        {
            Log.Rejected(_logger, where, ex.Message);
        }
    }

    /// <summary>
    /// Starts the server span of an inbound request (made current), continuing <paramref name="incoming"/>; a request
    /// without a trace starts a new one. <see langword="null"/> when tracing is off.
    /// </summary>
    public Activity? StartServer(in IncomingTrace incoming, bool clientTraceId)
    {
        if (_state is not { Server: { } policy })
        {
            return null;
        }

        var sampled = Decide(policy, incoming.Sampled, clientTraceId);
        var previous = Activity.Current;
        if (!incoming.HasParent && previous is not null)
        {
            // A request without a trace context starts one; an activity the app's own instrumentation started for
            // the request is not the caller's span.
            Activity.Current = null;
        }

        var span = Start(Identity.ServerOperationName, ActivityKind.Server, incoming.Parent, sampled);
        if (span is null && previous is not null)
        {
            Activity.Current = previous;
        }

        return span;
    }

    /// <summary>
    /// Starts the client span of one outbound attempt to <paramref name="endpoint"/> of <paramref name="cluster"/> (made
    /// current) and writes its context onto the request. Its parent is the current activity (the server span of the
    /// request being handled), else the trace headers the request already carries; without either it starts a trace,
    /// sampled by <c>random_sampling</c>. Named after the route's decorator operation when it has one.
    /// </summary>
    public Activity? StartClient(HttpRequestMessage request, string cluster, MeshEndpoint? endpoint, string? operation = null)
    {
        if (_state is not { Client: { } policy } || global::OpenTelemetry.Sdk.SuppressInstrumentation)
        {
            // Off, or the exporter's own request to the collector: never traced, or every export would make spans.
            return null;
        }

        var headers = request.Headers;
        ActivityContext parent;
        bool sampled;
        if (ParentOf(Activity.Current) is { } current)
        {
            parent = current.Context;
            sampled = current.Recorded;
        }
        else
        {
            var incoming = TraceHeaders.Parse(headers);
            parent = incoming.Parent;
            sampled = Decide(policy, incoming.Sampled, headers.Contains(TraceHeaders.ClientTraceId));
        }

        // The route's decorator names the span, as in Envoy; without one, the cluster's host:port/*.
        var span = Start(operation ?? ClientOperationName(cluster), ActivityKind.Client, parent, sampled);
        if (span is null)
        {
            return null;
        }

        TraceHeaders.Inject(headers, span);
        if (span.IsAllDataRequested)
        {
            span.SetTag("http.url", request.RequestUri?.OriginalString);
            span.SetTag("http.method", request.Method.Method);
            span.SetTag("http.protocol", Protocol(request.Version));
            span.SetTag("upstream_cluster", cluster);
            span.SetTag("upstream_cluster.name", cluster);
            if (endpoint is not null)
            {
                span.SetTag("upstream_address", string.Concat(endpoint.Host, ":", endpoint.Port.ToString(CultureInfo.InvariantCulture)));
            }

            span.SetTag("downstream_cluster", "-");
            if (headers.NonValidated.TryGetValues(TraceHeaders.RequestId, out var id))
            {
                span.SetTag("guid:x-request-id", id.ToString());
            }

            if (headers.NonValidated.TryGetValues("User-Agent", out var agent))
            {
                span.SetTag("user_agent", agent.ToString());
            }

            span.SetTag("request_size", request.Content?.Headers.ContentLength ?? 0);
            AddCustomTags(span, policy, request);
        }

        return span;
    }

    /// <summary>
    /// The parent of a client span: the nearest enclosing server span of this workload, so the mesh's spans link up by
    /// themselves even when activities of the app or its libraries (grpc-dotnet's call activity, say) sit in between
    /// and are not exported; else the current W3C activity (the app's own trace); else none.
    /// </summary>
    private Activity? ParentOf(Activity? current)
    {
        for (var activity = current; activity is not null; activity = activity.Parent)
        {
            if (ReferenceEquals(activity.GetCustomProperty(OwnerProperty), this))
            {
                return activity;
            }
        }

        return current is { IdFormat: ActivityIdFormat.W3C } ? current : null;
    }

    /// <summary>Ends a client span with the attempt's outcome: status, response size, flags, and <c>error</c> for 5xx and failures.</summary>
    public static void StopClient(Activity span, HttpResponseMessage? response, string? flags)
    {
        if (span.IsAllDataRequested)
        {
            var status = response is null ? 0 : (int)response.StatusCode;
            span.SetTag("http.status_code", status.ToString(CultureInfo.InvariantCulture));
            span.SetTag("response_size", response?.Content.Headers.ContentLength ?? 0);
            span.SetTag("response_flags", flags ?? MeshMetrics.NoFlags);
            if (status is 0 or >= 500)
            {
                span.SetTag("error", "true");
                span.SetStatus(ActivityStatusCode.Error);
            }
        }

        span.Stop();
    }

    /// <summary>The tags every span of this workload carries, and the policy's custom tags with <paramref name="header"/> reading request headers.</summary>
    public void AddServerTags(Activity span, Func<string, string?> header)
    {
        if (_state is { Server: { } policy })
        {
            AddCustomTags(span, policy, header);
        }
    }

    /// <summary>Istio's <c>http.protocol</c> value.</summary>
    public static string Protocol(Version version) => version.Major switch
    {
        2 => "HTTP/2",
        3 => "HTTP/3",
        _ => version.Minor == 0 ? "HTTP/1.0" : "HTTP/1.1",
    };

    public void Dispose()
    {
        SpanExport? export;
        lock (_gate)
        {
            _disposed = true;
            export = _state?.Export;
            _state = null;
        }

        export?.Dispose();
    }

    /// <summary>Envoy's decision: an incoming decision is honoured, else <c>client_sampling</c> for a forced trace (<c>x-client-trace-id</c>), else <c>random_sampling</c>; then <c>overall_sampling</c>.</summary>
    internal static bool Decide(TracingPolicy policy, bool? incoming, bool clientTraceId)
    {
        var sampled = incoming ?? (clientTraceId ? Roll(policy.ClientSampling) : Roll(policy.RandomSampling));
        return sampled && Roll(policy.OverallSampling);
    }

    private static bool Roll(double percent) => percent >= 100 || (percent > 0 && Random.Shared.NextDouble() * 100 < percent);

    /// <summary>The operation name Istio's route decorator gives an outbound cluster: <c>outbound|9080|v1|web.default.svc.cluster.local</c> → <c>web.default.svc.cluster.local:9080/*</c>.</summary>
    internal string ClientOperationName(string cluster)
    {
        if (_clientNames.TryGetValue(cluster, out var name))
        {
            return name;
        }

        var parts = cluster.Split('|');
        name = parts.Length == 4 ? string.Concat(parts[3], ":", parts[1], "/*") : cluster;
        return _clientNames.Count < 4096 ? _clientNames.GetOrAdd(cluster, name) : name;
    }

    private Activity? Start(string name, ActivityKind kind, ActivityContext parent, bool sampled)
    {
        t_decision = sampled ? 2 : 1;
        Activity? span;
        try
        {
            span = Source.CreateActivity(name, kind, parent);
        }
        finally
        {
            t_decision = 0;
        }

        if (span is null)
        {
            return null;
        }

        // Other listeners of the source (an app's own TracerProvider) may ask for more; the mesh's decision stands.
        span.ActivityTraceFlags = sampled ? ActivityTraceFlags.Recorded : ActivityTraceFlags.None;
        span.SetCustomProperty(OwnerProperty, this);
        if (span.IsAllDataRequested)
        {
            foreach (var (key, value) in _ownTags)
            {
                span.SetTag(key, value);
            }
        }

        return span.Start();
    }

    private static void AddCustomTags(Activity span, TracingPolicy policy, HttpRequestMessage request)
    {
        var tags = policy.CustomTags;
        for (var i = 0; i < tags.Count; i++)
        {
            var tag = tags[i];
            var value = tag.Kind switch
            {
                CustomTagKind.Literal => tag.Value,
                CustomTagKind.Environment => Environment.GetEnvironmentVariable(tag.Value),
                _ => request.Headers.NonValidated.TryGetValues(tag.Value, out var values) ? values.ToString() : null,
            };
            span.SetTag(tag.Tag, string.IsNullOrEmpty(value) ? tag.DefaultValue : value);
        }
    }

    private static void AddCustomTags(Activity span, TracingPolicy policy, Func<string, string?> header)
    {
        var tags = policy.CustomTags;
        for (var i = 0; i < tags.Count; i++)
        {
            var tag = tags[i];
            var value = tag.Kind switch
            {
                CustomTagKind.Literal => tag.Value,
                CustomTagKind.Environment => Environment.GetEnvironmentVariable(tag.Value),
                _ => header(tag.Value),
            };
            span.SetTag(tag.Tag, string.IsNullOrEmpty(value) ? tag.DefaultValue : value);
        }
    }

    private void OnStopped(Activity span)
    {
        if (span.Recorded && _state is { } state)
        {
            state.Export.OnEnd(span);
        }
    }

    private static ActivityListener CreateListener()
    {
        var listener = new ActivityListener
        {
            ShouldListenTo = static source => ReferenceEquals(source, Source),
            Sample = static (ref ActivityCreationOptions<ActivityContext> _) => t_decision switch
            {
                2 => ActivitySamplingResult.AllDataAndRecorded,
                1 => ActivitySamplingResult.PropagationData,
                _ => ActivitySamplingResult.None,
            },
            ActivityStopped = static span =>
            {
                if (span.GetCustomProperty(OwnerProperty) is MeshTracer tracer)
                {
                    tracer.OnStopped(span);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        return listener;
    }

    private sealed record State(TracingPolicy? Client, TracingPolicy? Server, SpanExport Export);

    private static partial class Log
    {
        [LoggerMessage(1500, LogLevel.Information, "Tracing: outbound {Client}; inbound {Server}.")]
        public static partial void PolicyApplied(ILogger logger, string client, string server);

        [LoggerMessage(1501, LogLevel.Warning, "Tracing configuration of {Where} not applied, the last good one stays in force: {Reason}")]
        public static partial void Rejected(ILogger logger, string where, string reason);
    }
}

/// <summary>
/// What a workload's spans say about it: the operation name of its server spans (Istio's inbound route decorator,
/// <c>reviews.default.svc.cluster.local:9080/*</c>), the service name Zipkin shows (<c>&lt;app&gt;.&lt;namespace&gt;</c>),
/// and Istio's tags.
/// </summary>
internal sealed record TracerIdentity(string ServerOperationName, string ServiceName, string NodeId, string CanonicalService, string CanonicalRevision, string Namespace, string MeshId, string ClusterId)
{
    public static TracerIdentity Create(MeshRuntime runtime)
    {
        var options = runtime.Options;
        var labels = WorkloadLabels.Own(options, runtime.Namespace, runtime.Bootstrap.Node.Metadata);
        var host = options.ServiceName switch
        {
            null or "" => labels.Workload,
            { } name when name.Contains('.', StringComparison.Ordinal) => name,
            { } name => $"{name}.{runtime.Namespace}.svc.{options.ClusterDomain}",
        };
        var operation = options.ServicePort is { } port ? string.Create(CultureInfo.InvariantCulture, $"{host}:{port}/*") : host + "/*";
        var app = labels.App != WorkloadLabels.Unknown ? labels.App : labels.Workload;
        var metadata = runtime.Bootstrap.Node.Metadata;
        var meshId = metadata.ValueKind == JsonValueKind.Object && metadata.TryGetProperty("MESH_ID", out var m) && m.ValueKind == JsonValueKind.String
            ? m.GetString()! : options.ClusterDomain;
        return new TracerIdentity(
            operation,
            $"{app}.{runtime.Namespace}",
            runtime.Bootstrap.Node.Id ?? string.Empty,
            app,
            labels.Version != WorkloadLabels.Unknown ? labels.Version : "latest",
            runtime.Namespace,
            meshId,
            labels.Cluster);
    }
}

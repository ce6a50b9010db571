using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using Mesh.Sdk.LoadBalancing;

namespace Mesh.Sdk.Telemetry;

/// <summary>
/// Istio's standard request metrics for one workload, recorded through the <see cref="MeshTelemetry.MeterName"/> meter
/// (one meter per service container, from <see cref="IMeterFactory"/> when there is one) and aggregated per series for
/// the Prometheus exposition in the workload's own prometheus-net registry (<see cref="Registry"/>), so that several
/// workloads in one process keep their own numbers. Label sets are cached per endpoint, cluster and peer; a request
/// looks its series up and records.
/// </summary>
internal sealed class MeshMetrics : IDisposable
{
    public const string SourceReporter = "source";
    public const string DestinationReporter = "destination";
    public const string MutualTls = "mutual_tls";
    public const string NoTls = "none";
    public const string HttpProtocol = "http";
    public const string GrpcProtocol = "grpc";
    public const string NoFlags = "-";

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Counter<long> _requests;
    private readonly Histogram<double> _duration;
    private readonly Histogram<double> _requestBytes;
    private readonly Histogram<double> _responseBytes;
    private readonly Counter<long> _requestMessages;
    private readonly Counter<long> _responseMessages;
    private readonly ConditionalWeakTable<MeshEndpoint, LabelSet> _byEndpoint = new();
    private readonly ConcurrentDictionary<string, LabelSet> _byCluster = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<InboundKey, LabelSet> _inbound = new();
    private readonly List<MetricSeries> _all = [];
    private readonly Dictionary<string, MetricSeries> _byLabels = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private readonly ServiceLabels _ownService;
    private readonly PrometheusFamilies _families = new();

    public MeshMetrics(WorkloadLabels self, ServiceLabels ownService, string? nodeId, IMeterFactory? meterFactory)
    {
        Self = self;
        _ownService = ownService;
        PeerMetadata = self.ToPeerMetadata();
        PeerMetadataId = string.IsNullOrEmpty(nodeId) ? null : nodeId;
        if (meterFactory is not null)
        {
            _meter = meterFactory.Create(new MeterOptions(MeshTelemetry.MeterName));
        }
        else
        {
            _meter = new Meter(MeshTelemetry.MeterName);
            _ownsMeter = true;
        }

        var buckets = new InstrumentAdvice<double> { HistogramBucketBoundaries = MeshTelemetry.HistogramBuckets };
        _requests = _meter.CreateCounter<long>(MeshTelemetry.RequestsTotal, "{request}", "Requests, counted by the caller (reporter=\"source\") and by the callee (reporter=\"destination\").");
        _duration = _meter.CreateHistogram<double>(MeshTelemetry.RequestDuration, "ms", "Request duration.", tags: null, advice: buckets);
        _requestBytes = _meter.CreateHistogram<double>(MeshTelemetry.RequestBytes, "By", "Request body size.", tags: null, advice: buckets);
        _responseBytes = _meter.CreateHistogram<double>(MeshTelemetry.ResponseBytes, "By", "Response body size.", tags: null, advice: buckets);
        _requestMessages = _meter.CreateCounter<long>(MeshTelemetry.RequestMessages, "{message}", "gRPC messages sent by the client.");
        _responseMessages = _meter.CreateCounter<long>(MeshTelemetry.ResponseMessages, "{message}", "gRPC messages sent by the server.");
    }

    /// <summary>
    /// The metrics of the workload <paramref name="runtime"/> runs, or <see langword="null"/> when
    /// <c>Mesh:Telemetry:Metrics</c> is off.
    /// </summary>
    public static MeshMetrics? Create(MeshRuntime runtime, IMeterFactory? meterFactory)
    {
        var options = runtime.Options;
        if (!options.Telemetry.Metrics)
        {
            return null;
        }

        var self = WorkloadLabels.Own(options, runtime.Namespace, runtime.Bootstrap.Node.Metadata);
        var service = options.ServiceName switch
        {
            null or "" => ServiceLabels.Unknown,
            { } name when name.Contains('.', StringComparison.Ordinal) => ServiceLabels.FromHost(name),
            { } name => ServiceLabels.FromHost($"{name}.{runtime.Namespace}.svc.{options.ClusterDomain}"),
        };
        return new MeshMetrics(self, service, runtime.Bootstrap.Node.Id, meterFactory);
    }

    /// <summary>This workload's own labels.</summary>
    public WorkloadLabels Self { get; }

    /// <summary>The value of <see cref="MeshTelemetry.PeerMetadataHeader"/> this workload sends.</summary>
    public string PeerMetadata { get; }

    /// <summary>The value of <see cref="MeshTelemetry.PeerMetadataIdHeader"/> this workload sends (its node id).</summary>
    public string? PeerMetadataId { get; }

    /// <summary>This workload's prometheus-net registry: Istio's metrics and nothing else (no process or runtime metrics).</summary>
    public Prometheus.CollectorRegistry Registry => _families.Registry;

    /// <summary>The content type of the Prometheus text exposition.</summary>
    public const string TextContentType = "text/plain; version=0.0.4; charset=utf-8";

    /// <summary>Writes the metrics in the Prometheus text exposition format (version 0.0.4) through prometheus-net.</summary>
    public Task WriteTextAsync(Stream destination, CancellationToken cancellationToken)
        => Registry.CollectAndExportAsTextAsync(destination, Prometheus.ExpositionFormat.PrometheusText, cancellationToken);

    /// <summary>The metrics in the Prometheus text exposition format, as a string (tests, diagnostics).</summary>
    public async Task<string> ToTextAsync()
    {
        using var buffer = new MemoryStream();
        await WriteTextAsync(buffer, CancellationToken.None).ConfigureAwait(false);
        return System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>Decodes callers' peer metadata headers once each.</summary>
    public PeerMetadataCache Peers { get; } = new();

    /// <summary>
    /// The caller's view of a request sent to <paramref name="endpoint"/> of <paramref name="cluster"/>: destination
    /// workload from the endpoint's EDS metadata, service from the cluster name, principal from the certificate the
    /// endpoint presented in a verified mesh mTLS handshake (else <c>unknown</c>). Istio's caller reports
    /// <c>connection_security_policy="unknown"</c>.
    /// </summary>
    public LabelSet Outbound(string cluster, MeshEndpoint endpoint)
    {
        var principal = endpoint.State.PeerPrincipal ?? WorkloadLabels.Unknown;
        if (_byEndpoint.TryGetValue(endpoint, out var set) && ReferenceEquals(set.Destination.Principal, principal))
        {
            return set;
        }

        var destination = WorkloadLabels.FromEndpointMetadata(endpoint.Metadata) with { Principal = principal };
        set = new LabelSet(this, SourceReporter, Self, destination, ServiceLabels.FromCluster(cluster), WorkloadLabels.Unknown);
        _byEndpoint.AddOrUpdate(endpoint, set);
        return set;
    }

    /// <summary>The caller's view of a request answered before an endpoint was chosen (no route, no cluster, fault, overflow).</summary>
    public LabelSet Outbound(string? cluster)
        => _byCluster.GetOrAdd(cluster ?? string.Empty, static (name, self) => new LabelSet(self, SourceReporter, self.Self, WorkloadLabels.None, ServiceLabels.FromCluster(name), WorkloadLabels.Unknown), this);

    /// <summary>
    /// The callee's view of a request: the caller's workload, app, version and cluster from its peer metadata header;
    /// its principal and namespace from the verified mTLS identity when there is one, which always wins over the header.
    /// </summary>
    public LabelSet Inbound(WorkloadLabels? peer, string? verifiedSpiffeId, string? verifiedNamespace)
        => _inbound.GetOrAdd(new InboundKey(peer, verifiedSpiffeId, verifiedNamespace), static (key, self) =>
        {
            var source = key.Peer ?? WorkloadLabels.None;
            var mtls = key.SpiffeId is not null;
            if (mtls)
            {
                source = source with { Principal = key.SpiffeId!, Namespace = key.Namespace ?? WorkloadLabels.Unknown };
            }

            var destination = mtls ? self.Self : self.Self with { Principal = WorkloadLabels.Unknown };
            return new LabelSet(self, DestinationReporter, source, destination, self._ownService, mtls ? MutualTls : NoTls);
        }, this);

    /// <summary>Records one request in <paramref name="series"/> and through the meter.</summary>
    public void Record(MetricSeries series, double milliseconds, long requestBytes, long responseBytes)
    {
        series.Record(milliseconds, requestBytes, responseBytes);
        ReadOnlySpan<KeyValuePair<string, object?>> tags = series.Tags;
        _requests.Add(1, tags);
        _duration.Record(milliseconds, tags);
        _requestBytes.Record(requestBytes, tags);
        _responseBytes.Record(responseBytes, tags);
    }

    /// <summary>Records one gRPC call in <paramref name="series"/> and through the meter, with its message counts.</summary>
    public void Record(MetricSeries series, double milliseconds, long requestBytes, long responseBytes, long requestMessages, long responseMessages)
    {
        Record(series, milliseconds, requestBytes, responseBytes);
        series.RecordMessages(requestMessages, responseMessages);
        ReadOnlySpan<KeyValuePair<string, object?>> tags = series.Tags;
        _requestMessages.Add(requestMessages, tags);
        _responseMessages.Add(responseMessages, tags);
    }

    /// <summary>The protocol label of a request by its content type: <c>grpc</c> for <c>application/grpc*</c>, else <c>http</c>.</summary>
    public static string Protocol(string? contentType)
        => contentType is not null && contentType.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) ? GrpcProtocol : HttpProtocol;

    /// <summary>
    /// Sets this workload's peer metadata headers on an outbound request, replacing any it carries (copied from an
    /// incoming request, say), as Istio's sidecar always sends its own.
    /// </summary>
    public void AddPeerMetadata(HttpRequestHeaders headers)
    {
        if (headers.NonValidated.Contains(MeshTelemetry.PeerMetadataHeader))
        {
            headers.Remove(MeshTelemetry.PeerMetadataHeader);
        }

        if (headers.NonValidated.Contains(MeshTelemetry.PeerMetadataIdHeader))
        {
            headers.Remove(MeshTelemetry.PeerMetadataIdHeader);
        }

        headers.TryAddWithoutValidation(MeshTelemetry.PeerMetadataHeader, PeerMetadata);
        if (PeerMetadataId is not null)
        {
            headers.TryAddWithoutValidation(MeshTelemetry.PeerMetadataIdHeader, PeerMetadataId);
        }
    }

    /// <summary>
    /// The series with labels <paramref name="tags"/>: the one already known, else a new one. Label sets are remade when
    /// an EDS update replaces an endpoint; its series carry on.
    /// </summary>
    internal MetricSeries Intern(KeyValuePair<string, object?>[] tags, bool grpc)
    {
        lock (_gate)
        {
            var key = new System.Text.StringBuilder();
            foreach (var tag in tags)
            {
                key.Append((string)tag.Value!).Append('\u001f');
            }

            var text = key.ToString();
            if (_byLabels.TryGetValue(text, out var known))
            {
                return known;
            }

            var series = new MetricSeries(tags, _families, grpc);
            _byLabels.Add(text, series);
            _all.Add(series);
            return series;
        }
    }

    /// <summary>Every series recorded so far, in the order they appeared.</summary>
    public MetricSeries[] Snapshot()
    {
        lock (_gate)
        {
            return [.. _all];
        }
    }

    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    private readonly record struct InboundKey(WorkloadLabels? Peer, string? SpiffeId, string? Namespace);
}

using System.Collections.Concurrent;
using System.Globalization;

namespace Mesh.Sdk.Telemetry;

/// <summary>
/// The labels of one side of a request that stay the same for every outcome: reporter, source and destination
/// workloads, the destination service and the connection security policy. Cached per endpoint, cluster or peer; each
/// outcome (protocol, response code, gRPC status, flags) is one <see cref="MetricSeries"/>, made once.
/// </summary>
internal sealed class LabelSet
{
    private readonly MeshMetrics _owner;
    private readonly ConcurrentDictionary<Outcome, MetricSeries> _series = new();

    public LabelSet(MeshMetrics owner, string reporter, WorkloadLabels source, WorkloadLabels destination, ServiceLabels service, string securityPolicy)
    {
        _owner = owner;
        Reporter = reporter;
        Source = source;
        Destination = destination;
        Service = service;
        SecurityPolicy = securityPolicy;
    }

    public string Reporter { get; }

    public WorkloadLabels Source { get; }

    public WorkloadLabels Destination { get; }

    public ServiceLabels Service { get; }

    public string SecurityPolicy { get; }

    public MetricSeries Get(string protocol, int responseCode, string grpcStatus, string flags)
        => _series.GetOrAdd(new Outcome(protocol, responseCode, grpcStatus, flags), static (outcome, set) => set.Create(outcome), this);

    private MetricSeries Create(Outcome outcome)
    {
        KeyValuePair<string, object?>[] tags =
        [
            new("reporter", Reporter),
            new("source_workload", Source.Workload),
            new("source_workload_namespace", Source.Namespace),
            new("source_principal", Source.Principal),
            new("source_app", Source.App),
            new("source_version", Source.Version),
            new("source_cluster", Source.Cluster),
            new("destination_workload", Destination.Workload),
            new("destination_workload_namespace", Destination.Namespace),
            new("destination_principal", Destination.Principal),
            new("destination_app", Destination.App),
            new("destination_version", Destination.Version),
            new("destination_service", Service.Host),
            new("destination_service_name", Service.Name),
            new("destination_service_namespace", Service.Namespace),
            new("destination_cluster", Destination.Cluster),
            new("request_protocol", outcome.Protocol),
            new("response_code", ResponseCodes.Text(outcome.ResponseCode)),
            new("grpc_response_status", outcome.GrpcStatus),
            new("response_flags", outcome.Flags),
            new("connection_security_policy", SecurityPolicy),
        ];
        return _owner.Intern(tags, string.Equals(outcome.Protocol, MeshMetrics.GrpcProtocol, StringComparison.Ordinal));
    }

    private readonly record struct Outcome(string Protocol, int ResponseCode, string GrpcStatus, string Flags);
}

/// <summary>The destination service labels: its host name, short name and namespace.</summary>
internal sealed record ServiceLabels(string Host, string Name, string Namespace)
{
    public static readonly ServiceLabels Unknown = new(WorkloadLabels.Unknown, WorkloadLabels.Unknown, WorkloadLabels.Unknown);

    /// <summary>
    /// The service of an Istio cluster name <c>outbound|9080|v1|reviews.default.svc.cluster.local</c> (or of a host name):
    /// the host, its first label, and its second label when the host is <c>name.namespace.svc.*</c>.
    /// </summary>
    public static ServiceLabels FromCluster(string? cluster)
    {
        if (string.IsNullOrEmpty(cluster))
        {
            return Unknown;
        }

        var host = cluster;
        var bar = cluster.LastIndexOf('|');
        if (bar >= 0)
        {
            host = cluster[(bar + 1)..];
        }

        return FromHost(host);
    }

    public static ServiceLabels FromHost(string host)
    {
        if (host.Length == 0)
        {
            return Unknown;
        }

        var parts = host.Split('.');
        var ns = parts.Length >= 3 && parts[2] == "svc" ? parts[1] : WorkloadLabels.Unknown;
        return new ServiceLabels(host, parts[0], ns);
    }
}

/// <summary>
/// One labelled series of Istio's metrics: its tags (handed to the meter as they are) and its prometheus-net children
/// in the workload's registry (<c>WithLabels</c> once, here), which the Prometheus exposition reads. gRPC series also
/// carry the message counters.
/// </summary>
internal sealed class MetricSeries
{
    public MetricSeries(KeyValuePair<string, object?>[] tags, PrometheusFamilies families, bool grpc = false)
    {
        Tags = tags;
        IsGrpc = grpc;
        var values = new string[tags.Length];
        for (var i = 0; i < tags.Length; i++)
        {
            values[i] = (string)tags[i].Value!;
        }

        RequestsChild = families.Requests.WithLabels(values);
        Duration = families.Duration.WithLabels(values);
        RequestBytes = families.RequestBytes.WithLabels(values);
        ResponseBytes = families.ResponseBytes.WithLabels(values);
        if (grpc)
        {
            RequestMessagesChild = families.RequestMessages.WithLabels(values);
            ResponseMessagesChild = families.ResponseMessages.WithLabels(values);
        }
    }

    public KeyValuePair<string, object?>[] Tags { get; }

    /// <summary>Whether the series counts gRPC calls, which also report message counts.</summary>
    public bool IsGrpc { get; }

    public Prometheus.Counter.Child RequestsChild { get; }

    public Prometheus.Histogram.Child Duration { get; }

    public Prometheus.Histogram.Child RequestBytes { get; }

    public Prometheus.Histogram.Child ResponseBytes { get; }

    public Prometheus.Counter.Child? RequestMessagesChild { get; }

    public Prometheus.Counter.Child? ResponseMessagesChild { get; }

    public long Requests => (long)RequestsChild.Value;

    public void Record(double milliseconds, long requestBytes, long responseBytes)
    {
        RequestsChild.Inc();
        Duration.Observe(milliseconds);
        RequestBytes.Observe(requestBytes);
        ResponseBytes.Observe(responseBytes);
    }

    public void RecordMessages(long requestMessages, long responseMessages)
    {
        RequestMessagesChild?.Inc(requestMessages);
        ResponseMessagesChild?.Inc(responseMessages);
    }
}

/// <summary>
/// Istio's metric families in one workload's own prometheus-net registry (never the static default registry: several
/// meshed apps can share a process and each serves only its own numbers): names, help, label names and buckets as
/// Istio's sidecars export them.
/// </summary>
internal sealed class PrometheusFamilies
{
    /// <summary>Every label of Istio's standard request metrics, in the order they are exported.</summary>
    public static readonly string[] LabelNames =
    [
        "reporter", "source_workload", "source_workload_namespace", "source_principal", "source_app", "source_version", "source_cluster",
        "destination_workload", "destination_workload_namespace", "destination_principal", "destination_app", "destination_version",
        "destination_service", "destination_service_name", "destination_service_namespace", "destination_cluster",
        "request_protocol", "response_code", "grpc_response_status", "response_flags", "connection_security_policy",
    ];

    public PrometheusFamilies()
    {
        Registry = Prometheus.Metrics.NewCustomRegistry();
        var factory = Prometheus.Metrics.WithCustomRegistry(Registry);
        var counter = new Prometheus.CounterConfiguration { LabelNames = LabelNames };
        var histogram = new Prometheus.HistogramConfiguration { LabelNames = LabelNames, Buckets = MeshTelemetry.HistogramBuckets };
        Requests = factory.CreateCounter(MeshTelemetry.RequestsTotal, "Requests, counted by the caller (reporter=\"source\") and by the callee (reporter=\"destination\").", counter);
        RequestMessages = factory.CreateCounter(MeshTelemetry.RequestMessages, "gRPC messages sent by the client.", counter);
        ResponseMessages = factory.CreateCounter(MeshTelemetry.ResponseMessages, "gRPC messages sent by the server.", counter);
        Duration = factory.CreateHistogram(MeshTelemetry.RequestDuration, "Request duration in milliseconds.", histogram);
        RequestBytes = factory.CreateHistogram(MeshTelemetry.RequestBytes, "Request body size in bytes.", histogram);
        ResponseBytes = factory.CreateHistogram(MeshTelemetry.ResponseBytes, "Response body size in bytes.", histogram);
    }

    public Prometheus.CollectorRegistry Registry { get; }

    public Prometheus.Counter Requests { get; }

    public Prometheus.Counter RequestMessages { get; }

    public Prometheus.Counter ResponseMessages { get; }

    public Prometheus.Histogram Duration { get; }

    public Prometheus.Histogram RequestBytes { get; }

    public Prometheus.Histogram ResponseBytes { get; }
}

/// <summary>Response codes as label values, made once.</summary>
internal static class ResponseCodes
{
    private static readonly string[] Texts = Enumerable.Range(0, 600).Select(static c => c.ToString(CultureInfo.InvariantCulture)).ToArray();

    public static string Text(int code) => (uint)code < (uint)Texts.Length ? Texts[code] : code.ToString(CultureInfo.InvariantCulture);
}

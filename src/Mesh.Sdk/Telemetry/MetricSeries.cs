using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

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
        return _owner.Intern(new MetricSeries(tags, string.Equals(outcome.Protocol, MeshMetrics.GrpcProtocol, StringComparison.Ordinal)));
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
/// One labelled series of the four metrics: its tags (handed to the meter as they are) and its own aggregate, which
/// the Prometheus text exposition reads.
/// </summary>
internal sealed class MetricSeries
{
    private long _requests;
    private long _requestMessages;
    private long _responseMessages;

    public MetricSeries(KeyValuePair<string, object?>[] tags, bool grpc = false)
    {
        Tags = tags;
        IsGrpc = grpc;
        var text = new StringBuilder();
        for (var i = 0; i < tags.Length; i++)
        {
            if (i > 0)
            {
                text.Append(',');
            }

            text.Append(tags[i].Key).Append("=\"");
            PrometheusText.AppendEscaped(text, (string)tags[i].Value!);
            text.Append('"');
        }

        LabelText = text.ToString();
    }

    public KeyValuePair<string, object?>[] Tags { get; }

    /// <summary>The labels as Prometheus text, without braces: <c>reporter="source",...</c>.</summary>
    public string LabelText { get; }

    public long Requests => Volatile.Read(ref _requests);

    /// <summary>Whether the series counts gRPC calls, which also report message counts.</summary>
    public bool IsGrpc { get; }

    public long RequestMessages => Volatile.Read(ref _requestMessages);

    public long ResponseMessages => Volatile.Read(ref _responseMessages);

    public HistogramState Duration { get; } = new(MeshTelemetry.HistogramBuckets);

    public HistogramState RequestBytes { get; } = new(MeshTelemetry.HistogramBuckets);

    public HistogramState ResponseBytes { get; } = new(MeshTelemetry.HistogramBuckets);

    public void Record(double milliseconds, long requestBytes, long responseBytes)
    {
        Interlocked.Increment(ref _requests);
        Duration.Observe(milliseconds);
        RequestBytes.Observe(requestBytes);
        ResponseBytes.Observe(responseBytes);
    }

    public void RecordMessages(long requestMessages, long responseMessages)
    {
        Interlocked.Add(ref _requestMessages, requestMessages);
        Interlocked.Add(ref _responseMessages, responseMessages);
    }
}

/// <summary>A histogram's bucket counts, sum and count, updated without locks.</summary>
internal sealed class HistogramState(double[] bounds)
{
    private readonly long[] _counts = new long[bounds.Length + 1];
    private long _count;
    private double _sum;

    public double[] Bounds { get; } = bounds;

    public long Count => Volatile.Read(ref _count);

    public double Sum => Volatile.Read(ref _sum);

    public void Observe(double value)
    {
        var index = Array.BinarySearch(Bounds, value);
        if (index < 0)
        {
            index = ~index;
        }

        Interlocked.Increment(ref _counts[index]);
        var sum = Volatile.Read(ref _sum);
        while (true)
        {
            var seen = Interlocked.CompareExchange(ref _sum, sum + value, sum);
            if (seen.Equals(sum))
            {
                break;
            }

            sum = seen;
        }

        Interlocked.Increment(ref _count);
    }

    /// <summary>The count of observations in bucket <paramref name="index"/> alone (the last is above every bound).</summary>
    public long BucketCount(int index) => Volatile.Read(ref _counts[index]);
}

/// <summary>Response codes as label values, made once.</summary>
internal static class ResponseCodes
{
    private static readonly string[] Texts = Enumerable.Range(0, 600).Select(static c => c.ToString(CultureInfo.InvariantCulture)).ToArray();

    public static string Text(int code) => (uint)code < (uint)Texts.Length ? Texts[code] : code.ToString(CultureInfo.InvariantCulture);
}

using Prometheus;

namespace Mesh.ControlPlane.Monitoring;

/// <summary>
/// The control plane's own metrics, under istiod's names and labels (pilot/pkg/xds/monitoring.go and
/// pkg/xds/monitoring.go), so istiod's dashboards and alerts read them unchanged. Kept in a registry of their own
/// (never prometheus-net's static default), served at <c>/metrics</c> of the monitoring port.
/// </summary>
/// <remarks>
/// istiod exports its counters without Prometheus' <c>_total</c> suffix (<c>pilot_xds_pushes</c>,
/// <c>pilot_total_xds_rejects</c>, <c>pilot_xds_expired_nonce</c>); so do these, because dashboards query those names.
/// </remarks>
internal sealed class ControlPlaneMetrics
{
    public const string ConnectedClients = "pilot_xds";
    public const string Pushes = "pilot_xds_pushes";
    public const string PushTime = "pilot_xds_push_time";
    public const string Rejects = "pilot_total_xds_rejects";
    public const string ExpiredNonce = "pilot_xds_expired_nonce";
    public const string ConvergenceTime = "pilot_proxy_convergence_time";
    public const string Services = "pilot_services";

    /// <summary>The label of the xDS type (<c>lds</c>, <c>rds</c>, <c>cds</c>, <c>eds</c>, <c>sds</c>, else the type URL).</summary>
    public const string TypeLabel = "type";

    /// <summary>The label of <see cref="ConnectedClients"/>: the client's version (node metadata <c>ISTIO_VERSION</c>, else its <c>user_agent_version</c>).</summary>
    public const string VersionLabel = "version";

    /// <summary>Every metric name and its labels, for checks of what dashboards may query.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Exported = new Dictionary<string, string[]>(StringComparer.Ordinal)
    {
        [ConnectedClients] = [VersionLabel],
        [Pushes] = [TypeLabel],
        [PushTime] = [TypeLabel],
        [Rejects] = [TypeLabel],
        [ExpiredNonce] = [TypeLabel],
        [ConvergenceTime] = [],
        [Services] = [],
    };

    private readonly Gauge _clients;
    private readonly Counter _pushes;
    private readonly Histogram _pushTime;
    private readonly Counter _rejects;
    private readonly Counter _expiredNonce;
    private readonly Histogram _convergence;
    private readonly Gauge _services;
    private readonly Lock _clientsGate = new();
    private readonly Dictionary<string, double> _clientsByVersion = new(StringComparer.Ordinal);

    public ControlPlaneMetrics()
    {
        Registry = Metrics.NewCustomRegistry();
        var factory = Metrics.WithCustomRegistry(Registry);
        _clients = factory.CreateGauge(ConnectedClients, "Number of endpoints connected to this pilot using XDS.", VersionLabel);
        _pushes = factory.CreateCounter(Pushes, "Pilot build and send errors for lds, rds, cds and eds.", TypeLabel);
        _pushTime = factory.CreateHistogram(PushTime, "Total time in seconds Pilot takes to push lds, rds, cds and eds.",
            new HistogramConfiguration { LabelNames = [TypeLabel], Buckets = [.01, .1, .5, 1, 3, 5, 10, 20, 30] });
        _rejects = factory.CreateCounter(Rejects, "Total number of XDS responses from pilot rejected by proxy.", TypeLabel);
        _expiredNonce = factory.CreateCounter(ExpiredNonce, "Total number of XDS requests with an expired nonce.", TypeLabel);
        _convergence = factory.CreateHistogram(ConvergenceTime, "Delay in seconds between config change and a proxy receiving all required configuration.",
            new HistogramConfiguration { Buckets = [.1, .5, 1, 3, 5, 10, 20, 30] });
        _services = factory.CreateGauge(Services, "Total services known to pilot.");
    }

    public CollectorRegistry Registry { get; }

    /// <summary>istiod's short name of an xDS type URL (<c>model.GetMetricType</c>).</summary>
    public static string MetricType(string typeUrl) => typeUrl switch
    {
        "type.googleapis.com/envoy.config.cluster.v3.Cluster" => "cds",
        "type.googleapis.com/envoy.config.listener.v3.Listener" => "lds",
        "type.googleapis.com/envoy.config.route.v3.RouteConfiguration" => "rds",
        "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment" => "eds",
        "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret" => "sds",
        _ => typeUrl,
    };

    public void ClientConnected(string version) => ChangeClients(version, 1);

    public void ClientDisconnected(string version) => ChangeClients(version, -1);

    private void ChangeClients(string version, double delta)
    {
        lock (_clientsGate)
        {
            var value = _clientsByVersion.GetValueOrDefault(version) + delta;
            _clientsByVersion[version] = value;
            _clients.WithLabels(version).Set(value);
        }
    }

    /// <summary>One response written to a client, and how long building and sending it took.</summary>
    public void Pushed(string typeUrl, TimeSpan elapsed)
    {
        var type = MetricType(typeUrl);
        _pushes.WithLabels(type).Inc();
        _pushTime.WithLabels(type).Observe(elapsed.TotalSeconds);
    }

    public void Rejected(string typeUrl) => _rejects.WithLabels(MetricType(typeUrl)).Inc();

    public void NonceExpired(string typeUrl) => _expiredNonce.WithLabels(MetricType(typeUrl)).Inc();

    /// <summary>A client was sent everything a new snapshot changed for it, this long after the snapshot was built.</summary>
    public void Converged(TimeSpan delay) => _convergence.Observe(Math.Max(0, delay.TotalSeconds));

    public void ServicesKnown(int count) => _services.Set(count);
}

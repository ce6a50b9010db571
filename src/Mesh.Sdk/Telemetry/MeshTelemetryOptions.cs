namespace Mesh.Sdk.Telemetry;

/// <summary>Telemetry settings (key <c>Mesh:Telemetry</c>). See docs/telemetry.md.</summary>
public sealed class MeshTelemetryOptions
{
    /// <summary>
    /// Whether Istio's standard metrics are recorded (key <c>Mesh:Telemetry:Metrics</c>): by the caller for every meshed
    /// outbound request, by the callee for every inbound request, and served in Prometheus text format.
    /// </summary>
    /// <value>Default: <see langword="true"/>.</value>
    public bool Metrics { get; set; } = true;

    /// <summary>
    /// A plaintext port on 127.0.0.1 that serves the metrics at <see cref="MetricsPath"/> (key
    /// <c>Mesh:Telemetry:MetricsPort</c>), Istio's merged-metrics port, for scraping when the app's ports are STRICT
    /// mTLS; the app's own endpoints then do not serve them. 0 binds an ephemeral port.
    /// </summary>
    /// <value>Default: <see langword="null"/> (the metrics are served on the app's own endpoints).</value>
    public int? MetricsPort { get; set; }

    /// <summary>The request path the metrics are served at (key <c>Mesh:Telemetry:MetricsPath</c>).</summary>
    /// <value>Default: <c>/metrics</c>.</value>
    public string MetricsPath { get; set; } = "/metrics";
}

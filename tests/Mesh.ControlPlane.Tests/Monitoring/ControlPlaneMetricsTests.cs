using System.Text;
using Mesh.ControlPlane.Monitoring;

namespace Mesh.ControlPlane.Tests.Monitoring;

public sealed class ControlPlaneMetricsTests
{
    private static async Task<string> ExportAsync(ControlPlaneMetrics metrics)
    {
        using var stream = new MemoryStream();
        await metrics.Registry.CollectAndExportAsTextAsync(stream);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    [Fact]
    public async Task Export_UsesIstiodsNamesLabelsAndTypeShortNames()
    {
        var metrics = new ControlPlaneMetrics();
        metrics.ClientConnected("1.26.0");
        metrics.ClientConnected("1.26.0");
        metrics.ClientConnected("unknown");
        metrics.ClientDisconnected("1.26.0");
        metrics.Pushed("type.googleapis.com/envoy.config.listener.v3.Listener", TimeSpan.FromMilliseconds(20));
        metrics.Pushed("type.googleapis.com/envoy.config.listener.v3.Listener", TimeSpan.FromMilliseconds(200));
        metrics.Pushed("type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment", TimeSpan.FromMilliseconds(1));
        metrics.Rejected("type.googleapis.com/envoy.config.cluster.v3.Cluster");
        metrics.NonceExpired("type.googleapis.com/envoy.config.route.v3.RouteConfiguration");
        metrics.Converged(TimeSpan.FromSeconds(0.3));
        metrics.ServicesKnown(4);

        var text = await ExportAsync(metrics);
        Assert.Contains("# TYPE pilot_xds gauge\n", text, StringComparison.Ordinal);
        Assert.Contains("pilot_xds{version=\"1.26.0\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("pilot_xds{version=\"unknown\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("# TYPE pilot_xds_pushes counter\n", text, StringComparison.Ordinal);
        Assert.Contains("pilot_xds_pushes{type=\"lds\"} 2\n", text, StringComparison.Ordinal);
        Assert.Contains("pilot_xds_pushes{type=\"eds\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("pilot_xds_push_time_bucket{type=\"lds\",le=\"0.1\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("pilot_xds_push_time_bucket{type=\"lds\",le=\"0.5\"} 2\n", text, StringComparison.Ordinal);
        Assert.Contains("pilot_total_xds_rejects{type=\"cds\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("pilot_xds_expired_nonce{type=\"rds\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("pilot_proxy_convergence_time_bucket{le=\"0.5\"} 1\n", text, StringComparison.Ordinal);
        Assert.Contains("pilot_services 4\n", text, StringComparison.Ordinal);
        Assert.Equal("type.googleapis.com/other", ControlPlaneMetrics.MetricType("type.googleapis.com/other"));
    }
}

using System.Globalization;
using System.Text;

namespace Mesh.Sdk.Telemetry;

/// <summary>
/// Writes a workload's metrics in the Prometheus text exposition format (version 0.0.4): <c>istio_requests_total</c> as
/// a counter and the three histograms with cumulative <c>_bucket</c> series (<c>le</c> up to <c>+Inf</c>), <c>_sum</c>
/// and <c>_count</c>, names exactly as Istio's sidecars export them.
/// </summary>
internal static class PrometheusText
{
    /// <summary>The content type of the exposition.</summary>
    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";

    public static string Write(MeshMetrics metrics)
    {
        var all = metrics.Snapshot();
        var text = new StringBuilder(256 + (all.Length * 4096));
        text.Append("# HELP ").Append(MeshTelemetry.RequestsTotal).Append(" Requests, counted by the caller (reporter=\"source\") and by the callee (reporter=\"destination\").\n");
        text.Append("# TYPE ").Append(MeshTelemetry.RequestsTotal).Append(" counter\n");
        foreach (var series in all)
        {
            text.Append(MeshTelemetry.RequestsTotal).Append('{').Append(series.LabelText).Append("} ")
                .Append(series.Requests.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }

        Counter(text, all, MeshTelemetry.RequestMessages, "gRPC messages sent by the client.", static s => s.RequestMessages);
        Counter(text, all, MeshTelemetry.ResponseMessages, "gRPC messages sent by the server.", static s => s.ResponseMessages);
        Histogram(text, all, MeshTelemetry.RequestDuration, "Request duration in milliseconds.", static s => s.Duration);
        Histogram(text, all, MeshTelemetry.RequestBytes, "Request body size in bytes.", static s => s.RequestBytes);
        Histogram(text, all, MeshTelemetry.ResponseBytes, "Response body size in bytes.", static s => s.ResponseBytes);
        return text.ToString();
    }

    private static void Counter(StringBuilder text, MetricSeries[] all, string name, string help, Func<MetricSeries, long> select)
    {
        text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
        text.Append("# TYPE ").Append(name).Append(" counter\n");
        foreach (var series in all)
        {
            if (series.IsGrpc)
            {
                text.Append(name).Append('{').Append(series.LabelText).Append("} ").Append(select(series).ToString(CultureInfo.InvariantCulture)).Append('\n');
            }
        }
    }

    private static void Histogram(StringBuilder text, MetricSeries[] all, string name, string help, Func<MetricSeries, HistogramState> select)
    {
        text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n');
        text.Append("# TYPE ").Append(name).Append(" histogram\n");
        foreach (var series in all)
        {
            var histogram = select(series);

            // _count is the sum of the buckets as read here, so the series stays consistent while requests are recorded.
            var cumulative = 0L;
            for (var i = 0; i < histogram.Bounds.Length; i++)
            {
                cumulative += histogram.BucketCount(i);
                Line(text, name, "_bucket", series.LabelText, histogram.Bounds[i].ToString(CultureInfo.InvariantCulture), cumulative);
            }

            cumulative += histogram.BucketCount(histogram.Bounds.Length);
            Line(text, name, "_bucket", series.LabelText, "+Inf", cumulative);
            text.Append(name).Append("_sum{").Append(series.LabelText).Append("} ").Append(histogram.Sum.ToString(CultureInfo.InvariantCulture)).Append('\n');
            text.Append(name).Append("_count{").Append(series.LabelText).Append("} ").Append(cumulative.ToString(CultureInfo.InvariantCulture)).Append('\n');
        }
    }

    private static void Line(StringBuilder text, string name, string suffix, string labels, string le, long value)
        => text.Append(name).Append(suffix).Append('{').Append(labels).Append(",le=\"").Append(le).Append("\"} ")
            .Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');

    /// <summary>Appends a label value escaped as the format requires: backslash, double quote and line feed.</summary>
    public static void AppendEscaped(StringBuilder text, string value)
    {
        foreach (var c in value)
        {
            switch (c)
            {
                case '\\':
                    text.Append("\\\\");
                    break;
                case '"':
                    text.Append("\\\"");
                    break;
                case '\n':
                    text.Append("\\n");
                    break;
                default:
                    text.Append(c);
                    break;
            }
        }
    }
}

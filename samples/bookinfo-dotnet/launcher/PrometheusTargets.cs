using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Bookinfo.Launcher;

/// <summary>One workload's plaintext metrics endpoint, as Prometheus scrapes it.</summary>
internal sealed record ScrapeTarget(WorkloadSpec Spec, int MetricsPort)
{
    /// <summary>127.0.0.1:PORT.</summary>
    public string Address => "127.0.0.1:" + MetricsPort.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// Writes what Prometheus needs to scrape bookinfo: <c>bookinfo-targets.json</c> in Prometheus' file-based service
/// discovery format (<c>file_sd_configs</c>: one target group per workload, its metrics port labelled with
/// <c>app</c>, <c>version</c>, <c>namespace</c> and <c>workload</c>, the labels Istio's Prometheus takes from a pod),
/// and a <c>prometheus.yml</c> that reads it, so <c>prometheus --config.file=DIR/prometheus.yml</c> scrapes them.
/// Both are replaced whole (written aside, then renamed): a Prometheus still running from an earlier start
/// re-reads the targets file when it changes and follows the new ports.
/// </summary>
internal static class PrometheusTargets
{
    public const string TargetsFileName = "bookinfo-targets.json";
    public const string ConfigFileName = "prometheus.yml";

    /// <summary>The namespace every bookinfo workload runs in (Mesh:Namespace).</summary>
    public const string Namespace = "default";

    /// <summary>Writes both files into <paramref name="directory"/> (created when missing); returns their paths.</summary>
    /// <exception cref="IOException">A file could not be written.</exception>
    /// <exception cref="UnauthorizedAccessException">The folder is not writable.</exception>
    public static (string Targets, string Config) Write(string directory, IReadOnlyList<ScrapeTarget> targets)
    {
        Directory.CreateDirectory(directory);
        var targetsPath = Path.Combine(directory, TargetsFileName);
        var configPath = Path.Combine(directory, ConfigFileName);
        WriteReplacing(targetsPath, TargetsJson(targets));
        WriteReplacing(configPath, ConfigYaml(targetsPath));
        return (targetsPath, configPath);
    }

    /// <summary>The file_sd document: <c>[{"targets": ["127.0.0.1:PORT"], "labels": {...}}, ...]</c>.</summary>
    public static string TargetsJson(IReadOnlyList<ScrapeTarget> targets)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartArray();
            foreach (var target in targets)
            {
                json.WriteStartObject();
                json.WriteStartArray("targets");
                json.WriteStringValue(target.Address);
                json.WriteEndArray();
                json.WriteStartObject("labels");
                json.WriteString("app", target.Spec.Service);
                json.WriteString("version", target.Spec.Version);
                json.WriteString("namespace", Namespace);
                json.WriteString("workload", target.Spec.Name);
                json.WriteEndObject();
                json.WriteEndObject();
            }

            json.WriteEndArray();
        }

        return Encoding.UTF8.GetString(buffer.ToArray()) + "\n";
    }

    /// <summary>A scrape configuration with one job, <c>bookinfo</c>, over the targets file.</summary>
    public static string ConfigYaml(string targetsPath) => $"""
        # Written by Bookinfo.Launcher at every start: scrapes each bookinfo workload's plaintext metrics port
        # (Mesh:Telemetry:MetricsPort), listed with its app, version and namespace labels in {TargetsFileName}.
        # Run: prometheus --config.file={ConfigFileName}  (then open http://localhost:9090)
        global:
          scrape_interval: 5s
          evaluation_interval: 5s
        scrape_configs:
          - job_name: bookinfo
            metrics_path: /metrics
            file_sd_configs:
              - files:
                  - {JsonSerializer.Serialize(targetsPath)}

        """;

    private static void WriteReplacing(string path, string content)
    {
        var temp = path + ".tmp";
        File.WriteAllText(temp, content);
        File.Move(temp, path, overwrite: true);
    }
}

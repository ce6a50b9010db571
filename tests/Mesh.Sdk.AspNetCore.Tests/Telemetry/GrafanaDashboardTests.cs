using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Mesh.ControlPlane.Monitoring;
using Mesh.Sdk.Telemetry;

namespace Mesh.Sdk.AspNetCore.Tests.Telemetry;

/// <summary>
/// The Grafana dashboards in <c>deploy/grafana/</c>: every PromQL expression names only metrics the SDK and the control
/// plane export (the SDK's <see cref="MeshTelemetry"/> names, the control plane's <see cref="ControlPlaneMetrics"/> names)
/// and only labels those metrics carry (as real workloads and the real control plane serve them), and parses
/// (<c>promtool check rules</c> on a rules file wrapping each expression).
/// </summary>
public sealed partial class GrafanaDashboardTests(MonitoredControlPlaneFixture mesh) : IClassFixture<MonitoredControlPlaneFixture>
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(15) };

    private static readonly HashSet<string> Functions = new(StringComparer.Ordinal)
    {
        "sum", "rate", "irate", "increase", "histogram_quantile", "round", "vector", "avg", "max", "min", "count", "topk", "clamp_min", "label_values",
    };

    private static readonly HashSet<string> Keywords = new(StringComparer.Ordinal) { "by", "without", "or", "and", "unless", "bool", "offset", "on", "ignoring" };

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Mesh.Sdk.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Mesh.Sdk.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Every expression of a dashboard: panel targets (rows' nested panels included) and query variables.</summary>
    private static List<(string Where, string Expr)> Expressions(string file)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(file));
        var found = new List<(string, string)>();
        void Panels(JsonElement panels)
        {
            foreach (var panel in panels.EnumerateArray())
            {
                if (panel.TryGetProperty("targets", out var targets))
                {
                    foreach (var target in targets.EnumerateArray())
                    {
                        found.Add(($"{Path.GetFileName(file)} panel '{panel.GetProperty("title").GetString()}' {target.GetProperty("refId").GetString()}", target.GetProperty("expr").GetString()!));
                    }
                }

                if (panel.TryGetProperty("panels", out var nested))
                {
                    Panels(nested);
                }
            }
        }

        var root = json.RootElement;
        Assert.True(root.TryGetProperty("uid", out _) && root.TryGetProperty("title", out _) && root.TryGetProperty("schemaVersion", out _), $"{file} is not a Grafana dashboard");
        Panels(root.GetProperty("panels"));
        var variables = root.GetProperty("templating").GetProperty("list").EnumerateArray().ToList();
        Assert.Contains(variables, v => v.GetProperty("type").GetString() == "datasource" && v.GetProperty("query").GetString() == "prometheus");
        foreach (var variable in variables.Where(v => v.GetProperty("type").GetString() == "query"))
        {
            found.Add(($"{Path.GetFileName(file)} variable '{variable.GetProperty("name").GetString()}'", variable.GetProperty("query").GetProperty("query").GetString()!));
        }

        return found;
    }

    /// <summary>Grafana's variables replaced by values PromQL accepts.</summary>
    private static string Substitute(string expr) => VariableRegex().Replace(expr.Replace("$__rate_interval", "5m", StringComparison.Ordinal), "x");

    [GeneratedRegex(@"\$\{?\w+\}?")]
    private static partial Regex VariableRegex();

    /// <summary>An aggregation's grouping clause before its argument: <c>sum by (…) (…)</c>.</summary>
    [GeneratedRegex(@"^(by|without)\s*\(")]
    private static partial Regex AggregationRegex();

    [GeneratedRegex(@"^label_values\((.*),\s*([a-zA-Z_]\w*)\)$")]
    private static partial Regex LabelValuesRegex();

    /// <summary>The metric names and label names an expression uses (strings, durations and numbers skipped).</summary>
    private static (List<string> Metrics, List<string> Labels, List<string> Unknown) Names(string expr)
    {
        var metrics = new List<string>();
        var labels = new List<string>();
        var unknown = new List<string>();
        var braces = 0;
        var grouping = false;
        var i = 0;
        while (i < expr.Length)
        {
            var c = expr[i];
            if (c == '"')
            {
                i++;
                while (i < expr.Length && expr[i] != '"')
                {
                    i += expr[i] == '\\' ? 2 : 1;
                }

                i++;
                continue;
            }

            if (c == '[')
            {
                i = expr.IndexOf(']', i) + 1;
                continue;
            }

            if (char.IsDigit(c))
            {
                while (i < expr.Length && (char.IsLetterOrDigit(expr[i]) || expr[i] == '.'))
                {
                    i++;
                }

                continue;
            }

            if (char.IsLetter(c) || c == '_')
            {
                var start = i;
                while (i < expr.Length && (char.IsLetterOrDigit(expr[i]) || expr[i] == '_' || expr[i] == ':'))
                {
                    i++;
                }

                var word = expr[start..i];
                var next = expr[i..].TrimStart();
                if (braces > 0 || grouping)
                {
                    labels.Add(word);
                }
                else if (Keywords.Contains(word))
                {
                    grouping = word is "by" or "without" or "on" or "ignoring" && next.StartsWith('(');
                }
                else if (next.StartsWith('(') || AggregationRegex().IsMatch(next))
                {
                    if (!Functions.Contains(word))
                    {
                        unknown.Add(word);
                    }
                }
                else
                {
                    metrics.Add(word);
                }

                continue;
            }

            if (c == '{')
            {
                braces++;
            }
            else if (c == '}')
            {
                braces--;
            }
            else if (c == ')' && grouping)
            {
                grouping = false;
            }

            i++;
        }

        return (metrics, labels, unknown);
    }

    [Fact]
    public async Task Dashboards_QueryOnlyExportedMetricsAndLabels_AndEveryExpressionParses()
    {
        // What is really exported: a meshed call front → web, scraped from both apps and from the control plane.
        await using var web = await ServiceGraphEndToEndTests.StartWebAsync(mesh, "web", "v1");
        await using var front = await ServiceGraphEndToEndTests.StartWebAsync(mesh, "front", "v1");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!(await Http.GetStringAsync(new Uri(front.BaseAddress, "/call?target=http://web:9080/hello"))).StartsWith("200 ", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, mesh.Dump());
        }

        var exported = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var metrics in new[] { new Uri(front.BaseAddress, "/metrics"), new Uri(web.BaseAddress, "/metrics"), new Uri(mesh.ControlPlane.MonitoringUri!, "metrics") })
        {
            foreach (var sample in PrometheusSample.Parse(await Http.GetStringAsync(metrics)))
            {
                if (!exported.TryGetValue(sample.Name, out var set))
                {
                    exported[sample.Name] = set = new HashSet<string>(StringComparer.Ordinal);
                }

                set.UnionWith(sample.Labels.Keys);
            }
        }

        // The names come from the code: the SDK's four metrics (histograms as _bucket/_sum/_count) and the control plane's.
        var names = new HashSet<string>(StringComparer.Ordinal) { MeshTelemetry.RequestsTotal };
        foreach (var histogram in new[] { MeshTelemetry.RequestDuration, MeshTelemetry.RequestBytes, MeshTelemetry.ResponseBytes, ControlPlaneMetrics.PushTime, ControlPlaneMetrics.ConvergenceTime })
        {
            names.UnionWith([histogram + "_bucket", histogram + "_sum", histogram + "_count"]);
        }

        foreach (var (name, labels) in ControlPlaneMetrics.Exported)
        {
            names.Add(name);
            foreach (var series in exported.Keys.Where(k => k == name || k.StartsWith(name + "_", StringComparison.Ordinal)).ToList())
            {
                exported[series].UnionWith(labels);
            }

            // A labelled counter nothing incremented yet has no series: its labels are the code's.
            exported.TryAdd(name, [.. labels]);
        }

        Assert.All(names.Where(n => !n.StartsWith("pilot_", StringComparison.Ordinal)), n => Assert.True(exported.ContainsKey(n), $"{n} is not served by the SDK"));

        var files = Directory.GetFiles(Path.Combine(RepositoryRoot(), "deploy", "grafana"), "*.json");
        Assert.Equal(["mesh-dashboard.json", "service-dashboard.json", "workload-dashboard.json"], files.Select(Path.GetFileName).Order(StringComparer.Ordinal));
        var rules = new StringBuilder("groups:\n  - name: dashboards\n    rules:\n");
        var count = 0;
        foreach (var file in files)
        {
            foreach (var (where, raw) in Expressions(file))
            {
                var expr = Substitute(raw);
                var label = string.Empty;
                if (LabelValuesRegex().Match(expr) is { Success: true } match)
                {
                    expr = match.Groups[1].Value;
                    label = match.Groups[2].Value;
                }

                var (metrics, labels, unknown) = Names(expr);
                Assert.True(unknown.Count == 0, $"{where}: unknown function(s) {string.Join(", ", unknown)} in {raw}");
                Assert.True(metrics.Count > 0, $"{where}: no metric in {raw}");
                foreach (var metric in metrics)
                {
                    Assert.True(names.Contains(metric), $"{where}: metric '{metric}' is not exported ({raw})");
                }

                var allowed = metrics.SelectMany(m => exported.GetValueOrDefault(m) ?? []).ToHashSet(StringComparer.Ordinal);
                foreach (var name in label.Length > 0 ? [.. labels, label] : labels)
                {
                    Assert.True(allowed.Contains(name), $"{where}: label '{name}' is not a label of {string.Join(", ", metrics)} ({raw})");
                }

                rules.Append("      - record: dashboard_expression_").Append(++count).Append('\n')
                    .Append("        expr: ").Append(JsonSerializer.Serialize(expr)).Append('\n');
            }
        }

        Assert.True(count >= 30, $"only {count} expressions found");

        // promtool parses every expression (as a recording rule's).
        var rulesFile = Path.Combine(Path.GetTempPath(), $"mesh-dashboards-{Guid.NewGuid():N}.rules.yml");
        await File.WriteAllTextAsync(rulesFile, rules.ToString());
        try
        {
            var (exitCode, output, error) = await ExternalTool.RunAsync(ExternalTool.Find("promtool", "prometheus"), $"check rules {rulesFile}", string.Empty, TimeSpan.FromSeconds(60));
            Assert.True(exitCode == 0, $"promtool check rules exited {exitCode}: {output}{error}\n{rules}");
            Assert.Contains($"SUCCESS: {count} rules found", output, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(rulesFile);
        }
    }
}

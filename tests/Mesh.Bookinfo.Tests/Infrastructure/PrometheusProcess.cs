using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Mesh.Bookinfo.Tests.Infrastructure;

/// <summary>One series of an instant query's vector: its labels and value.</summary>
public sealed record PromSample(IReadOnlyDictionary<string, string> Labels, double Value)
{
    public string this[string label] => Labels.TryGetValue(label, out var value) ? value : string.Empty;

    public override string ToString() => "{" + string.Join(", ", Labels.OrderBy(static l => l.Key, StringComparer.Ordinal).Select(static l => $"{l.Key}=\"{l.Value}\"")) + "} " + Value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>
/// Debian's <c>prometheus</c> as a child process on <c>127.0.0.1:0</c> (the port it reports is read from its log),
/// with its TSDB in a temporary folder and the scrape configuration given; queried through its HTTP API. Dispose
/// kills it and deletes the folder.
/// </summary>
public sealed partial class PrometheusProcess : IAsyncDisposable
{
    /// <summary>The Debian package that ships <c>prometheus</c> and <c>promtool</c> (scripts/test.sh installs it).</summary>
    public const string Package = "prometheus";

    private readonly Process _process;
    private readonly string _directory;
    private readonly List<string> _lines = [];
    private readonly TaskCompletionSource<int> _port = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

    private PrometheusProcess(Process process, string directory)
    {
        _process = process;
        _directory = directory;
    }

    public Uri Address { get; private set; } = null!;

    /// <summary>The path of <paramref name="tool"/> (<c>prometheus</c>, <c>promtool</c>); a missing one fails the test naming the package to install.</summary>
    public static string Binary(string tool)
    {
        var path = new[] { "/usr/bin/" + tool, "/usr/local/bin/" + tool }.FirstOrDefault(File.Exists)
            ?? (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':', StringSplitOptions.RemoveEmptyEntries)
                .Select(dir => Path.Combine(dir, tool)).FirstOrDefault(File.Exists);
        Assert.True(path is not null, $"'{tool}' is missing: install Debian's {Package} package (apt-get install -y {Package}; scripts/test.sh installs it).");
        return path!;
    }

    /// <summary>Starts Prometheus with <paramref name="config"/> (a prometheus.yml) and waits until it answers <c>/-/ready</c>.</summary>
    public static async Task<PrometheusProcess> StartAsync(string config, TimeSpan timeout)
    {
        var directory = Directory.CreateTempSubdirectory("bookinfo-prometheus-").FullName;
        var configPath = Path.Combine(directory, "prometheus.yml");
        await File.WriteAllTextAsync(configPath, config);
        var start = new ProcessStartInfo(Binary("prometheus"))
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[]
        {
            "--config.file=" + configPath,
            "--web.listen-address=127.0.0.1:0",
            "--storage.tsdb.path=" + Path.Combine(directory, "data"),
            "--storage.tsdb.retention.time=1h",
            "--log.level=info",
        })
        {
            start.ArgumentList.Add(arg);
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var result = new PrometheusProcess(process, directory);
        process.OutputDataReceived += (_, e) => result.Add(e.Data);
        process.ErrorDataReceived += (_, e) => result.Add(e.Data);
        process.Exited += (_, _) => result._port.TrySetException(new InvalidOperationException($"prometheus exited with code {process.ExitCode}:{Environment.NewLine}{result.Tail()}"));
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            using var cancel = new CancellationTokenSource(timeout);
            int port;
            try
            {
                port = await result._port.Task.WaitAsync(cancel.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"prometheus did not report its address within {timeout.TotalSeconds} s:{Environment.NewLine}{result.Tail()}");
            }

            result.Address = new Uri("http://127.0.0.1:" + port.ToString(CultureInfo.InvariantCulture) + "/");
            while (true)
            {
                try
                {
                    using var ready = await result._http.GetAsync(new Uri(result.Address, "-/ready"), cancel.Token);
                    if (ready.IsSuccessStatusCode)
                    {
                        return result;
                    }
                }
                catch (HttpRequestException)
                {
                }
                catch (OperationCanceledException) when (cancel.IsCancellationRequested)
                {
                    throw new TimeoutException($"prometheus was not ready within {timeout.TotalSeconds} s:{Environment.NewLine}{result.Tail()}");
                }

                await Task.Delay(100, cancel.Token);
            }
        }
        catch
        {
            await result.DisposeAsync();
            throw;
        }
    }

    /// <summary>The last lines Prometheus logged, for failure messages.</summary>
    public string Tail(int count = 30)
    {
        lock (_lines)
        {
            return string.Join(Environment.NewLine, _lines.Skip(Math.Max(0, _lines.Count - count)));
        }
    }

    /// <summary>An instant query (<c>GET /api/v1/query</c>) at the current time; the result must be a vector.</summary>
    public async Task<IReadOnlyList<PromSample>> QueryAsync(string promql)
    {
        var uri = new Uri(Address, "api/v1/query?query=" + Uri.EscapeDataString(promql));
        using var response = await _http.GetAsync(uri);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"Prometheus answered {(int)response.StatusCode} to '{promql}': {body}");
        using var json = JsonDocument.Parse(body);
        var data = json.RootElement.GetProperty("data");
        Assert.Equal("vector", data.GetProperty("resultType").GetString());
        var samples = new List<PromSample>();
        foreach (var series in data.GetProperty("result").EnumerateArray())
        {
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var label in series.GetProperty("metric").EnumerateObject())
            {
                labels[label.Name] = label.Value.GetString() ?? string.Empty;
            }

            var value = series.GetProperty("value")[1].GetString()!;
            samples.Add(new PromSample(labels, double.Parse(value, NumberStyles.Float, CultureInfo.InvariantCulture)));
        }

        return samples;
    }

    /// <summary>The scrape pools' active targets (<c>GET /api/v1/targets</c>): labels, health, last error.</summary>
    public async Task<IReadOnlyList<(IReadOnlyDictionary<string, string> Labels, string Health, string LastError)>> TargetsAsync()
    {
        using var json = JsonDocument.Parse(await _http.GetStringAsync(new Uri(Address, "api/v1/targets?state=active")));
        var targets = new List<(IReadOnlyDictionary<string, string>, string, string)>();
        foreach (var target in json.RootElement.GetProperty("data").GetProperty("activeTargets").EnumerateArray())
        {
            var labels = target.GetProperty("labels").EnumerateObject().ToDictionary(static l => l.Name, static l => l.Value.GetString() ?? string.Empty, StringComparer.Ordinal);
            targets.Add((labels, target.GetProperty("health").GetString()!, target.GetProperty("lastError").GetString() ?? string.Empty));
        }

        return targets;
    }

    /// <summary>
    /// Waits until every target of <paramref name="job"/> (<paramref name="count"/> of them) was scraped successfully
    /// by a scrape that started after <paramref name="after"/>: from then on queries see everything recorded before it.
    /// </summary>
    public async Task WaitForScrapeAfterAsync(string job, int count, DateTimeOffset after, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        IReadOnlyList<PromSample> last = [];
        while (clock.Elapsed < timeout)
        {
            // timestamp() of a plain selector is the sample's own timestamp, the start of the scrape (of any other
            // expression it is the evaluation time); up is written after that scrape's samples were committed.
            last = await QueryAsync($"timestamp(up{{job=\"{job}\"}})");
            var up = await QueryAsync($"up{{job=\"{job}\"}}");
            var since = after.ToUnixTimeMilliseconds() / 1000.0;
            if (last.Count == count && last.All(s => s.Value > since) && up.Count == count && up.All(static s => s.Value == 1))
            {
                return;
            }

            await Task.Delay(200);
        }

        Assert.Fail($"Prometheus did not scrape all {count} '{job}' targets successfully after {after:HH:mm:ss.fff} within {timeout.TotalSeconds} s; "
            + $"last scrapes: {string.Join(", ", last)}; targets: {string.Join("; ", (await TargetsAsync()).Select(static t => $"{t.Labels.GetValueOrDefault("instance")} {t.Health} {t.LastError}"))}");
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (InvalidOperationException)
        {
        }
        catch (TimeoutException)
        {
        }
        finally
        {
            _http.Dispose();
            _process.Dispose();
            try
            {
                Directory.Delete(_directory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private void Add(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_lines)
        {
            _lines.Add(line);
        }

        if (ListeningLine().Match(line) is { Success: true } m)
        {
            _port.TrySetResult(int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
        }
    }

    // The web server's line once it is bound: msg="Listening on" address=127.0.0.1:37715
    [GeneratedRegex("msg=\"Listening on\" address=127\\.0\\.0\\.1:(\\d+)")]
    private static partial Regex ListeningLine();
}

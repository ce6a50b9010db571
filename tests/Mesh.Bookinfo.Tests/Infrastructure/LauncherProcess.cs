using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Mesh.Bookinfo.Tests.Infrastructure;

/// <summary>
/// A workload as the launcher announced it:
/// <c>workload reviews-v1 pid=123 url=http://127.0.0.1:4567 metrics=http://127.0.0.1:4568/metrics</c>.
/// </summary>
public sealed record WorkloadInfo(string Name, int Pid, Uri Url, Uri Metrics);

/// <summary>
/// The real <c>Bookinfo.Launcher</c> as a child process: <c>dotnet Bookinfo.Launcher.dll --config DIR --port 0
/// --xds-port 0 --monitoring-port 0 --prometheus-dir DIR --exit-on-stdin-close</c>. Its output is read continuously (so it never blocks on a full pipe) and
/// kept for waits and failure messages; closing its standard input stops it and, through it, every workload.
/// </summary>
public sealed partial class LauncherProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];

    private LauncherProcess(Process process, string configDirectory, string prometheusDirectory)
    {
        _process = process;
        ConfigDirectory = configDirectory;
        PrometheusDirectory = prometheusDirectory;
    }

    public string ConfigDirectory { get; }

    /// <summary>Where the launcher writes bookinfo-targets.json and prometheus.yml (its --prometheus-dir).</summary>
    public string PrometheusDirectory { get; }

    /// <summary>The targets file the launcher announced on its <c>Prometheus targets: FILE (...)</c> line.</summary>
    public string PrometheusTargetsFile { get; private set; } = null!;

    public Uri ProductPage { get; private set; } = null!;

    /// <summary>The control plane's monitoring port, from the launcher's <c>Service graph dashboard: URL</c> line.</summary>
    public Uri Dashboard { get; private set; } = null!;

    public IReadOnlyDictionary<string, WorkloadInfo> Workloads { get; private set; } = new Dictionary<string, WorkloadInfo>();

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

    public int LineCount
    {
        get
        {
            lock (_lines)
            {
                return _lines.Count;
            }
        }
    }

    /// <summary>The last lines of output, for failure messages.</summary>
    public string Tail(int count = 40)
    {
        lock (_lines)
        {
            return string.Join(Environment.NewLine, _lines.Skip(Math.Max(0, _lines.Count - count)));
        }
    }

    /// <summary>Starts the launcher on <paramref name="configDirectory"/> and waits for its ready line.</summary>
    public static async Task<LauncherProcess> StartAsync(string configDirectory, string prometheusDirectory, TimeSpan readyTimeout)
    {
        var launcher = Paths.LauncherAssembly();
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { launcher, "--config", configDirectory, "--port", "0", "--xds-port", "0", "--monitoring-port", "0", "--prometheus-dir", prometheusDirectory, "--exit-on-stdin-close" })
        {
            start.ArgumentList.Add(arg);
        }

        var process = new Process { StartInfo = start };
        var result = new LauncherProcess(process, configDirectory, prometheusDirectory);
        process.OutputDataReceived += (_, e) => result.Add(e.Data);
        process.ErrorDataReceived += (_, e) => result.Add(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var ready = await result.WaitForLineAsync(static l => l.StartsWith("Bookinfo is ready: ", StringComparison.Ordinal), 0, readyTimeout);
            result.ProductPage = new Uri(ready["Bookinfo is ready: ".Length..].Trim());
            var dashboard = await result.WaitForLineAsync(static l => l.StartsWith("Service graph dashboard: ", StringComparison.Ordinal), 0, readyTimeout);
            result.Dashboard = new Uri(dashboard["Service graph dashboard: ".Length..].Trim());
            var workloads = new Dictionary<string, WorkloadInfo>(StringComparer.Ordinal);
            lock (result._lines)
            {
                foreach (var line in result._lines)
                {
                    if (WorkloadLine().Match(line) is { Success: true } m)
                    {
                        workloads[m.Groups[1].Value] = new WorkloadInfo(m.Groups[1].Value, int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture), new Uri(m.Groups[3].Value), new Uri(m.Groups[4].Value));
                    }
                    else if (PrometheusLine().Match(line) is { Success: true } p)
                    {
                        result.PrometheusTargetsFile = p.Groups[1].Value;
                    }
                }
            }

            result.Workloads = workloads;
            return result;
        }
        catch
        {
            await result.DisposeAsync();
            throw;
        }
    }

    /// <summary>Waits for a line (from line index <paramref name="from"/> on) that satisfies <paramref name="match"/>.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, int from, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        var next = from;
        while (true)
        {
            lock (_lines)
            {
                for (; next < _lines.Count; next++)
                {
                    if (match(_lines[next]))
                    {
                        return _lines[next];
                    }
                }
            }

            if (_process.HasExited)
            {
                await Task.Delay(100); // the last lines may still be on their way
                lock (_lines)
                {
                    if (_lines.Skip(next).FirstOrDefault(match) is { } late)
                    {
                        return late;
                    }
                }

                throw new InvalidOperationException($"The launcher exited with code {_process.ExitCode}. Its output:{Environment.NewLine}{Tail()}");
            }

            if (deadline.Elapsed > timeout)
            {
                throw new TimeoutException($"No matching launcher output within {timeout.TotalSeconds} s. Its output:{Environment.NewLine}{Tail()}");
            }

            await Task.Delay(50);
        }
    }

    /// <summary>Closes the launcher's standard input (its stop signal) and waits for it to exit; returns the exit code.</summary>
    public async Task<int> StopAsync(TimeSpan timeout)
    {
        if (!_process.HasExited)
        {
            try
            {
                _process.StandardInput.Close();
            }
            catch (IOException)
            {
            }

            try
            {
                await _process.WaitForExitAsync().WaitAsync(timeout);
            }
            catch (TimeoutException)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync();
                throw new TimeoutException($"The launcher did not stop within {timeout.TotalSeconds} s after its stdin closed; killed. Its output:{Environment.NewLine}{Tail()}");
            }
        }

        // Let the asynchronous readers deliver the last lines.
        _process.WaitForExit();
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync(TimeSpan.FromSeconds(20));
        }
        catch (TimeoutException)
        {
        }
        finally
        {
            // Whatever happened to the launcher, no workload it started may survive the test run.
            foreach (var workload in Workloads.Values)
            {
                try
                {
                    using var orphan = Process.GetProcessById(workload.Pid);
                    orphan.Kill();
                }
                catch (ArgumentException)
                {
                }
                catch (InvalidOperationException)
                {
                }
            }

            _process.Dispose();
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
    }

    [GeneratedRegex(@"^workload (\S+) pid=(\d+) url=(http://\S+) metrics=(http://\S+)$")]
    private static partial Regex WorkloadLine();

    [GeneratedRegex(@"^Prometheus targets: (\S+) \(")]
    private static partial Regex PrometheusLine();
}

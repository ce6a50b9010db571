using System.Diagnostics;
using System.Globalization;

namespace Bookinfo.Launcher;

/// <summary>
/// A workload running as a child process (<c>dotnet SERVICE.dll</c>). Its standard input is a pipe the launcher
/// holds: closing it (on stop, or because the launcher died) makes the service stop itself. Its log lines are
/// passed on prefixed with its name; the line where ASP.NET Core reports its address tells the launcher the port.
/// </summary>
internal sealed partial class Workload : IAsyncDisposable
{
    /// <summary>The log category of the SDK's health server, whose start line names the health port.</summary>
    public const string HealthServerCategory = "Mesh.Sdk.AspNetCore.Security.MeshHealthServer";

    private const string ListeningPrefix = "Now listening on: ";
    private const string HealthPrefix = "Health port 127.0.0.1:";
    private const string MetricsPrefix = "Metrics port 127.0.0.1:";
    private static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);

    private readonly Process _process;
    private readonly ILogger _logger;
    private readonly bool _showLifetime;
    private readonly TaskCompletionSource<Uri> _address = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<int> _healthPort = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<int> _metricsPort = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Queue<string> _recent = new();
    private int _stopping;

    private Workload(WorkloadSpec spec, Process process, ILogger logger, bool showLifetime)
    {
        Spec = spec;
        _process = process;
        _logger = logger;
        _showLifetime = showLifetime;
    }

    public WorkloadSpec Spec { get; }

    public int ProcessId => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>The address the workload listens on, once it reported it.</summary>
    public Task<Uri> Address => _address.Task;

    /// <summary>The plaintext health port (Mesh:HealthPort) the workload bound, once it reported it.</summary>
    public Task<int> HealthPort => _healthPort.Task;

    /// <summary>The plaintext metrics port (Mesh:Telemetry:MetricsPort) the workload bound, once it reported it.</summary>
    public Task<int> MetricsPort => _metricsPort.Task;

    /// <summary>Completes when the process exits.</summary>
    public Task Exited => _process.WaitForExitAsync();

    /// <summary>The last lines the workload wrote (for error reports).</summary>
    public string RecentOutput
    {
        get
        {
            lock (_recent)
            {
                return string.Join(Environment.NewLine, _recent);
            }
        }
    }

    /// <summary>Starts <paramref name="spec"/> with <paramref name="environment"/> on top of the launcher's own (minus mesh settings).</summary>
    public static Workload Start(WorkloadSpec spec, string assemblyPath, IReadOnlyDictionary<string, string> environment, ILogger logger, bool showLifetime)
    {
        var start = new ProcessStartInfo(DotnetHost(), [assemblyPath])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(assemblyPath)!,
        };

        // Settings a user's shell may hold would override the launcher's: the xDS bootstrap, mesh options, URLs.
        foreach (var key in start.Environment.Keys.ToList())
        {
            if (key.StartsWith("GRPC_XDS_BOOTSTRAP", StringComparison.Ordinal) || key.StartsWith("Mesh__", StringComparison.OrdinalIgnoreCase)
                || key.StartsWith("Bookinfo__", StringComparison.OrdinalIgnoreCase) || key is "ASPNETCORE_URLS" or "ASPNETCORE_HTTP_PORTS" or "ASPNETCORE_HTTPS_PORTS" or "DOTNET_URLS")
            {
                start.Environment.Remove(key);
            }
        }

        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var workload = new Workload(spec, process, logger, showLifetime);
        process.OutputDataReceived += (_, e) => workload.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => workload.OnLine(e.Data);
        process.Exited += (_, _) =>
        {
            workload._address.TrySetException(new InvalidOperationException(
                $"Workload '{spec.Name}' exited with code {workload.ExitCode()} before it listened."));
            workload._healthPort.TrySetException(new InvalidOperationException(
                $"Workload '{spec.Name}' exited with code {workload.ExitCode()} before its health port listened."));
            workload._metricsPort.TrySetException(new InvalidOperationException(
                $"Workload '{spec.Name}' exited with code {workload.ExitCode()} before its metrics port listened."));
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return workload;
    }

    /// <summary>Stops the workload: closes its standard input, waits a few seconds, then kills it.</summary>
    public async Task StopAsync()
    {
        Interlocked.Exchange(ref _stopping, 1);
        if (_process.HasExited)
        {
            return;
        }

        try
        {
            _process.StandardInput.Close();
        }
        catch (IOException)
        {
        }

        try
        {
            await _process.WaitForExitAsync().WaitAsync(StopGrace);
        }
        catch (TimeoutException)
        {
            Log.Killing(_logger, Spec.Name, ProcessId);
            try
            {
                _process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
            }

            await _process.WaitForExitAsync();
        }
    }

    /// <summary>True when the workload exited while the launcher was not stopping it.</summary>
    public bool ExitedUnexpectedly => _process.HasExited && Volatile.Read(ref _stopping) == 0;

    public string ExitCode()
    {
        try
        {
            return _process.ExitCode.ToString(CultureInfo.InvariantCulture);
        }
        catch (InvalidOperationException)
        {
            return "unknown";
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _process.Dispose();
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_recent)
        {
            _recent.Enqueue(line);
            if (_recent.Count > 40)
            {
                _recent.Dequeue();
            }
        }

        var listening = line.IndexOf(ListeningPrefix, StringComparison.Ordinal);
        if (listening >= 0 && Uri.TryCreate(line[(listening + ListeningPrefix.Length)..].Trim(), UriKind.Absolute, out var address))
        {
            _address.TrySetResult(address);
        }

        if (PortAfter(line, HealthPrefix) is { } healthPort)
        {
            _healthPort.TrySetResult(healthPort);
        }

        if (PortAfter(line, MetricsPrefix) is { } metricsPort)
        {
            _metricsPort.TrySetResult(metricsPort);
        }

        if (_showLifetime || !(line.Contains("Microsoft.Hosting.Lifetime", StringComparison.Ordinal) || line.Contains(HealthServerCategory, StringComparison.Ordinal)))
        {
            Console.Out.WriteLine($"[{Spec.Name}] {line}");
        }
    }

    /// <summary>The port number right after <paramref name="prefix"/> in <paramref name="line"/>, if the line has one.</summary>
    private static int? PortAfter(string line, string prefix)
    {
        var at = line.IndexOf(prefix, StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }

        var digits = line.AsSpan(at + prefix.Length);
        var end = 0;
        while (end < digits.Length && char.IsAsciiDigit(digits[end]))
        {
            end++;
        }

        return int.TryParse(digits[..end], NumberStyles.None, CultureInfo.InvariantCulture, out var port) ? port : null;
    }

    /// <summary>The dotnet host running the launcher (so workloads run on the same runtime), else dotnet from PATH.</summary>
    private static string DotnetHost()
    {
        var current = Environment.ProcessPath;
        if (current is not null && Path.GetFileNameWithoutExtension(current) == "dotnet")
        {
            return current;
        }

        return Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 20, Level = LogLevel.Warning, Message = "Workload '{Name}' (pid {Pid}) did not stop within 5 s; killing it.")]
        public static partial void Killing(ILogger logger, string name, int pid);
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Mesh.Sdk.FunctionalTests.Infrastructure;

/// <summary>
/// The real <c>mesh-controlplane</c> as a child process (<c>dotnet Mesh.ControlPlane.dll --config DIR --xds-port N</c>),
/// built next to this test assembly. Its output is read continuously and kept for waits and failure messages.
/// <see cref="Kill"/> sends SIGKILL: the process gets no chance to clean up, as in a crash or an OOM kill.
/// </summary>
internal sealed partial class ControlPlaneProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];

    private ControlPlaneProcess(Process process) => _process = process;

    /// <summary>The xDS port the process reported listening on.</summary>
    public int Port { get; private set; }

    /// <summary>When the process reported listening (test stopwatch time).</summary>
    public TimeSpan ListeningAt { get; private set; }

    public string Output
    {
        get
        {
            lock (_lines)
            {
                return string.Join(Environment.NewLine, _lines);
            }
        }
    }

    /// <summary>Starts the control plane and waits for its "listening" line.</summary>
    public static async Task<ControlPlaneProcess> StartAsync(string configDirectory, int port, Stopwatch clock, TimeSpan timeout)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { Assembly(), "--config", configDirectory, "--xds-port", port.ToString(CultureInfo.InvariantCulture), "--log-level", "Information" })
        {
            start.ArgumentList.Add(arg);
        }

        var process = new Process { StartInfo = start };
        var result = new ControlPlaneProcess(process);
        var listening = new TaskCompletionSource<(int Port, TimeSpan At)>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnLine(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (result._lines)
            {
                result._lines.Add(line);
            }

            if (ListeningLine().Match(line) is { Success: true } m)
            {
                listening.TrySetResult((int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture), clock.Elapsed));
            }
        }

        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var exited = process.WaitForExitAsync();
            var done = await Task.WhenAny(listening.Task, exited, Task.Delay(timeout));
            if (done != listening.Task)
            {
                throw new InvalidOperationException($"mesh-controlplane did not report listening within {timeout.TotalSeconds} s (exited: {process.HasExited}). Output:{Environment.NewLine}{result.Output}");
            }

            (result.Port, result.ListeningAt) = listening.Task.Result;
            return result;
        }
        catch
        {
            await result.DisposeAsync();
            throw;
        }
    }

    /// <summary>SIGKILL, then waits for the process to be gone.</summary>
    public void Kill()
    {
        _process.Kill();
        _process.WaitForExit();
    }

    public ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit();
        }

        _process.Dispose();
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// The control plane built in this test run's configuration:
    /// tests/Mesh.Sdk.FunctionalTests/bin/Debug/net10.0 → src/Mesh.ControlPlane/bin/Debug/net10.0/Mesh.ControlPlane.dll.
    /// </summary>
    private static string Assembly()
    {
        var baseDirectory = Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory);
        string? root = null;
        for (var dir = new DirectoryInfo(baseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Mesh.Sdk.sln")))
            {
                root = dir.FullName;
                break;
            }
        }

        if (root is null)
        {
            throw new InvalidOperationException($"No Mesh.Sdk.sln above '{baseDirectory}'.");
        }

        var tail = Path.GetRelativePath(Path.Combine(root, "tests", "Mesh.Sdk.FunctionalTests"), baseDirectory);
        var assembly = Path.Combine(root, "src", "Mesh.ControlPlane", tail, "Mesh.ControlPlane.dll");
        if (!File.Exists(assembly))
        {
            throw new FileNotFoundException($"'{assembly}' does not exist. Build tests/Mesh.Sdk.FunctionalTests (it builds the control plane) in this configuration first.", assembly);
        }

        return assembly;
    }

    [GeneratedRegex(@"xDS server listening on .*\(port (\d+)\)")]
    private static partial Regex ListeningLine();
}

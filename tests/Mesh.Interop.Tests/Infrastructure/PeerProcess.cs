using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Mesh.Interop.Tests.Infrastructure;

/// <summary>One line the peer printed for a call (or its final summary line).</summary>
internal sealed record PeerCall(int Index, bool Ok, string? Version, string? Workload, int? Code, string? Error,
    IReadOnlyDictionary<string, string> Headers, TimeSpan At);

/// <summary>
/// A running peer client process (Node or Python). Collects its JSON call lines and the tail of its
/// stderr; killed with its whole process tree on dispose.
/// </summary>
internal sealed class PeerProcess : IDisposable
{
    private const int StderrTailLines = 120;

    private readonly Process _process;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<PeerCall> _calls = [];
    private readonly ConcurrentQueue<string> _stderr = new();
    private readonly List<string> _unparsed = [];
    private readonly TaskCompletionSource _stdoutClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stderrClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly object _gate = new();

    private PeerProcess(string peer, Process process)
    {
        Peer = peer;
        _process = process;
    }

    public string Peer { get; }

    /// <summary>The final "done" line, once the peer has printed it.</summary>
    public JsonElement? Done { get; private set; }

    public static PeerProcess Start(PeerKind peer, IReadOnlyList<string> args, IReadOnlyDictionary<string, string> environment)
    {
        var psi = new ProcessStartInfo(peer.Executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = peer.WorkingDirectory,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var a in peer.LeadingArguments)
        {
            psi.ArgumentList.Add(a);
        }

        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        // A peer must see only the bootstrap the test gives it.
        psi.Environment.Remove("GRPC_XDS_BOOTSTRAP");
        psi.Environment.Remove("GRPC_XDS_BOOTSTRAP_CONFIG");
        psi.Environment.Remove("GRPC_TRACE");
        psi.Environment.Remove("GRPC_VERBOSITY");
        foreach (var (k, v) in environment)
        {
            psi.Environment[k] = v;
        }

        var process = new Process { StartInfo = psi, EnableRaisingEvents = true };
        var peerProcess = new PeerProcess(peer.Name, process);
        process.OutputDataReceived += (_, e) => peerProcess.OnStdout(e.Data);
        process.ErrorDataReceived += (_, e) => peerProcess.OnStderr(e.Data);
        if (!process.Start())
        {
            throw new InvalidOperationException($"Could not start peer '{peer.Name}' ({peer.Executable}).");
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return peerProcess;
    }

    /// <summary>A copy of the call lines received so far.</summary>
    public IReadOnlyList<PeerCall> Calls
    {
        get
        {
            lock (_gate)
            {
                return [.. _calls];
            }
        }
    }

    public TimeSpan Elapsed => _clock.Elapsed;

    public bool HasExited => _process.HasExited;

    /// <summary>Closes the peer's stdin: a peer in stream mode then stops calling and exits.</summary>
    public void CloseStdin()
    {
        try
        {
            _process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The peer has already gone.
        }
        catch (InvalidOperationException)
        {
            // The peer has already gone.
        }
    }

    /// <summary>Waits for the peer to exit and its output to be read; false on timeout.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
            await Task.WhenAll(_stdoutClosed.Task, _stderrClosed.Task).WaitAsync(cts.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Polls until <paramref name="condition"/> holds on the calls so far, the peer exits, or the timeout passes.</summary>
    public async Task<bool> WaitUntilAsync(Func<IReadOnlyList<PeerCall>, bool> condition, TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < timeout)
        {
            if (condition(Calls))
            {
                return true;
            }

            if (_process.HasExited)
            {
                await WaitForExitAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
                return condition(Calls);
            }

            await Task.Delay(20).ConfigureAwait(false);
        }

        return condition(Calls);
    }

    /// <summary>Exit code, stderr tail and the lines that were not call lines: for assertion messages.</summary>
    public string Diagnostics()
    {
        var sb = new StringBuilder();
        sb.Append("--- peer '").Append(Peer).Append("' ");
        sb.Append(_process.HasExited ? $"exit code {_process.ExitCode}" : "still running");
        sb.Append(", ").Append(Calls.Count).Append(" call lines");
        if (Done is { } done)
        {
            sb.Append(", done: ").Append(done.GetRawText());
        }

        sb.AppendLine();
        var errors = Calls.Where(c => !c.Ok).ToList();
        if (errors.Count > 0)
        {
            sb.Append("failed calls: ").Append(errors.Count).AppendLine("; first and last:");
            sb.Append("  #").Append(errors[0].Index).Append(" code ").Append(errors[0].Code).Append(": ").AppendLine(errors[0].Error);
            sb.Append("  #").Append(errors[^1].Index).Append(" code ").Append(errors[^1].Code).Append(": ").AppendLine(errors[^1].Error);
        }

        lock (_gate)
        {
            foreach (var line in _unparsed.TakeLast(10))
            {
                sb.Append("stdout: ").AppendLine(line);
            }
        }

        sb.AppendLine("--- stderr tail (set MESH_INTEROP_TRACE=1 for xDS traces):");
        foreach (var line in _stderr)
        {
            sb.AppendLine(line);
        }

        return sb.ToString();
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // Already exited.
        }

        _process.Dispose();
    }

    private void OnStdout(string? line)
    {
        if (line is null)
        {
            _stdoutClosed.TrySetResult();
            return;
        }

        var at = _clock.Elapsed;
        try
        {
            using var doc = JsonDocument.Parse(line);
            var root = doc.RootElement;
            if (root.TryGetProperty("done", out _))
            {
                Done = root.Clone();
                return;
            }

            var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            if (root.TryGetProperty("headers", out var h) && h.ValueKind == JsonValueKind.Object)
            {
                foreach (var p in h.EnumerateObject())
                {
                    headers[p.Name] = p.Value.GetString() ?? string.Empty;
                }
            }

            var call = new PeerCall(
                root.GetProperty("i").GetInt32(),
                root.GetProperty("ok").GetBoolean(),
                root.TryGetProperty("version", out var v) ? v.GetString() : null,
                root.TryGetProperty("workload", out var w) ? w.GetString() : null,
                root.TryGetProperty("code", out var c) && c.ValueKind == JsonValueKind.Number ? c.GetInt32() : null,
                root.TryGetProperty("error", out var e) ? e.ToString() : null,
                headers,
                at);
            lock (_gate)
            {
                _calls.Add(call);
            }
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            lock (_gate)
            {
                _unparsed.Add(line);
            }
        }
    }

    private void OnStderr(string? line)
    {
        if (line is null)
        {
            _stderrClosed.TrySetResult();
            return;
        }

        _stderr.Enqueue(line);
        while (_stderr.Count > StderrTailLines && _stderr.TryDequeue(out _))
        {
        }
    }
}

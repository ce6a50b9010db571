using Mesh.ControlPlane;
using Mesh.Testing;
using Microsoft.Extensions.Logging;

namespace Mesh.Interop.Tests.Infrastructure;

/// <summary>
/// The real <see cref="MeshControlPlane"/>, hosted in the test process on 127.0.0.1 with an
/// ephemeral port, serving a config folder, with its log kept for assertion messages.
/// </summary>
internal sealed class ControlPlaneHarness : IAsyncDisposable
{
    private readonly CapturingLoggerProvider _logs;
    private readonly ILoggerFactory _loggerFactory;
    private readonly MeshControlPlane _controlPlane;

    private ControlPlaneHarness(CapturingLoggerProvider logs, ILoggerFactory loggerFactory, MeshControlPlane controlPlane)
    {
        _logs = logs;
        _loggerFactory = loggerFactory;
        _controlPlane = controlPlane;
    }

    public int Port => _controlPlane.XdsPort;

    public MeshControlPlane ControlPlane => _controlPlane;

    public static async Task<ControlPlaneHarness> StartAsync(string configDirectory)
    {
        var logs = new CapturingLoggerProvider();
        // The control plane's own categories in full; the web host underneath only when it warns.
        var loggerFactory = LoggerFactory.Create(b => b
            .SetMinimumLevel(LogLevel.Debug)
            .AddFilter((category, level) => category?.StartsWith("Mesh.", StringComparison.Ordinal) == true ? level >= LogLevel.Debug : level >= LogLevel.Warning)
            .AddProvider(logs));
        var controlPlane = new MeshControlPlane(new MeshControlPlaneOptions
        {
            ConfigDirectory = configDirectory,
            XdsAddress = "127.0.0.1",
            XdsPort = 0,
            LoggerFactory = loggerFactory,
        });
        var harness = new ControlPlaneHarness(logs, loggerFactory, controlPlane);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await controlPlane.StartAsync(cts.Token);
        }
        catch
        {
            await harness.DisposeAsync();
            throw;
        }

        if (controlPlane.ConfigErrors.Count > 0)
        {
            var errors = string.Join("\n", controlPlane.ConfigErrors);
            await harness.DisposeAsync();
            throw new InvalidOperationException("The control plane rejected the test configuration:\n" + errors + "\n" + logs.Dump());
        }

        return harness;
    }

    /// <summary>
    /// Warnings and errors the control plane logged: a peer's NACK shows up here. The start-up notice that loopback
    /// callers are trusted by the CA (development trust, on by default) is expected and left out.
    /// </summary>
    public IReadOnlyList<CapturedLogEntry> Warnings
        => [.. _logs.Warnings.Where(static w => w.EventId != MeshControlPlane.LoopbackTrustWarningEventId)];

    public string Log()
    {
        var errors = _controlPlane.ConfigErrors;
        var head = $"snapshot version {_controlPlane.SnapshotVersion}, {errors.Count} config errors"
            + (errors.Count > 0 ? ":\n" + string.Join("\n", errors) : string.Empty);
        return head + "\n" + _logs.Dump();
    }

    public async ValueTask DisposeAsync()
    {
        await _controlPlane.DisposeAsync();
        _loggerFactory.Dispose();
    }
}

using Mesh.ControlPlane;
using Microsoft.Extensions.Logging;

// mesh-controlplane: serves Istio YAML from a directory over ADS (see docs/control-plane.md).
const string Usage = """
    Usage: mesh-controlplane --config DIR [--xds-port N] [--xds-address A] [--log-level LEVEL]

      --config DIR        directory of Istio YAML files (*.yaml, *.yml), watched for changes
      --xds-port N        xDS (ADS) port, plaintext HTTP/2; 0 picks a free port (default 15010)
      --xds-address A     IP address to listen on (default 127.0.0.1)
      --log-level LEVEL   Trace, Debug, Information, Warning, Error (default Information)
      -h, --help          show this help
    """;

var options = new MeshControlPlaneOptions();
var level = LogLevel.Information;
for (var i = 0; i < args.Length; i++)
{
    var arg = args[i];
    if (arg is "-h" or "--help")
    {
        Console.WriteLine(Usage);
        return 0;
    }

    string? value = null;
    var eq = arg.IndexOf('=', StringComparison.Ordinal);
    if (arg.StartsWith("--", StringComparison.Ordinal) && eq > 0)
    {
        value = arg[(eq + 1)..];
        arg = arg[..eq];
    }
    else if (i + 1 < args.Length && arg is "--config" or "--xds-port" or "--xds-address" or "--log-level")
    {
        value = args[++i];
    }

    switch (arg)
    {
        case "--config" when value is not null:
            options.ConfigDirectory = value;
            break;
        case "--xds-port" when value is not null:
            if (!int.TryParse(value, out var port) || port is < 0 or > 65535)
            {
                return Fail($"--xds-port must be a number from 0 to 65535, got '{value}'.");
            }

            options.XdsPort = port;
            break;
        case "--xds-address" when value is not null:
            if (!System.Net.IPAddress.TryParse(value, out _) && value != "localhost")
            {
                return Fail($"--xds-address must be an IP address, got '{value}'.");
            }

            options.XdsAddress = value;
            break;
        case "--log-level" when value is not null:
            if (!Enum.TryParse(value, ignoreCase: true, out level))
            {
                return Fail($"--log-level must be one of Trace, Debug, Information, Warning, Error, got '{value}'.");
            }

            break;
        case "--config" or "--xds-port" or "--xds-address" or "--log-level":
            return Fail($"{arg} needs a value.");
        default:
            return Fail($"unknown argument '{arg}'.");
    }
}

if (options.ConfigDirectory is null)
{
    return Fail("--config DIR is required.");
}

if (!Directory.Exists(options.ConfigDirectory))
{
    return Fail($"config directory '{options.ConfigDirectory}' does not exist.");
}

using var loggerFactory = LoggerFactory.Create(b => b.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss.fff "; }).SetMinimumLevel(level));
options.LoggerFactory = loggerFactory;
var logger = loggerFactory.CreateLogger("Mesh.ControlPlane");

using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};
using var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, ctx =>
{
    ctx.Cancel = true;
    stop.Cancel();
});

await using (var controlPlane = new MeshControlPlane(options))
{
    try
    {
        var bound = await controlPlane.StartAsync(stop.Token);
        ProgramLog.Listening(logger, controlPlane.XdsUri!, bound, Path.GetFullPath(options.ConfigDirectory));
    }
    catch (IOException ex)
    {
        return Fail($"cannot listen on {options.XdsAddress}:{options.XdsPort}: {ex.Message}", exitCode: 1);
    }
    catch (OperationCanceledException)
    {
        return 0;
    }

    try
    {
        await Task.Delay(Timeout.Infinite, stop.Token);
    }
    catch (OperationCanceledException)
    {
        ProgramLog.Stopping(logger);
    }
}

return 0;

static int Fail(string message, int exitCode = 2)
{
    Console.Error.WriteLine($"mesh-controlplane: {message}");
    if (exitCode == 2)
    {
        Console.Error.WriteLine("Run with --help for usage.");
    }

    return exitCode;
}

internal static partial class ProgramLog
{
    [LoggerMessage(EventId = 5001, Level = LogLevel.Information, Message = "xDS server listening on '{Uri}' (port {Port}); config from '{Directory}'.")]
    public static partial void Listening(ILogger logger, Uri uri, int port, string directory);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Information, Message = "Stopping.")]
    public static partial void Stopping(ILogger logger);
}

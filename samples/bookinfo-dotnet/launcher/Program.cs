using System.Runtime.InteropServices;
using Bookinfo.Launcher;

// Bookinfo.Launcher: the control plane plus the six bookinfo workloads, stopped together (see ../README.md).
LauncherOptions options;
try
{
    options = LauncherOptions.Parse(args);
}
catch (ArgumentException ex)
{
    Console.Error.WriteLine($"Bookinfo.Launcher: {ex.Message}");
    Console.Error.WriteLine("Run with --help for usage.");
    return 2;
}

if (options.Help)
{
    Console.WriteLine(LauncherOptions.Usage);
    return 0;
}

SampleLayout layout;
try
{
    layout = SampleLayout.Locate();
}
catch (InvalidOperationException ex)
{
    Console.Error.WriteLine($"Bookinfo.Launcher: {ex.Message}");
    return 1;
}

using var loggerFactory = LoggerFactory.Create(builder => builder
    .AddSimpleConsole(o =>
    {
        o.SingleLine = true;
        o.TimestampFormat = "HH:mm:ss.fff ";
    })
    .SetMinimumLevel(options.LogLevel)
    // The control plane's file loads and workload registrations are worth seeing; its per-push detail is not.
    .AddFilter((category, level) => level >= options.LogLevel && (options.LogLevel <= LogLevel.Debug
        || level >= LogLevel.Warning
        || category is null
        || category.StartsWith("Bookinfo", StringComparison.Ordinal)
        || category.StartsWith("Mesh.ControlPlane.Config", StringComparison.Ordinal)
        || category.StartsWith("Mesh.ControlPlane.Registry", StringComparison.Ordinal))));

using var stop = new CancellationTokenSource();
void Stop(PosixSignalContext context)
{
    context.Cancel = true;
    stop.Cancel();
}

using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, Stop);

if (options.ExitOnStdinClose)
{
    // A test harness holds the write end of this pipe: when it exits (even when it is killed), the pipe closes.
    var watch = new Thread(() =>
    {
        using var stdin = Console.OpenStandardInput();
        var buffer = new byte[256];
        try
        {
            while (stdin.Read(buffer, 0, buffer.Length) > 0)
            {
            }
        }
        catch (IOException)
        {
        }

        stop.Cancel();
    })
    {
        IsBackground = true,
        Name = "stdin watch",
    };
    watch.Start();
}

int exitCode;
try
{
    exitCode = await new Launcher(options, layout, loggerFactory).RunAsync(stop.Token);
}
catch (FileNotFoundException ex)
{
    Console.Error.WriteLine($"Bookinfo.Launcher: {ex.Message}");
    exitCode = 1;
}

Console.Out.WriteLine("Bookinfo stopped");
return exitCode;

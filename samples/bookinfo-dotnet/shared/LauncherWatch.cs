namespace Bookinfo.Shared;

/// <summary>
/// Stops the service when the launcher that started it goes away. The launcher gives each service a pipe as
/// standard input and sets <c>Bookinfo:ExitOnStdinClose=true</c>; the pipe closes when the launcher exits for
/// any reason (also when it is killed), so no service outlives it.
/// </summary>
internal sealed partial class LauncherWatch(IConfiguration configuration, IHostApplicationLifetime lifetime, ILogger<LauncherWatch> logger) : BackgroundService
{
    public const string ConfigurationKey = "Bookinfo:ExitOnStdinClose";

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!configuration.GetValue<bool>(ConfigurationKey))
        {
            return Task.CompletedTask;
        }

        // A blocking read on a thread of its own: console input has no cancellable asynchronous read.
        var thread = new Thread(() =>
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

            if (!stoppingToken.IsCancellationRequested)
            {
                Log.LauncherGone(logger);
                lifetime.StopApplication();
            }
        })
        {
            IsBackground = true,
            Name = "launcher watch",
        };
        thread.Start();
        return Task.CompletedTask;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 900, Level = LogLevel.Warning, Message = "Standard input closed: the launcher is gone; stopping.")]
        public static partial void LauncherGone(ILogger logger);
    }
}

using System.Globalization;

namespace Bookinfo.Launcher;

/// <summary>The launcher's command line.</summary>
internal sealed record LauncherOptions
{
    public const string Usage = """
        Usage: Bookinfo.Launcher [--config DIR] [--port N] [--xds-port N] [--monitoring-port N] [--prometheus-dir DIR] [--exit-on-stdin-close]
                                 [--log-level LEVEL]

          --config DIR             Istio YAML folder the control plane loads and watches
                                   (default: samples/bookinfo-dotnet/config)
          --port N                 productpage's port on 127.0.0.1; 0 picks a free one (default 9080)
          --xds-port N             the control plane's xDS port; 0 picks a free one (default 15010)
          --monitoring-port N      the control plane's monitoring port: the service graph dashboard at /,
                                   /graph, /dotviz and its own /metrics; 0 picks a free one (default 15014)
          --prometheus-dir DIR     where to write the Prometheus scrape targets (bookinfo-targets.json, file_sd_configs
                                   format) and a prometheus.yml that reads them
                                   (default: samples/bookinfo-dotnet/prometheus)
          --exit-on-stdin-close    stop everything when standard input closes (for test harnesses)
          --log-level LEVEL        Trace, Debug, Information, Warning, Error (default Information)
          --no-build               accepted and ignored: the launcher never builds (scripts/run.sh does)
          -h, --help               show this help

        Every other workload gets a free port, and every workload a free plaintext health port
        (Mesh:HealthPort) the launcher checks and a free plaintext metrics port (Mesh:Telemetry:MetricsPort) that
        Prometheus scrapes: `prometheus --config.file=DIR/prometheus.yml`. Ctrl+C or SIGTERM stops all of them.
        """;

    public string? ConfigDirectory { get; init; }

    public int Port { get; init; } = 9080;

    public int XdsPort { get; init; } = 15010;

    public int MonitoringPort { get; init; } = 15014;

    /// <summary>Where the Prometheus targets file and prometheus.yml go; <see langword="null"/>: the sample's prometheus folder.</summary>
    public string? PrometheusDirectory { get; init; }

    public bool ExitOnStdinClose { get; init; }

    public Microsoft.Extensions.Logging.LogLevel LogLevel { get; init; } = Microsoft.Extensions.Logging.LogLevel.Information;

    public bool Help { get; init; }

    /// <summary>Parses <paramref name="args"/>; a bad argument throws <see cref="ArgumentException"/> naming it.</summary>
    public static LauncherOptions Parse(IReadOnlyList<string> args)
    {
        var options = new LauncherOptions();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string? value = null;
            var eq = arg.IndexOf('=', StringComparison.Ordinal);
            if (arg.StartsWith("--", StringComparison.Ordinal) && eq > 0)
            {
                value = arg[(eq + 1)..];
                arg = arg[..eq];
            }
            else if (arg is "--config" or "--port" or "--xds-port" or "--monitoring-port" or "--prometheus-dir" or "--log-level")
            {
                if (i + 1 >= args.Count)
                {
                    throw new ArgumentException($"{arg} needs a value.");
                }

                value = args[++i];
            }

            options = arg switch
            {
                "-h" or "--help" => options with { Help = true },
                "--no-build" => options,
                "--exit-on-stdin-close" => options with { ExitOnStdinClose = true },
                "--config" => options with { ConfigDirectory = value },
                "--prometheus-dir" => options with { PrometheusDirectory = value is { Length: > 0 } ? value : throw new ArgumentException("--prometheus-dir needs a folder.") },
                "--port" => options with { Port = ParsePort(arg, value!) },
                "--xds-port" => options with { XdsPort = ParsePort(arg, value!) },
                "--monitoring-port" => options with { MonitoringPort = ParsePort(arg, value!) },
                "--log-level" => options with
                {
                    LogLevel = Enum.TryParse<Microsoft.Extensions.Logging.LogLevel>(value, ignoreCase: true, out var level) && level <= Microsoft.Extensions.Logging.LogLevel.Error
                        ? level
                        : throw new ArgumentException($"--log-level must be one of Trace, Debug, Information, Warning, Error, got '{value}'."),
                },
                _ => throw new ArgumentException($"unknown argument '{args[i]}'."),
            };
        }

        return options;
    }

    private static int ParsePort(string flag, string value) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is >= 0 and <= 65535
            ? port
            : throw new ArgumentException($"{flag} must be a number from 0 to 65535, got '{value}'.");
}

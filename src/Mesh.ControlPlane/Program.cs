using Mesh.ControlPlane;
using Microsoft.Extensions.Logging;

// mesh-controlplane: serves Istio YAML from a directory over ADS (see docs/control-plane.md).
const string Usage = """
    Usage: mesh-controlplane --config DIR [--xds-port N] [--xds-address A] [--monitoring-port N] [--prometheus-url URL]
                             [--log-level LEVEL] [CA options]
           mesh-controlplane --ca-dir DIR --issue-token SA[.NS]

      --config DIR          directory of Istio YAML files (*.yaml, *.yml), watched for changes; self-registered
                            workloads are kept in DIR/.mesh-registry.json across restarts
      --xds-port N          xDS (ADS) and CA port, plaintext HTTP/2; 0 picks a free port (default 15010)
      --xds-address A       IP address to listen on (default 127.0.0.1)
      --monitoring-port N   monitoring HTTP port on the xDS address (istiod's is 15014; 0 picks a free port): /metrics
                            (the control plane's own metrics), /graph and /dotviz (the service graph), / (dashboard)
      --prometheus-url URL  the service graph queries this Prometheus instead of scraping the workloads itself
      --log-level LEVEL     Trace, Debug, Information, Warning, Error (default Information)
      -h, --help            show this help

    CA (Istio's IstioCertificateService on the xDS port; see docs/security.md):
      --trust-domain D      SPIFFE trust domain of issued identities (default cluster.local)
      --root-namespace N    namespace of mesh-wide security policies (default istio-system)
      --ca-dir DIR          CA folder: Istio's ca-cert.pem/ca-key.pem[/root-cert.pem/cert-chain.pem] are used
                            when present, else a root is generated there at first start and reused; also
                            holds the join-token key (default: a root in memory, lost at exit)
      --ca-cert FILE        signing certificate PEM (a root, or an intermediate: then --root-cert too)
      --ca-key FILE         its private key PEM
      --root-cert FILE      the root --ca-cert chains to
      --cert-chain FILE     intermediates between --ca-cert and the root
      --default-cert-ttl T  lifetime when a request asks for none, e.g. 24h, 90m, 3600s (default 24h)
      --max-cert-ttl T      longest lifetime a request may ask for; longer ones are refused (default 90d)
      --no-loopback-trust   callers on this host need a join token too (default: a loopback caller
                            without a token gets any identity it asks for; a warning says so at start)
      --issue-token SA[.NS] print the join token of service account SA in namespace NS (default
                            'default') using the key in --ca-dir, and exit
    """;

var options = new MeshControlPlaneOptions();
var level = LogLevel.Information;
string? issueToken = null;
string[] valued = ["--config", "--xds-port", "--xds-address", "--monitoring-port", "--prometheus-url", "--log-level", "--trust-domain", "--root-namespace", "--ca-dir", "--ca-cert", "--ca-key", "--root-cert",
    "--cert-chain", "--default-cert-ttl", "--max-cert-ttl", "--issue-token"];
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
    else if (i + 1 < args.Length && valued.Contains(arg))
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
        case "--monitoring-port" when value is not null:
            if (!int.TryParse(value, out var monitoringPort) || monitoringPort is < 0 or > 65535)
            {
                return Fail($"--monitoring-port must be a number from 0 to 65535, got '{value}'.");
            }

            options.MonitoringPort = monitoringPort;
            break;
        case "--prometheus-url" when value is not null:
            if (!Uri.TryCreate(value.EndsWith('/') ? value : value + "/", UriKind.Absolute, out var prometheusUrl) || prometheusUrl.Scheme is not ("http" or "https"))
            {
                return Fail($"--prometheus-url must be an absolute http:// or https:// URL, got '{value}'.");
            }

            options.PrometheusUrl = prometheusUrl;
            break;
        case "--log-level" when value is not null:
            if (!Enum.TryParse(value, ignoreCase: true, out level))
            {
                return Fail($"--log-level must be one of Trace, Debug, Information, Warning, Error, got '{value}'.");
            }

            break;
        case "--trust-domain" when value is not null:
            if (!Mesh.Xds.Security.SpiffeId.IsTrustDomain(value))
            {
                return Fail($"--trust-domain must be lower-case letters, digits, '.', '-' and '_', got '{value}'.");
            }

            options.TrustDomain = value;
            break;
        case "--root-namespace" when value is not null:
            options.RootNamespace = value;
            break;
        case "--ca-dir" when value is not null:
            options.CaDirectory = value;
            break;
        case "--ca-cert" when value is not null:
            options.CaCertFile = value;
            break;
        case "--ca-key" when value is not null:
            options.CaKeyFile = value;
            break;
        case "--root-cert" when value is not null:
            options.RootCertFile = value;
            break;
        case "--cert-chain" when value is not null:
            options.CertChainFile = value;
            break;
        case "--default-cert-ttl" or "--max-cert-ttl" when value is not null:
            if (!TryParseDuration(value, out var ttl))
            {
                return Fail($"{arg} must be a positive duration such as 24h, 90m, 3600s or 90d, got '{value}'.");
            }

            if (arg == "--default-cert-ttl")
            {
                options.DefaultCertificateTtl = ttl;
            }
            else
            {
                options.MaxCertificateTtl = ttl;
            }

            break;
        case "--no-loopback-trust" when value is null:
            options.TrustLoopbackCallers = false;
            break;
        case "--issue-token" when value is not null:
            issueToken = value;
            break;
        case var known when valued.Contains(known):
            return Fail($"{arg} needs a value.");
        default:
            return Fail($"unknown argument '{arg}'.");
    }
}

if (issueToken is not null)
{
    var dot = issueToken.IndexOf('.', StringComparison.Ordinal);
    var account = dot < 0 ? issueToken : issueToken[..dot];
    var ns = dot < 0 ? "default" : issueToken[(dot + 1)..];
    try
    {
        Console.WriteLine(MeshControlPlane.IssueJoinToken(options, account, ns));
        return 0;
    }
    catch (Exception ex) when (ex is InvalidOperationException or ArgumentException)
    {
        return Fail(ex.Message);
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
        if (controlPlane.MonitoringUri is { } monitoring)
        {
            ProgramLog.MonitoringListening(logger, monitoring, controlPlane.MonitoringPort!.Value, options.PrometheusUrl?.ToString() ?? "scraping the registered workloads");
        }
    }
    catch (InvalidOperationException ex) when (ex.Message.StartsWith("CA ", StringComparison.Ordinal) || ex.Message.StartsWith("Join token", StringComparison.Ordinal))
    {
        return Fail(ex.Message, exitCode: 1);
    }
    catch (IOException ex) when (Mesh.ControlPlane.Xds.ClientCloseLogFilter.IsPortInUse(ex) && controlPlane.XdsUri is not null && options.MonitoringPort is { } taken)
    {
        // The xDS server was up: the monitoring server is the one that could not bind.
        return Fail($"port {taken} on {options.XdsAddress} is in use; pass --monitoring-port N (0 picks a free port)", exitCode: 1);
    }
    catch (IOException ex) when (Mesh.ControlPlane.Xds.ClientCloseLogFilter.IsPortInUse(ex))
    {
        return Fail($"port {options.XdsPort} on {options.XdsAddress} is in use; pass --xds-port N (0 picks a free port)", exitCode: 1);
    }
    catch (IOException ex)
    {
        var ports = options.MonitoringPort is { } m ? $"{options.XdsPort} (xDS) or {m} (monitoring)" : options.XdsPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Fail($"cannot listen on {options.XdsAddress}:{ports}: {ex.Message}", exitCode: 1);
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

static bool TryParseDuration(string text, out TimeSpan value)
{
    value = default;
    if (text.Length < 2 || !long.TryParse(text.AsSpan(0, text.Length - 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) || n <= 0)
    {
        return TimeSpan.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out value) && value > TimeSpan.Zero;
    }

    value = text[^1] switch
    {
        's' => TimeSpan.FromSeconds(n),
        'm' => TimeSpan.FromMinutes(n),
        'h' => TimeSpan.FromHours(n),
        'd' => TimeSpan.FromDays(n),
        _ => TimeSpan.Zero,
    };
    return value > TimeSpan.Zero;
}

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

    [LoggerMessage(EventId = 5003, Level = LogLevel.Information, Message = "Monitoring listening on '{Uri}' (port {Port}): /metrics, /graph, /dotviz, dashboard at /; service graph data: {GraphSource}.")]
    public static partial void MonitoringListening(ILogger logger, Uri uri, int port, string graphSource);

    [LoggerMessage(EventId = 5002, Level = LogLevel.Information, Message = "Stopping.")]
    public static partial void Stopping(ILogger logger);
}

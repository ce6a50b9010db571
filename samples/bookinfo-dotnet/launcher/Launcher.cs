using System.Globalization;
using System.Net;
using Mesh.ControlPlane;

namespace Bookinfo.Launcher;

/// <summary>
/// Runs bookinfo: the embedded control plane in this process (loading and watching the config folder), then
/// details, ratings, reviews v1/v2/v3 and productpage as child processes on 127.0.0.1. Each workload registers
/// itself with the control plane as an endpoint of its service (port 9080) through its xDS node metadata, so
/// no service address is written anywhere. Prints one line per workload, then the ready line with the URL.
/// </summary>
internal sealed partial class Launcher(LauncherOptions options, SampleLayout layout, ILoggerFactory loggerFactory)
{
    /// <summary>How long start-up may take before the launcher gives up (six .NET processes on a small machine).</summary>
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(120);

    private readonly ILogger _logger = loggerFactory.CreateLogger("Bookinfo.Launcher");
    private readonly List<Workload> _workloads = [];
    private readonly List<ScrapeTarget> _scrapeTargets = [];

    /// <summary>Runs until <paramref name="stop"/> fires; returns the process exit code.</summary>
    public async Task<int> RunAsync(CancellationToken stop)
    {
        var configDirectory = Path.GetFullPath(options.ConfigDirectory ?? layout.DefaultConfigDirectory);
        if (!Directory.Exists(configDirectory))
        {
            Log.NoConfigDirectory(_logger, configDirectory);
            return 2;
        }

        // productpage binds its port in a child process; a taken port is found here, before anything starts, and
        // answered with the flag to pass rather than the child's stack trace.
        if (options.Port != 0 && PortInUse(options.Port))
        {
            Console.Error.WriteLine($"Bookinfo.Launcher: port {options.Port.ToString(CultureInfo.InvariantCulture)} on 127.0.0.1 is in use; pass --port N (0 picks a free port)");
            return 1;
        }

        var assemblies = new Dictionary<WorkloadSpec, string>();
        foreach (var spec in WorkloadSpec.All)
        {
            assemblies[spec] = layout.WorkloadAssembly(spec.ProjectFolder, spec.AssemblyName);
        }

        await using var controlPlane = new MeshControlPlane(new MeshControlPlaneOptions
        {
            ConfigDirectory = configDirectory,
            XdsAddress = "127.0.0.1",
            XdsPort = options.XdsPort,
            MonitoringPort = options.MonitoringPort,
            // The dashboard's rates follow the page loads within a few seconds.
            ScrapeInterval = TimeSpan.FromSeconds(2),
            PushDebounce = TimeSpan.FromMilliseconds(50),
            ConfigDebounce = TimeSpan.FromMilliseconds(100),
            ConfigPollInterval = TimeSpan.FromSeconds(2),
            // A stopped workload leaves its service soon; a restarted one comes back within this time.
            RegistrationGracePeriod = TimeSpan.FromSeconds(3),
            LoggerFactory = loggerFactory,
        });

        try
        {
            int xdsPort;
            try
            {
                xdsPort = await controlPlane.StartAsync(stop);
            }
            catch (IOException ex) when (IsAddressInUse(ex) && controlPlane.XdsUri is not null)
            {
                // The xDS server was up: the monitoring server is the one that could not bind.
                Console.Error.WriteLine($"Bookinfo.Launcher: port {options.MonitoringPort.ToString(CultureInfo.InvariantCulture)} on 127.0.0.1 is in use; pass --monitoring-port N (0 picks a free port)");
                return 1;
            }
            catch (IOException ex) when (IsAddressInUse(ex))
            {
                Console.Error.WriteLine($"Bookinfo.Launcher: port {options.XdsPort.ToString(CultureInfo.InvariantCulture)} on 127.0.0.1 is in use; pass --xds-port N (0 picks a free port)");
                return 1;
            }
            catch (IOException ex)
            {
                Log.XdsPortBusy(_logger, options.XdsPort, ex.Message);
                return 1;
            }

            Log.ControlPlaneStarted(_logger, xdsPort, configDirectory);
            foreach (var error in controlPlane.ConfigErrors)
            {
                Log.ConfigError(_logger, error.File, error.Line, error.Column, error.Reason);
            }

            using var startup = CancellationTokenSource.CreateLinkedTokenSource(stop);
            startup.CancelAfter(StartTimeout);
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };

            // Backends first, in parallel; productpage once they answer, so its first calls find them registered.
            var backends = WorkloadSpec.All.Where(static s => s.Service != "productpage").ToList();
            await Task.WhenAll(backends.Select(spec => StartWorkloadAsync(spec, assemblies[spec], xdsPort, port: 0, http, startup.Token)));
            var productpage = WorkloadSpec.All.Single(static s => s.Service == "productpage");
            var url = await StartWorkloadAsync(productpage, assemblies[productpage], xdsPort, options.Port, http, startup.Token);

            var page = new Uri(url, "/productpage");
            await WaitForPageAsync(page, http, startup.Token);
            WritePrometheusTargets();
            Console.Out.WriteLine($"Service graph dashboard: {controlPlane.MonitoringUri}");
            Console.Out.WriteLine($"Bookinfo is ready: {page}");
            Log.Applying(_logger, Path.Combine(layout.SampleRoot, "networking"), Path.Combine(layout.SampleRoot, "security"), configDirectory);

            await WatchAsync(stop);
            return 0;
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return 0;
        }
        catch (OperationCanceledException)
        {
            Log.StartTimedOut(_logger, StartTimeout.TotalSeconds);
            DumpUnhealthy();
            return 1;
        }
        catch (WorkloadFailedException ex)
        {
            Log.WorkloadFailed(_logger, ex.Message, ex.Output);
            return 1;
        }
        finally
        {
            await Task.WhenAll(_workloads.Select(static w => w.DisposeAsync().AsTask()));
        }
    }

    private async Task<Uri> StartWorkloadAsync(WorkloadSpec spec, string assembly, int xdsPort, int port, HttpClient http, CancellationToken cancellationToken)
    {
        // The mesh learns the workload's port from its Kestrel address (Mesh:ServicePort maps service port 9080
        // to it); a fixed port is given only where the user asked for one (productpage's --port).
        var level = options.LogLevel <= LogLevel.Debug ? "Information" : "Warning";
        var environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["ASPNETCORE_URLS"] = "http://127.0.0.1:" + port.ToString(CultureInfo.InvariantCulture),
            ["Mesh__XdsServer"] = "127.0.0.1:" + xdsPort.ToString(CultureInfo.InvariantCulture),
            ["Mesh__ServiceName"] = spec.Service,
            ["Mesh__ServicePort"] = WorkloadSpec.ServicePort.ToString(CultureInfo.InvariantCulture),
            ["Mesh__Namespace"] = "default",
            ["Mesh__InstanceIp"] = "127.0.0.1",
            ["Mesh__WorkloadName"] = spec.Name,
            ["Mesh__ServiceAccount"] = "bookinfo-" + spec.Service,
            ["Mesh__Labels__app"] = spec.Service,
            ["Mesh__Labels__version"] = spec.Version,
            // Zero trust: a workload certificate for spiffe://cluster.local/ns/default/sa/bookinfo-<service> from the
            // control plane's CA (development trust: loopback callers), mutual TLS in and out as PeerAuthentication
            // says, AuthorizationPolicy enforced. Health checks go to a plaintext port of their own, so they keep
            // working under STRICT; its log line tells the launcher the port.
            ["Mesh__Security__Enabled"] = "true",
            ["Mesh__HealthPort"] = "0",
            // Istio's merged-metrics port: /metrics in plaintext on a port of its own, which Prometheus can scrape
            // under STRICT mTLS; its log line (the health server's category) tells the launcher the port.
            ["Mesh__Telemetry__MetricsPort"] = "0",
            ["Logging__LogLevel__" + Workload.HealthServerCategory] = "Information",
            ["Bookinfo__Version"] = spec.Version,
            ["Bookinfo__ExitOnStdinClose"] = "true",
            ["Logging__Console__FormatterName"] = "simple",
            ["Logging__Console__FormatterOptions__SingleLine"] = "true",
            ["Logging__LogLevel__Default"] = level,
            ["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information",
        };

        var workload = Workload.Start(spec, assembly, environment, _logger, showLifetime: options.LogLevel <= LogLevel.Debug);
        lock (_workloads)
        {
            _workloads.Add(workload);
        }

        Uri address;
        int healthPort;
        int metricsPort;
        try
        {
            address = await workload.Address.WaitAsync(cancellationToken);
            healthPort = await workload.HealthPort.WaitAsync(cancellationToken);
            metricsPort = await workload.MetricsPort.WaitAsync(cancellationToken);
        }
        catch (InvalidOperationException ex)
        {
            throw new WorkloadFailedException(ex.Message, workload.RecentOutput);
        }

        var url = new Uri($"http://127.0.0.1:{address.Port.ToString(CultureInfo.InvariantCulture)}");
        await WaitHealthyAsync(workload, new Uri($"http://127.0.0.1:{healthPort.ToString(CultureInfo.InvariantCulture)}/health"), http, cancellationToken);
        var target = new ScrapeTarget(spec, metricsPort);
        lock (_scrapeTargets)
        {
            _scrapeTargets.Add(target);
        }

        Console.Out.WriteLine($"workload {spec.Name} pid={workload.ProcessId.ToString(CultureInfo.InvariantCulture)} url={url.ToString().TrimEnd('/')} metrics=http://{target.Address}/metrics");
        return url;
    }

    /// <summary>
    /// Writes the Prometheus targets file and prometheus.yml (<see cref="PrometheusTargets"/>) and prints where. A
    /// folder that cannot be written is reported and bookinfo runs on: only scraping depends on it.
    /// </summary>
    private void WritePrometheusTargets()
    {
        var directory = Path.GetFullPath(options.PrometheusDirectory ?? layout.DefaultPrometheusDirectory);
        List<ScrapeTarget> targets;
        lock (_scrapeTargets)
        {
            // The launcher's start order (backends, then productpage), whatever order they became healthy in.
            targets = [.. WorkloadSpec.All.SelectMany(spec => _scrapeTargets.Where(t => t.Spec == spec))];
        }

        try
        {
            var (targetsFile, configFile) = PrometheusTargets.Write(directory, targets);
            Console.Out.WriteLine($"Prometheus targets: {targetsFile} (scrape them: prometheus --config.file={configFile})");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Log.PrometheusTargetsFailed(_logger, directory, ex.Message);
        }
    }

    private static async Task WaitHealthyAsync(Workload workload, Uri health, HttpClient http, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (workload.HasExited)
            {
                throw new WorkloadFailedException($"Workload '{workload.Spec.Name}' exited with code {workload.ExitCode()} while starting.", workload.RecentOutput);
            }

            try
            {
                using var response = await http.GetAsync(health, cancellationToken);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }

            await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken);
        }
    }

    /// <summary>
    /// Waits until productpage's calls to details, reviews and ratings are answered through the mesh: then every
    /// service has registered and every route productpage needs has arrived. An answer is 200, or a refusal by the
    /// rules in the config folder (403 from an AuthorizationPolicy, 429 from a rate limit), so bookinfo also starts
    /// with the walkthrough's security rules in place; the page itself refused by productpage's policy counts too.
    /// </summary>
    private async Task WaitForPageAsync(Uri page, HttpClient http, CancellationToken cancellationToken)
    {
        var ratings = new Uri(page, "/api/v1/products/0/ratings");
        while (true)
        {
            foreach (var workload in _workloads)
            {
                if (workload.HasExited)
                {
                    throw new WorkloadFailedException($"Workload '{workload.Spec.Name}' exited with code {workload.ExitCode()} while starting.", workload.RecentOutput);
                }
            }

            try
            {
                using var pageResponse = await http.GetAsync(page, cancellationToken);
                var html = await pageResponse.Content.ReadAsStringAsync(cancellationToken);
                if (pageResponse.StatusCode == HttpStatusCode.Forbidden && html == "RBAC: access denied")
                {
                    return;
                }

                if (pageResponse.StatusCode == HttpStatusCode.OK && Answered(html, "details-caller") && Answered(html, "reviews-caller"))
                {
                    using var response = await http.GetAsync(ratings, cancellationToken);
                    if (response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Forbidden or HttpStatusCode.TooManyRequests)
                    {
                        return;
                    }
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }

            await Task.Delay(TimeSpan.FromMilliseconds(250), cancellationToken);
        }
    }

    /// <summary>Whether the page's "who called whom" line <paramref name="id"/> shows an answer: 200, or a refusal by policy (403, 429).</summary>
    private static bool Answered(string html, string id)
    {
        var at = html.IndexOf("<li id=\"" + id + "\"", StringComparison.Ordinal);
        if (at < 0)
        {
            return false;
        }

        var end = html.IndexOf('>', at);
        var tag = end < 0 ? html[at..] : html[at..end];
        return tag.Contains("data-status=\"200\"", StringComparison.Ordinal)
            || tag.Contains("data-status=\"403\"", StringComparison.Ordinal)
            || tag.Contains("data-status=\"429\"", StringComparison.Ordinal);
    }

    /// <summary>Reports workloads that exit while bookinfo runs (they are not restarted) until <paramref name="stop"/> fires.</summary>
    private async Task WatchAsync(CancellationToken stop)
    {
        var pending = _workloads.ToDictionary(static w => w.Exited, static w => w);
        var stopped = Task.Delay(Timeout.Infinite, stop);
        while (true)
        {
            var done = await Task.WhenAny(pending.Keys.Append(stopped));
            if (done == stopped)
            {
                return;
            }

            var workload = pending[done];
            pending.Remove(done);
            if (workload.ExitedUnexpectedly)
            {
                Log.WorkloadExited(_logger, workload.Spec.Name, workload.ProcessId, workload.ExitCode());
            }
        }
    }

    private void DumpUnhealthy()
    {
        foreach (var workload in _workloads)
        {
            Log.WorkloadOutput(_logger, workload.Spec.Name, workload.RecentOutput);
        }
    }

    private static bool PortInUse(int port)
    {
        try
        {
            var probe = new System.Net.Sockets.TcpListener(IPAddress.Loopback, port);
            probe.Start();
            probe.Stop();
            return false;
        }
        catch (System.Net.Sockets.SocketException ex) when (ex.SocketErrorCode == System.Net.Sockets.SocketError.AddressAlreadyInUse)
        {
            return true;
        }
    }

    private static bool IsAddressInUse(Exception? ex)
    {
        for (; ex is not null; ex = ex.InnerException)
        {
            if (ex is System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.AddressAlreadyInUse }
                || ex.GetType().Name == "AddressInUseException")
            {
                return true;
            }
        }

        return false;
    }

    private sealed class WorkloadFailedException(string message, string output) : Exception(message)
    {
        public string Output { get; } = output;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1, Level = LogLevel.Error, Message = "Config directory '{Directory}' does not exist.")]
        public static partial void NoConfigDirectory(ILogger logger, string directory);

        [LoggerMessage(EventId = 2, Level = LogLevel.Error, Message = "The control plane cannot listen on xDS port {Port}: {Reason}.")]
        public static partial void XdsPortBusy(ILogger logger, int port, string reason);

        [LoggerMessage(EventId = 3, Level = LogLevel.Information, Message = "Control plane serving xDS on 127.0.0.1:{Port}, config from '{Directory}' (watched).")]
        public static partial void ControlPlaneStarted(ILogger logger, int port, string directory);

        [LoggerMessage(EventId = 4, Level = LogLevel.Error, Message = "{File}:{Line}:{Column}: error: {Reason}")]
        public static partial void ConfigError(ILogger logger, string file, int line, int column, string reason);

        [LoggerMessage(EventId = 5, Level = LogLevel.Information, Message = "Apply a rule by copying a file from '{Networking}' or '{Security}' into '{Config}'; remove it to undo.")]
        public static partial void Applying(ILogger logger, string networking, string security, string config);

        [LoggerMessage(EventId = 6, Level = LogLevel.Error, Message = "Bookinfo did not become ready within {Seconds} s.")]
        public static partial void StartTimedOut(ILogger logger, double seconds);

        [LoggerMessage(EventId = 7, Level = LogLevel.Error, Message = "{Message} Its last output:\n{Output}")]
        public static partial void WorkloadFailed(ILogger logger, string message, string output);

        [LoggerMessage(EventId = 8, Level = LogLevel.Warning, Message = "Workload '{Name}' (pid {Pid}) exited with code {Code}; it is not restarted.")]
        public static partial void WorkloadExited(ILogger logger, string name, int pid, string code);

        [LoggerMessage(EventId = 9, Level = LogLevel.Information, Message = "Workload '{Name}' last output:\n{Output}")]
        public static partial void WorkloadOutput(ILogger logger, string name, string output);

        [LoggerMessage(EventId = 10, Level = LogLevel.Warning, Message = "Cannot write the Prometheus targets into '{Directory}': {Reason}. Bookinfo runs on; pass --prometheus-dir DIR for a writable folder.")]
        public static partial void PrometheusTargetsFailed(ILogger logger, string directory, string reason);
    }
}

using System.Net;
using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Monitoring;
using Mesh.ControlPlane.Registry;
using Mesh.ControlPlane.Security;
using Mesh.ControlPlane.Translation;
using Mesh.ControlPlane.Xds;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.ControlPlane;

/// <summary>
/// The embedded control plane: loads Istio YAML from a directory, keeps a service registry, and
/// serves the result over ADS (State-of-the-World and Delta) on plaintext HTTP/2, in the shapes
/// istiod sends to proxyless gRPC clients. Host it in-process or run the <c>mesh-controlplane</c> tool.
/// </summary>
public sealed partial class MeshControlPlane : IAsyncDisposable
{
    private readonly MeshControlPlaneOptions _options;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ConfigStore _store;
    private readonly ServiceRegistry _registry;
    private readonly SnapshotCache _cache;
    private ConfigDirectoryWatcher? _watcher;
    private readonly CancellationTokenSource _stopping = new();
    private WebApplication? _app;
    private CertificateAuthority? _authority;
    private JoinTokens? _tokens;
    private readonly ControlPlaneMetrics _metrics = new();
    private MonitoringServer? _monitoring;
    private IGraphSource? _graphSource;
    private int _state; // 0 new, 1 started, 2 disposed

    /// <summary>Creates a control plane; nothing runs until <see cref="StartAsync"/>.</summary>
    /// <param name="options">Settings; read once.</param>
    public MeshControlPlane(MeshControlPlaneOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.XdsPort is < 0 or > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.XdsPort, "XdsPort must be from 0 to 65535.");
        }

        if (!IPAddress.TryParse(options.XdsAddress, out _) && options.XdsAddress != "localhost")
        {
            throw new ArgumentException($"XdsAddress '{options.XdsAddress}' is not an IP address.", nameof(options));
        }

        if (options.RegistrationGracePeriod < TimeSpan.Zero || options.RestoredRegistrationGracePeriod < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"RegistrationGracePeriod ({options.RegistrationGracePeriod}) and RestoredRegistrationGracePeriod ({options.RestoredRegistrationGracePeriod}) must not be negative.");
        }

        if (options.PushDebounce < TimeSpan.Zero || options.PushMaxDelay < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"PushDebounce ({options.PushDebounce}) and PushMaxDelay ({options.PushMaxDelay}) must not be negative.");
        }

        if (!Mesh.Xds.Security.SpiffeId.IsTrustDomain(options.TrustDomain))
        {
            throw new ArgumentException($"TrustDomain '{options.TrustDomain}' must be lower-case letters, digits, '.', '-' and '_' (such as 'cluster.local').", nameof(options));
        }

        if (options.DefaultCertificateTtl <= TimeSpan.Zero || options.MaxCertificateTtl < options.DefaultCertificateTtl)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"DefaultCertificateTtl ({options.DefaultCertificateTtl}) must be positive and MaxCertificateTtl ({options.MaxCertificateTtl}) at least as long.");
        }

        _options = options;
        _loggerFactory = options.LoggerFactory ?? NullLoggerFactory.Instance;
        _store = new ConfigStore(options.DefaultNamespace, _loggerFactory.CreateLogger<ConfigStore>(), options.ClusterDomain);
        _registry = new ServiceRegistry(options.TimeProvider, options.RegistrationGracePeriod, options.ClusterDomain, _loggerFactory.CreateLogger<ServiceRegistry>());
        _cache = new SnapshotCache(_store, _registry, new XdsTranslator(options.ClusterDomain, options.RootNamespace, options.TrustDomain), options.TimeProvider, options.PushDebounce,
            options.PushMaxDelay, _loggerFactory.CreateLogger<SnapshotCache>());
        if (options.MonitoringPort is < 0 or > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MonitoringPort, "MonitoringPort must be from 0 to 65535.");
        }

        if (options.PrometheusUrl is { } prometheus && (!prometheus.IsAbsoluteUri || prometheus.Scheme is not ("http" or "https")))
        {
            throw new ArgumentException($"PrometheusUrl '{prometheus}' must be an absolute http:// or https:// URL.", nameof(options));
        }

        if (options.ScrapeInterval <= TimeSpan.Zero || options.GraphWindow <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(options), $"ScrapeInterval ({options.ScrapeInterval}) and GraphWindow ({options.GraphWindow}) must be positive.");
        }

        _store.Changed += _registry.UpdateConfig;
        _registry.Changed += snapshot => _metrics.ServicesKnown(snapshot.Services.Count);
    }

    /// <summary>The port the xDS server listens on; set by <see cref="StartAsync"/> (useful with port 0).</summary>
    public int XdsPort { get; private set; }

    /// <summary>The xDS server's address as <c>http://address:port</c>; set by <see cref="StartAsync"/>.</summary>
    public Uri? XdsUri { get; private set; }

    /// <summary>Version of the snapshot currently served; grows with every published change (a snapshot built for the first answers to a workload that has just registered itself also takes a version).</summary>
    public long SnapshotVersion => _cache.Current.Version;

    /// <summary>Files whose latest content was rejected (their last good content stays in force).</summary>
    public IReadOnlyList<ConfigError> ConfigErrors => _store.LastErrors;

    /// <summary>The port the monitoring server listens on (<see cref="MeshControlPlaneOptions.MonitoringPort"/>, 0 resolved); <see langword="null"/> without one.</summary>
    public int? MonitoringPort => _monitoring?.Port;

    /// <summary>The monitoring server's address as <c>http://address:port/</c>; <see langword="null"/> without one.</summary>
    public Uri? MonitoringUri { get; private set; }

    /// <summary>The CA's root certificate (PEM), which workloads trust; set by <see cref="StartAsync"/>.</summary>
    public string? RootCertificatePem => _authority?.RootPem;

    /// <summary>Event id of the start-up warning that loopback callers are trusted (development trust).</summary>
    internal const int LoopbackTrustWarningEventId = 8103;

    internal CertificateAuthority? Authority => _authority;

    internal ConfigStore Store => _store;

    internal ServiceRegistry Registry => _registry;

    internal SnapshotCache Cache => _cache;

    internal ConfigDirectoryWatcher? Watcher => _watcher;

    /// <summary>Loads the configuration, builds the first snapshot and starts the xDS server.</summary>
    /// <param name="cancellationToken">Cancels start-up.</param>
    /// <returns>The bound xDS port.</returns>
    /// <exception cref="DirectoryNotFoundException">The configuration directory does not exist.</exception>
    public async Task<int> StartAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
        {
            throw new InvalidOperationException("The control plane was already started or disposed.");
        }

        // The CA first: bad CA files fail start-up before anything listens.
        var caLogger = _loggerFactory.CreateLogger<CertificateAuthority>();
        _authority = CertificateAuthority.Create(_options, caLogger);
        _tokens = JoinTokens.Open(_options.CaDirectory);
        Log.CaReady(caLogger, _authority.Source, _options.TrustDomain);
        if (_options.TrustLoopbackCallers)
        {
            Log.LoopbackTrusted(caLogger);
        }

        if (_options.ConfigDirectory is { } directory)
        {
            _watcher = new ConfigDirectoryWatcher(directory, _store, _options.TimeProvider, _options.ConfigDebounce, _options.ConfigPollInterval,
                _loggerFactory.CreateLogger<ConfigDirectoryWatcher>());
            _watcher.Start();
        }

        if (_watcher is null)
        {
            _registry.UpdateConfig(_store.Current);
        }
        else if (_options.PersistRegistrations)
        {
            // Before the first snapshot: a client reconnecting to a restarted control plane finds the services
            // whose workloads registered with the previous run, not their absence.
            _registry.Restore(Path.Combine(_watcher.Directory, RegistryStateFile.FileName), _options.RestoredRegistrationGracePeriod);
        }

        _cache.Rebuild();

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        // grpc-dotnet logs every client-side stream reset with a stack trace; the ADS streams log their own close line.
        builder.Services.AddSingleton<ILoggerFactory>(new ClientCloseLogFilter(_loggerFactory));
        // The embedding process owns Ctrl+C and SIGTERM, not this server.
        builder.Services.AddSingleton<IHostLifetime, EmbeddedLifetime>();
        builder.Services.AddSingleton(new AdsContext(_cache, _registry, _options.DefaultNamespace, _options.ClusterDomain, _loggerFactory, _stopping.Token)
        {
            Metrics = _metrics,
            Time = _options.TimeProvider,
            Warnings = new RepeatedLogLimiter(_options.TimeProvider, RepeatedLogLimiter.DefaultInterval),
        });
        builder.Services.AddSingleton(new CertificateServiceContext(_authority, _tokens, _options.TrustDomain, _options.TrustLoopbackCallers,
            _options.DefaultCertificateTtl, _options.MaxCertificateTtl, _loggerFactory));
        builder.Services.AddGrpc(o => o.MaxReceiveMessageSize = 16 * 1024 * 1024);
        builder.WebHost.ConfigureKestrel(k =>
        {
            void Http2(ListenOptions o) => o.Protocols = HttpProtocols.Http2;
            if (_options.XdsAddress == "localhost")
            {
                k.ListenLocalhost(_options.XdsPort, Http2);
            }
            else
            {
                k.Listen(IPAddress.Parse(_options.XdsAddress), _options.XdsPort, Http2);
            }
        });
        var app = builder.Build();
        app.MapGrpcService<AdsService>();
        app.MapGrpcService<CertificateService>();
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        _app = app;

        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var uri = new Uri(address);
        XdsPort = uri.Port;
        XdsUri = new Uri($"http://{(_options.XdsAddress == "localhost" ? "localhost" : uri.Host)}:{uri.Port}");
        if (_options.MonitoringPort is { } monitoringPort)
        {
            if (_options.PrometheusUrl is { } prometheus)
            {
                _graphSource = new PrometheusGraphSource(prometheus, _options.GraphWindow, _registry);
            }
            else
            {
                var scraper = new WorkloadScraper(_registry, _options.TimeProvider, _options.ScrapeInterval, _options.GraphWindow, _loggerFactory.CreateLogger<WorkloadScraper>());
                scraper.Start();
                _graphSource = scraper;
            }

            _monitoring = await MonitoringServer.StartAsync(_options.XdsAddress, monitoringPort, _metrics, _graphSource, _options.TimeProvider, _loggerFactory,
                cancellationToken).ConfigureAwait(false);
            MonitoringUri = new Uri($"http://{(_options.XdsAddress == "localhost" ? "localhost" : uri.Host)}:{_monitoring.Port}/");
        }

        return XdsPort;
    }

    /// <summary>
    /// Issues the join token of a service account: presented as <c>authorization: Bearer &lt;token&gt;</c> (the SDK's
    /// <c>Mesh:Security:TokenFile</c>), it gets certificates for that account only, from any address.
    /// </summary>
    /// <param name="serviceAccount">The service account.</param>
    /// <param name="namespace">Its namespace.</param>
    /// <returns>The token.</returns>
    /// <exception cref="InvalidOperationException">The control plane has not been started.</exception>
    public string IssueJoinToken(string serviceAccount, string @namespace)
    {
        var tokens = _tokens ?? throw new InvalidOperationException("Start the control plane first: the token key is opened by StartAsync.");
        return tokens.Issue(CheckedId(@namespace, serviceAccount).Namespace, serviceAccount);
    }

    /// <summary>Issues a join token with the key in <see cref="MeshControlPlaneOptions.CaDirectory"/>, without starting (the <c>--issue-token</c> command).</summary>
    internal static string IssueJoinToken(MeshControlPlaneOptions options, string serviceAccount, string @namespace)
    {
        if (options.CaDirectory is null)
        {
            throw new InvalidOperationException("--issue-token needs --ca-dir: the join-token key is kept in the CA folder, where the running control plane reads it.");
        }

        var id = CheckedId(@namespace, serviceAccount);
        return JoinTokens.Open(options.CaDirectory).Issue(id.Namespace, id.ServiceAccount);
    }

    private static Mesh.Xds.Security.SpiffeId CheckedId(string @namespace, string serviceAccount)
        => Mesh.Xds.Security.SpiffeId.Create(Mesh.Xds.Security.SpiffeId.DefaultTrustDomain, @namespace, serviceAccount);

    /// <summary>Rescans the configuration directory now instead of waiting for the watcher or the poll.</summary>
    public void ReloadConfig() => _watcher?.Scan();

    /// <summary>Stops the server, closing open ADS streams, and releases the watcher and timers.</summary>
    /// <returns>A task that completes when everything has stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _state, 2) == 2)
        {
            return;
        }

        _watcher?.Dispose();
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_app is not null)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await _app.StopAsync(timeout.Token).ConfigureAwait(false);
            await _app.DisposeAsync().ConfigureAwait(false);
        }

        if (_monitoring is not null)
        {
            await _monitoring.DisposeAsync().ConfigureAwait(false);
        }

        switch (_graphSource)
        {
            case IAsyncDisposable asyncDisposable:
                await asyncDisposable.DisposeAsync().ConfigureAwait(false);
                break;
            case IDisposable disposable:
                disposable.Dispose();
                break;
        }

        _cache.Dispose();
        _registry.Dispose();
        _authority?.Dispose();
        _stopping.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(8102, LogLevel.Information, "CA ready: signing with {Source} for trust domain '{TrustDomain}' (IstioCertificateService on the xDS port).")]
        public static partial void CaReady(ILogger logger, string source, string trustDomain);

        [LoggerMessage(LoopbackTrustWarningEventId, LogLevel.Warning, "Development trust is on: any process connecting from a loopback address can get a certificate for any identity it names. Turn it off (TrustLoopbackCallers = false, --no-loopback-trust) outside development; callers then need join tokens.")]
        public static partial void LoopbackTrusted(ILogger logger);
    }
}

/// <summary>A host lifetime that leaves console signals to the embedding process.</summary>
internal sealed class EmbeddedLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

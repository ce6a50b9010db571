using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Mesh.Sdk.LoadBalancing;
using Mesh.Sdk.Resources;
using Mesh.Sdk.Routing;
using Mesh.Sdk.Xds;
using Mesh.Xds;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Sdk;

/// <summary>
/// The process-wide mesh state shared by the HttpClient handler and the gRPC resolver: the xDS client it owns,
/// and the route and cluster tables rebuilt once per snapshot. Data flows one way: xDS client → snapshot →
/// <see cref="Routes"/> and <see cref="Clusters"/> → <see cref="Updated"/>; the request path only reads.
/// </summary>
internal sealed partial class MeshRuntime : IAsyncDisposable, IDisposable
{
    private readonly XdsClient? _client;
    private readonly IMeshSnapshotSource _snapshots;
    private readonly ILogger _logger;
    private readonly Lock _updateGate = new();
    private readonly Lock _hostsGate = new();
    private readonly ConcurrentDictionary<(string Host, int Port), HostEntry> _hosts = new();
    private readonly List<IDisposable> _selfInterest = [];
    private TaskCompletionSource _updatedSignal = NewSignal();
    private long _appliedVersion;
    private int _started;
    private int _disposed;

    /// <summary>Creates the runtime; nothing is sent until <see cref="Start"/> (or the first resolution).</summary>
    /// <param name="options">Validated options.</param>
    /// <param name="bootstrap">The bootstrap as configured; node metadata gets the self-registration keys of <paramref name="options"/>.</param>
    /// <param name="timeProvider">The clock.</param>
    /// <param name="loggerFactory">Where logs go.</param>
    public MeshRuntime(MeshOptions options, XdsBootstrap bootstrap, TimeProvider timeProvider, ILoggerFactory? loggerFactory = null)
        : this(options, bootstrap, timeProvider, loggerFactory, snapshots: null)
    {
    }

    /// <summary>
    /// Creates a runtime fed by <paramref name="snapshots"/> instead of an xDS client (nothing is ever sent; listener
    /// interest is not registered anywhere): snapshots published there are applied as the client's would be.
    /// For benchmarks and tests without a control plane.
    /// </summary>
    internal MeshRuntime(MeshOptions options, XdsBootstrap bootstrap, TimeProvider timeProvider, ILoggerFactory? loggerFactory, MeshSnapshotSource? snapshots)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(bootstrap);
        ArgumentNullException.ThrowIfNull(timeProvider);
        loggerFactory ??= NullLoggerFactory.Instance;
        Options = options;
        TimeProvider = timeProvider;
        _logger = loggerFactory.CreateLogger<MeshRuntime>();
        Namespace = options.Namespace ?? MetadataString(bootstrap.Node.Metadata, "NAMESPACE") ?? MeshOptions.DefaultNamespace;
        InstanceAddress = IPAddress.Parse(options.InstanceIp ?? DetectInstanceIp());
        Bootstrap = WithWorkloadMetadata(bootstrap, options, Namespace, InstanceAddress.ToString());
        Routes = new RouteTables(loggerFactory.CreateLogger<RouteTables>());
        Clusters = new ClusterTable(timeProvider, loggerFactory.CreateLogger<ClusterTable>());
        if (snapshots is null)
        {
            _client = XdsClient.Create(Bootstrap, options.Xds, timeProvider, loggerFactory);
            _snapshots = _client.Snapshots;
        }
        else
        {
            _snapshots = snapshots;
        }

        _snapshots.SnapshotChanged += OnSnapshot;
    }

    /// <summary>The snapshots of the xDS client.</summary>
    public IMeshSnapshotSource Snapshots => _snapshots;

    /// <summary>Compiled route tables; updated on every snapshot before <see cref="Updated"/> fires.</summary>
    public RouteTables Routes { get; }

    /// <summary>Cluster runtimes; updated on every snapshot before <see cref="Updated"/> fires.</summary>
    public ClusterTable Clusters { get; }

    /// <summary>The clock.</summary>
    public TimeProvider TimeProvider { get; }

    /// <summary>The options in force.</summary>
    public MeshOptions Options { get; }

    /// <summary>The workload namespace short names expand in (options, else bootstrap <c>NAMESPACE</c>, else <c>default</c>).</summary>
    public string Namespace { get; }

    /// <summary>The address requests leave from (options' <c>InstanceIp</c>, else detected); the key of <c>source_ip</c> hash policies.</summary>
    public IPAddress InstanceAddress { get; }

    /// <summary>The bootstrap sent to the control plane, with the workload's metadata merged in.</summary>
    public XdsBootstrap Bootstrap { get; }

    /// <summary>Raised after <see cref="Routes"/> and <see cref="Clusters"/> took a snapshot, on the xDS thread.</summary>
    public event Action<MeshSnapshot>? Updated;

    /// <summary>
    /// Creates the runtime from options and configuration: <see cref="MeshOptions.BootstrapConfig"/> when set,
    /// else <see cref="XdsBootstrapLoader.Load"/>.
    /// </summary>
    /// <exception cref="XdsBootstrapException">No bootstrap is configured, or it is invalid.</exception>
    public static MeshRuntime Create(MeshOptions options, IConfiguration? configuration, TimeProvider timeProvider, ILoggerFactory? loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        var bootstrap = options.BootstrapConfig is { Length: > 0 } inline
            ? XdsBootstrapLoader.Parse(inline, $"configuration '{MeshOptions.SectionName}:BootstrapConfig'")
            : XdsBootstrapLoader.Load(configuration)
              ?? throw new XdsBootstrapException(
                  "Mesh.Sdk has no xDS bootstrap: set the environment variable GRPC_XDS_BOOTSTRAP (file) or GRPC_XDS_BOOTSTRAP_CONFIG (JSON), "
                  + "or the configuration key Mesh:BootstrapConfig, Mesh:BootstrapPath, Mesh:Bootstrap or Mesh:XdsServer.");
        return new MeshRuntime(options, bootstrap, timeProvider, loggerFactory);
    }

    /// <summary>Starts the xDS client (idempotent).</summary>
    public void Start()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (Interlocked.Exchange(ref _started, 1) == 0)
        {
            Log.Starting(_logger, Bootstrap.Servers[0].ServerUri, Bootstrap.Node.Id, Namespace, Options.ServiceName ?? string.Empty);
            if (Options.ServiceName is { } service)
            {
                // The node (and so the self-registration) reaches the server with the first request of the stream:
                // subscribe to the workload's own service so there is one even before any outbound call.
                foreach (var servicePort in Options.Ports.Keys)
                {
                    if (ListenerNameFor(service, servicePort) is { } own)
                    {
                        if (_client is not null)
                        {
                            _selfInterest.Add(_client.AddListener(own));
                        }
                    }
                }
            }

            _client?.Start();
        }
    }

    /// <summary>The listener name a host and port map to: <c>reviews</c>, 9080 → <c>reviews.default.svc.cluster.local:9080</c>.</summary>
    /// <returns>The name, or <see langword="null"/> for hosts that are never in the mesh (IP literals).</returns>
    public string? ListenerNameFor(string host, int port)
    {
        if (host.Length == 0 || port is < 1 or > 65535 || IPAddress.TryParse(host, out _))
        {
            return null;
        }

        string fqdn;
        try
        {
            fqdn = IstioNaming.ServiceFqdn(host.ToLowerInvariant(), Namespace, Options.ClusterDomain);
        }
        catch (ArgumentException)
        {
            return null;
        }

        var authority = IstioNaming.ListenerName(fqdn, port);
        var template = Bootstrap.ClientDefaultListenerResourceNameTemplate;
        return template == "%s" ? authority : template.Replace("%s", authority, StringComparison.Ordinal);
    }

    /// <summary>
    /// The listener a request to <paramref name="host"/>:<paramref name="port"/> goes through, or
    /// <see langword="null"/> when the host is not in the mesh (pass the request through untouched). The first
    /// call for a host registers interest in its listener and waits, at most <see cref="MeshOptions.ResolveTimeout"/>,
    /// until the listener and what it depends on are present or the control plane says it does not exist (or says
    /// nothing: then the host passes through, as Istio's <c>ALLOW_ANY</c>); later calls complete synchronously.
    /// </summary>
    public ValueTask<string?> ResolveListenerAsync(string host, int port, CancellationToken cancellationToken)
    {
        if (_hosts.TryGetValue((host, port), out var entry) && entry.Resolved)
        {
            return new ValueTask<string?>(Current(entry));
        }

        return ResolveSlowAsync(host, port, cancellationToken);
    }

    private string? Current(HostEntry entry)
    {
        if (entry.Listener is null)
        {
            return null;
        }

        // In the mesh while its routes are in force; otherwise (deleted, never sent) the request passes through.
        return Routes.TryGetTable(entry.Listener, out _) ? entry.Listener : null;
    }

    /// <summary>
    /// The runtime of a cluster a matched route names, with its endpoints. A route update can name a cluster the
    /// client has not received yet (CDS/EDS follow RDS): like gRPC's queued picks, the request then waits, at most
    /// <see cref="MeshOptions.ResolveTimeout"/>, for it to arrive. Returns <see langword="null"/> when it does not.
    /// </summary>
    public ValueTask<ClusterRuntime?> GetClusterAsync(string name, CancellationToken cancellationToken)
    {
        if (Clusters.TryGetCluster(name, out var cluster) && cluster.Assignment is not null)
        {
            return new ValueTask<ClusterRuntime?>(cluster);
        }

        return WaitForClusterAsync(name, cancellationToken);
    }

    private async ValueTask<ClusterRuntime?> WaitForClusterAsync(string name, CancellationToken cancellationToken)
    {
        var started = TimeProvider.GetTimestamp();
        while (true)
        {
            var signal = Volatile.Read(ref _updatedSignal).Task;
            if (Clusters.TryGetCluster(name, out var cluster) && cluster.Assignment is not null)
            {
                return cluster;
            }

            var remaining = Options.ResolveTimeout - TimeProvider.GetElapsedTime(started);
            if (remaining <= TimeSpan.Zero || Volatile.Read(ref _disposed) != 0)
            {
                return cluster;
            }

            try
            {
                await signal.WaitAsync(remaining, TimeProvider, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // Checked once more at the top of the loop.
            }
        }
    }

    private async ValueTask<string?> ResolveSlowAsync(string host, int port, CancellationToken cancellationToken)
    {
        HostEntry entry;
        lock (_hostsGate)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            if (!_hosts.TryGetValue((host, port), out entry!))
            {
                var listener = ListenerNameFor(host, port);
                entry = new HostEntry(listener, listener is null ? null : _client?.AddListener(listener));
                if (listener is null)
                {
                    entry.Resolved = true;
                }

                _hosts[(host, port)] = entry;
            }
        }

        if (entry.Listener is null)
        {
            return null;
        }

        Start();
        var name = entry.Listener;
        var timeout = Options.ResolveTimeout;
        var started = TimeProvider.GetTimestamp();
        while (true)
        {
            var signal = Volatile.Read(ref _updatedSignal).Task;
            var snapshot = Snapshots.Current;
            if (Routes.TryGetTable(name, out _) && snapshot.IsComplete(name))
            {
                entry.Resolved = true;
                Log.Resolved(_logger, host, port, name);
                return name;
            }

            if (snapshot.MissingListeners.Contains(name))
            {
                entry.Resolved = true;
                Log.NotInMesh(_logger, host, port, name);
                return null;
            }

            var remaining = timeout - TimeProvider.GetElapsedTime(started);
            if (remaining <= TimeSpan.Zero)
            {
                entry.Resolved = true;
                if (Routes.TryGetTable(name, out _))
                {
                    // Routable, though some cluster it names has no endpoints yet: requests get 503 for those.
                    return name;
                }

                // Istio's ALLOW_ANY: a host the control plane says nothing about passes through. The listener stays
                // subscribed, so a later answer puts the host in the mesh.
                Log.ResolveTimedOut(_logger, host, port, name, timeout);
                return null;
            }

            try
            {
                await signal.WaitAsync(remaining, TimeProvider, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // Checked once more at the top of the loop.
            }
        }
    }

    private void OnSnapshot(MeshSnapshot published)
    {
        TaskCompletionSource signal;
        MeshSnapshot applied;
        lock (_updateGate)
        {
            // Publications can race on different threads: always apply the newest one, once.
            applied = Snapshots.Current;
            if (applied.Version <= _appliedVersion)
            {
                return;
            }

            _appliedVersion = applied.Version;
            var clusterErrors = Clusters.Update(applied);
            foreach (var (cluster, reason) in clusterErrors)
            {
                Log.ClusterNotApplied(_logger, cluster, reason);
            }

            Routes.Update(applied);
            signal = Interlocked.Exchange(ref _updatedSignal, NewSignal());
        }

        try
        {
            Updated?.Invoke(applied);
        }
        finally
        {
            signal.TrySetResult();
        }
    }

    /// <summary>Stops the xDS client and releases the tables.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _snapshots.SnapshotChanged -= OnSnapshot;
        lock (_hostsGate)
        {
            foreach (var entry in _hosts.Values)
            {
                entry.Interest?.Dispose();
            }

            _hosts.Clear();
            foreach (var interest in _selfInterest)
            {
                interest.Dispose();
            }
        }

        if (_client is not null)
        {
            await _client.DisposeAsync().ConfigureAwait(false);
        }
        Clusters.Dispose();
        _updatedSignal.TrySetCanceled();
    }

    /// <summary>Begins <see cref="DisposeAsync"/> without waiting, for containers disposed synchronously.</summary>
    public void Dispose() => _ = DisposeAsync().AsTask();

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal static XdsBootstrap WithWorkloadMetadata(XdsBootstrap bootstrap, MeshOptions options, string ns, string ip)
    {
        var metadata = JsonNode.Parse(bootstrap.Node.Metadata.GetRawText()) as JsonObject ?? new JsonObject();
        metadata[IstioNaming.GeneratorMetadataKey] ??= IstioNaming.GrpcGenerator;
        metadata["NAMESPACE"] = ns;
        if (options.Labels.Count > 0)
        {
            var labels = new JsonObject();
            foreach (var (key, value) in options.Labels)
            {
                labels[key] = value;
            }

            metadata["LABELS"] = labels;
        }

        if (options.ServiceAccount is not null)
        {
            metadata["SERVICE_ACCOUNT"] = options.ServiceAccount;
        }

        if (options.WorkloadName is not null)
        {
            metadata["WORKLOAD_NAME"] = options.WorkloadName;
        }

        if (options.ServiceName is not null)
        {
            metadata["MESH_SERVICE"] = options.ServiceName;
            metadata["INSTANCE_IPS"] = ip;
            var ports = new JsonObject();
            foreach (var (servicePort, workloadPort) in options.Ports)
            {
                ports[servicePort.ToString(CultureInfo.InvariantCulture)] = workloadPort;
            }

            metadata["MESH_PORTS"] = ports;
        }

        var node = bootstrap.Node;
        var id = node.Id;
        if (string.IsNullOrEmpty(id))
        {
            var workload = options.WorkloadName ?? options.ServiceName ?? "mesh-client";
            id = string.Create(CultureInfo.InvariantCulture, $"sidecar~{ip}~{workload}-{Guid.NewGuid().ToString("N")[..8]}.{ns}~{ns}.svc.{options.ClusterDomain}");
        }

        using var document = JsonDocument.Parse(metadata.ToJsonString());
        return new XdsBootstrap(bootstrap.Servers, node with { Id = id, Metadata = document.RootElement.Clone() }, bootstrap.Source)
        {
            CertificateProviders = bootstrap.CertificateProviders,
            ServerListenerResourceNameTemplate = bootstrap.ServerListenerResourceNameTemplate,
            ClientDefaultListenerResourceNameTemplate = bootstrap.ClientDefaultListenerResourceNameTemplate,
        };
    }

    private static string? MetadataString(JsonElement metadata, string key)
        => metadata.ValueKind == JsonValueKind.Object && metadata.TryGetProperty(key, out var value) && value.ValueKind == JsonValueKind.String
            && value.GetString() is { Length: > 0 } s ? s : null;

    private static string DetectInstanceIp()
    {
        try
        {
            foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
            {
                if (nic.OperationalStatus != OperationalStatus.Up || nic.NetworkInterfaceType == NetworkInterfaceType.Loopback)
                {
                    continue;
                }

                foreach (var address in nic.GetIPProperties().UnicastAddresses)
                {
                    if (address.Address.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(address.Address))
                    {
                        return address.Address.ToString();
                    }
                }
            }
        }
        catch (NetworkInformationException)
        {
            // Fall back to loopback below.
        }

        return "127.0.0.1";
    }

    private sealed class HostEntry(string? listener, IDisposable? interest)
    {
        public string? Listener { get; } = listener;

        public IDisposable? Interest { get; } = interest;

        public volatile bool Resolved;
    }

    private static partial class Log
    {
        [LoggerMessage(1000, LogLevel.Information, "Mesh runtime starting: xDS server '{Server}', node '{NodeId}', namespace '{Namespace}', service '{ServiceName}'.")]
        public static partial void Starting(ILogger logger, string server, string nodeId, string @namespace, string serviceName);

        [LoggerMessage(1001, LogLevel.Debug, "Host '{Host}:{Port}' is in the mesh through listener '{ListenerName}'.")]
        public static partial void Resolved(ILogger logger, string host, int port, string listenerName);

        [LoggerMessage(1002, LogLevel.Debug, "Host '{Host}:{Port}' is not in the mesh: the control plane has no listener '{ListenerName}'; requests pass through.")]
        public static partial void NotInMesh(ILogger logger, string host, int port, string listenerName);

        [LoggerMessage(1004, LogLevel.Warning, "The control plane sent neither listener '{ListenerName}' (for '{Host}:{Port}') nor word that it does not exist within {Timeout} (Mesh:ResolveTimeout); requests to it pass through outside the mesh until it arrives.")]
        public static partial void ResolveTimedOut(ILogger logger, string host, int port, string listenerName, TimeSpan timeout);

        [LoggerMessage(1003, LogLevel.Warning, "Cluster '{ClusterName}' was not applied: {Reason}")]
        public static partial void ClusterNotApplied(ILogger logger, string clusterName, string reason);
    }
}

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
    private readonly IMeshSnapshotSource _snapshots;
    private readonly ILogger _logger;
    private readonly ILoggerFactory _loggerFactory;
    private readonly XdsBootstrap _configuredBootstrap;
    private readonly MeshSnapshotSource? _relay;
    private readonly Lock _relayGate = new();
    // Set when the workload ports are discovered from the server after it bound (Mesh.Sdk.AspNetCore): the xDS client,
    // whose node carries them, is created only then. Completed (or faulted) once.
    private readonly TaskCompletionSource? _portsDiscovered;
    private XdsClient? _client;
    private volatile XdsBootstrap _bootstrap;
    private volatile IPAddress _instanceAddress;
    private volatile IReadOnlyDictionary<int, int> _workloadPorts;
    private bool _startRequested;
    private readonly Lock _updateGate = new();
    private readonly Lock _hostsGate = new();
    private readonly ConcurrentDictionary<(string Host, int Port), HostEntry> _hosts = new();
    private readonly List<IDisposable> _selfInterest = [];
    private TaskCompletionSource _updatedSignal = NewSignal();
    private long _appliedVersion;
    private MeshSnapshot? _applied;
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
    /// <param name="options">Validated options.</param>
    /// <param name="bootstrap">The bootstrap as configured.</param>
    /// <param name="timeProvider">The clock.</param>
    /// <param name="loggerFactory">Where logs go.</param>
    /// <param name="snapshots">The snapshots to apply instead of an xDS client's, or <see langword="null"/>.</param>
    /// <param name="discoverPorts">
    /// Whether the host reports the workload ports once its server bound (<see cref="CompletePortDiscovery"/>): when
    /// <see cref="MeshOptions.ServiceName"/> is set and <see cref="MeshOptions.Ports"/> is empty, nothing is sent to the
    /// control plane until then, so the first node message already carries the ports.
    /// </param>
    internal MeshRuntime(MeshOptions options, XdsBootstrap bootstrap, TimeProvider timeProvider, ILoggerFactory? loggerFactory, MeshSnapshotSource? snapshots, bool discoverPorts = false)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(bootstrap);
        ArgumentNullException.ThrowIfNull(timeProvider);
        loggerFactory ??= NullLoggerFactory.Instance;
        Options = options;
        TimeProvider = timeProvider;
        _logger = loggerFactory.CreateLogger<MeshRuntime>();
        _loggerFactory = loggerFactory;
        _configuredBootstrap = bootstrap;
        Namespace = options.Namespace ?? MetadataString(bootstrap.Node.Metadata, "NAMESPACE") ?? MeshOptions.DefaultNamespace;
        _instanceAddress = IPAddress.Parse(options.InstanceIp ?? DetectInstanceIp());
        _workloadPorts = new Dictionary<int, int>(options.Ports);
        _bootstrap = WithWorkloadMetadata(bootstrap, options, _workloadPorts, Namespace, _instanceAddress.ToString());
        Routes = new RouteTables(loggerFactory.CreateLogger<RouteTables>());
        Clusters = new ClusterTable(timeProvider, loggerFactory.CreateLogger<ClusterTable>());
        if (snapshots is not null)
        {
            _snapshots = snapshots;
        }
        else if (discoverPorts && options.ServiceName is not null && options.Ports.Count == 0)
        {
            // The client's snapshots are relayed through a source of our own, which exists before the client does.
            _portsDiscovered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _relay = new MeshSnapshotSource(timeProvider);
            _snapshots = _relay;
        }
        else
        {
            _client = XdsClient.Create(_bootstrap, options.Xds, timeProvider, loggerFactory);
            _snapshots = _client.Snapshots;
        }

        _snapshots.SnapshotChanged += OnSnapshot;
    }

    /// <summary>The snapshots of the xDS client.</summary>
    public IMeshSnapshotSource Snapshots => _snapshots;

    /// <summary>
    /// The snapshot <see cref="Routes"/> and <see cref="Clusters"/> were last built from. <see cref="Snapshots"/>'
    /// current snapshot is published before it is applied, so decisions that compare the tables against what the
    /// control plane said (is a listener settled, does a cluster exist) read this one: a cluster the tables do not
    /// have yet is then never taken for one the control plane has settled.
    /// </summary>
    public MeshSnapshot Applied => Volatile.Read(ref _applied) ?? MeshSnapshot.Empty;

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

    /// <summary>
    /// The address requests leave from (options' <c>InstanceIp</c>, else the address the server is bound to when the
    /// ports are discovered and it is bound to one address, else detected); the key of <c>source_ip</c> hash policies.
    /// </summary>
    public IPAddress InstanceAddress => _instanceAddress;

    /// <summary>The bootstrap sent to the control plane, with the workload's metadata merged in.</summary>
    public XdsBootstrap Bootstrap => _bootstrap;

    /// <summary>The xDS client, or <see langword="null"/> while the workload ports are still to be discovered (inbound listeners are watched through it).</summary>
    internal XdsClient? XdsClient => Volatile.Read(ref _client);

    /// <summary>
    /// The port the plaintext metrics server bound (<c>Mesh:Telemetry:MetricsPort</c> resolved, 0 included), registered
    /// as node metadata <c>MESH_METRICS_PORT</c> when the ports are discovered; the host sets it before it completes the
    /// discovery. Without discovery a configured non-zero port is registered.
    /// </summary>
    internal int? BoundMetricsPort { get; set; }

    /// <summary>The service ports this workload registers (node metadata <c>MESH_PORTS</c>): configured or discovered.</summary>
    public IReadOnlyDictionary<int, int> WorkloadPorts => _workloadPorts;

    /// <summary>
    /// Whether the runtime waits for <see cref="CompletePortDiscovery"/> before it talks to the control plane (and
    /// has not received it yet).
    /// </summary>
    public bool AwaitsPortDiscovery => _portsDiscovered is { Task.IsCompleted: false };

    /// <summary>Completes when the ports were discovered (at once when there is nothing to discover); faults when discovery failed.</summary>
    public Task PortDiscovery => _portsDiscovered?.Task ?? Task.CompletedTask;

    /// <summary>Raised after <see cref="Routes"/> and <see cref="Clusters"/> took a snapshot, on the xDS thread.</summary>
    public event Action<MeshSnapshot>? Updated;

    /// <summary>
    /// Creates the runtime from options and configuration: <see cref="MeshOptions.BootstrapConfig"/> when set,
    /// else <see cref="XdsBootstrapLoader.Load"/>.
    /// </summary>
    /// <exception cref="XdsBootstrapException">No bootstrap is configured, or it is invalid.</exception>
    /// <param name="options">Validated options.</param>
    /// <param name="configuration">Where the bootstrap may be configured.</param>
    /// <param name="timeProvider">The clock.</param>
    /// <param name="loggerFactory">Where logs go.</param>
    /// <param name="discoverPorts">Whether the host reports the workload ports once its server bound (see the constructor).</param>
    public static MeshRuntime Create(MeshOptions options, IConfiguration? configuration, TimeProvider timeProvider, ILoggerFactory? loggerFactory, bool discoverPorts = false)
    {
        ArgumentNullException.ThrowIfNull(options);
        var bootstrap = options.BootstrapConfig is { Length: > 0 } inline
            ? XdsBootstrapLoader.Parse(inline, $"configuration '{MeshOptions.SectionName}:BootstrapConfig'")
            : XdsBootstrapLoader.Load(configuration)
              ?? throw new XdsBootstrapException(
                  "Mesh.Sdk has no xDS bootstrap: set the environment variable GRPC_XDS_BOOTSTRAP (file) or GRPC_XDS_BOOTSTRAP_CONFIG (JSON), "
                  + "or the configuration key Mesh:BootstrapConfig, Mesh:BootstrapPath, Mesh:Bootstrap or Mesh:XdsServer.");
        return new MeshRuntime(options, bootstrap, timeProvider, loggerFactory, snapshots: null, discoverPorts);
    }

    /// <summary>
    /// Starts the xDS client (idempotent). While the workload ports are still to be discovered
    /// (<see cref="AwaitsPortDiscovery"/>), the client starts as soon as they are.
    /// </summary>
    public void Start()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (Interlocked.Exchange(ref _started, 1) == 0)
        {
            if (_portsDiscovered is not null)
            {
                lock (_hostsGate)
                {
                    if (_client is null)
                    {
                        _startRequested = true;
                        if (!_portsDiscovered.Task.IsCompleted)
                        {
                            Log.AwaitingPorts(_logger, Options.ServiceName ?? string.Empty);
                        }

                        return;
                    }
                }
            }

            StartClient();
        }
    }

    private void StartClient()
    {
        var bootstrap = Bootstrap;
        Log.Starting(_logger, bootstrap.Servers[0].ServerUri, bootstrap.Node.Id, Namespace, Options.ServiceName ?? string.Empty);
        var client = Volatile.Read(ref _client);
        if (client is null)
        {
            return;
        }

        if (Options.ServiceName is { } service)
        {
            // The node (and so the self-registration) reaches the server with the first request of the stream:
            // subscribe to the workload's own service so there is one even before any outbound call.
            lock (_hostsGate)
            {
                if (Volatile.Read(ref _disposed) != 0)
                {
                    return;
                }

                foreach (var servicePort in WorkloadPorts.Keys)
                {
                    if (ListenerNameFor(service, servicePort) is { } own)
                    {
                        _selfInterest.Add(client.AddListener(own));
                    }
                }
            }
        }

        client.Start();
    }

    /// <summary>
    /// Sets the workload ports discovered from the server once it bound, and creates the xDS client whose node
    /// carries them (starting it when <see cref="Start"/> was called already). Listener interest registered by
    /// requests made before is handed to the client.
    /// </summary>
    /// <param name="ports">Service port → bound port; at least one.</param>
    /// <param name="boundAddress">
    /// The one address the server is bound to, used as the instance address when the options name none; or
    /// <see langword="null"/> (bound to a wildcard address, or to several).
    /// </param>
    /// <exception cref="InvalidOperationException">The runtime does not discover ports, or discovered them already.</exception>
    public void CompletePortDiscovery(IReadOnlyDictionary<int, int> ports, IPAddress? boundAddress)
    {
        ArgumentNullException.ThrowIfNull(ports);
        if (ports.Count == 0)
        {
            throw new ArgumentException("At least one port must be discovered.", nameof(ports));
        }

        if (_portsDiscovered is null)
        {
            throw new InvalidOperationException("This mesh runtime does not discover its ports: Mesh:Ports is configured, or Mesh:ServiceName is not.");
        }

        bool start;
        lock (_hostsGate)
        {
            if (Volatile.Read(ref _disposed) != 0)
            {
                return;
            }

            if (_client is not null || _portsDiscovered.Task.IsCompleted)
            {
                throw new InvalidOperationException("The workload ports were discovered already.");
            }

            _workloadPorts = new Dictionary<int, int>(ports);
            if (Options.InstanceIp is null && boundAddress is not null)
            {
                _instanceAddress = boundAddress;
            }

            _bootstrap = WithWorkloadMetadata(_configuredBootstrap, Options, _workloadPorts, Namespace, _instanceAddress.ToString(), BoundMetricsPort);
            var client = XdsClient.Create(_bootstrap, Options.Xds, TimeProvider, _loggerFactory);
            client.Snapshots.SnapshotChanged += RelaySnapshot;
            foreach (var entry in _hosts.Values)
            {
                if (entry.Listener is not null && entry.Interest is null)
                {
                    entry.Interest = client.AddListener(entry.Listener);
                }
            }

            Volatile.Write(ref _client, client);
            start = _startRequested;
        }

        Log.PortsDiscovered(_logger, Options.ServiceName ?? string.Empty, FormatPorts(_workloadPorts), _instanceAddress.ToString());
        if (start)
        {
            StartClient();
        }

        _portsDiscovered.TrySetResult();
    }

    /// <summary>Records that the ports cannot be discovered: requests waiting for them stop waiting and pass through.</summary>
    /// <param name="error">Why.</param>
    public void FailPortDiscovery(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        _portsDiscovered?.TrySetException(error);
    }

    private void RelaySnapshot(MeshSnapshot published)
    {
        var client = Volatile.Read(ref _client);
        if (client is null || _relay is null)
        {
            return;
        }

        lock (_relayGate)
        {
            // Publications can race on different threads: relay the newest, once.
            var latest = client.Snapshots.Current;
            if (latest.Version > _relay.Current.Version)
            {
                _relay.Publish(latest);
            }
        }
    }

    private static string FormatPorts(IReadOnlyDictionary<int, int> ports)
    {
        var text = new System.Text.StringBuilder();
        foreach (var (servicePort, workloadPort) in ports)
        {
            text.Append(text.Length == 0 ? "" : ", ").Append(CultureInfo.InvariantCulture, $"{servicePort} -> {workloadPort}");
        }

        return text.ToString();
    }

    /// <summary>
    /// The listener name an HTTP host and port map to, through the bootstrap's
    /// <c>client_default_listener_resource_name_template</c>: <c>reviews</c>, 9080 →
    /// <c>reviews.default.svc.cluster.local:9080</c> (istiod's naming, the host expanded as Kubernetes DNS does), or
    /// <c>reviews:9080</c> as written when <see cref="XdsClientOptions.ExpandHostNames"/> is off.
    /// </summary>
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

        var authority = IstioNaming.ListenerName(Options.Xds.ExpandHostNames ? fqdn : host.ToLowerInvariant(), port);
        return ApplyListenerTemplate(Bootstrap.ClientDefaultListenerResourceNameTemplate, authority);
    }

    /// <summary>
    /// The listener name of an <c>xds:///</c> target, as gRFC A27 and A47 say: the target as written (<c>echo:9090</c>,
    /// <c>echo</c>), through the bootstrap's <c>client_default_listener_resource_name_template</c>, never expanded.
    /// </summary>
    internal string ListenerNameForTarget(string target) => ApplyListenerTemplate(Bootstrap.ClientDefaultListenerResourceNameTemplate, target);

    /// <summary>
    /// Replaces <c>%s</c> in a listener name template; in an <c>xdstp:</c> template the name is percent-encoded
    /// first, keeping <c>/</c> and <c>:</c> (gRFC A47).
    /// </summary>
    internal static string ApplyListenerTemplate(string template, string name)
    {
        if (template == "%s")
        {
            return name;
        }

        return template.Replace("%s", template.StartsWith("xdstp:", StringComparison.Ordinal) ? PercentEncodePath(name) : name, StringComparison.Ordinal);
    }

    private static string PercentEncodePath(string text)
    {
        var result = new System.Text.StringBuilder(text.Length);
        foreach (var b in System.Text.Encoding.UTF8.GetBytes(text))
        {
            var c = (char)b;
            if (char.IsAsciiLetterOrDigit(c) || "-._~!$&'()*+,;=:@/".Contains(c, StringComparison.Ordinal))
            {
                result.Append(c);
            }
            else
            {
                result.Append(CultureInfo.InvariantCulture, $"%{b:X2}");
            }
        }

        return result.ToString();
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

        return ResolveSlowAsync(host, port, target: null, cancellationToken);
    }

    /// <summary>
    /// <see cref="ResolveListenerAsync"/> for an <c>xds:///</c> target: its listener is named as gRFC A27 says
    /// (<see cref="ListenerNameForTarget"/>).
    /// </summary>
    internal ValueTask<string?> ResolveTargetAsync(string target, CancellationToken cancellationToken)
    {
        if (_hosts.TryGetValue((target, 0), out var entry) && entry.Resolved)
        {
            return new ValueTask<string?>(Current(entry));
        }

        return ResolveSlowAsync(target, 0, target, cancellationToken);
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
    /// <param name="name">The cluster the route names.</param>
    /// <param name="listener">The listener whose route table <paramref name="matchedTable"/> is.</param>
    /// <param name="matchedTable">
    /// The route table the request was matched against. The wait ends early, returning <see langword="null"/>, as
    /// soon as the listener has another table in force: the route was matched against a table that has since been
    /// replaced (its cluster may be gone with it), so the caller matches the request again.
    /// </param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    public ValueTask<ClusterRuntime?> GetClusterAsync(string name, string listener, CompiledRouteTable matchedTable, CancellationToken cancellationToken)
    {
        if (Clusters.TryGetCluster(name, out var cluster) && cluster.Assignment is not null)
        {
            return new ValueTask<ClusterRuntime?>(cluster);
        }

        return WaitForClusterAsync(name, listener, matchedTable, cancellationToken);
    }

    private async ValueTask<ClusterRuntime?> WaitForClusterAsync(string name, string listener, CompiledRouteTable matchedTable, CancellationToken cancellationToken)
    {
        var started = TimeProvider.GetTimestamp();
        while (true)
        {
            var signal = Volatile.Read(ref _updatedSignal).Task;
            if (Clusters.TryGetCluster(name, out var cluster) && cluster.Assignment is not null)
            {
                return cluster;
            }

            if (!Routes.TryGetTable(listener, out var current) || !ReferenceEquals(current, matchedTable))
            {
                return null;
            }

            if (cluster is null && Applied.MissingClusters.Contains(name))
            {
                // The control plane says it does not exist: Envoy's "cluster not found" (503, NC), at once.
                return null;
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

    private async ValueTask<string?> ResolveSlowAsync(string host, int port, string? target, CancellationToken cancellationToken)
    {
        HostEntry entry;
        lock (_hostsGate)
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            if (!_hosts.TryGetValue((host, port), out entry!))
            {
                var listener = target is null ? ListenerNameFor(host, port) : ListenerNameForTarget(target);
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
        if (_portsDiscovered is { Task.IsCompletedSuccessfully: false } discovery)
        {
            // The first node message must carry the discovered ports: nothing is sent before the server bound.
            try
            {
                await discovery.Task.WaitAsync(timeout, TimeProvider, cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                Log.PortsNotYetDiscovered(_logger, host, port, timeout);
                return null;
            }
            catch (Exception error) when (error is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                Log.PortDiscoveryFailed(_logger, host, port, error.Message);
                return null;
            }
        }
        while (true)
        {
            var signal = Volatile.Read(ref _updatedSignal).Task;
            var snapshot = Applied;
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
            Volatile.Write(ref _applied, applied);
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
        XdsClient? client;
        lock (_hostsGate)
        {
            client = _client;
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

        _portsDiscovered?.TrySetCanceled();
        if (client is not null)
        {
            client.Snapshots.SnapshotChanged -= RelaySnapshot;
            await client.DisposeAsync().ConfigureAwait(false);
        }

        Clusters.Dispose();
        _updatedSignal.TrySetCanceled();
    }

    /// <summary>Begins <see cref="DisposeAsync"/> without waiting, for containers disposed synchronously.</summary>
    public void Dispose() => _ = DisposeAsync().AsTask();

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The workload label Istio's injector sets on pods with a mesh certificate (<c>istio</c>).</summary>
    internal const string TlsModeLabel = "security.istio.io/tlsMode";

    internal static XdsBootstrap WithWorkloadMetadata(XdsBootstrap bootstrap, MeshOptions options, string ns, string ip)
        => WithWorkloadMetadata(bootstrap, options, new Dictionary<int, int>(options.Ports), ns, ip);

    internal static XdsBootstrap WithWorkloadMetadata(XdsBootstrap bootstrap, MeshOptions options, IReadOnlyDictionary<int, int> workloadPorts, string ns, string ip,
        int? boundMetricsPort = null)
    {
        var metadata = JsonNode.Parse(bootstrap.Node.Metadata.GetRawText()) as JsonObject ?? new JsonObject();
        metadata[IstioNaming.GeneratorMetadataKey] ??= IstioNaming.GrpcGenerator;
        metadata["NAMESPACE"] = ns;
        // A workload with a mesh certificate says so as a pod injected by Istio does: clients then originate mTLS to it
        // (auto-mTLS). A label the user set wins.
        var tlsMode = options.Security.Enabled && !options.Labels.ContainsKey(TlsModeLabel);
        if (options.Labels.Count > 0 || tlsMode)
        {
            var labels = new JsonObject();
            foreach (var (key, value) in options.Labels)
            {
                labels[key] = value;
            }

            if (tlsMode)
            {
                labels[TlsModeLabel] = "istio";
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
            foreach (var (servicePort, workloadPort) in workloadPorts)
            {
                ports[servicePort.ToString(CultureInfo.InvariantCulture)] = workloadPort;
            }

            metadata["MESH_PORTS"] = ports;
            if (options.Telemetry.Metrics)
            {
                // Where the control plane's service graph scrapes this workload's metrics.
                metadata["MESH_METRICS_PATH"] = options.Telemetry.MetricsPath;
                if ((boundMetricsPort ?? options.Telemetry.MetricsPort) is > 0 and var metricsPort)
                {
                    metadata["MESH_METRICS_PORT"] = metricsPort;
                }
            }
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

        // Set later when the xDS client is created after port discovery; read and written under _hostsGate.
        public IDisposable? Interest { get; set; } = interest;

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

        [LoggerMessage(1005, LogLevel.Information, "Mesh runtime for service '{ServiceName}' waits for the server to bind before it registers: its ports are discovered from the bound addresses.")]
        public static partial void AwaitingPorts(ILogger logger, string serviceName);

        [LoggerMessage(1006, LogLevel.Information, "Service '{ServiceName}' ports discovered: {Ports} on '{InstanceIp}'.")]
        public static partial void PortsDiscovered(ILogger logger, string serviceName, string ports, string instanceIp);

        [LoggerMessage(1007, LogLevel.Warning, "Request to '{Host}:{Port}' passes through outside the mesh: the workload ports were not discovered within {Timeout} (the server has not started yet).")]
        public static partial void PortsNotYetDiscovered(ILogger logger, string host, int port, TimeSpan timeout);

        [LoggerMessage(1008, LogLevel.Warning, "Request to '{Host}:{Port}' passes through outside the mesh: the workload ports could not be discovered: {Reason}")]
        public static partial void PortDiscoveryFailed(ILogger logger, string host, int port, string reason);
    }
}

using Mesh.ControlPlane.Config;
using Microsoft.Extensions.Logging;

namespace Mesh.ControlPlane.Registry;

/// <summary>Where an endpoint runs, as Envoy's region / zone / sub-zone.</summary>
internal sealed record EndpointLocality(string Region, string Zone, string SubZone)
{
    public static readonly EndpointLocality None = new(string.Empty, string.Empty, string.Empty);

    /// <summary>Parses Istio's <c>region/zone/subzone</c> form.</summary>
    public static EndpointLocality Parse(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return None;
        }

        var parts = text.Split('/');
        return new EndpointLocality(parts[0], parts.Length > 1 ? parts[1] : string.Empty, parts.Length > 2 ? parts[2] : string.Empty);
    }
}

/// <summary>One instance of a service, with its port for each service port number.</summary>
internal sealed record ServiceEndpoint(
    string Address,
    IReadOnlyDictionary<uint, uint> Ports,
    IReadOnlyDictionary<string, string> Labels,
    EndpointLocality Locality,
    uint Weight,
    string? ServiceAccount,
    string Origin)
{
    /// <summary>The workload's name (self-registration's <c>WORKLOAD_NAME</c>), for the EDS telemetry metadata; <see langword="null"/> when unknown.</summary>
    public string? WorkloadName { get; init; }

    /// <summary>The workload's namespace, for the EDS telemetry metadata; <see langword="null"/> means the service's.</summary>
    public string? WorkloadNamespace { get; init; }
}

/// <summary>A service known to the mesh: its FQDN, ports and endpoints.</summary>
/// <remarks><paramref name="SubjectAltNames"/>: the ServiceEntry's <c>subjectAltNames</c> (first declaration of the host), verbatim.</remarks>
internal sealed record MeshService(string Hostname, string Namespace, IReadOnlyList<ServicePort> Ports, IReadOnlyList<ServiceEndpoint> Endpoints)
{
    public IReadOnlyList<string> SubjectAltNames { get; init; } = [];
}

/// <summary>An immutable view of every service, by FQDN.</summary>
internal sealed class RegistrySnapshot(IReadOnlyList<MeshService> services)
{
    public static readonly RegistrySnapshot Empty = new([]);

    private readonly Dictionary<string, MeshService> _byHost = services.ToDictionary(s => s.Hostname, StringComparer.Ordinal);

    public IReadOnlyList<MeshService> Services { get; } = services;

    public MeshService? Find(string fqdn) => _byHost.GetValueOrDefault(fqdn);
}

/// <summary>A workload that announced itself on its ADS stream (node metadata).</summary>
internal sealed record SelfRegistration(
    string NodeId,
    string ServiceHost,
    string Namespace,
    string Address,
    IReadOnlyDictionary<uint, uint> Ports,
    IReadOnlyDictionary<string, string> Labels,
    EndpointLocality Locality,
    string? ServiceAccount,
    string? WorkloadName)
{
    /// <summary>The workload's plaintext metrics port (node metadata <c>MESH_METRICS_PORT</c>, the SDK's <c>Mesh:Telemetry:MetricsPort</c>), scraped instead of the app port.</summary>
    public int? MetricsPort { get; init; }

    /// <summary>The path the workload serves its metrics at (node metadata <c>MESH_METRICS_PATH</c>); <see langword="null"/> means <c>/metrics</c>.</summary>
    public string? MetricsPath { get; init; }
}

/// <summary>
/// Builds services from ServiceEntry + WorkloadEntry configuration and from self-registered
/// workloads. A self-registration lives while at least one of its streams does, and for a grace
/// period after the last one ends (so a reconnect does not flap the endpoint). With a state file
/// (<see cref="Restore"/>), the self-registrations are written there on every change and read back
/// at the next start, so a restarted control plane never tells clients that a registered service is
/// gone before its workloads had a chance to reconnect.
/// </summary>
internal sealed partial class ServiceRegistry : IDisposable
{
    private readonly TimeProvider _time;
    private readonly TimeSpan _grace;
    private readonly string _domain;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Entry> _registrations = new(StringComparer.Ordinal);
    private MeshConfig _config = MeshConfig.Empty;
    private RegistrySnapshot _current = RegistrySnapshot.Empty;
    private bool _disposed;
    private readonly Lock _persistGate = new();
    private string? _stateFile;
    private long _changes;
    private long _persisted;

    public ServiceRegistry(TimeProvider time, TimeSpan grace, string domain, ILogger logger)
    {
        _time = time;
        _grace = grace;
        _domain = domain;
        _logger = logger;
    }

    /// <summary>Raised (outside the lock) after the set of services or endpoints changed.</summary>
    public event Action<RegistrySnapshot>? Changed;

    public RegistrySnapshot Current => Volatile.Read(ref _current);

    /// <summary>The self-registered workloads now known (live, in their grace period, or restored), for the monitoring scraper.</summary>
    public IReadOnlyList<SelfRegistration> Registrations
    {
        get
        {
            lock (_gate)
            {
                return _registrations.Values.Select(static e => e.Registration).ToList();
            }
        }
    }

    public string Domain => _domain;

    public void UpdateConfig(MeshConfig config)
    {
        lock (_gate)
        {
            _config = config;
        }

        Rebuild();
    }

    /// <summary>Registers (or refreshes) a workload for the life of one stream.</summary>
    /// <returns>A handle to dispose when the stream ends; removal follows after the grace period.</returns>
    public IDisposable Register(SelfRegistration registration)
    {
        lock (_gate)
        {
            if (_registrations.TryGetValue(registration.NodeId, out var entry))
            {
                entry.RemovalTimer?.Dispose();
                entry.RemovalTimer = null;
                if (!SameRegistration(entry.Registration, registration))
                {
                    _changes++;
                }

                entry.Registration = registration;
                entry.Streams++;
            }
            else
            {
                entry = new Entry { Registration = registration, Streams = 1 };
                _registrations[registration.NodeId] = entry;
                _changes++;
                RemoveSuperseded(registration);
            }

            entry.Restored = false;
        }

        Log.Registered(_logger, registration.NodeId, registration.ServiceHost, registration.Address);
        Persist();
        Rebuild();
        return new Handle(this, registration.NodeId);
    }

    private void Release(string nodeId)
    {
        lock (_gate)
        {
            if (_disposed || !_registrations.TryGetValue(nodeId, out var entry) || --entry.Streams > 0)
            {
                return;
            }

            entry.RemovalTimer = _time.CreateTimer(static s =>
            {
                var (self, id) = ((ServiceRegistry, string))s!;
                self.Expire(id);
            }, (this, nodeId), _grace, Timeout.InfiniteTimeSpan);
        }

        Log.StreamEnded(_logger, nodeId, _grace);
    }

    private void Expire(string nodeId)
    {
        lock (_gate)
        {
            if (!_registrations.TryGetValue(nodeId, out var entry) || entry.Streams > 0)
            {
                return;
            }

            entry.RemovalTimer?.Dispose();
            _registrations.Remove(nodeId);
            _changes++;
        }

        Log.Deregistered(_logger, nodeId);
        Persist();
        Rebuild();
    }

    /// <summary>
    /// Reads the self-registrations a previous run left in <paramref name="stateFile"/> and keeps the file up to
    /// date from now on. A restored registration has no stream: it stays for <paramref name="restoreGrace"/>
    /// unless its workload reconnects (which makes it live again) before. Call before the first snapshot is built.
    /// </summary>
    /// <returns>How many registrations were restored; an unreadable file restores none and is overwritten.</returns>
    public int Restore(string stateFile, TimeSpan restoreGrace)
    {
        var restored = RegistryStateFile.Read(stateFile, out var problem);
        if (problem is not null)
        {
            Log.StateUnreadable(_logger, stateFile, problem);
        }

        lock (_gate)
        {
            _stateFile = stateFile;
            foreach (var registration in restored)
            {
                if (_registrations.ContainsKey(registration.NodeId))
                {
                    continue;
                }

                var entry = new Entry { Registration = registration, Streams = 0, Restored = true };
                entry.RemovalTimer = _time.CreateTimer(static s =>
                {
                    var (self, id) = ((ServiceRegistry, string))s!;
                    self.Expire(id);
                }, (this, registration.NodeId), restoreGrace, Timeout.InfiniteTimeSpan);
                _registrations[registration.NodeId] = entry;
            }

            _changes++;
        }

        Log.Restored(_logger, restored.Count, stateFile, restoreGrace);
        Persist();
        Rebuild();
        return restored.Count;
    }

    /// <summary>Writes the registrations to the state file when they changed since the last write (writes are serialized and never go back in time).</summary>
    private void Persist()
    {
        lock (_persistGate)
        {
            string? file;
            long changes;
            List<SelfRegistration> registrations;
            lock (_gate)
            {
                file = _stateFile;
                changes = _changes;
                if (file is null || _disposed || changes == _persisted)
                {
                    return;
                }

                registrations = _registrations.Values.Select(e => e.Registration).ToList();
            }

            try
            {
                RegistryStateFile.Write(file, registrations);
                _persisted = changes;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Log.StateNotWritten(_logger, file, ex.Message);
            }
        }
    }

    /// <summary>
    /// A workload that restarted while the control plane was down comes back under a new node id: the restored
    /// registration of the same named workload at the same address is its previous process, gone for good.
    /// </summary>
    private void RemoveSuperseded(SelfRegistration registration)
    {
        if (registration.WorkloadName is null)
        {
            return;
        }

        List<string>? superseded = null;
        foreach (var (nodeId, other) in _registrations)
        {
            if (other.Restored && nodeId != registration.NodeId && other.Registration.WorkloadName == registration.WorkloadName
                && other.Registration.ServiceHost == registration.ServiceHost && other.Registration.Namespace == registration.Namespace
                && other.Registration.Address == registration.Address)
            {
                (superseded ??= []).Add(nodeId);
            }
        }

        foreach (var nodeId in superseded ?? [])
        {
            _registrations[nodeId].RemovalTimer?.Dispose();
            _registrations.Remove(nodeId);
            Log.Superseded(_logger, nodeId, registration.NodeId);
        }
    }

    private static bool SameRegistration(SelfRegistration a, SelfRegistration b) =>
        a.ServiceHost == b.ServiceHost && a.Namespace == b.Namespace && a.Address == b.Address && a.Locality == b.Locality
        && a.ServiceAccount == b.ServiceAccount && a.WorkloadName == b.WorkloadName
        && a.Ports.Count == b.Ports.Count && a.Ports.All(kv => b.Ports.TryGetValue(kv.Key, out var v) && v == kv.Value)
        && a.Labels.Count == b.Labels.Count && a.Labels.All(kv => b.Labels.TryGetValue(kv.Key, out var v) && v == kv.Value);

    private void Rebuild()
    {
        RegistrySnapshot next;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            next = Build(_config, _registrations.Values.Select(e => e.Registration).ToList());
            Volatile.Write(ref _current, next);
        }

        Changed?.Invoke(next);
    }

    private RegistrySnapshot Build(MeshConfig config, List<SelfRegistration> registrations)
    {
        var services = new Dictionary<string, (string Ns, List<ServicePort> Ports, List<ServiceEndpoint> Endpoints)>(StringComparer.Ordinal);
        var order = new List<string>();
        var sans = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var se in config.ServiceEntries)
        {
            var endpoints = new List<ServiceEndpoint>();
            foreach (var ep in se.Endpoints)
            {
                endpoints.Add(FromWorkload(ep, se.Ports, se.Namespace, $"ServiceEntry/{se.Namespace}/{se.Name}"));
            }

            if (se.WorkloadSelector is { } selector)
            {
                foreach (var we in config.WorkloadEntries)
                {
                    if (we.Namespace == se.Namespace && Matches(selector, we.Spec.Labels))
                    {
                        endpoints.Add(FromWorkload(we.Spec, se.Ports, we.Namespace, $"WorkloadEntry/{we.Namespace}/{we.Name}"));
                    }
                }

                foreach (var reg in registrations)
                {
                    if (reg.Namespace == se.Namespace && Matches(selector, reg.Labels))
                    {
                        endpoints.Add(FromRegistration(reg, se.Ports));
                    }
                }
            }

            foreach (var host in se.Hosts)
            {
                var fqdn = HostNames.ToFqdn(host, se.Namespace, _domain);
                if (services.TryGetValue(fqdn, out var existing))
                {
                    // A host declared twice: the first declaration's ports win, endpoints accumulate.
                    existing.Endpoints.AddRange(endpoints);
                }
                else
                {
                    services[fqdn] = (se.Namespace, se.Ports.ToList(), new List<ServiceEndpoint>(endpoints));
                    sans[fqdn] = se.SubjectAltNames;
                    order.Add(fqdn);
                }
            }
        }

        foreach (var reg in registrations)
        {
            if (services.TryGetValue(reg.ServiceHost, out var svc))
            {
                if (!svc.Endpoints.Any(e => e.Origin == Origin(reg)))
                {
                    svc.Endpoints.Add(FromRegistration(reg, svc.Ports));
                }
            }
            else
            {
                // No ServiceEntry for it: the announced ports define an implicit service.
                var ports = reg.Ports.Keys.Order().Select(p => new ServicePort(p, $"http-{p}", "HTTP", null)).ToList();
                services[reg.ServiceHost] = (reg.Namespace, ports, [FromRegistration(reg, ports)]);
                order.Add(reg.ServiceHost);
            }
        }

        return new RegistrySnapshot(order.Select(h => new MeshService(h, services[h].Ns, services[h].Ports, services[h].Endpoints)
        {
            SubjectAltNames = sans.GetValueOrDefault(h) ?? [],
        }).ToList());
    }

    private static bool Matches(IReadOnlyDictionary<string, string> selector, IReadOnlyDictionary<string, string> labels) =>
        selector.All(kv => labels.TryGetValue(kv.Key, out var v) && v == kv.Value);

    private static ServiceEndpoint FromWorkload(WorkloadEntrySpec we, IReadOnlyList<ServicePort> servicePorts, string ns, string origin)
    {
        var ports = new Dictionary<uint, uint>();
        foreach (var sp in servicePorts)
        {
            ports[sp.Number] = we.Ports.TryGetValue(sp.Name, out var p) ? p : sp.TargetPort ?? sp.Number;
        }

        return new ServiceEndpoint(we.Address, ports, we.Labels, EndpointLocality.Parse(we.Locality), we.Weight is > 0 ? we.Weight.Value : 1, we.ServiceAccount, origin);
    }

    private static string Origin(SelfRegistration reg) => $"node/{reg.NodeId}";

    private static ServiceEndpoint FromRegistration(SelfRegistration reg, IReadOnlyList<ServicePort> servicePorts)
    {
        var ports = new Dictionary<uint, uint>();
        foreach (var sp in servicePorts)
        {
            if (reg.Ports.TryGetValue(sp.Number, out var p))
            {
                ports[sp.Number] = p;
            }
        }

        return new ServiceEndpoint(reg.Address, ports, reg.Labels, reg.Locality, 1, reg.ServiceAccount, Origin(reg))
        {
            // A workload that names no workload is known by its service's short name, as the SDK labels itself.
            WorkloadName = reg.WorkloadName ?? reg.ServiceHost.Split('.')[0],
            WorkloadNamespace = reg.Namespace,
        };
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            foreach (var entry in _registrations.Values)
            {
                entry.RemovalTimer?.Dispose();
            }
        }
    }

    private sealed class Entry
    {
        public required SelfRegistration Registration { get; set; }

        public int Streams { get; set; }

        public ITimer? RemovalTimer { get; set; }

        /// <summary>Read back from the state file, and no stream of its workload seen since.</summary>
        public bool Restored { get; set; }
    }

    private sealed class Handle(ServiceRegistry owner, string nodeId) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                owner.Release(nodeId);
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "Workload '{NodeId}' registered itself for '{Service}' at '{Address}'.")]
        public static partial void Registered(ILogger logger, string nodeId, string service, string address);

        [LoggerMessage(EventId = 2002, Level = LogLevel.Information, Message = "Workload '{NodeId}' disconnected; its registration expires in {Grace}.")]
        public static partial void StreamEnded(ILogger logger, string nodeId, TimeSpan grace);

        [LoggerMessage(EventId = 2003, Level = LogLevel.Information, Message = "Workload '{NodeId}' deregistered.")]
        public static partial void Deregistered(ILogger logger, string nodeId);

        [LoggerMessage(EventId = 2004, Level = LogLevel.Information, Message = "Restored {Count} self-registered workloads from '{File}'; each stays {Grace} unless its workload reconnects.")]
        public static partial void Restored(ILogger logger, int count, string file, TimeSpan grace);

        [LoggerMessage(EventId = 2005, Level = LogLevel.Warning, Message = "Registry state file '{File}' cannot be read ({Problem}); starting without the previous run's self-registrations (workloads register again when they reconnect).")]
        public static partial void StateUnreadable(ILogger logger, string file, string problem);

        [LoggerMessage(EventId = 2007, Level = LogLevel.Information, Message = "Restored registration of workload '{NodeId}' removed: the same workload registered again as '{NewNodeId}'.")]
        public static partial void Superseded(ILogger logger, string nodeId, string newNodeId);

        [LoggerMessage(EventId = 2006, Level = LogLevel.Warning, Message = "Registry state file '{File}' cannot be written ({Problem}); a restart would forget self-registered workloads until they reconnect.")]
        public static partial void StateNotWritten(ILogger logger, string file, string problem);
    }
}

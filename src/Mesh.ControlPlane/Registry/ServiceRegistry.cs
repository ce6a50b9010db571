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
    string Origin);

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
    string? WorkloadName);

/// <summary>
/// Builds services from ServiceEntry + WorkloadEntry configuration and from self-registered
/// workloads. A self-registration lives while at least one of its streams does, and for a grace
/// period after the last one ends (so a reconnect does not flap the endpoint).
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
                entry.Registration = registration;
                entry.Streams++;
            }
            else
            {
                entry = new Entry { Registration = registration, Streams = 1 };
                _registrations[registration.NodeId] = entry;
            }
        }

        Log.Registered(_logger, registration.NodeId, registration.ServiceHost, registration.Address);
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
        }

        Log.Deregistered(_logger, nodeId);
        Rebuild();
    }

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

        return new ServiceEndpoint(reg.Address, ports, reg.Labels, reg.Locality, 1, reg.ServiceAccount, Origin(reg));
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
    }
}

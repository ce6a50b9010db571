using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;

namespace Mesh.Sdk.LoadBalancing;

/// <summary>
/// The endpoints of one cluster compiled from a <see cref="ClusterLoadAssignment"/>: priorities, localities
/// and endpoints, plus the load-assignment policy. Built once per EDS update; immutable afterwards.
/// </summary>
internal sealed class EndpointSet
{
    /// <summary>Envoy's default <c>overprovisioning_factor</c>: 140 (a priority at 71.4 % health still takes all its load).</summary>
    public const uint DefaultOverprovisioningFactor = 140;

    private readonly Dictionary<string, EndpointState> _states;

    private EndpointSet(
        string clusterName,
        PriorityLevel[] priorities,
        MeshEndpoint[] all,
        uint overprovisioningFactor,
        bool weightedPriorityHealth,
        Dictionary<string, EndpointState> states)
    {
        ClusterName = clusterName;
        Priorities = priorities;
        All = all;
        OverprovisioningFactor = overprovisioningFactor;
        WeightedPriorityHealth = weightedPriorityHealth;
        _states = states;
    }

    /// <summary>An empty set for a cluster that has no endpoints yet.</summary>
    public static EndpointSet Empty(string clusterName)
        => new(clusterName, [], [], DefaultOverprovisioningFactor, false, new(StringComparer.Ordinal));

    /// <summary>The cluster the endpoints belong to.</summary>
    public string ClusterName { get; }

    /// <summary>Priority levels, index = priority; a level may be empty when EDS skips a priority.</summary>
    public IReadOnlyList<PriorityLevel> Priorities { get; }

    /// <summary>Every endpoint of every priority, in EDS order.</summary>
    public IReadOnlyList<MeshEndpoint> All { get; }

    /// <summary><c>policy.overprovisioning_factor</c>, default 140.</summary>
    public uint OverprovisioningFactor { get; }

    /// <summary><c>policy.weighted_priority_health</c>: priority health from endpoint weights instead of counts.</summary>
    public bool WeightedPriorityHealth { get; }

    /// <summary>The state object of an endpoint by its key (<c>address:port</c>).</summary>
    public bool TryGetState(string key, out EndpointState state) => _states.TryGetValue(key, out state!);

    /// <summary>
    /// Compiles a load assignment. Endpoint state of addresses present in <paramref name="previous"/> is kept.
    /// </summary>
    /// <exception cref="InvalidDataException">The load assignment is not usable; the message names the endpoint and the reason.</exception>
    public static EndpointSet Create(string clusterName, ClusterLoadAssignment assignment, EndpointSet? previous = null)
    {
        ArgumentNullException.ThrowIfNull(assignment);
        var states = new Dictionary<string, EndpointState>(StringComparer.Ordinal);
        var byPriority = new SortedDictionary<uint, List<LocalityGroup>>();
        var all = new List<MeshEndpoint>();

        for (var l = 0; l < assignment.Endpoints.Count; l++)
        {
            var group = assignment.Endpoints[l];
            var locality = group.Locality ?? new Locality();
            var priority = group.Priority;
            if (priority > 1024)
            {
                throw Invalid(clusterName, $"endpoints[{l}].priority {priority} is too large (at most 1024)");
            }

            var lbEndpoints = group.LoadBalancerEndpoints is { } list ? list.LbEndpoints : group.LbEndpoints;
            var endpoints = new List<MeshEndpoint>(lbEndpoints.Count);
            for (var e = 0; e < lbEndpoints.Count; e++)
            {
                var lbEndpoint = lbEndpoints[e];
                var where = $"endpoints[{l}].lb_endpoints[{e}]";
                var endpoint = lbEndpoint.HostIdentifierCase switch
                {
                    LbEndpoint.HostIdentifierOneofCase.Endpoint => lbEndpoint.Endpoint,
                    LbEndpoint.HostIdentifierOneofCase.EndpointName =>
                        assignment.NamedEndpoints.TryGetValue(lbEndpoint.EndpointName, out var named)
                            ? named
                            : throw Invalid(clusterName, $"{where}.endpoint_name '{lbEndpoint.EndpointName}' is not in named_endpoints"),
                    _ => throw Invalid(clusterName, $"{where} has no endpoint"),
                };

                var socket = endpoint.Address?.SocketAddress
                    ?? throw Invalid(clusterName, $"{where}.endpoint.address must be a socket_address");
                if (string.IsNullOrEmpty(socket.Address))
                {
                    throw Invalid(clusterName, $"{where}.endpoint.address.socket_address.address is empty");
                }

                if (socket.PortSpecifierCase != SocketAddress.PortSpecifierOneofCase.PortValue || socket.PortValue is 0 or > 65535)
                {
                    throw Invalid(clusterName, $"{where}.endpoint.address.socket_address needs a port_value in 1..65535");
                }

                var weight = lbEndpoint.LoadBalancingWeight ?? 1;
                if (weight == 0)
                {
                    throw Invalid(clusterName, $"{where}.load_balancing_weight must be at least 1");
                }

                var port = (int)socket.PortValue;
                var key = MeshEndpoint.FormatKey(socket.Address, port);
                EndpointState? state = null;
                if (!states.ContainsKey(key))
                {
                    if (previous is null || !previous.TryGetState(key, out state))
                    {
                        state = new EndpointState();
                    }

                    states.Add(key, state);
                }

                // A duplicate address in one update gets its own state: the first keeps the history.
                state ??= new EndpointState();
                var mesh = new MeshEndpoint(
                    socket.Address, port, weight, lbEndpoint.HealthStatus, endpoint.Hostname,
                    lbEndpoint.Metadata, locality, (int)priority, state);
                endpoints.Add(mesh);
                all.Add(mesh);
            }

            if (!byPriority.TryGetValue(priority, out var groups))
            {
                groups = [];
                byPriority.Add(priority, groups);
            }

            groups.Add(new LocalityGroup(locality, group.LoadBalancingWeight ?? 0, [.. endpoints]));
        }

        var levels = new PriorityLevel[byPriority.Count == 0 ? 0 : (int)byPriority.Keys.Max() + 1];
        for (var p = 0; p < levels.Length; p++)
        {
            levels[p] = byPriority.TryGetValue((uint)p, out var groups) ? new PriorityLevel(p, [.. groups]) : new PriorityLevel(p, []);
        }

        var factor = assignment.Policy?.OverprovisioningFactor ?? DefaultOverprovisioningFactor;
        if (factor == 0)
        {
            throw Invalid(clusterName, "policy.overprovisioning_factor must be greater than 0");
        }

        return new EndpointSet(clusterName, levels, [.. all], factor, assignment.Policy?.WeightedPriorityHealth ?? false, states);
    }

    private static InvalidDataException Invalid(string cluster, string reason)
        => new($"ClusterLoadAssignment for cluster '{cluster}': {reason}.");
}

/// <summary>One priority level of a cluster.</summary>
/// <param name="Priority">The priority (0 is the highest).</param>
/// <param name="Localities">The localities at this priority.</param>
internal sealed record PriorityLevel(int Priority, LocalityGroup[] Localities)
{
    /// <summary>Every endpoint of the level.</summary>
    public MeshEndpoint[] Endpoints { get; } = Localities.SelectMany(static l => l.Endpoints).ToArray();
}

/// <summary>The endpoints of one locality at one priority.</summary>
/// <param name="Locality">The locality.</param>
/// <param name="Weight">The locality's <c>load_balancing_weight</c>; 0 when absent (such a locality takes no traffic under locality-weighted balancing).</param>
/// <param name="Endpoints">The endpoints.</param>
internal sealed record LocalityGroup(Locality Locality, uint Weight, MeshEndpoint[] Endpoints);

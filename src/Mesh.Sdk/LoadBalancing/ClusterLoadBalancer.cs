namespace Mesh.Sdk.LoadBalancing;

/// <summary>
/// The load balancer of one cluster: priority and locality selection over the current
/// <see cref="EndpointSet"/>, then the cluster's <see cref="EndpointPicker"/>. The compiled state is rebuilt
/// on every EDS update and whenever outlier detection ejects or returns a host (<see cref="Refresh"/>), and
/// read with one volatile read per pick, so <see cref="Pick"/> is lock-free and allocation-free.
/// </summary>
internal sealed class ClusterLoadBalancer
{
    private readonly Lock _gate = new();
    private readonly Random _random;
    private CompiledState _state;

    /// <summary>Creates a load balancer with no endpoints.</summary>
    /// <param name="clusterName">The cluster name, for messages.</param>
    /// <param name="policy">The compiled policy.</param>
    /// <param name="random">Random source; <see cref="Random.Shared"/> when <see langword="null"/>. A seeded instance is for single-threaded tests only.</param>
    public ClusterLoadBalancer(string clusterName, LoadBalancerPolicy policy, Random? random = null)
    {
        ClusterName = clusterName;
        Policy = policy;
        _random = random ?? Random.Shared;
        _state = Compile(EndpointSet.Empty(clusterName));
    }

    /// <summary>The cluster name.</summary>
    public string ClusterName { get; }

    /// <summary>The compiled policy.</summary>
    public LoadBalancerPolicy Policy { get; }

    /// <summary>The endpoints in force.</summary>
    public EndpointSet Endpoints => Volatile.Read(ref _state).Set;

    /// <summary>The priority split in force.</summary>
    public PriorityLoad Load => Volatile.Read(ref _state).Load;

    /// <summary>The picker for a priority's healthy (or degraded) hosts, for tests and diagnostics.</summary>
    public EndpointPicker? GetPicker(int priority, bool degraded)
    {
        var state = Volatile.Read(ref _state);
        return priority < state.Healthy.Length ? (degraded ? state.Degraded[priority] : state.Healthy[priority]) : null;
    }

    /// <summary>Replaces the endpoints (after an EDS update).</summary>
    public void Update(EndpointSet endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        lock (_gate)
        {
            Volatile.Write(ref _state, Compile(endpoints));
        }
    }

    /// <summary>Recompiles the current endpoints after a host's ejection state changed.</summary>
    public void Refresh()
    {
        lock (_gate)
        {
            Volatile.Write(ref _state, Compile(_state.Set));
        }
    }

    /// <summary>
    /// Picks an endpoint. Returns <see langword="null"/> when the cluster has no usable endpoint (the HTTP layer
    /// answers 503 "no healthy upstream"). When the context excludes the picked endpoint, picks again up to
    /// <see cref="PickContext.HostSelectionRetryMaxAttempts"/> times and then uses the last pick, as Envoy does.
    /// </summary>
    public MeshEndpoint? Pick(in PickContext context)
    {
        var state = Volatile.Read(ref _state);
        if (state.Table.Length == 0)
        {
            return null;
        }

        var percent = context.HasHash ? (int)(context.Hash % 100) : _random.Next(100);
        var picker = state.Table[percent];
        if (picker is null)
        {
            return null;
        }

        var endpoint = picker.Pick(context, 0, _random);
        for (var attempt = 1; attempt <= context.HostSelectionRetryMaxAttempts; attempt++)
        {
            if (!context.IsExcluded(endpoint) && !endpoint.State.Outlier.IsEjected)
            {
                return endpoint;
            }

            endpoint = picker.Pick(context, attempt, _random);
        }

        return endpoint;
    }

    private CompiledState Compile(EndpointSet set)
    {
        var priorities = set.Priorities;
        var count = priorities.Count;
        var healthyAvailability = new int[count];
        var degradedAvailability = new int[count];
        var healthyPickers = new EndpointPicker?[count];
        var degradedPickers = new EndpointPicker?[count];
        var panicPickers = new EndpointPicker?[count];

        for (var p = 0; p < count; p++)
        {
            var level = priorities[p];
            ulong total = 0, healthy = 0, degraded = 0;
            ulong healthyCount = 0, degradedCount = 0;
            foreach (var endpoint in level.Endpoints)
            {
                var weight = set.WeightedPriorityHealth ? endpoint.Weight : 1UL;
                total += weight;
                switch (Usable(endpoint))
                {
                    case EndpointHealth.Healthy:
                        healthy += weight;
                        healthyCount++;
                        break;
                    case EndpointHealth.Degraded:
                        degraded += weight;
                        degradedCount++;
                        break;
                }
            }

            healthyAvailability[p] = PriorityLoad.Availability(set.OverprovisioningFactor, healthy, total);
            degradedAvailability[p] = PriorityLoad.Availability(set.OverprovisioningFactor, degraded, total);
            healthyPickers[p] = BuildSource(set, level, EndpointHealth.Healthy);
            degradedPickers[p] = BuildSource(set, level, EndpointHealth.Degraded);

            // Panic routing (only when a threshold is configured): below it, the whole priority takes traffic.
            var usablePercent = level.Endpoints.Length == 0 ? 0 : 100.0 * (healthyCount + degradedCount) / level.Endpoints.Length;
            if (Policy.HealthyPanicThreshold > 0 && level.Endpoints.Length > 0 && usablePercent < Policy.HealthyPanicThreshold)
            {
                panicPickers[p] = EndpointPicker.Create(Policy, level.Endpoints, null, _random);
            }
        }

        var load = PriorityLoad.Compute(healthyAvailability, degradedAvailability);
        var table = new EndpointPicker?[count == 0 ? 0 : 100];
        if (count > 0)
        {
            if (load.NoAvailability)
            {
                Array.Fill(table, panicPickers[0]);
            }
            else
            {
                // Envoy's choosePriority: percent in 1..100 against the cumulative healthy, then degraded loads.
                var slot = 0;
                for (var pass = 0; pass < 2; pass++)
                {
                    var loads = pass == 0 ? load.Healthy : load.Degraded;
                    var pickers = pass == 0 ? healthyPickers : degradedPickers;
                    for (var p = 0; p < count; p++)
                    {
                        var picker = panicPickers[p] ?? pickers[p];
                        for (var i = 0; i < loads[p] && slot < 100; i++)
                        {
                            table[slot++] = picker;
                        }
                    }
                }
            }
        }

        return new CompiledState(set, load, table, healthyPickers, degradedPickers);
    }

    private static EndpointHealth Usable(MeshEndpoint endpoint)
        => endpoint.State.Outlier.IsEjected ? EndpointHealth.Excluded : endpoint.HealthClass;

    private EndpointPicker? BuildSource(EndpointSet set, PriorityLevel level, EndpointHealth wanted)
    {
        if (!Policy.LocalityWeighted)
        {
            var eligible = Filter(level.Endpoints, wanted);
            return eligible.Length == 0 ? null : EndpointPicker.Create(Policy, eligible, null, _random);
        }

        var groups = new List<MeshEndpoint[]>();
        var weights = new List<double>();
        foreach (var locality in level.Localities)
        {
            if (locality.Weight == 0 || locality.Endpoints.Length == 0)
            {
                continue;
            }

            var eligible = Filter(locality.Endpoints, wanted);
            if (eligible.Length == 0)
            {
                continue;
            }

            // Envoy's effective locality weight: weight × min(1, factor/100 × eligible/all).
            var ratio = Math.Min(1.0, set.OverprovisioningFactor / 100.0 * eligible.Length / locality.Endpoints.Length);
            groups.Add(eligible);
            weights.Add(locality.Weight * ratio);
        }

        if (groups.Count == 0)
        {
            return null;
        }

        if (Policy.Kind == LoadBalancerKind.RingHash)
        {
            // One ring over all localities: host weight normalized within its locality × locality share, expressed in
            // units of endpoint weight (× the total endpoint weight), so that when locality weights are proportional
            // to their endpoints' weights every host keeps exactly its own weight and its ring points.
            var weightSum = weights.Sum();
            var totalHostWeight = 0.0;
            foreach (var group in groups)
            {
                totalHostWeight += group.Sum(static e => (double)e.Weight);
            }

            var hosts = new List<MeshEndpoint>();
            var ringWeights = new List<double>();
            for (var g = 0; g < groups.Count; g++)
            {
                var hostSum = groups[g].Sum(static e => (double)e.Weight);
                foreach (var endpoint in groups[g])
                {
                    hosts.Add(endpoint);
                    ringWeights.Add(endpoint.Weight / hostSum * (weights[g] / weightSum) * totalHostWeight);
                }
            }

            return EndpointPicker.Create(Policy, [.. hosts], [.. ringWeights], _random);
        }

        var pickers = new EndpointPicker[groups.Count];
        for (var g = 0; g < groups.Count; g++)
        {
            pickers[g] = EndpointPicker.Create(Policy, groups[g], null, _random);
        }

        return new LocalityWeightedPicker(pickers, [.. weights], _random);
    }

    private static MeshEndpoint[] Filter(MeshEndpoint[] endpoints, EndpointHealth wanted)
    {
        var count = 0;
        foreach (var endpoint in endpoints)
        {
            if (Usable(endpoint) == wanted)
            {
                count++;
            }
        }

        var result = new MeshEndpoint[count];
        var i = 0;
        foreach (var endpoint in endpoints)
        {
            if (Usable(endpoint) == wanted)
            {
                result[i++] = endpoint;
            }
        }

        return result;
    }

    private sealed record CompiledState(
        EndpointSet Set,
        PriorityLoad Load,
        EndpointPicker?[] Table,
        EndpointPicker?[] Healthy,
        EndpointPicker?[] Degraded);
}

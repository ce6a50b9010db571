using Envoy.Service.Discovery.V3;
using Grpc.Core;
using Mesh.ControlPlane.Translation;

namespace Mesh.ControlPlane.Xds;

/// <summary>
/// Delta (incremental) ADS for one stream. Per type: the subscribed names (or wildcard) and the
/// version of every resource the client holds (seeded from initial_resource_versions on
/// reconnect). Only resources whose version differs are sent; resources the client holds that no
/// longer exist are listed in removed_resources, and so is, once, a subscribed name that does not
/// exist (Delta's "does not exist", as istiod sends it). A NACKed version is not sent again.
/// Pushes after a new snapshot follow <see cref="PushOrder"/>.
/// </summary>
internal sealed class DeltaStream(AdsContext context, long streamId, string peer, IServerStreamWriter<DeltaDiscoveryResponse> writer)
    : AdsStream<DeltaDiscoveryRequest>(context, streamId, peer)
{
    private readonly Dictionary<string, TypeState> _types = new(StringComparer.Ordinal);

    internal sealed class TypeState
    {
        public HashSet<string> Names { get; } = new(StringComparer.Ordinal);

        public bool Wildcard { get; set; }

        public bool Started { get; set; }

        public Dictionary<string, string> ClientVersions { get; } = new(StringComparer.Ordinal);

        /// <summary>Subscribed names already reported in removed_resources because they do not exist.</summary>
        public HashSet<string> ReportedAbsent { get; } = new(StringComparer.Ordinal);

        public string? LastNonce { get; set; }
    }

    public override async Task OnRequestAsync(DeltaDiscoveryRequest request, XdsSnapshot snapshot, CancellationToken cancellationToken)
    {
        snapshot = Admit(request.Node, snapshot);
        var typeUrl = request.TypeUrl;
        if (!ResourceTypes.All.Contains(typeUrl))
        {
            LogUnknownType(typeUrl);
            return;
        }

        if (!_types.TryGetValue(typeUrl, out var state))
        {
            state = new TypeState();
            _types[typeUrl] = state;
        }

        if (request.ResponseNonce.Length > 0)
        {
            if (request.ErrorDetail is { } error)
            {
                LogNack(typeUrl, request.ResponseNonce, null, $"{error.Code}: {error.Message}");
            }
            else if (request.ResponseNonce == state.LastNonce)
            {
                LogAck(typeUrl, request.ResponseNonce, snapshot.VersionInfo);
            }
            else
            {
                LogStale(typeUrl, request.ResponseNonce);
            }
        }

        if (!state.Started)
        {
            foreach (var (name, version) in request.InitialResourceVersions)
            {
                state.ClientVersions[name] = version;
            }

            state.Wildcard = request.ResourceNamesSubscribe.Count == 0 && ResourceTypes.IsFullState(typeUrl);
        }

        foreach (var name in request.ResourceNamesSubscribe)
        {
            if (name == "*")
            {
                state.Wildcard = true;
            }
            else
            {
                state.Names.Add(name);
            }
        }

        foreach (var name in request.ResourceNamesUnsubscribe)
        {
            if (name == "*")
            {
                state.Wildcard = false;
            }
            else
            {
                state.Names.Remove(name);
                state.ClientVersions.Remove(name);
                state.ReportedAbsent.Remove(name);
            }
        }

        if (!state.Wildcard)
        {
            // Resources the client holds but no longer subscribes to are forgotten, not "removed".
            foreach (var name in state.ClientVersions.Keys.Where(n => !state.Names.Contains(n)).ToList())
            {
                state.ClientVersions.Remove(name);
            }
        }

        state.Started = true;
        await PushAsync(typeUrl, state, snapshot, PushPhase.All, cancellationToken).ConfigureAwait(false);
    }

    public override async Task OnSnapshotAsync(XdsSnapshot snapshot, CancellationToken cancellationToken)
    {
        snapshot = Effective(snapshot);
        foreach (var (typeUrl, phase) in PushOrder.Steps)
        {
            if (_types.TryGetValue(typeUrl, out var state) && state.Started)
            {
                await PushAsync(typeUrl, state, snapshot, phase, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task PushAsync(string typeUrl, TypeState state, XdsSnapshot snapshot, PushPhase phase, CancellationToken cancellationToken)
    {
        var started = Now();
        var desired = new Dictionary<string, XdsResource>(StringComparer.Ordinal);
        if (state.Wildcard)
        {
            foreach (var (name, resource) in snapshot.All(typeUrl, Scope))
            {
                desired[name] = resource;
            }
        }

        foreach (var name in state.Names)
        {
            if (!desired.ContainsKey(name) && snapshot.Find(typeUrl, name, Scope) is { } resource)
            {
                desired[name] = resource;
            }
        }

        var response = new DeltaDiscoveryResponse { TypeUrl = typeUrl, SystemVersionInfo = snapshot.VersionInfo };
        if (phase != PushPhase.Removals)
        {
            foreach (var resource in desired.Values.OrderBy(r => r.Name, StringComparer.Ordinal))
            {
                if (!state.ClientVersions.TryGetValue(resource.Name, out var held) || held != resource.Hash)
                {
                    response.Resources.Add(new Resource { Name = resource.Name, Version = resource.Hash, Resource_ = resource.Resource });
                }
            }
        }

        if (phase != PushPhase.Additions)
        {
            // Held resources that went away, and subscribed names that do not exist (not yet said so).
            var removed = state.ClientVersions.Keys.Where(n => !desired.ContainsKey(n))
                .Concat(state.Names.Where(n => !desired.ContainsKey(n) && !state.ClientVersions.ContainsKey(n) && !state.ReportedAbsent.Contains(n)));
            foreach (var name in removed.Order(StringComparer.Ordinal))
            {
                response.RemovedResources.Add(name);
            }
        }

        if (response.Resources.Count == 0 && response.RemovedResources.Count == 0)
        {
            return;
        }

        foreach (var resource in response.Resources)
        {
            state.ClientVersions[resource.Name] = resource.Version;
            state.ReportedAbsent.Remove(resource.Name);
        }

        foreach (var name in response.RemovedResources)
        {
            state.ClientVersions.Remove(name);
            if (state.Names.Contains(name))
            {
                state.ReportedAbsent.Add(name);
            }
        }

        response.Nonce = NextNonce();
        state.LastNonce = response.Nonce;
        await writer.WriteAsync(response, cancellationToken).ConfigureAwait(false);
        RecordPush(typeUrl, started);
        LogSent(typeUrl, response.SystemVersionInfo, response.Nonce, response.Resources.Count, response.RemovedResources.Count);
    }
}

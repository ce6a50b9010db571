using Envoy.Service.Discovery.V3;
using Grpc.Core;
using Mesh.ControlPlane.Translation;

namespace Mesh.ControlPlane.Xds;

/// <summary>
/// State-of-the-World ADS for one stream. Per type: the subscribed names, what was last sent
/// (name → resource), the last nonce, and the last ACKed / NACKed versions. A request that changes
/// the subscription is always answered (so a name that does not exist is learnt at once: absent
/// from an LDS/CDS response = does not exist); otherwise a response is sent only when what the
/// client subscribes to differs from what it was last sent, so a NACKed response is never
/// repeated: only a later change produces a new one. Pushes after a new snapshot follow
/// <see cref="PushOrder"/>.
/// </summary>
internal sealed class SotwStream(AdsContext context, long streamId, string peer, IServerStreamWriter<DiscoveryResponse> writer)
    : AdsStream<DiscoveryRequest>(context, streamId, peer)
{
    private readonly Dictionary<string, TypeState> _types = new(StringComparer.Ordinal);

    internal sealed class TypeState
    {
        public HashSet<string> Names { get; } = new(StringComparer.Ordinal);

        public bool Wildcard { get; set; }

        public bool Started { get; set; }

        public string? Nonce { get; set; }

        public string? SentVersion { get; set; }

        public string? AckedVersion { get; set; }

        public string? NackedVersion { get; set; }

        public Dictionary<string, XdsResource> Sent { get; set; } = new(StringComparer.Ordinal);
    }

    public override async Task OnRequestAsync(DiscoveryRequest request, XdsSnapshot snapshot, CancellationToken cancellationToken)
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
            if (request.ResponseNonce != state.Nonce)
            {
                LogStale(typeUrl, request.ResponseNonce);
                return;
            }

            if (request.ErrorDetail is { } error)
            {
                state.NackedVersion = state.SentVersion;
                LogNack(typeUrl, request.ResponseNonce, state.SentVersion, $"{error.Code}: {error.Message}");
            }
            else
            {
                state.AckedVersion = request.VersionInfo;
                LogAck(typeUrl, request.ResponseNonce, request.VersionInfo);
            }
        }

        var names = request.ResourceNames;
        var wildcardAllowed = ResourceTypes.IsFullState(typeUrl);
        var wildcard = names.Contains("*")
            || (names.Count == 0 && wildcardAllowed && (!state.Started || state.Wildcard));
        var subscribed = new HashSet<string>(names.Where(static n => n != "*"), StringComparer.Ordinal);
        var changed = !state.Started || wildcard != state.Wildcard || !subscribed.SetEquals(state.Names);
        state.Wildcard = wildcard;
        state.Names.Clear();
        state.Names.UnionWith(subscribed);
        state.Started = true;

        // A changed subscription is answered even when the content stays the same: a client that
        // adds a listener name that does not exist learns so from this response instead of waiting
        // for its does-not-exist timer.
        await PushAsync(typeUrl, state, snapshot, PushPhase.All, force: changed, cancellationToken).ConfigureAwait(false);
    }

    public override async Task OnSnapshotAsync(XdsSnapshot snapshot, CancellationToken cancellationToken)
    {
        snapshot = Effective(snapshot);
        foreach (var (typeUrl, phase) in PushOrder.Steps)
        {
            if (_types.TryGetValue(typeUrl, out var state) && state.Started)
            {
                await PushAsync(typeUrl, state, snapshot, phase, force: false, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task PushAsync(string typeUrl, TypeState state, XdsSnapshot snapshot, PushPhase phase, bool force, CancellationToken cancellationToken)
    {
        var started = Now();
        var resources = new Dictionary<string, XdsResource>(StringComparer.Ordinal);
        if (state.Wildcard)
        {
            foreach (var (name, resource) in snapshot.All(typeUrl, Scope))
            {
                resources[name] = resource;
            }
        }

        foreach (var name in state.Names)
        {
            if (!resources.ContainsKey(name) && snapshot.Find(typeUrl, name, Scope) is { } resource)
            {
                resources[name] = resource;
            }
        }

        if (phase == PushPhase.Additions)
        {
            // Make before break: what went away stays listed until the listeners and routes that
            // may still name it have been sent; the Removals step then drops it.
            foreach (var (name, previous) in state.Sent)
            {
                if (!resources.ContainsKey(name) && (state.Wildcard || state.Names.Contains(name)))
                {
                    resources[name] = previous;
                }
            }
        }

        if (!force && resources.Count == state.Sent.Count
            && resources.All(r => state.Sent.TryGetValue(r.Key, out var sent) && sent.Hash == r.Value.Hash))
        {
            return;
        }

        var response = new DiscoveryResponse { TypeUrl = typeUrl, VersionInfo = snapshot.VersionInfo, Nonce = NextNonce() };
        foreach (var resource in resources.Values.OrderBy(r => r.Name, StringComparer.Ordinal))
        {
            response.Resources.Add(resource.Resource);
        }

        state.Nonce = response.Nonce;
        state.SentVersion = response.VersionInfo;
        state.Sent = resources;
        await writer.WriteAsync(response, cancellationToken).ConfigureAwait(false);
        RecordPush(typeUrl, started);
        LogSent(typeUrl, response.VersionInfo, response.Nonce, response.Resources.Count, 0);
    }
}

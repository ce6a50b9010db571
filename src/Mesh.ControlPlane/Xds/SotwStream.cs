using Envoy.Service.Discovery.V3;
using Grpc.Core;
using Mesh.ControlPlane.Translation;

namespace Mesh.ControlPlane.Xds;

/// <summary>
/// State-of-the-World ADS for one stream. Per type: the subscribed names, what was last sent
/// (name → content hash), the last nonce, and the last ACKed / NACKed versions. A response is sent
/// when what the client subscribes to differs from what it was last sent, so a NACKed response is
/// never repeated: only a later change produces a new one.
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

        public Dictionary<string, string> Sent { get; set; } = new(StringComparer.Ordinal);
    }

    public override async Task OnRequestAsync(DiscoveryRequest request, XdsSnapshot snapshot, CancellationToken cancellationToken)
    {
        SetNode(request.Node);
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
        state.Wildcard = names.Contains("*")
            || (names.Count == 0 && wildcardAllowed && (!state.Started || state.Wildcard));
        state.Names.Clear();
        foreach (var name in names)
        {
            if (name != "*")
            {
                state.Names.Add(name);
            }
        }

        var first = !state.Started;
        state.Started = true;
        await PushAsync(typeUrl, state, snapshot, first, cancellationToken).ConfigureAwait(false);
    }

    public override async Task OnSnapshotAsync(XdsSnapshot snapshot, CancellationToken cancellationToken)
    {
        foreach (var typeUrl in ResourceTypes.All)
        {
            if (_types.TryGetValue(typeUrl, out var state) && state.Started)
            {
                await PushAsync(typeUrl, state, snapshot, force: false, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task PushAsync(string typeUrl, TypeState state, XdsSnapshot snapshot, bool force, CancellationToken cancellationToken)
    {
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

        if (!force && resources.Count == state.Sent.Count
            && resources.All(r => state.Sent.TryGetValue(r.Key, out var hash) && hash == r.Value.Hash))
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
        state.Sent = resources.ToDictionary(r => r.Key, r => r.Value.Hash, StringComparer.Ordinal);
        await writer.WriteAsync(response, cancellationToken).ConfigureAwait(false);
        LogSent(typeUrl, response.VersionInfo, response.Nonce, response.Resources.Count, 0);
    }
}

namespace Mesh.Sdk.Xds.Internal;

/// <summary>
/// State of the World, one type URL on one ADS stream: follows which subscribed names the server has already seen,
/// so that a response leaving out a name never received can be told apart from the answer to an older request that
/// did not ask for it yet.
/// </summary>
/// <remarks>
/// The server (Mesh.ControlPlane, istiod, go-control-plane) reads requests in order. A request whose
/// <c>response_nonce</c> is not empty and not the nonce of the server's last response of the type is stale and
/// ignored. Otherwise the request's names become the server's subscription, and a request that changes them is
/// answered at once. The client replays that rule over the requests it sent: when a response arrives, the
/// requests not yet accounted for are consumed up to the first one that changed the names (the one this response
/// answers); if none did, the response is a push and the subscription stays. A push that crosses a
/// subscription-changing request on the wire is taken for its answer; the request is then stale for the server, and
/// the ACK of the push, which carries the current names, is answered instead.
/// <para>
/// So a response taken for the answer to a request that carried a nonce may be a push sent before the server read
/// that request: the names the request added are then not known to the server yet. A push always carries a new
/// version; a response with the version of the previous one is an answer. Names added by a request whose taken
/// answer has a new version are <see cref="IsUnconfirmed">unconfirmed</see> for that response: their absence is
/// decided by the next response (the server answers the push's ACK when it had ignored the request) or, when none
/// comes, after a short delay.
/// </para>
/// </remarks>
internal sealed class SotwSubscriptionTracker
{
    private readonly Queue<(string Nonce, HashSet<string> Names)> _unanswered = new();
    private HashSet<string>? _serverNames;
    private HashSet<string>? _lastSent;
    private string _lastNonce = string.Empty;
    private string? _lastVersion;
    private HashSet<string> _unconfirmed = new(StringComparer.Ordinal);

    /// <summary>Forgets everything: a new stream starts with no subscription on the server.</summary>
    public void Reset()
    {
        _unanswered.Clear();
        _serverNames = null;
        _lastSent = null;
        _lastNonce = string.Empty;
        _lastVersion = null;
        _unconfirmed = new(StringComparer.Ordinal);
    }

    /// <summary>Records a request sent on the stream (subscription change, ACK or NACK).</summary>
    public void OnRequestSent(string responseNonce, IEnumerable<string> names)
    {
        _lastSent = new HashSet<string>(names, StringComparer.Ordinal);
        _unanswered.Enqueue((responseNonce, _lastSent));
    }

    /// <summary>
    /// Whether the last request sent on this stream carried exactly <paramref name="names"/>; before the first
    /// request, whether <paramref name="names"/> is empty (an empty first request would ask LDS and CDS for every
    /// resource).
    /// </summary>
    public bool IsLastSent(IEnumerable<string> names) => _lastSent?.SetEquals(names) ?? !names.Any();

    /// <summary>Records a response of the type, before its ACK or NACK is sent.</summary>
    public void OnResponse(string nonce, string version)
    {
        _unconfirmed = new(StringComparer.Ordinal);
        while (_unanswered.TryDequeue(out var request))
        {
            if (request.Nonce.Length > 0 && request.Nonce != _lastNonce)
            {
                continue;
            }

            var previous = _serverNames;
            var changed = previous is null || !previous.SetEquals(request.Names);
            _serverNames = request.Names;
            if (changed)
            {
                if (request.Nonce.Length > 0 && _lastVersion is not null && version != _lastVersion)
                {
                    // Possibly a push that crossed the request: what the request added may not be known yet.
                    _unconfirmed.UnionWith(request.Names);
                    if (previous is not null)
                    {
                        _unconfirmed.ExceptWith(previous);
                    }
                }

                break;
            }
        }

        _lastNonce = nonce;
        _lastVersion = version;
    }

    /// <summary>
    /// Whether <paramref name="name"/> was added by the request the last response was taken to answer, and that
    /// response, having a new version, may be a push sent before the server read the request.
    /// </summary>
    public bool IsUnconfirmed(string name) => _unconfirmed.Contains(name);

    /// <summary>
    /// Whether the server had <paramref name="name"/> in its subscription when it sent the last response, so that
    /// the name's absence from that response means it does not exist.
    /// </summary>
    public bool ServerHasSeen(string name) => _serverNames?.Contains(name) == true;
}

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
/// </remarks>
internal sealed class SotwSubscriptionTracker
{
    private readonly Queue<(string Nonce, HashSet<string> Names)> _unanswered = new();
    private HashSet<string>? _serverNames;
    private HashSet<string>? _lastSent;
    private string _lastNonce = string.Empty;

    /// <summary>Forgets everything: a new stream starts with no subscription on the server.</summary>
    public void Reset()
    {
        _unanswered.Clear();
        _serverNames = null;
        _lastSent = null;
        _lastNonce = string.Empty;
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
    public void OnResponse(string nonce)
    {
        while (_unanswered.TryDequeue(out var request))
        {
            if (request.Nonce.Length > 0 && request.Nonce != _lastNonce)
            {
                continue;
            }

            var changed = _serverNames is null || !_serverNames.SetEquals(request.Names);
            _serverNames = request.Names;
            if (changed)
            {
                break;
            }
        }

        _lastNonce = nonce;
    }

    /// <summary>
    /// Whether the server had <paramref name="name"/> in its subscription when it sent the last response, so that
    /// the name's absence from that response means it does not exist.
    /// </summary>
    public bool ServerHasSeen(string name) => _serverNames?.Contains(name) == true;
}

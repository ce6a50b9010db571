using Mesh.Sdk.Routing;

namespace Mesh.Sdk.Security.Authorization;

/// <summary>What a <see cref="RbacMatcher"/> tests.</summary>
internal enum RbacMatcherKind
{
    /// <summary>A fixed result: <c>any</c> (true), and matchers that can never see their input here (<c>metadata</c>).</summary>
    Constant,

    /// <summary>Every child matches (<c>and_rules</c>, <c>and_ids</c>).</summary>
    And,

    /// <summary>Some child matches (<c>or_rules</c>, <c>or_ids</c>).</summary>
    Or,

    /// <summary>The only child does not match (<c>not_rule</c>, <c>not_id</c>).</summary>
    Not,

    /// <summary>A request header or pseudo-header (<c>header</c>).</summary>
    Header,

    /// <summary>The path without query and fragment (<c>url_path</c>).</summary>
    UrlPath,

    /// <summary>The local address (<c>destination_ip</c>).</summary>
    DestinationIp,

    /// <summary>The local port in [start, end) (<c>destination_port</c>, <c>destination_port_range</c>).</summary>
    DestinationPort,

    /// <summary>The TLS server name (<c>requested_server_name</c>).</summary>
    RequestedServerName,

    /// <summary>The peer certificate (<c>authenticated</c>).</summary>
    Authenticated,

    /// <summary>The connection's peer address (<c>direct_remote_ip</c>, <c>source_ip</c>).</summary>
    DirectRemoteIp,

    /// <summary>The original client address (<c>remote_ip</c>).</summary>
    RemoteIp,
}

/// <summary>
/// One compiled node of an RBAC permission or principal tree. Immutable; evaluated by a switch over
/// <see cref="Kind"/> (no virtual generic calls, no allocation).
/// </summary>
internal sealed class RbacMatcher
{
    /// <summary>Matches every request (<c>any: true</c>).</summary>
    public static readonly RbacMatcher Any = new(RbacMatcherKind.Constant) { Constant = true };

    /// <summary>Matches no request.</summary>
    public static readonly RbacMatcher None = new(RbacMatcherKind.Constant) { Constant = false };

    public RbacMatcher(RbacMatcherKind kind) => Kind = kind;

    public RbacMatcherKind Kind { get; }

    public bool Constant { get; init; }

    public RbacMatcher[] Children { get; init; } = [];

    public HeaderMatch? Header { get; init; }

    /// <summary>The path, server name or principal name matcher; null for <c>authenticated</c> without a name (any peer).</summary>
    public StringMatch? String { get; init; }

    public CidrMatch? Cidr { get; init; }

    /// <summary>Inclusive start of the port range.</summary>
    public int PortStart { get; init; }

    /// <summary>Exclusive end of the port range.</summary>
    public int PortEnd { get; init; }

    /// <summary>Whether the request matches this node.</summary>
    public bool Matches<TRequest>(in TRequest request)
        where TRequest : IAuthorizationRequest
    {
        switch (Kind)
        {
            case RbacMatcherKind.Constant:
                return Constant;
            case RbacMatcherKind.And:
                foreach (var child in Children)
                {
                    if (!child.Matches(in request))
                    {
                        return false;
                    }
                }

                return true;
            case RbacMatcherKind.Or:
                foreach (var child in Children)
                {
                    if (child.Matches(in request))
                    {
                        return true;
                    }
                }

                return false;
            case RbacMatcherKind.Not:
                return !Children[0].Matches(in request);
            case RbacMatcherKind.Header:
                return Header!.Matches(in request);
            case RbacMatcherKind.UrlPath:
                return String!.Matches(PathOnly(request.PathAndQuery));
            case RbacMatcherKind.DestinationIp:
                return Cidr!.Matches(request.DestinationAddress);
            case RbacMatcherKind.DestinationPort:
                return request.DestinationPort >= PortStart && request.DestinationPort < PortEnd;
            case RbacMatcherKind.RequestedServerName:
                return String!.Matches(request.RequestedServerName ?? string.Empty);
            case RbacMatcherKind.Authenticated:
                return MatchesPeer(request.Peer);
            case RbacMatcherKind.DirectRemoteIp:
                return Cidr!.Matches(request.DirectRemoteAddress);
            case RbacMatcherKind.RemoteIp:
                return Cidr!.Matches(request.RemoteAddress);
            default:
                return false;
        }
    }

    /// <summary>Envoy's <c>PathUtil::removeQueryAndFragment</c>.</summary>
    private static ReadOnlySpan<char> PathOnly(string pathAndQuery)
    {
        var end = pathAndQuery.AsSpan().IndexOfAny('?', '#');
        return end < 0 ? pathAndQuery : pathAndQuery.AsSpan(0, end);
    }

    /// <summary>Envoy's <c>AuthenticatedMatcher</c>: no certificate never matches; no name matches any certificate; else any URI SAN, any DNS SAN, or the subject.</summary>
    private bool MatchesPeer(AuthenticatedPeer? peer)
    {
        if (peer is null)
        {
            return false;
        }

        if (String is null)
        {
            return true;
        }

        foreach (var uri in peer.UriSans)
        {
            if (String.Matches(uri))
            {
                return true;
            }
        }

        foreach (var dns in peer.DnsSans)
        {
            if (String.Matches(dns))
            {
                return true;
            }
        }

        return String.Matches(peer.Subject);
    }
}

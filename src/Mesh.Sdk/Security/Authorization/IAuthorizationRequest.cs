using System.Net;
using Mesh.Sdk.Routing;

namespace Mesh.Sdk.Security.Authorization;

/// <summary>
/// What Envoy's RBAC filter reads from an inbound request and its connection. Implemented by small readonly structs
/// over the host's request (the ASP.NET Core adapter fills one from <c>HttpContext</c>), so the generic evaluation
/// path is specialised per adapter and nothing is boxed. The request line and headers come from
/// <see cref="IRouteRequest"/>: <see cref="IRouteRequest.PathAndQuery"/> is Envoy's <c>:path</c> (with the query;
/// <c>url_path</c> matchers strip it), <see cref="IRouteRequest.Authority"/> is <c>:authority</c> (the <c>Host</c>
/// header under HTTP/1.1).
/// </summary>
internal interface IAuthorizationRequest : IRouteRequest
{
    /// <summary>The local address the connection was accepted on (<c>destination_ip</c>); null when unknown.</summary>
    IPAddress? DestinationAddress { get; }

    /// <summary>The local port the connection was accepted on (<c>destination_port</c>).</summary>
    int DestinationPort { get; }

    /// <summary>The connection's peer address (<c>direct_remote_ip</c>, <c>source_ip</c>); null when unknown.</summary>
    IPAddress? DirectRemoteAddress { get; }

    /// <summary>
    /// The original client's address (<c>remote_ip</c>): Envoy's downstream remote address after
    /// <c>x-forwarded-for</c> or PROXY protocol handling. The peer address unless the host trusts such headers.
    /// </summary>
    IPAddress? RemoteAddress { get; }

    /// <summary>
    /// The verified peer certificate's identities; null on a plaintext connection. A TLS connection without a client
    /// certificate is <see cref="AuthenticatedPeer.WithoutCertificate"/>: Envoy counts it as authenticated and matches a
    /// <c>principal_name</c> against the empty string.
    /// </summary>
    AuthenticatedPeer? Peer { get; }

    /// <summary>The TLS server name the client asked for (SNI); null or empty when none.</summary>
    string? RequestedServerName { get; }
}

using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Mesh.Sdk.Security.Authorization;

namespace Mesh.Sdk.Security.Inbound;

/// <summary>How a mesh port treats TLS and plaintext connections (PeerAuthentication's mTLS modes).</summary>
internal enum InboundMtlsMode
{
    /// <summary>Plaintext and mTLS on the same port, told apart by the first bytes (Istio's default).</summary>
    Permissive,

    /// <summary>mTLS only: plaintext connections are closed; a TLS client without a mesh certificate fails the handshake.</summary>
    Strict,

    /// <summary>Plaintext only: a TLS ClientHello is not accepted.</summary>
    Disable,
}

/// <summary>
/// The compiled inbound listener of one mesh port: the mTLS mode its filter chains give, and the HTTP filters of its
/// HttpConnectionManager (RBAC, local rate limit, router: applied per request by the inbound HTTP pipeline). Immutable;
/// replaced as a whole when the control plane sends a new listener.
/// </summary>
internal sealed record InboundPolicy(int Port, InboundMtlsMode Mode, IReadOnlyList<HttpFilter> HttpFilters, string Source)
{
    /// <summary>The RBAC filters among <see cref="HttpFilters"/>, compiled; allows everything when there are none.</summary>
    public InboundAuthorization Authorization { get; init; } = InboundAuthorization.AllowAll;

    /// <summary>
    /// What a port is governed by before its first listener arrived (or when the server has none for it): PERMISSIVE
    /// with no HTTP filters, Istio's default when no PeerAuthentication applies.
    /// </summary>
    public static InboundPolicy Default(int port) => new(port, InboundMtlsMode.Permissive, [], "default (no inbound listener yet)");
}

using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Config.Route.V3;
using Mesh.Sdk.RateLimiting;
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
    /// <summary>
    /// The HTTP filters the SDK runs per request, compiled, in listener order up to the router: RBAC filters and local
    /// rate limit filters. Empty when the listener has neither.
    /// </summary>
    public IReadOnlyList<InboundHttpStep> Steps { get; init; } = [];

    /// <summary>The inbound route configuration of the HTTP connection manager (rate limits resolve routes in it); null when none.</summary>
    public RouteConfiguration? Routes { get; init; }

    /// <summary>
    /// What a port is governed by before its first listener arrived (or when the server has none for it): PERMISSIVE
    /// with no HTTP filters, Istio's default when no PeerAuthentication applies.
    /// </summary>
    public static InboundPolicy Default(int port) => new(port, InboundMtlsMode.Permissive, [], "default (no inbound listener yet)");
}

/// <summary>
/// One HTTP filter of an inbound listener as the SDK runs it: an RBAC filter (<see cref="Authorization"/>) or a local
/// rate limit filter (<see cref="RateLimit"/>); exactly one is set.
/// </summary>
internal readonly record struct InboundHttpStep(InboundAuthorization? Authorization, LocalRateLimitFilter? RateLimit);

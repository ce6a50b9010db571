using System.Security.Cryptography.X509Certificates;

namespace Mesh.Sdk.AspNetCore.Security;

/// <summary>
/// The verified identity of the caller of a request that arrived over mesh mTLS (read it with
/// <c>HttpContext.Features.Get&lt;IMeshPeerIdentityFeature&gt;()</c>). Absent for plaintext requests, and for TLS
/// callers whose certificate carries no SPIFFE id. The certificate chained to the mesh roots during the handshake.
/// </summary>
public interface IMeshPeerIdentityFeature
{
    /// <summary>The caller's SPIFFE id, <c>spiffe://cluster.local/ns/default/sa/bookinfo-productpage</c>.</summary>
    string SpiffeId { get; }

    /// <summary>The caller's principal as AuthorizationPolicy names it: the SPIFFE id without <c>spiffe://</c>.</summary>
    string Principal { get; }

    /// <summary>The trust domain of <see cref="SpiffeId"/>.</summary>
    string TrustDomain { get; }

    /// <summary>The caller's namespace.</summary>
    string Namespace { get; }

    /// <summary>The caller's service account.</summary>
    string ServiceAccount { get; }

    /// <summary>The certificate the caller presented.</summary>
    X509Certificate2 Certificate { get; }
}

using System.Security.Claims;
using System.Security.Cryptography.X509Certificates;
using Mesh.Xds.Security;

namespace Mesh.Sdk.AspNetCore.Security;

/// <summary>The peer identity of one mTLS connection; shared by every request on it.</summary>
internal sealed class MeshPeerIdentity(SpiffeId id, X509Certificate2 certificate) : IMeshPeerIdentityFeature
{
    private ClaimsPrincipal? _user;

    public string SpiffeId { get; } = id.ToString();

    public string Principal => id.Principal;

    public string TrustDomain => id.TrustDomain;

    public string Namespace => id.Namespace;

    public string ServiceAccount => id.ServiceAccount;

    public X509Certificate2 Certificate { get; } = certificate;

    /// <summary>The caller as a claims principal, built once per connection.</summary>
    public ClaimsPrincipal User => _user ??= new ClaimsPrincipal(new ClaimsIdentity(
        [
            new Claim(ClaimTypes.Name, SpiffeId),
            new Claim(MeshClaimTypes.SpiffeId, SpiffeId),
            new Claim(MeshClaimTypes.Principal, Principal),
            new Claim(MeshClaimTypes.Namespace, Namespace),
            new Claim(MeshClaimTypes.ServiceAccount, ServiceAccount),
        ],
        MeshClaimTypes.AuthenticationType));

    /// <summary>The identity a certificate carries: its first URI SAN that is a SPIFFE id; <see langword="null"/> when none is.</summary>
    public static MeshPeerIdentity? From(X509Certificate2 certificate)
    {
        foreach (var uri in UriSubjectAlternativeNames.Read(certificate))
        {
            if (Mesh.Xds.Security.SpiffeId.TryParse(uri, out var id))
            {
                return new MeshPeerIdentity(id, certificate);
            }
        }

        return null;
    }
}

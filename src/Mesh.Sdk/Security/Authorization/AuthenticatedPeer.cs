using System.Security.Cryptography.X509Certificates;
using Mesh.Xds.Security;

namespace Mesh.Sdk.Security.Authorization;

/// <summary>
/// The identities of a verified peer certificate that <c>authenticated.principal_name</c> is matched against, read
/// once per connection. As in Envoy, a matcher tries every URI SAN, then every DNS SAN, then the subject.
/// </summary>
internal sealed class AuthenticatedPeer
{
    /// <summary>Creates the identities from their parts.</summary>
    /// <param name="uriSans">The URI subject alternative names (a mesh certificate has exactly one: its SPIFFE id).</param>
    /// <param name="dnsSans">The DNS subject alternative names.</param>
    /// <param name="subject">The subject distinguished name, empty for mesh certificates.</param>
    public AuthenticatedPeer(IReadOnlyList<string> uriSans, IReadOnlyList<string>? dnsSans = null, string? subject = null)
    {
        ArgumentNullException.ThrowIfNull(uriSans);
        UriSans = [.. uriSans];
        DnsSans = dnsSans is null ? [] : [.. dnsSans];
        Subject = subject ?? string.Empty;
    }

    /// <summary>The URI SANs, in certificate order.</summary>
    public string[] UriSans { get; }

    /// <summary>The DNS SANs, in certificate order.</summary>
    public string[] DnsSans { get; }

    /// <summary>The subject distinguished name (<see cref="X500DistinguishedName.Name"/>), empty when the certificate has none.</summary>
    public string Subject { get; }

    /// <summary>The peer's SPIFFE id (its first URI SAN), for logs and for application code; null when it has none.</summary>
    public string? Principal => UriSans.Length > 0 ? UriSans[0] : null;

    /// <summary>A TLS peer that presented no certificate: no names, the empty subject.</summary>
    public static AuthenticatedPeer WithoutCertificate { get; } = new([]);

    /// <summary>A peer whose certificate names only <paramref name="spiffeId"/> (a mesh workload certificate).</summary>
    public static AuthenticatedPeer FromSpiffeId(string spiffeId) => new([spiffeId]);

    /// <summary>Reads the identities of a (verified) peer certificate.</summary>
    public static AuthenticatedPeer FromCertificate(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var dns = new List<string>();
        foreach (var extension in certificate.Extensions)
        {
            if (extension.Oid?.Value == UriSubjectAlternativeNames.Oid)
            {
                var san = extension as X509SubjectAlternativeNameExtension ?? new X509SubjectAlternativeNameExtension(extension.RawData, extension.Critical);
                foreach (var name in san.EnumerateDnsNames())
                {
                    dns.Add(name);
                }
            }
        }

        return new AuthenticatedPeer(UriSubjectAlternativeNames.Read(certificate), dns, certificate.SubjectName.Name);
    }
}

using System.Security.Cryptography.X509Certificates;
using Mesh.Xds.Security;

namespace Mesh.Sdk.Security;

/// <summary>
/// One immutable snapshot of the workload's TLS identity: its certificate with the private key, the intermediates to
/// send with it, and the roots peers are checked against. Replaced as a whole on rotation; TLS code reads the current
/// one with one volatile read (<see cref="WorkloadCertificateSource.Current"/>) per handshake.
/// </summary>
internal sealed class WorkloadCertificate
{
    public WorkloadCertificate(X509Certificate2 certificate, X509Certificate2Collection intermediates, X509Certificate2Collection roots, string source)
    {
        Certificate = certificate;
        Intermediates = intermediates;
        Roots = roots;
        Source = source;
        var uris = UriSubjectAlternativeNames.Read(certificate);
        SpiffeId? id = null;
        foreach (var uri in uris)
        {
            if (SpiffeId.TryParse(uri, out id))
            {
                break;
            }
        }

        Identity = id;
    }

    /// <summary>The workload certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>Certificates between <see cref="Certificate"/> and the root, leaf side first; sent with it.</summary>
    public X509Certificate2Collection Intermediates { get; }

    /// <summary>The trusted roots (the trust bundle).</summary>
    public X509Certificate2Collection Roots { get; }

    /// <summary>The SPIFFE id the certificate carries, or <see langword="null"/> when it has none.</summary>
    public SpiffeId? Identity { get; }

    /// <summary>Where it came from (the CA address or the files), for logs.</summary>
    public string Source { get; }

    /// <summary>Start of validity.</summary>
    public DateTimeOffset NotBefore => new(Certificate.NotBefore.ToUniversalTime(), TimeSpan.Zero);

    /// <summary>End of validity.</summary>
    public DateTimeOffset NotAfter => new(Certificate.NotAfter.ToUniversalTime(), TimeSpan.Zero);

    /// <summary>When a fresh certificate is due: <paramref name="fraction"/> of the way through the lifetime.</summary>
    public DateTimeOffset RotationDue(double fraction) => NotBefore + ((NotAfter - NotBefore) * fraction);

    /// <summary>
    /// Builds a snapshot from PEM certificates (leaf first; further entries intermediates, a self-signed last one or
    /// <paramref name="rootsPem"/> the roots) and the leaf's key.
    /// </summary>
    /// <exception cref="System.Security.Cryptography.CryptographicException">The PEM is not certificates, or the key is not the leaf's.</exception>
    public static WorkloadCertificate FromPem(IEnumerable<string> chainPem, System.Security.Cryptography.AsymmetricAlgorithm key, string? rootsPem, string source)
    {
        var all = new X509Certificate2Collection();
        foreach (var pem in chainPem)
        {
            all.ImportFromPem(pem);
        }

        if (all.Count == 0)
        {
            throw new System.Security.Cryptography.CryptographicException("the certificate chain holds no PEM certificate");
        }

        var roots = new X509Certificate2Collection();
        if (rootsPem is not null)
        {
            roots.ImportFromPem(rootsPem);
        }

        var intermediates = new X509Certificate2Collection();
        for (var i = 1; i < all.Count; i++)
        {
            var cert = all[i];
            var selfSigned = cert.SubjectName.RawData.AsSpan().SequenceEqual(cert.IssuerName.RawData);
            if (selfSigned && (rootsPem is null || i == all.Count - 1))
            {
                if (rootsPem is null)
                {
                    roots.Add(cert);
                }

                continue;
            }

            intermediates.Add(cert);
        }

        if (roots.Count == 0)
        {
            throw new System.Security.Cryptography.CryptographicException("no root certificate was given (the chain ends in no self-signed certificate and there is no root file)");
        }

        var leaf = all[0];
        var withKey = key switch
        {
            System.Security.Cryptography.ECDsa ec => leaf.CopyWithPrivateKey(ec),
            System.Security.Cryptography.RSA rsa => leaf.CopyWithPrivateKey(rsa),
            _ => throw new System.Security.Cryptography.CryptographicException($"unsupported key type {key.GetType().Name}"),
        };
        return new WorkloadCertificate(withKey, intermediates, roots, source);
    }
}

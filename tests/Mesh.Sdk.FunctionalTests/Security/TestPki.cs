using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Mesh.Sdk.FunctionalTests.Security;

/// <summary>
/// A test certificate authority: a self-signed ECDSA P-256 root that issues SPIFFE workload certificates (URI SAN,
/// serverAuth + clientAuth) as the control plane's CA does, with any validity window, and writes them in the
/// <c>file_watcher</c> layout (<c>cert-chain.pem</c>, <c>key.pem</c>, <c>root-cert.pem</c>).
/// </summary>
internal sealed class TestPki : IDisposable
{
    private TestPki(X509Certificate2 root) => Root = root;

    public X509Certificate2 Root { get; }

    public string RootPem => Root.ExportCertificatePem() + "\n";

    public static TestPki Create(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + name, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        return new TestPki(request.CreateSelfSigned(now.AddDays(-30), now.AddYears(5)));
    }

    public static string Spiffe(string serviceAccount) => $"spiffe://cluster.local/ns/default/sa/{serviceAccount}";

    /// <summary>A workload certificate (with its key) for <paramref name="spiffeId"/>, valid from <paramref name="notBefore"/> to <paramref name="notAfter"/>.</summary>
    public X509Certificate2 Issue(string spiffeId, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName(string.Empty), key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri(spiffeId));
        request.CertificateExtensions.Add(san.Build(critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Root, true, false));
        var serial = new byte[16];
        RandomNumberGenerator.Fill(serial);
        serial[0] &= 0x7F;
        using var leaf = request.Create(Root, notBefore, notAfter, serial);
        // Exported and re-imported: Kestrel and SslStream on Linux want a key they can hand to OpenSSL.
        var withKey = leaf.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>A certificate valid now for <paramref name="lifetime"/> (from a minute ago).</summary>
    public X509Certificate2 Issue(string spiffeId, TimeSpan lifetime)
    {
        var now = DateTimeOffset.UtcNow;
        return Issue(spiffeId, now.AddMinutes(-1), now + lifetime);
    }

    /// <summary>Writes <paramref name="certificate"/>, its key and the root into <paramref name="directory"/>, each file by rename.</summary>
    public void WriteFiles(string directory, X509Certificate2 certificate)
    {
        Directory.CreateDirectory(directory);
        using var key = certificate.GetECDsaPrivateKey()!;
        Write(directory, "root-cert.pem", RootPem);
        Write(directory, "key.pem", key.ExportPkcs8PrivateKeyPem() + "\n");
        Write(directory, "cert-chain.pem", certificate.ExportCertificatePem() + "\n");

        static void Write(string directory, string name, string content)
        {
            var temp = Path.Combine(directory, "." + name + ".tmp");
            File.WriteAllText(temp, content);
            File.Move(temp, Path.Combine(directory, name), overwrite: true);
        }
    }

    public void Dispose() => Root.Dispose();
}

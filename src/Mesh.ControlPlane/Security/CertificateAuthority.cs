using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Mesh.Xds.Security;
using Microsoft.Extensions.Logging;

namespace Mesh.ControlPlane.Security;

/// <summary>
/// The mesh CA: a signing certificate and key (a root it generated, or a root or intermediate the user supplied)
/// and the chain up to the root. Signs workload certificates from CSRs: the CSR gives only the public key; the CA
/// decides the rest (one URI SAN = the caller's SPIFFE id, digitalSignature + keyEncipherment, serverAuth + clientAuth).
/// </summary>
internal sealed partial class CertificateAuthority : IDisposable
{
    /// <summary>File names of Istio's plugged-in CA layout (the <c>cacerts</c> secret), also used for a generated root.</summary>
    public const string CaCertFileName = "ca-cert.pem";

    /// <summary>The signing key.</summary>
    public const string CaKeyFileName = "ca-key.pem";

    /// <summary>The root, when the signing certificate is an intermediate.</summary>
    public const string RootCertFileName = "root-cert.pem";

    /// <summary>Certificates between the signing certificate and the root (Istio's file may hold both ends too).</summary>
    public const string CertChainFileName = "cert-chain.pem";

    // istiod backdates certificates by the same margin so that a peer whose clock is a little behind accepts them.
    internal static readonly TimeSpan ClockSkewGrace = TimeSpan.FromMinutes(2);

    private static readonly TimeSpan RootLifetime = TimeSpan.FromDays(3650);
    private readonly X509Certificate2 _signer;
    private readonly X509Certificate2[] _chainAbove; // the signer's issuers, up to and including the root
    private readonly string[] _chainPem; // signer (unless it is the root), intermediates, root
    private readonly TimeProvider _time;

    private CertificateAuthority(X509Certificate2 signer, X509Certificate2[] chainAbove, string source, TimeProvider time)
    {
        _signer = signer;
        _chainAbove = chainAbove;
        _time = time;
        Source = source;
        Root = chainAbove.Length == 0 ? signer : chainAbove[^1];
        var pem = new List<string>();
        if (chainAbove.Length > 0)
        {
            pem.Add(signer.ExportCertificatePem() + "\n");
        }

        foreach (var cert in chainAbove)
        {
            pem.Add(cert.ExportCertificatePem() + "\n");
        }

        if (chainAbove.Length == 0)
        {
            pem.Add(signer.ExportCertificatePem() + "\n");
        }

        _chainPem = [.. pem];
    }

    /// <summary>Where the signing certificate came from, for logs.</summary>
    public string Source { get; }

    /// <summary>The root of trust workloads verify peers with.</summary>
    public X509Certificate2 Root { get; }

    /// <summary>The root, PEM.</summary>
    public string RootPem => _chainPem[^1];

    /// <summary>The certificate that signs workload certificates (the root, or an intermediate).</summary>
    public X509Certificate2 SigningCertificate => _signer;

    /// <summary>
    /// Sets up the CA from the options: the PEM files named there, else Istio's layout in
    /// <see cref="MeshControlPlaneOptions.CaDirectory"/>, else a root generated now (written to that folder when set).
    /// </summary>
    /// <exception cref="InvalidOperationException">The files are missing, unreadable, do not match or do not chain; the message names the file.</exception>
    public static CertificateAuthority Create(MeshControlPlaneOptions options, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.CaCertFile is not null || options.CaKeyFile is not null)
        {
            if (options.CaCertFile is null || options.CaKeyFile is null)
            {
                throw new InvalidOperationException("CA files: CaCertFile (--ca-cert) and CaKeyFile (--ca-key) must be given together.");
            }

            return Load(options.CaCertFile, options.CaKeyFile, options.RootCertFile, options.CertChainFile, options.TimeProvider);
        }

        if (options.RootCertFile is not null || options.CertChainFile is not null)
        {
            throw new InvalidOperationException("CA files: RootCertFile (--root-cert) and CertChainFile (--cert-chain) need CaCertFile (--ca-cert) and CaKeyFile (--ca-key).");
        }

        if (options.CaDirectory is { } directory)
        {
            var cert = Path.Combine(directory, CaCertFileName);
            var key = Path.Combine(directory, CaKeyFileName);
            if (File.Exists(cert) || File.Exists(key))
            {
                var root = Path.Combine(directory, RootCertFileName);
                var chain = Path.Combine(directory, CertChainFileName);
                return Load(cert, key, File.Exists(root) ? root : null, File.Exists(chain) ? chain : null, options.TimeProvider);
            }

            var generated = Generate(options.TrustDomain, options.TimeProvider);
            generated.Persist(directory);
            Log.RootGenerated(logger, generated.Root.Subject, generated.Root.Thumbprint, directory);
            return generated;
        }

        var ephemeral = Generate(options.TrustDomain, options.TimeProvider);
        Log.EphemeralRoot(logger, ephemeral.Root.Subject, ephemeral.Root.Thumbprint);
        return ephemeral;
    }

    /// <summary>Generates a self-signed root: ECDSA P-256, <c>O=&lt;trust domain&gt;</c> as istiod names its own, ten years.</summary>
    public static CertificateAuthority Generate(string trustDomain, TimeProvider time)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var subject = new X500DistinguishedName($"O={trustDomain}");
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        var now = time.GetUtcNow();
        var root = request.CreateSelfSigned(now - ClockSkewGrace, now + RootLifetime);
        return new CertificateAuthority(root, [], "generated root", time);
    }

    /// <summary>Loads a signing certificate and key, with the root (and intermediates) it chains to.</summary>
    public static CertificateAuthority Load(string certFile, string keyFile, string? rootFile, string? chainFile, TimeProvider time)
    {
        var certPem = ReadFile(certFile, "CA certificate");
        var keyPem = ReadFile(keyFile, "CA key");
        X509Certificate2 signer;
        try
        {
            signer = X509Certificate2.CreateFromPem(certPem, keyPem);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            throw new InvalidOperationException($"CA files: '{certFile}' and '{keyFile}' are not a PEM certificate and its private key: {ex.Message}", ex);
        }

        var constraints = signer.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault();
        if (constraints is not { CertificateAuthority: true })
        {
            throw new InvalidOperationException($"CA files: '{certFile}' ('{signer.Subject}') is not a CA certificate (basicConstraints CA:TRUE is missing).");
        }

        var selfSigned = signer.SubjectName.RawData.AsSpan().SequenceEqual(signer.IssuerName.RawData);
        var extra = new X509Certificate2Collection();
        X509Certificate2? root = null;
        X509Certificate2[] roots = [];
        if (rootFile is not null)
        {
            // A bundle may hold several roots (a root rotation in progress): the chain picks the one that signed.
            roots = ReadCertificates(rootFile, "root certificate");
            root = roots[0];
        }
        else if (!selfSigned)
        {
            throw new InvalidOperationException($"CA files: '{certFile}' ('{signer.Subject}') is an intermediate issued by '{signer.Issuer}': give the root too (RootCertFile, --root-cert, or {RootCertFileName} beside it).");
        }

        if (chainFile is not null)
        {
            extra.AddRange(ReadCertificates(chainFile, "certificate chain"));
        }

        if (selfSigned && (root is null || root.RawDataMemory.Span.SequenceEqual(signer.RawDataMemory.Span)))
        {
            return new CertificateAuthority(signer, [], $"'{certFile}' (root)", time);
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.ExtraStore.AddRange(extra);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = time.GetUtcNow().UtcDateTime;
        if (!chain.Build(signer))
        {
            var reasons = string.Join("; ", chain.ChainStatus.Select(static s => s.StatusInformation.Trim()).Where(static s => s.Length > 0).Distinct());
            throw new InvalidOperationException($"CA files: '{certFile}' ('{signer.Subject}') does not chain to the root in '{rootFile}' ('{root!.Subject}'): {reasons}");
        }

        var above = new X509Certificate2[chain.ChainElements.Count - 1];
        for (var i = 1; i < chain.ChainElements.Count; i++)
        {
            above[i - 1] = chain.ChainElements[i].Certificate;
        }

        return new CertificateAuthority(signer, above, $"'{certFile}' (intermediate of '{root!.Subject}')", time);
    }

    /// <summary>
    /// Signs a workload certificate for <paramref name="identity"/> with the public key of <paramref name="csr"/>.
    /// </summary>
    /// <param name="csr">The request (signature checked).</param>
    /// <param name="identity">The one identity the certificate carries.</param>
    /// <param name="lifetime">The lifetime; cut to the signing certificate's remaining life.</param>
    /// <returns>The chain as istiod answers it: leaf, intermediates, root; one PEM certificate per entry.</returns>
    public string[] Sign(CertificateRequest csr, SpiffeId identity, TimeSpan lifetime)
    {
        var request = new CertificateRequest(new X500DistinguishedName(string.Empty), csr.PublicKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri(identity.ToString()));
        // An empty subject makes the SAN the name: RFC 5280 wants the extension critical then.
        request.CertificateExtensions.Add(san.Build(critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1", "serverAuth"), new Oid("1.3.6.1.5.5.7.3.2", "clientAuth")], critical: false));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_signer, includeKeyIdentifier: true, includeIssuerAndSerial: false));

        var now = _time.GetUtcNow();
        var notAfter = now + lifetime;
        if (notAfter > _signer.NotAfter)
        {
            notAfter = _signer.NotAfter;
        }

        // .NET refuses a leaf outside its issuer's validity: a CA made moments ago cannot backdate.
        var notBefore = now - ClockSkewGrace;
        if (notBefore < _signer.NotBefore)
        {
            notBefore = _signer.NotBefore;
        }

        var serial = new byte[16];
        RandomNumberGenerator.Fill(serial);
        serial[0] &= 0x7F; // positive
        using var leaf = request.Create(_signer, notBefore, notAfter, serial);
        var result = new string[_chainPem.Length + 1];
        result[0] = leaf.ExportCertificatePem() + "\n";
        _chainPem.CopyTo(result, 1);
        return result;
    }

    /// <summary>Writes the generated root and its key in Istio's layout (key readable by the owner only).</summary>
    private void Persist(string directory)
    {
        try
        {
            Directory.CreateDirectory(directory);
            using var key = _signer.GetECDsaPrivateKey() ?? throw new InvalidOperationException("The generated root has no ECDSA key.");
            WriteAtomically(Path.Combine(directory, CaKeyFileName), key.ExportPkcs8PrivateKeyPem() + "\n", secret: true);
            var pem = _signer.ExportCertificatePem() + "\n";
            WriteAtomically(Path.Combine(directory, RootCertFileName), pem, secret: false);
            // Written last: its presence is what makes the next start load instead of generate.
            WriteAtomically(Path.Combine(directory, CaCertFileName), pem, secret: false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"CA folder '{directory}': cannot write the generated root: {ex.Message}", ex);
        }
    }

    internal static void WriteAtomically(string path, string content, bool secret)
    {
        var temp = path + ".tmp";
        if (secret && !OperatingSystem.IsWindows())
        {
            File.WriteAllText(temp, string.Empty);
            File.SetUnixFileMode(temp, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        File.WriteAllText(temp, content);
        File.Move(temp, path, overwrite: true);
    }

    private static string ReadFile(string path, string what)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException($"CA files: cannot read the {what} '{path}': {ex.Message}", ex);
        }
    }

    private static X509Certificate2[] ReadCertificates(string path, string what)
    {
        var collection = new X509Certificate2Collection();
        try
        {
            collection.ImportFromPem(ReadFile(path, what));
        }
        catch (CryptographicException ex)
        {
            throw new InvalidOperationException($"CA files: the {what} '{path}' is not PEM certificates: {ex.Message}", ex);
        }

        if (collection.Count == 0)
        {
            throw new InvalidOperationException($"CA files: the {what} '{path}' holds no PEM certificate.");
        }

        return [.. collection];
    }

    public void Dispose()
    {
        _signer.Dispose();
        foreach (var cert in _chainAbove)
        {
            cert.Dispose();
        }
    }

    private static partial class Log
    {
        [LoggerMessage(8100, LogLevel.Information, "Generated a new mesh root '{Subject}' (SHA-1 {Thumbprint}) and saved it in '{Directory}'; later starts reuse it.")]
        public static partial void RootGenerated(ILogger logger, string subject, string thumbprint, string directory);

        [LoggerMessage(8101, LogLevel.Information, "Generated a mesh root '{Subject}' (SHA-1 {Thumbprint}) kept in memory only: certificates it signs are not trusted after a restart (set CaDirectory, --ca-dir, to keep it).")]
        public static partial void EphemeralRoot(ILogger logger, string subject, string thumbprint);
    }
}

/// <summary>A refused certificate request: the status code and the message the caller gets.</summary>
internal sealed class CertificateRequestException(StatusCode code, string message) : Exception(message)
{
    public StatusCode Code { get; } = code;
}

using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Mesh.Sdk.Security;

namespace Mesh.Sdk.Tests.Security;

/// <summary>A throwaway root that signs CSRs the way a CA would (the CSR's URI SAN copied), on a given clock.</summary>
internal sealed class TestCa : IDisposable
{
    private readonly X509Certificate2 _root;

    public TestCa(DateTimeOffset now, string name = "Test Root")
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + name, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        _root = request.CreateSelfSigned(now.AddYears(-1), now.AddYears(10));
    }

    public string RootPem => _root.ExportCertificatePem() + "\n";

    public string Sign(string csrPem, DateTimeOffset notBefore, TimeSpan lifetime)
    {
        var csr = CertificateRequest.LoadSigningRequestPem(csrPem, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.UnsafeLoadCertificateExtensions);
        var request = new CertificateRequest(csr.SubjectName, csr.PublicKey, HashAlgorithmName.SHA256);
        foreach (var extension in csr.CertificateExtensions)
        {
            request.CertificateExtensions.Add(extension);
        }

        var serial = RandomNumberGenerator.GetBytes(8);
        serial[0] &= 0x7F;
        using var leaf = request.Create(_root, notBefore, notBefore + lifetime, serial);
        return leaf.ExportCertificatePem() + "\n";
    }

    /// <summary>A key and a certificate for <paramref name="spiffeId"/>, PEM, as a file writer would store them.</summary>
    public (string ChainPem, string KeyPem) Issue(string spiffeId, DateTimeOffset notBefore, TimeSpan lifetime)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(string.Empty, key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri(spiffeId));
        request.CertificateExtensions.Add(san.Build(true));
        var csr = request.CreateSigningRequestPem();
        return (Sign(csr, notBefore, lifetime), key.ExportPkcs8PrivateKeyPem() + "\n");
    }

    public void Dispose() => _root.Dispose();
}

/// <summary>A CA client whose answers the test decides.</summary>
internal sealed class FakeCaClient(Func<int, string, TimeSpan, CancellationToken, Task<IReadOnlyList<string>>> answer) : ICertificateAuthorityClient
{
    private int _calls;

    public string Target => "fake-ca:15010";

    public int Calls => Volatile.Read(ref _calls);

    public Task<IReadOnlyList<string>> CreateCertificateAsync(string csrPem, TimeSpan validity, CancellationToken cancellationToken)
        => answer(Interlocked.Increment(ref _calls), csrPem, validity, cancellationToken);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

internal static class Eventually
{
    /// <summary>Waits (real time, bounded) for background work the fake clock released.</summary>
    public static async Task TrueAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail("timed out waiting for: " + what);
            }

            await Task.Delay(10);
        }
    }
}

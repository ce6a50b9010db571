using System.Security.Cryptography.X509Certificates;
using Grpc.Core;

namespace Mesh.ControlPlane.Tests.Security;

/// <summary>
/// The CA through real gRPC calls to the real control plane on 127.0.0.1, with CSRs made and chains checked by
/// Debian's openssl.
/// </summary>
public sealed class CertificateServiceTests
{
    private const string Reviews = "spiffe://cluster.local/ns/default/sa/reviews";

    [Fact]
    public async Task CreateCertificate_OpensslCsrFromLoopback_ChainVerifiesAndCarriesExactlyTheSpiffeId()
    {
        using var dir = new TempFolder();
        await using var ca = await CaHarness.StartAsync(o => o.CaDirectory = dir.File("ca"));
        var csr = Openssl.NewCsr(dir.Path, "w", "URI:" + Reviews);

        var chain = await ca.CreateAsync(csr);

        Assert.Equal(2, chain.Length); // leaf, root
        dir.Write("leaf.pem", chain[0]);
        dir.Write("root.pem", chain[^1]);
        Assert.Equal(File.ReadAllText(dir.File("ca/root-cert.pem")), chain[^1]);
        Assert.Equal(ca.ControlPlane.RootCertificatePem, chain[^1]);
        Assert.Contains("leaf.pem: OK", Openssl.Run(dir.Path, "verify", "-CAfile", "root.pem", "-purpose", "sslclient", "leaf.pem"), StringComparison.Ordinal);
        Assert.Contains("leaf.pem: OK", Openssl.Run(dir.Path, "verify", "-CAfile", "root.pem", "-purpose", "sslserver", "leaf.pem"), StringComparison.Ordinal);
        Assert.Equal(
            "X509v3 Subject Alternative Name: critical\n    URI:" + Reviews,
            Openssl.Run(dir.Path, "x509", "-in", "leaf.pem", "-noout", "-ext", "subjectAltName").Trim().ReplaceLineEndings("\n"));
        Assert.Equal(
            "X509v3 Key Usage: critical\n    Digital Signature, Key Encipherment\nX509v3 Extended Key Usage: \n    TLS Web Server Authentication, TLS Web Client Authentication",
            Openssl.Run(dir.Path, "x509", "-in", "leaf.pem", "-noout", "-ext", "keyUsage,extendedKeyUsage").Trim().ReplaceLineEndings("\n"));
        // The certificate is for the CSR's key.
        Assert.Equal(
            Openssl.Run(dir.Path, "pkey", "-in", "w-key.pem", "-pubout"),
            Openssl.Run(dir.Path, "x509", "-in", "leaf.pem", "-noout", "-pubkey"));
    }

    [Fact]
    public async Task CreateCertificate_ValidityFromRequest_DefaultWhenNoneAsked_LongerThanMaxRefused()
    {
        using var dir = new TempFolder();
        await using var ca = await CaHarness.StartAsync(o =>
        {
            o.DefaultCertificateTtl = TimeSpan.FromHours(5);
            o.MaxCertificateTtl = TimeSpan.FromHours(48);
        });
        var csr = Openssl.NewCsr(dir.Path, "w", "URI:" + Reviews);

        using var asked = X509Certificate2.CreateFromPem((await ca.CreateAsync(csr, validitySeconds: 3600))[0]);
        using var defaulted = X509Certificate2.CreateFromPem((await ca.CreateAsync(csr))[0]);
        var tooLong = await Assert.ThrowsAsync<RpcException>(() => ca.CreateAsync(csr, validitySeconds: 49 * 3600));

        // Backdated by istiod's two minutes of clock skew grace.
        Assert.Equal(TimeSpan.FromMinutes(62), asked.NotAfter - asked.NotBefore);
        Assert.Equal(TimeSpan.FromMinutes((5 * 60) + 2), defaulted.NotAfter - defaulted.NotBefore);
        Assert.Equal(StatusCode.InvalidArgument, tooLong.StatusCode);
        Assert.Equal("validity_duration 176400 s is longer than this CA's maximum certificate lifetime 172800 s (MaxCertificateTtl, --max-cert-ttl).", tooLong.Status.Detail);
    }

    [Fact]
    public async Task GeneratedRoot_IsPersistedAndReusedAfterRestart()
    {
        using var dir = new TempFolder();
        string firstRoot;
        await using (var first = await CaHarness.StartAsync(o => o.CaDirectory = dir.File("ca")))
        {
            firstRoot = first.ControlPlane.RootCertificatePem!;
        }

        Assert.Equal(
            ["ca-cert.pem", "ca-key.pem", "join-token.key", "root-cert.pem"],
            Directory.GetFiles(dir.File("ca")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(dir.File("ca/ca-key.pem")));
        }

        await using var second = await CaHarness.StartAsync(o => o.CaDirectory = dir.File("ca"));
        var chain = await second.CreateAsync(Openssl.NewCsr(dir.Path, "w", "URI:" + Reviews));

        Assert.Equal(firstRoot, second.ControlPlane.RootCertificatePem);
        dir.Write("first-root.pem", firstRoot);
        dir.Write("leaf.pem", chain[0]);
        Assert.Contains("leaf.pem: OK", Openssl.Run(dir.Path, "verify", "-CAfile", "first-root.pem", "leaf.pem"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task UserRoot_FromFiles_SignsUnderIt()
    {
        using var dir = new TempFolder();
        Openssl.NewRoot(dir.Path, "root", "/O=Example Corp/CN=Example Root");
        await using var ca = await CaHarness.StartAsync(o =>
        {
            o.CaCertFile = dir.File("root.pem");
            o.CaKeyFile = dir.File("root-key.pem");
        });

        var chain = await ca.CreateAsync(Openssl.NewCsr(dir.Path, "w", "URI:" + Reviews));

        Assert.Equal(2, chain.Length);
        dir.Write("leaf.pem", chain[0]);
        Assert.Contains("leaf.pem: OK", Openssl.Run(dir.Path, "verify", "-CAfile", "root.pem", "leaf.pem"), StringComparison.Ordinal);
        using var served = X509Certificate2.CreateFromPem(chain[1]);
        Assert.Equal("CN=Example Root, O=Example Corp", served.Subject);
    }

    [Fact]
    public async Task UserIntermediate_InIstioCaFolderLayout_ServesLeafIntermediateRoot()
    {
        using var dir = new TempFolder();
        Openssl.NewRoot(dir.Path, "root", "/O=Example Corp/CN=Example Root");
        Openssl.NewIntermediate(dir.Path, "mesh", "/O=Example Corp/CN=Mesh Intermediate", "root");
        // Istio's plugged-in CA layout (the cacerts secret): cert-chain.pem holds the intermediate and the root.
        var cacerts = Directory.CreateDirectory(dir.File("cacerts")).FullName;
        File.Copy(dir.File("mesh.pem"), Path.Combine(cacerts, "ca-cert.pem"));
        File.Copy(dir.File("mesh-key.pem"), Path.Combine(cacerts, "ca-key.pem"));
        File.Copy(dir.File("root.pem"), Path.Combine(cacerts, "root-cert.pem"));
        File.WriteAllText(Path.Combine(cacerts, "cert-chain.pem"), File.ReadAllText(dir.File("mesh.pem")) + File.ReadAllText(dir.File("root.pem")));
        await using var ca = await CaHarness.StartAsync(o => o.CaDirectory = cacerts);

        var chain = await ca.CreateAsync(Openssl.NewCsr(dir.Path, "w", "URI:" + Reviews));

        Assert.Equal(3, chain.Length);
        dir.Write("leaf.pem", chain[0]);
        dir.Write("served-intermediate.pem", chain[1]);
        dir.Write("served-root.pem", chain[2]);
        Assert.Contains("leaf.pem: OK", Openssl.Run(dir.Path, "verify", "-CAfile", "root.pem", "-untrusted", "served-intermediate.pem", "leaf.pem"), StringComparison.Ordinal);
        Assert.Equal(NormalizedPem(dir.File("mesh.pem")), NormalizedPem(dir.File("served-intermediate.pem")));
        Assert.Equal(NormalizedPem(dir.File("root.pem")), NormalizedPem(dir.File("served-root.pem")));
        // Without the intermediate the leaf is not trusted: it really is signed by the intermediate.
        Assert.Throws<InvalidOperationException>(() => Openssl.Run(dir.Path, "verify", "-CAfile", "root.pem", "leaf.pem"));
    }

    [Fact]
    public async Task UserIntermediate_RootFileWithSeveralRoots_ServesTheRootThatSignedIt()
    {
        using var dir = new TempFolder();
        Openssl.NewRoot(dir.Path, "old", "/CN=Old Root");
        Openssl.NewRoot(dir.Path, "root", "/CN=New Root");
        Openssl.NewIntermediate(dir.Path, "mesh", "/CN=Mesh Intermediate", "root");
        var bundle = dir.Write("roots.pem", File.ReadAllText(dir.File("old.pem")) + File.ReadAllText(dir.File("root.pem")));
        await using var ca = await CaHarness.StartAsync(o =>
        {
            o.CaCertFile = dir.File("mesh.pem");
            o.CaKeyFile = dir.File("mesh-key.pem");
            o.RootCertFile = bundle;
        });

        var chain = await ca.CreateAsync(Openssl.NewCsr(dir.Path, "w", "URI:" + Reviews));

        using var served = X509Certificate2.CreateFromPem(chain[^1]);
        Assert.Equal(("CN=New Root", 3), (served.Subject, chain.Length));
    }

    [Fact]
    public async Task UserIntermediate_WithoutItsRoot_FailsStartNamingTheFile()
    {
        using var dir = new TempFolder();
        Openssl.NewRoot(dir.Path, "root", "/CN=Real Root");
        Openssl.NewRoot(dir.Path, "other", "/CN=Other Root");
        Openssl.NewIntermediate(dir.Path, "mesh", "/CN=Mesh Intermediate", "root");

        var missing = await Assert.ThrowsAsync<InvalidOperationException>(() => CaHarness.StartAsync(o =>
        {
            o.CaCertFile = dir.File("mesh.pem");
            o.CaKeyFile = dir.File("mesh-key.pem");
        }));
        var wrong = await Assert.ThrowsAsync<InvalidOperationException>(() => CaHarness.StartAsync(o =>
        {
            o.CaCertFile = dir.File("mesh.pem");
            o.CaKeyFile = dir.File("mesh-key.pem");
            o.RootCertFile = dir.File("other.pem");
        }));
        var mismatched = await Assert.ThrowsAsync<InvalidOperationException>(() => CaHarness.StartAsync(o =>
        {
            o.CaCertFile = dir.File("mesh.pem");
            o.CaKeyFile = dir.File("root-key.pem");
            o.RootCertFile = dir.File("root.pem");
        }));

        Assert.Equal($"CA files: '{dir.File("mesh.pem")}' ('CN=Mesh Intermediate') is an intermediate issued by 'CN=Real Root': give the root too (RootCertFile, --root-cert, or root-cert.pem beside it).", missing.Message);
        Assert.StartsWith($"CA files: '{dir.File("mesh.pem")}' ('CN=Mesh Intermediate') does not chain to the root in '{dir.File("other.pem")}' ('CN=Other Root'): ", wrong.Message, StringComparison.Ordinal);
        Assert.StartsWith($"CA files: '{dir.File("mesh.pem")}' and '{dir.File("root-key.pem")}' are not a PEM certificate and its private key: ", mismatched.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task JoinToken_GetsItsOwnServiceAccountOnly_WhateverTheCsrAsks()
    {
        using var dir = new TempFolder();
        await using var ca = await CaHarness.StartAsync(o =>
        {
            o.CaDirectory = dir.File("ca");
            o.TrustLoopbackCallers = false;
        });
        var token = ca.ControlPlane.IssueJoinToken("ratings", "shop");

        // A CSR naming no identity (and a DNS name the CA ignores) gets the token's identity, and only that.
        var chain = await ca.CreateAsync(Openssl.NewCsr(dir.Path, "plain", "DNS:ratings.example"), token);
        dir.Write("leaf.pem", chain[0]);
        Assert.Equal(
            "X509v3 Subject Alternative Name: critical\n    URI:spiffe://cluster.local/ns/shop/sa/ratings",
            Openssl.Run(dir.Path, "x509", "-in", "leaf.pem", "-noout", "-ext", "subjectAltName").Trim().ReplaceLineEndings("\n"));
        // Naming its own identity is fine too.
        Assert.Equal(2, (await ca.CreateAsync(Openssl.NewCsr(dir.Path, "own", "URI:spiffe://cluster.local/ns/shop/sa/ratings"), token)).Length);

        var other = await Assert.ThrowsAsync<RpcException>(() => ca.CreateAsync(Openssl.NewCsr(dir.Path, "other", "URI:" + Reviews), token));
        Assert.Equal(StatusCode.PermissionDenied, other.StatusCode);
        Assert.Equal($"the join token is for 'spiffe://cluster.local/ns/shop/sa/ratings', but the CSR asks for '{Reviews}': a token gets its own service account only.", other.Status.Detail);
    }

    [Fact]
    public async Task JoinToken_IssuedByTheCommandWithTheCaFolder_IsAcceptedByTheRunningControlPlane()
    {
        using var dir = new TempFolder();
        await using var ca = await CaHarness.StartAsync(o =>
        {
            o.CaDirectory = dir.File("ca");
            o.TrustLoopbackCallers = false;
        });
        var token = MeshControlPlane.IssueJoinToken(new MeshControlPlaneOptions { CaDirectory = dir.File("ca") }, "details", "default");

        var chain = await ca.CreateAsync(Openssl.NewCsr(dir.Path, "w", null), token);

        using var leaf = X509Certificate2.CreateFromPem(chain[0]);
        Assert.Equal(["spiffe://cluster.local/ns/default/sa/details"], Mesh.Xds.Security.UriSubjectAlternativeNames.Read(leaf));
    }

    [Fact]
    public async Task NoToken_WithLoopbackTrustOff_IsUnauthenticated_AndAForgedTokenToo()
    {
        using var dir = new TempFolder();
        await using var ca = await CaHarness.StartAsync(o => o.TrustLoopbackCallers = false);
        await using var otherCa = await CaHarness.StartAsync();
        var csr = Openssl.NewCsr(dir.Path, "w", "URI:" + Reviews);

        var none = await Assert.ThrowsAsync<RpcException>(() => ca.CreateAsync(csr));
        var foreign = await Assert.ThrowsAsync<RpcException>(() => ca.CreateAsync(csr, otherCa.ControlPlane.IssueJoinToken("reviews", "default")));
        var garbage = await Assert.ThrowsAsync<RpcException>(() => ca.CreateAsync(csr, "not-a-token"));

        Assert.Equal(StatusCode.Unauthenticated, none.StatusCode);
        Assert.Equal("no join token presented (authorization: Bearer <token>; mesh-controlplane --issue-token SA.NS), and loopback callers are not trusted here.", none.Status.Detail);
        Assert.Equal(StatusCode.Unauthenticated, foreign.StatusCode);
        Assert.StartsWith("the bearer token is not a join token of this control plane", foreign.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.Unauthenticated, garbage.StatusCode);
        Assert.Contains(ca.Logs.Warnings, w => w.EventId == 8111 && w.Line.Contains("Unauthenticated", StringComparison.Ordinal));
        // Development trust is off: no start-up warning about it.
        Assert.DoesNotContain(ca.Logs.Warnings, w => w.EventId == MeshControlPlane.LoopbackTrustWarningEventId);
        Assert.Contains(otherCa.Logs.Warnings, w => w.EventId == MeshControlPlane.LoopbackTrustWarningEventId);
    }

    [Fact]
    public async Task LoopbackCaller_MustNameOneIdentityInTheTrustDomain()
    {
        using var dir = new TempFolder();
        await using var ca = await CaHarness.StartAsync();

        var none = await Assert.ThrowsAsync<RpcException>(() => ca.CreateAsync(Openssl.NewCsr(dir.Path, "a", null)));
        var foreignDomain = await Assert.ThrowsAsync<RpcException>(() => ca.CreateAsync(Openssl.NewCsr(dir.Path, "b", "URI:spiffe://example.org/ns/default/sa/reviews")));
        var two = await Assert.ThrowsAsync<RpcException>(() => ca.CreateAsync(Openssl.NewCsr(dir.Path, "c", $"URI:{Reviews},URI:spiffe://cluster.local/ns/default/sa/x")));

        Assert.Equal(StatusCode.InvalidArgument, none.StatusCode);
        Assert.StartsWith("the CSR names no identity: without a join token, a loopback caller must put its SPIFFE id", none.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.PermissionDenied, foreignDomain.StatusCode);
        Assert.Equal("the CSR asks for 'spiffe://example.org/ns/default/sa/reviews' in trust domain 'example.org', but this CA signs for trust domain 'cluster.local'.", foreignDomain.Status.Detail);
        Assert.Equal(StatusCode.InvalidArgument, two.StatusCode);
    }

    [Fact]
    public async Task MalformedCsr_IsInvalidArgumentWithAClearMessage()
    {
        using var dir = new TempFolder();
        await using var ca = await CaHarness.StartAsync();
        var good = Openssl.NewCsr(dir.Path, "w", "URI:" + Reviews);
        // One flipped byte in the signed body: the signature no longer matches.
        var body = good.Split('\n');
        var line = body[3].ToCharArray();
        line[10] = line[10] == 'A' ? 'B' : 'A';
        body[3] = new string(line);

        var empty = await Assert.ThrowsAsync<RpcException>(() => ca.CreateAsync(string.Empty));
        var notPem = await Assert.ThrowsAsync<RpcException>(() => ca.CreateAsync("hello"));
        var tampered = await Assert.ThrowsAsync<RpcException>(() => ca.CreateAsync(string.Join('\n', body)));

        Assert.Equal((StatusCode.InvalidArgument, "csr is empty: send a PEM certificate signing request (-----BEGIN CERTIFICATE REQUEST-----)."), (empty.StatusCode, empty.Status.Detail));
        Assert.Equal(StatusCode.InvalidArgument, notPem.StatusCode);
        Assert.StartsWith("csr is not a valid PEM certificate signing request: ", notPem.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.InvalidArgument, tampered.StatusCode);
        Assert.StartsWith("csr is not a valid PEM certificate signing request: ", tampered.Status.Detail, StringComparison.Ordinal);
    }

    private static string NormalizedPem(string path) => File.ReadAllText(path).Trim().ReplaceLineEndings("\n");
}

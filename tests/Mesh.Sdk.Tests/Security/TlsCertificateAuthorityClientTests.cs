using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Istio.V1.Auth;
using Mesh.Sdk.Security;
using Mesh.Sdk.Tests.Xds.Fakes;
using Mesh.Xds.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Sdk.Tests.Security;

/// <summary>
/// The CA client against a CA served over TLS, as istiod serves its CA on 15012: a real Kestrel server on 127.0.0.1
/// whose certificate names <c>localhost</c> and chains to a test root given as <c>Mesh:Security:CaRootCertFile</c>.
/// </summary>
public sealed class TlsCertificateAuthorityClientTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "mesh-tlsca-" + Guid.NewGuid().ToString("N")[..12]);

    public TlsCertificateAuthorityClientTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task TlsCa_WithItsRoot_IssuesAndSeesTheBearerToken_WithAnotherRoot_IsRefusedByTheClient()
    {
        var now = DateTimeOffset.UtcNow;
        using var ca = new TestCa(now, "Istiod Root");
        using var serverCert = ServerCertificate(ca, "localhost");
        var fake = new FakeIstiod(ca);
        await using var server = await StartAsync(serverCert, fake);
        var rootFile = Path.Combine(_dir, "root-cert.pem");
        File.WriteAllText(rootFile, ca.RootPem);
        var tokenFile = Path.Combine(_dir, "istio-token");
        File.WriteAllText(tokenFile, "eyJhbGciOi.jwt.payload\n");
        var options = new MeshOptions { ServiceAccount = "reviews" };
        options.Security.CaAddress = $"localhost:{server.Port}";
        options.Security.CaRootCertFile = rootFile;
        options.Security.TokenFile = tokenFile;
        var bootstrap = Mesh.Sdk.Xds.XdsBootstrapLoader.Parse(
            """{"xds_servers": [{"server_uri": "127.0.0.1:1", "channel_creds": [{"type": "insecure"}]}], "node": {"id": "n", "locality": {}, "metadata": {"CLUSTER_ID": "Kubernetes"}}}""", "test");

        await using (var source = WorkloadCertificates.Create(options, bootstrap, "default", TimeProvider.System, NullLoggerFactory.Instance))
        {
            source.Start();
            var cert = await source.WaitForCertificateAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Equal(new SpiffeId("cluster.local", "default", "reviews"), cert.Identity);
        }

        Assert.Equal(("Bearer eyJhbGciOi.jwt.payload", "Kubernetes"), (fake.Authorization, fake.ClusterId));

        // The same CA checked against another root: the client refuses the server, the CA sees nothing more.
        using var other = new TestCa(now, "Other Root");
        File.WriteAllText(rootFile, other.RootPem);
        using var logs = new ListLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(b => b.AddProvider(logs));
        await using (var source = WorkloadCertificates.Create(options, bootstrap, "default", TimeProvider.System, loggerFactory))
        {
            source.Start();
            await Eventually.TrueAsync(() => logs.Entries.Any(e => e.EventId == 8002), "the failed first request");
            Assert.Null(source.Current);
        }

        Assert.Equal(1, fake.Calls);
        var failure = logs.Entries.First(e => e.EventId == 8002).Message;
        Assert.True(failure.Contains("(TLS)' failed: ", StringComparison.Ordinal) && failure.Contains("The remote certificate was rejected by the provided RemoteCertificateValidationCallback", StringComparison.Ordinal), failure);
    }

    private static X509Certificate2 ServerCertificate(TestCa ca, string dnsName)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + dnsName, key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(dnsName);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var pem = ca.Sign(request.CreateSigningRequestPem(), DateTimeOffset.UtcNow.AddMinutes(-5), TimeSpan.FromHours(1));
        using var cert = X509Certificate2.CreateFromPem(pem).CopyWithPrivateKey(key);
        // Kestrel on Linux is fine with an ephemeral key; a PKCS#12 round trip keeps it portable.
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null);
    }

    private static async Task<Server> StartAsync(X509Certificate2 certificate, FakeIstiod fake)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(fake);
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o =>
        {
            o.Protocols = HttpProtocols.Http2;
            o.UseHttps(certificate);
        }));
        var app = builder.Build();
        app.MapGrpcService<FakeIstiodService>();
        await app.StartAsync();
        var address = app.Urls.First();
        return new Server(app, new Uri(address).Port);
    }

    private sealed record Server(WebApplication App, int Port) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await App.StopAsync();
            await App.DisposeAsync();
        }
    }

    internal sealed class FakeIstiod(TestCa ca)
    {
        private int _calls;

        public TestCa Ca { get; } = ca;

        public string? Authorization { get; set; }

        public string? ClusterId { get; set; }

        public int Calls => Volatile.Read(ref _calls);

        public void Called() => Interlocked.Increment(ref _calls);
    }

    internal sealed class FakeIstiodService(FakeIstiod state) : IstioCertificateService.IstioCertificateServiceBase
    {
        public override Task<IstioCertificateResponse> CreateCertificate(IstioCertificateRequest request, ServerCallContext context)
        {
            state.Called();
            state.Authorization = context.RequestHeaders.GetValue("authorization");
            state.ClusterId = context.RequestHeaders.GetValue("clusterid");
            var response = new IstioCertificateResponse();
            response.CertChain.Add(state.Ca.Sign(request.Csr, DateTimeOffset.UtcNow.AddMinutes(-2), TimeSpan.FromSeconds(request.ValidityDuration)));
            response.CertChain.Add(state.Ca.RootPem);
            return Task.FromResult(response);
        }
    }
}

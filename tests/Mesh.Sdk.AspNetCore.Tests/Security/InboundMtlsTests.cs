using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Grpc.Net.Client;
using Mesh.Sdk.AspNetCore.Security;
using Mesh.Sdk.AspNetCore.Tests.Infrastructure;
using Mesh.Sdk.Security;
using Mesh.Sdk.Security.Inbound;
using Mesh.Xds.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Mesh.Sdk.AspNetCore.Tests.Security;

/// <summary>
/// Inbound mTLS end to end: a real ASP.NET app with <c>builder.AddMesh()</c> and <c>Mesh:Security:Enabled</c> gets its
/// certificate from the real control plane's CA, follows its inbound listener, and is called by real clients (HttpClient
/// with and without a mesh certificate, raw sockets) while PeerAuthentication files change.
/// </summary>
public sealed class InboundMtlsTests(ControlPlaneFixture mesh) : IClassFixture<ControlPlaneFixture>
{
    private static readonly TimeSpan ModeWait = TimeSpan.FromSeconds(20);

    private static string PeerAuth(string name, string app, string mode, string? portLevel = null) =>
        "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\n"
        + $"metadata: {{name: {name}, namespace: default}}\n"
        + "spec:\n"
        + $"  selector: {{matchLabels: {{app: {app}}}}}\n"
        + $"  mtls: {{mode: {mode}}}\n"
        + (portLevel is null ? "" : $"  portLevelMtls: {{{portLevel}}}\n");

    /// <summary>Starts a meshed app (service account <paramref name="app"/>-sa, label app=<paramref name="app"/>) with /hello and /health.</summary>
    private async Task<MeshWebApp> StartAppAsync(string app, Dictionary<string, string?>? extra = null, Action<WebApplicationBuilder>? configure = null, Action<WebApplication>? map = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Mesh:ServiceName"] = app,
            ["Mesh:ServiceAccount"] = app + "-sa",
            ["Mesh:Labels:app"] = app,
            ["Mesh:Security:Enabled"] = "true",
        };
        foreach (var (key, value) in extra ?? [])
        {
            settings[key] = value;
        }

        var web = await MeshWebApp.StartAsync(mesh, settings, a =>
        {
            a.MapGet("/hello", static (HttpContext context) =>
            {
                var peer = context.Features.Get<IMeshPeerIdentityFeature>();
                return $"{context.Request.Protocol} https={context.Request.IsHttps} peer={peer?.SpiffeId ?? "none"} user={context.User.Identity?.Name ?? "anonymous"}";
            });
            a.MapGet("/health", static () => "healthy");
            a.MapGet("/other", static () => "other");
            map?.Invoke(a);
        }, configure);
        await web.Services.GetRequiredService<WorkloadCertificateSource>().WaitForCertificateAsync(new CancellationTokenSource(TimeSpan.FromSeconds(20)).Token);
        return web;
    }

    private async Task WaitForModeAsync(MeshWebApp app, int port, InboundMtlsMode mode)
    {
        var policies = app.Services.GetRequiredService<InboundPolicies>();
        var deadline = DateTime.UtcNow + ModeWait;
        while (policies.Get(port).Mode != mode)
        {
            Assert.True(DateTime.UtcNow < deadline, $"port {port} stayed {policies.Get(port).Mode}, expected {mode}\n{mesh.Dump()}");
            await Task.Delay(50);
        }
    }

    /// <summary>A certificate from the control plane's CA for <paramref name="serviceAccount"/> in namespace default.</summary>
    private async Task<X509Certificate2> IssueAsync(string serviceAccount)
    {
        using var channel = GrpcChannel.ForAddress(mesh.ControlPlane.XdsUri!);
        var ca = new Istio.V1.Auth.IstioCertificateService.IstioCertificateServiceClient(channel);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri($"spiffe://cluster.local/ns/default/sa/{serviceAccount}"));
        request.CertificateExtensions.Add(san.Build());
        var response = await ca.CreateCertificateAsync(
            new Istio.V1.Auth.IstioCertificateRequest { Csr = request.CreateSigningRequestPem(), ValidityDuration = 3600 },
            deadline: DateTime.UtcNow.AddSeconds(20));
        using var leaf = X509Certificate2.CreateFromPem(response.CertChain[0]);
        using var withKey = leaf.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>A certificate with a mesh-shaped SPIFFE id signed by a root the mesh does not know.</summary>
    private static X509Certificate2 ForeignCertificate()
    {
        using var rootKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var rootRequest = new CertificateRequest("O=foreign", rootKey, HashAlgorithmName.SHA256);
        rootRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        using var root = rootRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri("spiffe://cluster.local/ns/default/sa/caller"));
        request.CertificateExtensions.Add(san.Build());
        using var leaf = request.Create(root, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1), [1, 2, 3, 4]);
        using var withKey = leaf.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>An HTTPS client presenting <paramref name="clientCertificate"/> (or none); it records the server's certificate and checks nothing itself.</summary>
    private static HttpClient TlsClient(X509Certificate2? clientCertificate, List<X509Certificate2>? serverCertificates = null)
    {
        var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero };
        if (clientCertificate is not null)
        {
            handler.SslOptions.ClientCertificates = [clientCertificate];
        }

        handler.SslOptions.TargetHost = "inbound";
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) =>
        {
            if (certificate is not null)
            {
                lock (serverCertificates ?? [])
                {
                    serverCertificates?.Add(new X509Certificate2(certificate));
                }
            }

            return true;
        };
        return new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(15) };
    }

    private static HttpRequestMessage Get(int port, string path, Version version, bool tls) =>
        new(HttpMethod.Get, $"{(tls ? "https" : "http")}://127.0.0.1:{port}{path}") { Version = version, VersionPolicy = HttpVersionPolicy.RequestVersionExact };

    /// <summary>Sends a plaintext HTTP/1.1 request on a raw socket and returns every byte the server sent back before closing.</summary>
    private static async Task<string> RawPlaintextAsync(int port, string path = "/hello")
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        var stream = tcp.GetStream();
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: inbound\r\nConnection: close\r\n\r\n"));
        var received = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(10))) > 0)
            {
                received.Write(buffer, 0, read);
            }
        }
        catch (IOException)
        {
            // Reset by the server: nothing more was sent.
        }

        return Encoding.ASCII.GetString(received.ToArray());
    }

    [Fact]
    public async Task Strict_MtlsHttp11AndHttp2Served_PlaintextClosed_NoCertificateAndForeignRootRefused()
    {
        await using var app = await StartAppAsync("strict-echo");
        mesh.WriteConfig("strict-echo.yaml", PeerAuth("strict-echo", "strict-echo", "STRICT"));
        await WaitForModeAsync(app, app.Port, InboundMtlsMode.Strict);
        using var caller = await IssueAsync("caller");
        var seen = new List<X509Certificate2>();
        using var client = TlsClient(caller, seen);

        using var http11 = await client.SendAsync(Get(app.Port, "/hello", HttpVersion.Version11, tls: true));
        Assert.Equal(HttpStatusCode.OK, http11.StatusCode);
        Assert.Equal("HTTP/1.1 https=True peer=spiffe://cluster.local/ns/default/sa/caller user=spiffe://cluster.local/ns/default/sa/caller",
            await http11.Content.ReadAsStringAsync());
        using var http2 = await client.SendAsync(Get(app.Port, "/hello", HttpVersion.Version20, tls: true));
        Assert.Equal(HttpStatusCode.OK, http2.StatusCode);
        Assert.Equal(HttpVersion.Version20, http2.Version);
        Assert.Equal("HTTP/2 https=True peer=spiffe://cluster.local/ns/default/sa/caller user=spiffe://cluster.local/ns/default/sa/caller",
            await http2.Content.ReadAsStringAsync());

        // The server presents its workload certificate: one URI SAN, its SPIFFE id, chained to the mesh root.
        var presented = seen[0];
        Assert.Equal(["spiffe://cluster.local/ns/default/sa/strict-echo-sa"], UriSubjectAlternativeNames.Read(presented));
        using (var chain = new X509Chain())
        {
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(X509Certificate2.CreateFromPem(mesh.ControlPlane.RootCertificatePem));
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            Assert.True(chain.Build(presented), string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation)));
        }

        // Plaintext: no HTTP response at all.
        Assert.Equal(string.Empty, await RawPlaintextAsync(app.Port));

        // TLS without a client certificate, and with one from a foreign root: refused.
        using (var anonymous = TlsClient(null))
        {
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => anonymous.SendAsync(Get(app.Port, "/hello", HttpVersion.Version11, tls: true)));
        }

        using var foreign = ForeignCertificate();
        using (var stranger = TlsClient(foreign))
        {
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => stranger.SendAsync(Get(app.Port, "/hello", HttpVersion.Version11, tls: true)));
        }

        var logs = mesh.Logs.Dump();
        Assert.Contains("the client sent no certificate", logs);
        Assert.Contains("does not chain to the mesh roots", logs);
    }

    [Fact]
    public async Task Permissive_PlaintextAndMtlsOnTheSamePort_PeerIdentityOnlyUnderMtls()
    {
        // No PeerAuthentication selects this workload: Istio's default, PERMISSIVE.
        await using var app = await StartAppAsync("permissive-echo");
        await WaitForListenerAsync(app);
        Assert.Equal(InboundMtlsMode.Permissive, app.Services.GetRequiredService<InboundPolicies>().Get(app.Port).Mode);
        using var caller = await IssueAsync("caller");
        using var client = TlsClient(caller);

        using var mtls = await client.SendAsync(Get(app.Port, "/hello", HttpVersion.Version11, tls: true));
        Assert.Equal("HTTP/1.1 https=True peer=spiffe://cluster.local/ns/default/sa/caller user=spiffe://cluster.local/ns/default/sa/caller",
            await mtls.Content.ReadAsStringAsync());
        using var plain = await client.SendAsync(Get(app.Port, "/hello", HttpVersion.Version11, tls: false));
        Assert.Equal(HttpStatusCode.OK, plain.StatusCode);
        Assert.Equal("HTTP/1.1 https=False peer=none user=anonymous", await plain.Content.ReadAsStringAsync());
        Assert.StartsWith("HTTP/1.1 200", await RawPlaintextAsync(app.Port));
    }

    private async Task WaitForListenerAsync(MeshWebApp app)
    {
        var policies = app.Services.GetRequiredService<InboundPolicies>();
        var deadline = DateTime.UtcNow + ModeWait;
        while (policies.Get(app.Port).Source.StartsWith("default", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, $"no inbound listener arrived for port {app.Port}\n{mesh.Dump()}");
            await Task.Delay(50);
        }

        Assert.Equal($"xds.istio.io/grpc/lds/inbound/127.0.0.1:{app.Port}", policies.Get(app.Port).Source);
        // Accepted, not NACKed: no warning or error names the listener.
        Assert.DoesNotContain(mesh.Logs.Warnings, w => w.Line.Contains($"inbound/127.0.0.1:{app.Port}", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Disable_PlaintextServed_TlsRefused_ThenLiveSwitchToStrictAndBack()
    {
        await using var app = await StartAppAsync("switch-echo");
        using var caller = await IssueAsync("caller");
        using var client = TlsClient(caller);

        mesh.WriteConfig("switch-echo.yaml", PeerAuth("switch-echo", "switch-echo", "DISABLE"));
        await WaitForModeAsync(app, app.Port, InboundMtlsMode.Disable);
        Assert.Equal("HTTP/1.1 https=False peer=none user=anonymous", await client.GetStringAsync($"http://127.0.0.1:{app.Port}/hello"));
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => client.SendAsync(Get(app.Port, "/hello", HttpVersion.Version11, tls: true)));

        // Changing the file switches the running server within seconds, for new connections.
        var switched = DateTime.UtcNow;
        mesh.WriteConfig("switch-echo.yaml", PeerAuth("switch-echo", "switch-echo", "STRICT"));
        await WaitForModeAsync(app, app.Port, InboundMtlsMode.Strict);
        Assert.True(DateTime.UtcNow - switched < TimeSpan.FromSeconds(10));
        Assert.Equal(string.Empty, await RawPlaintextAsync(app.Port));
        using (var mtls = await client.SendAsync(Get(app.Port, "/hello", HttpVersion.Version20, tls: true)))
        {
            Assert.Equal(HttpStatusCode.OK, mtls.StatusCode);
        }

        mesh.WriteConfig("switch-echo.yaml", PeerAuth("switch-echo", "switch-echo", "PERMISSIVE"));
        await WaitForModeAsync(app, app.Port, InboundMtlsMode.Permissive);
        Assert.StartsWith("HTTP/1.1 200", await RawPlaintextAsync(app.Port));
    }

    [Fact]
    public async Task PortLevelMtls_ReachesTheRightPort_OfATwoPortWorkload()
    {
        await using var app = await StartAppAsync("twoport-echo", configure: b => b.WebHost.UseUrls("http://127.0.0.1:0", "http://127.0.0.1:0"));
        var ports = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses
            .Select(a => new Uri(a).Port).Order().ToArray();
        Assert.Equal(2, ports.Length);

        mesh.WriteConfig("twoport-echo.yaml", PeerAuth("twoport-echo", "twoport-echo", "STRICT", portLevel: $"{ports[1]}: {{mode: DISABLE}}"));
        await WaitForModeAsync(app, ports[0], InboundMtlsMode.Strict);
        await WaitForModeAsync(app, ports[1], InboundMtlsMode.Disable);

        Assert.Equal(string.Empty, await RawPlaintextAsync(ports[0]));
        Assert.StartsWith("HTTP/1.1 200", await RawPlaintextAsync(ports[1]));
    }

    [Fact]
    public async Task HealthPort_AnswersHealthPathsInPlaintextUnderStrict_OtherPaths404_AppEndpointsUnchanged()
    {
        await using var app = await StartAppAsync("health-echo", new() { ["Mesh:HealthPort"] = "0" });
        mesh.WriteConfig("health-echo.yaml", PeerAuth("health-echo", "health-echo", "STRICT"));
        await WaitForModeAsync(app, app.Port, InboundMtlsMode.Strict);
        var server = Assert.IsType<MeshHealthServer>(app.Services.GetRequiredService<IServer>());
        var healthPort = server.BoundPort!.Value;
        Assert.NotEqual(app.Port, healthPort);

        // The app's endpoint is still the one it declared (UseUrls), and the only one registered and watched.
        Assert.Equal([$"http://127.0.0.1:{app.Port}"], server.Features.GetRequiredFeature<IServerAddressesFeature>().Addresses);
        Assert.Equal([app.Port], app.Services.GetRequiredService<InboundPolicies>().All.Keys);
        Assert.Equal(string.Empty, await RawPlaintextAsync(app.Port, "/health"));

        using var plain = new HttpClient();
        Assert.Equal("healthy", await plain.GetStringAsync($"http://127.0.0.1:{healthPort}/health"));
        Assert.Equal(HttpStatusCode.NotFound, (await plain.GetAsync($"http://127.0.0.1:{healthPort}/other")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await plain.GetAsync($"http://127.0.0.1:{healthPort}/hello")).StatusCode);
    }

    [Fact]
    public async Task Permissive_Http2OnlyEndpoint_H2cPlaintextAndH2OverMtlsBothServed()
    {
        await using var app = await StartAppAsync("h2c-echo",
            configure: b => b.WebHost.ConfigureKestrel(k => k.ConfigureEndpointDefaults(l => l.Protocols = HttpProtocols.Http2)));
        await WaitForListenerAsync(app);
        using var caller = await IssueAsync("caller");
        using var client = TlsClient(caller);

        using var h2c = await client.SendAsync(Get(app.Port, "/hello", HttpVersion.Version20, tls: false));
        Assert.Equal("HTTP/2 https=False peer=none user=anonymous", await h2c.Content.ReadAsStringAsync());
        using var h2 = await client.SendAsync(Get(app.Port, "/hello", HttpVersion.Version20, tls: true));
        Assert.Equal("HTTP/2 https=True peer=spiffe://cluster.local/ns/default/sa/caller user=spiffe://cluster.local/ns/default/sa/caller",
            await h2.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Permissive_Http1AndHttp2Endpoint_PlaintextPriorKnowledgeHttp2_BehavesAsWithoutTheMesh()
    {
        // Kestrel's own rule for cleartext on an Http1AndHttp2 endpoint (no ALPN to choose by) must be unchanged by the
        // mesh's first-byte peek: the same request gets the same answer with and without Mesh:Security:Enabled.
        await using var meshed = await StartAppAsync("h1h2-echo");
        await WaitForListenerAsync(meshed);
        await using var plain = await MeshWebApp.StartAsync(mesh, new Dictionary<string, string?>(), a => a.MapGet("/hello", static (HttpContext c) => c.Request.Protocol));
        using var client = new HttpClient();

        async Task<string> H2cAsync(int port)
        {
            try
            {
                using var response = await client.SendAsync(Get(port, "/hello", HttpVersion.Version20, tls: false));
                return $"{(int)response.StatusCode} {response.Version}";
            }
            catch (HttpRequestException ex)
            {
                return "refused: " + ex.HttpRequestError;
            }
        }

        var withoutMesh = await H2cAsync(plain.Port);
        Assert.Equal(withoutMesh, await H2cAsync(meshed.Port));
        // Kestrel speaks HTTP/1.1 on a cleartext Http1AndHttp2 endpoint, so prior-knowledge HTTP/2 fails there in both
        // cases; cleartext gRPC needs an Http2 endpoint (Permissive_Http2OnlyEndpoint_...), mTLS negotiates h2 by ALPN.
        Assert.Equal("refused: HttpProtocolError", withoutMesh);
        Assert.StartsWith("HTTP/1.1 https=False", await client.GetStringAsync($"http://127.0.0.1:{meshed.Port}/hello"));
    }

    [Fact]
    public async Task CertificateRotation_NewConnectionsGetTheNewCertificate_OpenConnectionKeepsServing()
    {
        var directory = Directory.CreateTempSubdirectory("mesh-inbound-rotation-");
        try
        {
            await WriteCertificateFilesAsync(directory.FullName, "rotating-sa");
            await using var app = await StartAppAsync("rotating-echo", new() { ["Mesh:Security:CertificateDirectory"] = directory.FullName });
            var source = app.Services.GetRequiredService<WorkloadCertificateSource>();
            var first = source.Current!;
            using var caller = await IssueAsync("caller");
            var seen = new List<X509Certificate2>();
            var handler = new SocketsHttpHandler();
            handler.SslOptions.ClientCertificates = [caller];
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            {
                lock (seen)
                {
                    seen.Add(new X509Certificate2(certificate!));
                }

                return true;
            };
            using var pooled = new HttpClient(handler);
            Assert.Equal(HttpStatusCode.OK, (await pooled.GetAsync($"https://127.0.0.1:{app.Port}/hello")).StatusCode);

            var rotated = new TaskCompletionSource<WorkloadCertificate>(TaskCreationOptions.RunContinuationsAsynchronously);
            source.Changed += c => rotated.TrySetResult(c);
            await WriteCertificateFilesAsync(directory.FullName, "rotating-sa");
            var second = await rotated.Task.WaitAsync(TimeSpan.FromSeconds(20));
            Assert.NotEqual(first.Certificate.SerialNumber, second.Certificate.SerialNumber);

            // The pooled connection, opened before the rotation, keeps serving; a new connection gets the new certificate.
            Assert.Equal(HttpStatusCode.OK, (await pooled.GetAsync($"https://127.0.0.1:{app.Port}/hello")).StatusCode);
            Assert.Single(seen);
            var fresh = new List<X509Certificate2>();
            using var client = TlsClient(caller, fresh);
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"https://127.0.0.1:{app.Port}/hello")).StatusCode);
            Assert.Equal(first.Certificate.SerialNumber, seen[0].SerialNumber);
            Assert.Equal(second.Certificate.SerialNumber, fresh[0].SerialNumber);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>Writes Istio's file_watcher layout (cert-chain.pem, key.pem, root-cert.pem) with a new certificate from the CA.</summary>
    private async Task WriteCertificateFilesAsync(string directory, string serviceAccount)
    {
        using var issued = await IssueAsync(serviceAccount);
        using var key = issued.GetECDsaPrivateKey()!;
        var files = new Dictionary<string, string>
        {
            ["cert-chain.pem"] = issued.ExportCertificatePem() + "\n",
            ["key.pem"] = key.ExportPkcs8PrivateKeyPem() + "\n",
            ["root-cert.pem"] = mesh.ControlPlane.RootCertificatePem!,
        };
        foreach (var (name, content) in files)
        {
            var temp = Path.Combine(directory, "." + name + ".tmp");
            await File.WriteAllTextAsync(temp, content);
            File.Move(temp, Path.Combine(directory, name), overwrite: true);
        }
    }

    [Fact]
    public async Task AppsOwnHttpsEndpoint_IsLeftAlone_EvenUnderStrict()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var selfSigned = new CertificateRequest("CN=app-https", key, HashAlgorithmName.SHA256)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddHours(1));
        using var serverCertificate = X509CertificateLoader.LoadPkcs12(selfSigned.Export(X509ContentType.Pkcs12), null);
        await using var app = await StartAppAsync("https-echo",
            configure: b => b.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseHttps(serverCertificate))));
        mesh.WriteConfig("https-echo.yaml", PeerAuth("https-echo", "https-echo", "STRICT"));
        await WaitForModeAsync(app, app.Port, InboundMtlsMode.Strict);
        var seen = new List<X509Certificate2>();
        using var client = TlsClient(null, seen);

        // The app's own TLS, its own certificate, no client certificate asked for.
        using var response = await client.SendAsync(Get(app.Port, "/hello", HttpVersion.Version11, tls: true));
        Assert.Equal("HTTP/1.1 https=True peer=none user=anonymous", await response.Content.ReadAsStringAsync());
        Assert.Equal("CN=app-https", seen[0].Subject);
    }

    private static string Policies(string app) =>
        "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        + $"metadata: {{name: {app}-deny-admin, namespace: default}}\n"
        + $"spec:\n  selector: {{matchLabels: {{app: {app}}}}}\n  action: DENY\n  rules:\n  - to:\n    - operation: {{paths: [\"/admin\"]}}\n"
        + "---\napiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
        + $"metadata: {{name: {app}-allow-caller, namespace: default}}\n"
        + $"spec:\n  selector: {{matchLabels: {{app: {app}}}}}\n  action: ALLOW\n  rules:\n  - from:\n    - source: {{principals: [\"cluster.local/ns/default/sa/caller\"]}}\n";

    private static async Task<string> StatusAndBodyAsync(HttpClient client, HttpRequestMessage request)
    {
        using var response = await client.SendAsync(request);
        return $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
    }

    [Fact]
    public async Task AuthorizationPolicy_DenyPathAndAllowPrincipal_EnforcedWithEnvoysReply_RemovingThemLetsEveryoneIn()
    {
        await using var app = await StartAppAsync("authz-echo");
        mesh.WriteConfig("authz-echo.yaml", Policies("authz-echo"));
        using var caller = await IssueAsync("caller");
        using var stranger = await IssueAsync("stranger");
        using var callerClient = TlsClient(caller);
        using var strangerClient = TlsClient(stranger);
        using var plain = new HttpClient { Timeout = TimeSpan.FromSeconds(15) };

        // Wait for the policies to reach the app: the stranger is refused once they are in force.
        var deadline = DateTime.UtcNow + ModeWait;
        while (await StatusAndBodyAsync(strangerClient, Get(app.Port, "/hello", HttpVersion.Version11, tls: true)) != "403 RBAC: access denied")
        {
            Assert.True(DateTime.UtcNow < deadline, "the AuthorizationPolicy never reached the app\n" + mesh.Dump());
            await Task.Delay(100);
        }

        Assert.Equal("200 HTTP/1.1 https=True peer=spiffe://cluster.local/ns/default/sa/caller user=spiffe://cluster.local/ns/default/sa/caller",
            await StatusAndBodyAsync(callerClient, Get(app.Port, "/hello", HttpVersion.Version11, tls: true)));
        Assert.Equal("200 HTTP/2 https=True peer=spiffe://cluster.local/ns/default/sa/caller user=spiffe://cluster.local/ns/default/sa/caller",
            await StatusAndBodyAsync(callerClient, Get(app.Port, "/hello", HttpVersion.Version20, tls: true)));
        Assert.Equal("403 RBAC: access denied", await StatusAndBodyAsync(callerClient, Get(app.Port, "/admin", HttpVersion.Version11, tls: true)));
        Assert.Equal("403 RBAC: access denied", await StatusAndBodyAsync(callerClient, Get(app.Port, "/public/../admin", HttpVersion.Version11, tls: true)));
        Assert.Equal("403 RBAC: access denied", await StatusAndBodyAsync(callerClient, Get(app.Port, "/%61dmin", HttpVersion.Version11, tls: true)));
        Assert.Equal("403 RBAC: access denied", await StatusAndBodyAsync(strangerClient, Get(app.Port, "/other", HttpVersion.Version20, tls: true)));
        // PERMISSIVE lets plaintext in, and the ALLOW policy refuses a caller without an identity.
        Assert.Equal("403 RBAC: access denied", await StatusAndBodyAsync(plain, Get(app.Port, "/hello", HttpVersion.Version11, tls: false)));

        File.Delete(Path.Combine(mesh.ConfigDirectory, "authz-echo.yaml"));
        deadline = DateTime.UtcNow + ModeWait;
        while (await StatusAndBodyAsync(plain, Get(app.Port, "/hello", HttpVersion.Version11, tls: false)) != "200 HTTP/1.1 https=False peer=none user=anonymous")
        {
            Assert.True(DateTime.UtcNow < deadline, "removing the policies did not let plaintext in\n" + mesh.Dump());
            await Task.Delay(100);
        }

        Assert.Equal("200 HTTP/1.1 https=True peer=spiffe://cluster.local/ns/default/sa/stranger user=spiffe://cluster.local/ns/default/sa/stranger",
            await StatusAndBodyAsync(strangerClient, Get(app.Port, "/hello", HttpVersion.Version11, tls: true)));
    }

    [Fact]
    public async Task AuthorizationPolicy_DeniedGrpcCall_IsPermissionDenied_AllowedCallServed()
    {
        await using var app = await StartAppAsync(
            "authz-grpc",
            configure: builder =>
            {
                builder.WebHost.ConfigureKestrel(k => k.ConfigureEndpointDefaults(l => l.Protocols = HttpProtocols.Http2));
                builder.Services.AddGrpc();
                builder.Services.AddSingleton(new Mesh.Sdk.AspNetCore.Tests.Grpc.RecorderState("v1"));
            },
            map: a => a.MapGrpcService<Mesh.Sdk.AspNetCore.Tests.Grpc.RecorderService>());
        mesh.WriteConfig("authz-grpc.yaml",
            "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: authz-grpc, namespace: default}\n"
            + "spec:\n  selector: {matchLabels: {app: authz-grpc}}\n  action: ALLOW\n  rules:\n  - from:\n    - source: {principals: [\"cluster.local/ns/default/sa/caller\"]}\n");
        using var caller = await IssueAsync("caller");
        using var stranger = await IssueAsync("stranger");

        global::Grpc.Core.RpcException? denied = null;
        var deadline = DateTime.UtcNow + ModeWait;
        while (denied is null)
        {
            Assert.True(DateTime.UtcNow < deadline, "the stranger's call was never refused\n" + mesh.Dump());
            try
            {
                await RecordAsync(app.Port, stranger, "stranger-" + Guid.NewGuid().ToString("N"));
                await Task.Delay(100);
            }
            catch (global::Grpc.Core.RpcException ex) when (ex.StatusCode == global::Grpc.Core.StatusCode.PermissionDenied)
            {
                denied = ex;
            }
        }

        Assert.Equal("RBAC: access denied", denied.Status.Detail);
        Assert.Equal("v1", await RecordAsync(app.Port, caller, "caller"));
    }

    private static async Task<string> RecordAsync(int port, X509Certificate2 certificate, string tag)
    {
        var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero };
        handler.SslOptions.ClientCertificates = [certificate];
        handler.SslOptions.RemoteCertificateValidationCallback = static (_, _, _, _) => true;
        using var channel = GrpcChannel.ForAddress($"https://127.0.0.1:{port}", new GrpcChannelOptions { HttpHandler = handler });
        var recorder = new Mesh.Sdk.AspNetCore.Tests.Grpc.Recorder.Recorder.RecorderClient(channel);
        var reply = await recorder.RecordAsync(new Mesh.Sdk.AspNetCore.Tests.Grpc.Recorder.RecordRequest { Tag = tag }, deadline: DateTime.UtcNow.AddSeconds(15));
        return reply.Version;
    }
}

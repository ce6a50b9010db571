using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Grpc.Core;
using Grpc.Net.Client;
using Mesh.Interop.Tests.Infrastructure;
using Mesh.Testing;
using Xunit.Abstractions;

namespace Mesh.Interop.Tests;

/// <summary>
/// Inbound listeners served to an independent xDS server: gRPC C-core (Debian python3-grpcio,
/// <c>grpc.server(..., xds=True)</c>) asks our control plane for
/// <c>xds.istio.io/grpc/lds/inbound/127.0.0.1:&lt;port&gt;</c> and enforces the RBAC filters it gets.
/// </summary>
public sealed class InboundPolicyInteropTests(ITestOutputHelper output)
{
    private static readonly TimeSpan ConvergeTimeout = TimeSpan.FromSeconds(30);

    private static readonly Method<byte[], byte[]> Say = RawMethod("Say");
    private static readonly Method<byte[], byte[]> Whisper = RawMethod("Whisper");

    [Fact]
    public async Task DenyPolicyOnOneMethod_IsPermissionDenied_OtherMethodServed_RemovingThePolicyLetsItThrough()
    {
        var python = PeerKind.Get(PeerKind.Python);
        var dir = Directory.CreateTempSubdirectory("mesh-inbound-");
        try
        {
            await using var cp = await ControlPlaneHarness.StartAsync(dir.FullName);
            var port = FreePort();
            using var server = ServerProcess.Start(python.Executable, port, ServerBootstrap(cp.Port));
            using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
            string Diag() => $"\n--- server stderr:\n{server.Stderr}\n--- control plane:\n{cp.Log()}";

            // The server serves once its inbound listener has arrived; before that it refuses connections.
            Assert.True(await Eventually(async () => await Call(channel, Say) == StatusCode.OK), "Say never succeeded" + Diag());
            Assert.Equal(StatusCode.OK, await Call(channel, Whisper));

            IstioYaml.WriteAtomically(dir.FullName, "deny-whisper.yaml", """
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: deny-whisper, namespace: default}
                spec:
                  action: DENY
                  selector: {matchLabels: {app: echo-server}}
                  rules:
                  - to: [{operation: {paths: [/mesh.test.Echo/Whisper]}}]
                """);
            Assert.True(await Eventually(async () => await Call(channel, Whisper) == StatusCode.PermissionDenied),
                "Whisper was not denied after the DENY policy was written" + Diag());
            Assert.Equal(StatusCode.OK, await Call(channel, Say));

            File.Delete(Path.Combine(dir.FullName, "deny-whisper.yaml"));
            Assert.True(await Eventually(async () => await Call(channel, Whisper) == StatusCode.OK),
                "Whisper was still refused after the policy file was removed" + Diag());
            Assert.Equal(StatusCode.OK, await Call(channel, Say));
            Assert.Empty(cp.Warnings);
            output.WriteLine(cp.Log());
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task StrictPeerAuthentication_ServerRequiresMtlsWithCaCertificates_PlaintextCallerRefused_PrincipalDenied()
    {
        var python = PeerKind.Get(PeerKind.Python);
        var dir = Directory.CreateTempSubdirectory("mesh-inbound-mtls-");
        try
        {
            var config = Directory.CreateDirectory(Path.Combine(dir.FullName, "config")).FullName;
            IstioYaml.WriteAtomically(config, "strict.yaml", """
                apiVersion: security.istio.io/v1
                kind: PeerAuthentication
                metadata: {name: default, namespace: istio-system}
                spec:
                  mtls: {mode: STRICT}
                """);
            await using var cp = await ControlPlaneHarness.StartAsync(config);
            using var caChannel = GrpcChannel.ForAddress($"http://127.0.0.1:{cp.Port}");
            var ca = new Istio.V1.Auth.IstioCertificateService.IstioCertificateServiceClient(caChannel);
            const string serverId = "spiffe://cluster.local/ns/default/sa/echo-server";
            const string clientId = "spiffe://cluster.local/ns/default/sa/echo-client";
            var certs = Directory.CreateDirectory(Path.Combine(dir.FullName, "certs")).FullName;
            var (serverChain, serverKey) = await Issue(ca, serverId);
            File.WriteAllText(Path.Combine(certs, "cert-chain.pem"), string.Concat(serverChain));
            File.WriteAllText(Path.Combine(certs, "key.pem"), serverKey);
            File.WriteAllText(Path.Combine(certs, "root-cert.pem"), serverChain[^1]);
            var (clientChain, clientKey) = await Issue(ca, clientId);
            var root = X509Certificate2.CreateFromPem(serverChain[^1]);

            var port = FreePort();
            using var server = ServerProcess.Start(python.Executable, port, ServerBootstrap(cp.Port, certs));
            using var mtls = MtlsChannel(port, X509Certificate2.CreateFromPem(clientChain[0], clientKey), root, serverId);
            using var plaintext = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
            string Diag() => $"\n--- server stderr:\n{server.Stderr}\n--- control plane:\n{cp.Log()}";

            string? reply = null;
            Assert.True(await Eventually(async () => (reply = await CallForReply(mtls, Say)) is not null), "the mTLS call never succeeded" + Diag());
            output.WriteLine(reply);
            // The server saw the caller's certificate: its SPIFFE id is in the call's auth context.
            Assert.Contains(clientId, reply, StringComparison.Ordinal);
            Assert.NotEqual(StatusCode.OK, await Call(plaintext, Say));

            // The caller's certificate is its principal for RBAC: a DENY naming it refuses Whisper, and only Whisper.
            IstioYaml.WriteAtomically(config, "deny-client.yaml", """
                apiVersion: security.istio.io/v1
                kind: AuthorizationPolicy
                metadata: {name: deny-client, namespace: default}
                spec:
                  action: DENY
                  rules:
                  - from: [{source: {principals: [cluster.local/ns/default/sa/echo-client]}}]
                    to: [{operation: {paths: [/mesh.test.Echo/Whisper]}}]
                """);
            Assert.True(await Eventually(async () => await Call(mtls, Whisper) == StatusCode.PermissionDenied),
                "Whisper from echo-client was not denied" + Diag());
            Assert.NotNull(await CallForReply(mtls, Say));
            Assert.Empty(cp.Warnings);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>A certificate from the control plane's CA for <paramref name="spiffeId"/> (a loopback caller is trusted).</summary>
    private static async Task<(string[] Chain, string KeyPem)> Issue(Istio.V1.Auth.IstioCertificateService.IstioCertificateServiceClient ca, string spiffeId)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri(spiffeId));
        request.CertificateExtensions.Add(san.Build());
        var response = await ca.CreateCertificateAsync(new Istio.V1.Auth.IstioCertificateRequest { Csr = request.CreateSigningRequestPem(), ValidityDuration = 3600 },
            deadline: DateTime.UtcNow.AddSeconds(20));
        return ([.. response.CertChain.Select(static c => c.EndsWith('\n') ? c : c + "\n")], key.ExportPkcs8PrivateKeyPem());
    }

    /// <summary>An HTTP/2 TLS channel presenting <paramref name="client"/> and accepting only a server chaining to <paramref name="root"/> that names <paramref name="serverId"/>.</summary>
    private static GrpcChannel MtlsChannel(int port, X509Certificate2 client, X509Certificate2 root, string serverId)
    {
        var handler = new SocketsHttpHandler();
        handler.SslOptions.ClientCertificates = [X509CertificateLoader.LoadPkcs12(client.Export(X509ContentType.Pkcs12), null)];
        handler.SslOptions.TargetHost = "echo-server";
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) =>
        {
            if (certificate is null)
            {
                return false;
            }

            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(root);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            using var leaf = new X509Certificate2(certificate);
            return chain.Build(leaf) && Mesh.Xds.Security.UriSubjectAlternativeNames.Read(leaf).Contains(serverId);
        };
        return GrpcChannel.ForAddress($"https://127.0.0.1:{port}", new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true });
    }

    private static async Task<string?> CallForReply(GrpcChannel channel, Method<byte[], byte[]> method)
    {
        try
        {
            var reply = await channel.CreateCallInvoker().AsyncUnaryCall(method, null, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(5)), []);
            return Encoding.UTF8.GetString(reply);
        }
        catch (RpcException)
        {
            return null;
        }
    }

    private static Method<byte[], byte[]> RawMethod(string name)
    {
        var bytes = Marshallers.Create(static b => b, static b => b);
        return new Method<byte[], byte[]>(MethodType.Unary, "mesh.test.Echo", name, bytes, bytes);
    }

    private static async Task<StatusCode> Call(GrpcChannel channel, Method<byte[], byte[]> method)
    {
        try
        {
            var reply = await channel.CreateCallInvoker().AsyncUnaryCall(method, null, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(5)), []);
            Assert.Contains($"\"method\": \"{method.Name}\"", Encoding.UTF8.GetString(reply), StringComparison.Ordinal);
            return StatusCode.OK;
        }
        catch (RpcException ex)
        {
            return ex.StatusCode;
        }
    }

    /// <summary>Polls <paramref name="condition"/> every 100 ms until it holds or the timeout passes.</summary>
    private static async Task<bool> Eventually(Func<Task<bool>> condition)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < ConvergeTimeout)
        {
            if (await condition())
            {
                return true;
            }

            await Task.Delay(100);
        }

        return false;
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }

    /// <summary>The server's bootstrap: our control plane, the inbound name template, its namespace and labels.</summary>
    private static string ServerBootstrap(int xdsPort, string? certificateDirectory = null) =>
        "{\"xds_servers\":[{\"server_uri\":\"127.0.0.1:" + xdsPort.ToString(CultureInfo.InvariantCulture)
        + "\",\"channel_creds\":[{\"type\":\"insecure\"}],\"server_features\":[\"xds_v3\"]}],"
        + "\"node\":{\"id\":\"sidecar~127.0.0.1~echo-server.default~default.svc.cluster.local\","
        + "\"locality\":{\"region\":\"r1\",\"zone\":\"z1\"},"
        + "\"metadata\":{\"GENERATOR\":\"grpc\",\"NAMESPACE\":\"default\",\"LABELS\":{\"app\":\"echo-server\"}}},"
        + (certificateDirectory is null ? string.Empty : "\"certificate_providers\":{\"default\":{\"plugin_name\":\"file_watcher\",\"config\":{"
            + "\"certificate_file\":\"" + Path.Combine(certificateDirectory, "cert-chain.pem") + "\","
            + "\"private_key_file\":\"" + Path.Combine(certificateDirectory, "key.pem") + "\","
            + "\"ca_certificate_file\":\"" + Path.Combine(certificateDirectory, "root-cert.pem") + "\","
            + "\"refresh_interval\":\"60s\"}}},")
        + "\"server_listener_resource_name_template\":\"xds.istio.io/grpc/lds/inbound/%s\"}";

    /// <summary>tests/peers/python/xds_server.py, killed on dispose; stderr kept for failure messages.</summary>
    private sealed class ServerProcess : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _stderr = new();

        private ServerProcess(Process process) => _process = process;

        public string Stderr
        {
            get
            {
                lock (_stderr)
                {
                    return _stderr.ToString();
                }
            }
        }

        public static ServerProcess Start(string python, int port, string bootstrap)
        {
            var script = Path.Combine(RepoPaths.Peers, "python", "xds_server.py");
            var psi = new ProcessStartInfo(python, ["-u", script, "--port", port.ToString(CultureInfo.InvariantCulture)])
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            psi.Environment.Remove("GRPC_XDS_BOOTSTRAP");
            foreach (var (k, v) in PeerKind.Environment(bootstrap))
            {
                psi.Environment[k] = v;
            }

            // gRPC 1.51 gates xDS RBAC behind this switch (on by default in later releases).
            psi.Environment["GRPC_XDS_EXPERIMENTAL_RBAC"] = "true";
            var process = new Process { StartInfo = psi };
            var server = new ServerProcess(process);
            process.ErrorDataReceived += (_, e) =>
            {
                lock (server._stderr)
                {
                    server._stderr.AppendLine(e.Data);
                }
            };
            process.OutputDataReceived += (_, e) =>
            {
                lock (server._stderr)
                {
                    server._stderr.Append("stdout: ").AppendLine(e.Data);
                }
            };
            process.Start();
            process.BeginErrorReadLine();
            process.BeginOutputReadLine();
            return server;
        }

        public void Dispose()
        {
            try
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
            catch (InvalidOperationException)
            {
                // Already exited.
            }

            _process.Dispose();
        }
    }
}

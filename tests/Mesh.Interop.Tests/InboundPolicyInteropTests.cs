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

    /// <summary>
    /// <see cref="GrpcAuthorizationCases"/> against C-core's RBAC: every call gets the decision the table states, the
    /// same table the SDK's engine is held to (AuthorizationMatrixTests.GrpcCrossCheck_SdkDecidesAsCCore).
    /// </summary>
    [Fact]
    public async Task PolicyTable_CCoreDecidesEveryCallAsTheSdkEngine()
    {
        var warnings = await DecideTableAsync(GrpcAuthorizationCases.Yaml, GrpcAuthorizationCases.Cases);
        Assert.Empty(warnings);
    }

    /// <summary>
    /// <see cref="GrpcAuthorizationCases.RequestAuthenticationYaml"/>: C-core accepts the listener whose RBAC holds istiod's
    /// metadata principals (no NACK) and, as gRFC A41 has it, never matches them (a not_id of one always matches), deciding
    /// every call as the SDK's engine does. The only warnings are the parser's, one per request-authentication field.
    /// </summary>
    [Fact]
    public async Task RequestAuthenticationTable_MetadataPrincipalsAccepted_CCoreDecidesEveryCallAsTheSdkEngine()
    {
        var warnings = await DecideTableAsync(GrpcAuthorizationCases.RequestAuthenticationYaml, GrpcAuthorizationCases.RequestAuthenticationCases);
        Assert.Equal(6, warnings.Count);
        Assert.All(warnings, static w => Assert.Contains("(request authentication, JWT): the SDK and proxyless gRPC servers apply no RequestAuthentication", w.Line, StringComparison.Ordinal));
    }

    /// <summary>Serves <paramref name="yaml"/> to the C-core xDS server, checks each case's decision and returns the control plane's warnings.</summary>
    private async Task<IReadOnlyList<CapturedLogEntry>> DecideTableAsync(string yaml, (string Id, string Method, (string Name, string Value)[] Headers, bool Allowed)[] cases)
    {
        var python = PeerKind.Get(PeerKind.Python);
        var dir = Directory.CreateTempSubdirectory("mesh-inbound-table-");
        try
        {
            IstioYaml.WriteAtomically(dir.FullName, "policies.yaml", yaml);
            await using var cp = await ControlPlaneHarness.StartAsync(dir.FullName);
            var port = FreePort();
            using var server = ServerProcess.Start(python.Executable, port, ServerBootstrap(cp.Port));
            using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
            string Diag() => $"\n--- server stderr:\n{server.Stderr}\n--- control plane:\n{cp.Log()}";

            // The listener arrives with the policies in it: the first allowed case succeeding means the server enforces them.
            var first = cases.First(c => c.Allowed);
            Assert.True(await Eventually(async () => await Call(channel, RawMethod(first.Method), first.Headers) == StatusCode.OK), "the server never served" + Diag());
            var disagreements = new List<string>();
            foreach (var (id, method, headers, allowed) in cases)
            {
                var code = await Call(channel, RawMethod(method), headers);
                output.WriteLine($"{id}: {method} -> {code}");
                if (code != (allowed ? StatusCode.OK : StatusCode.PermissionDenied))
                {
                    disagreements.Add($"{id}: {method} with [{string.Join(", ", headers.Select(h => h.Name + "=" + h.Value))}] got {code}, the table says {(allowed ? "OK" : "PERMISSION_DENIED")}");
                }
            }

            Assert.True(disagreements.Count == 0, string.Join("\n", disagreements) + Diag());
            return cp.Warnings;
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task LocalRateLimitEnvoyFilter_IsOptionalForGrpcServers_ListenerWithItIsAccepted()
    {
        // C-core has no local rate limit filter: the control plane marks it (and its per-route config) optional so
        // the server accepts the listener. The DENY policy written with it proves the new listener took effect.
        var python = PeerKind.Get(PeerKind.Python);
        var dir = Directory.CreateTempSubdirectory("mesh-inbound-ratelimit-");
        try
        {
            await using var cp = await ControlPlaneHarness.StartAsync(dir.FullName);
            var port = FreePort();
            using var server = ServerProcess.Start(python.Executable, port, ServerBootstrap(cp.Port));
            using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
            string Diag() => $"\n--- server stderr:\n{server.Stderr}\n--- control plane:\n{cp.Log()}";
            Assert.True(await Eventually(async () => await Call(channel, Say) == StatusCode.OK), "Say never succeeded" + Diag());

            IstioYaml.WriteAtomically(dir.FullName, "ratelimit.yaml", """
                apiVersion: networking.istio.io/v1alpha3
                kind: EnvoyFilter
                metadata: {name: echo-ratelimit, namespace: istio-system}
                spec:
                  workloadSelector: {labels: {app: echo-server}}
                  configPatches:
                  - applyTo: HTTP_FILTER
                    match: {context: SIDECAR_INBOUND, listener: {filterChain: {filter: {name: envoy.filters.network.http_connection_manager}}}}
                    patch:
                      operation: INSERT_BEFORE
                      value:
                        name: envoy.filters.http.local_ratelimit
                        typed_config:
                          "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                          type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                          value: {stat_prefix: http_local_rate_limiter}
                  - applyTo: HTTP_ROUTE
                    match: {context: SIDECAR_INBOUND, routeConfiguration: {vhost: {route: {action: ANY}}}}
                    patch:
                      operation: MERGE
                      value:
                        route:
                          rate_limits: [{actions: [{request_headers: {header_name: ":path", descriptor_key: path}}]}]
                        typed_per_filter_config:
                          envoy.filters.http.local_ratelimit:
                            "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                            type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                            value:
                              stat_prefix: http_local_rate_limiter
                              token_bucket: {max_tokens: 1, tokens_per_fill: 1, fill_interval: 60s}
                              filter_enabled: {default_value: {numerator: 100, denominator: HUNDRED}}
                              filter_enforced: {default_value: {numerator: 100, denominator: HUNDRED}}
                ---
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
                "the listener with the rate limit filter never took effect (Whisper not denied)" + Diag());
            // gRPC servers do not rate limit: more calls than the bucket holds all succeed.
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(StatusCode.OK, await Call(channel, Say));
            }

            Assert.True(cp.Warnings.Count == 0, "the control plane logged warnings (a NACK?)" + Diag());
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

    /// <summary>
    /// Outbound half: a C-core xDS client (xDS channel credentials, file_watcher certificates from our CA) gets a cluster
    /// with istiod's UpstreamTlsContext from DestinationRule ISTIO_MUTUAL and calls the STRICT C-core xDS server over mTLS;
    /// toward a service whose workloads run under another account (so the SAN list lacks the server's identity) it fails.
    /// </summary>
    [Fact]
    public async Task IstioMutualDestinationRule_XdsClientCallsStrictServerOverMtls_WrongExpectedSanFails()
    {
        var python = PeerKind.Get(PeerKind.Python);
        var dir = Directory.CreateTempSubdirectory("mesh-outbound-mtls-");
        try
        {
            var config = Directory.CreateDirectory(Path.Combine(dir.FullName, "config")).FullName;
            var port = FreePort();
            var serverPort = port.ToString(CultureInfo.InvariantCulture);
            // Two services on the same server: 'echo' registered under the server's real account, 'impostor' under another.
            IstioYaml.WriteAtomically(config, "mesh.yaml", """
                apiVersion: security.istio.io/v1
                kind: PeerAuthentication
                metadata: {name: default, namespace: istio-system}
                spec:
                  mtls: {mode: STRICT}
                ---
                apiVersion: networking.istio.io/v1
                kind: ServiceEntry
                metadata: {name: echo, namespace: default}
                spec:
                  hosts: [echo.default.svc.cluster.local]
                  ports: [{number: 9080, name: grpc, protocol: GRPC}]
                  resolution: STATIC
                  workloadSelector: {labels: {app: echo-server}}
                ---
                apiVersion: networking.istio.io/v1
                kind: WorkloadEntry
                metadata: {name: echo-server, namespace: default}
                spec:
                  address: 127.0.0.1
                  ports: {grpc: SERVER_PORT}
                  labels: {app: echo-server}
                  serviceAccount: echo-server
                ---
                apiVersion: networking.istio.io/v1
                kind: ServiceEntry
                metadata: {name: impostor, namespace: default}
                spec:
                  hosts: [impostor.default.svc.cluster.local]
                  ports: [{number: 9080, name: grpc, protocol: GRPC}]
                  resolution: STATIC
                  workloadSelector: {labels: {app: impostor}}
                ---
                apiVersion: networking.istio.io/v1
                kind: WorkloadEntry
                metadata: {name: impostor, namespace: default}
                spec:
                  address: 127.0.0.1
                  ports: {grpc: SERVER_PORT}
                  labels: {app: impostor}
                  serviceAccount: someone-else
                ---
                apiVersion: networking.istio.io/v1
                kind: DestinationRule
                metadata: {name: echo, namespace: default}
                spec:
                  host: echo
                  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
                ---
                apiVersion: networking.istio.io/v1
                kind: DestinationRule
                metadata: {name: impostor, namespace: default}
                spec:
                  host: impostor
                  trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
                """.Replace("SERVER_PORT", serverPort, StringComparison.Ordinal));
            await using var cp = await ControlPlaneHarness.StartAsync(config);
            using var caChannel = GrpcChannel.ForAddress($"http://127.0.0.1:{cp.Port}");
            var ca = new Istio.V1.Auth.IstioCertificateService.IstioCertificateServiceClient(caChannel);
            const string clientId = "spiffe://cluster.local/ns/default/sa/echo-client";
            var serverCerts = await WriteCertificates(ca, "spiffe://cluster.local/ns/default/sa/echo-server", Path.Combine(dir.FullName, "server-certs"));
            var clientCerts = await WriteCertificates(ca, clientId, Path.Combine(dir.FullName, "client-certs"));

            using var server = ServerProcess.Start(python.Executable, port, ServerBootstrap(cp.Port, serverCerts));
            string Diag() => $"\n--- server stderr:\n{server.Stderr}\n--- control plane:\n{cp.Log()}";

            // The server serves once its STRICT listener has arrived: the client retries until then.
            var good = await RunMtlsClient(python.Executable, "xds:///echo.default.svc.cluster.local:9080", attempts: 100, ClientBootstrap(cp.Port, clientCerts));
            output.WriteLine(good);
            var reply = good.Split('\n').FirstOrDefault(l => l.Contains("\"ok\": true, \"reply\"", StringComparison.Ordinal));
            Assert.True(reply is not null, "the ISTIO_MUTUAL call never succeeded:\n" + good + Diag());
            // The server saw the client's certificate, so the call was mTLS with the bootstrap's certificates.
            Assert.Contains(clientId, reply, StringComparison.Ordinal);

            // Same server, but the cluster expects spiffe://cluster.local/ns/default/sa/someone-else: the handshake fails.
            var bad = await RunMtlsClient(python.Executable, "xds:///impostor.default.svc.cluster.local:9080", attempts: 3, ClientBootstrap(cp.Port, clientCerts));
            output.WriteLine(bad);
            Assert.Contains("{\"done\": true, \"ok\": false}", bad, StringComparison.Ordinal);
            Assert.Contains("\"code\": 14", bad, StringComparison.Ordinal);
            Assert.Contains("SANs from certificate did not match SANs from xDS control plane", bad, StringComparison.Ordinal);
            Assert.Empty(cp.Warnings);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task AutoMtlsCluster_TransportSocketMatches_AcceptedAndIgnoredByCoreXdsClient_CallGoesPlaintext()
    {
        var python = PeerKind.Get(PeerKind.Python);
        var dir = Directory.CreateTempSubdirectory("mesh-auto-mtls-");
        try
        {
            var config = Directory.CreateDirectory(Path.Combine(dir.FullName, "config")).FullName;
            var port = FreePort();
            // The server's WorkloadEntry is labelled tlsMode: istio, so its cluster carries istiod's auto-mTLS
            // transport_socket_matches and its endpoint the tlsMode metadata; mesh-wide DISABLE keeps the server plaintext.
            IstioYaml.WriteAtomically(config, "mesh.yaml", """
                apiVersion: security.istio.io/v1
                kind: PeerAuthentication
                metadata: {name: default, namespace: istio-system}
                spec:
                  mtls: {mode: DISABLE}
                ---
                apiVersion: networking.istio.io/v1
                kind: ServiceEntry
                metadata: {name: echo, namespace: default}
                spec:
                  hosts: [echo.default.svc.cluster.local]
                  ports: [{number: 9080, name: grpc, protocol: GRPC}]
                  resolution: STATIC
                  workloadSelector: {labels: {app: echo-server}}
                ---
                apiVersion: networking.istio.io/v1
                kind: WorkloadEntry
                metadata: {name: echo-server, namespace: default}
                spec:
                  address: 127.0.0.1
                  ports: {grpc: SERVER_PORT}
                  labels: {app: echo-server, security.istio.io/tlsMode: istio}
                  serviceAccount: echo-server
                """.Replace("SERVER_PORT", port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal));
            await using var cp = await ControlPlaneHarness.StartAsync(config);
            using var caChannel = GrpcChannel.ForAddress($"http://127.0.0.1:{cp.Port}");
            var ca = new Istio.V1.Auth.IstioCertificateService.IstioCertificateServiceClient(caChannel);
            // The client could do TLS (xDS credentials, provider 'default' with CA certificates) if it read the matches.
            var clientCerts = await WriteCertificates(ca, "spiffe://cluster.local/ns/default/sa/echo-client", Path.Combine(dir.FullName, "client-certs"));
            using var server = ServerProcess.Start(python.Executable, port, ServerBootstrap(cp.Port));

            var result = await RunMtlsClient(python.Executable, "xds:///echo.default.svc.cluster.local:9080", attempts: 100, ClientBootstrap(cp.Port, clientCerts));
            output.WriteLine(result);

            var reply = result.Split('\n').FirstOrDefault(l => l.Contains("\"ok\": true, \"reply\"", StringComparison.Ordinal));
            Assert.True(reply is not null, "the call never succeeded:\n" + result + $"\n--- server stderr:\n{server.Stderr}\n--- control plane:\n{cp.Log()}");
            Assert.DoesNotContain("spiffe://", reply, StringComparison.Ordinal);
            // No NACK: C-core accepted the cluster with transport_socket_matches and the endpoint metadata.
            Assert.Empty(cp.Warnings);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>Writes cert-chain.pem, key.pem and root-cert.pem for <paramref name="spiffeId"/> into <paramref name="path"/>.</summary>
    internal static async Task<string> WriteCertificates(Istio.V1.Auth.IstioCertificateService.IstioCertificateServiceClient ca, string spiffeId, string path)
    {
        Directory.CreateDirectory(path);
        var (chain, key) = await Issue(ca, spiffeId);
        File.WriteAllText(Path.Combine(path, "cert-chain.pem"), string.Concat(chain));
        File.WriteAllText(Path.Combine(path, "key.pem"), key);
        File.WriteAllText(Path.Combine(path, "root-cert.pem"), chain[^1]);
        return path;
    }

    /// <summary>The client's bootstrap: our control plane and the file_watcher provider 'default' with its certificates.</summary>
    internal static string ClientBootstrap(int xdsPort, string certificateDirectory) =>
        "{\"xds_servers\":[{\"server_uri\":\"127.0.0.1:" + xdsPort.ToString(CultureInfo.InvariantCulture)
        + "\",\"channel_creds\":[{\"type\":\"insecure\"}],\"server_features\":[\"xds_v3\"]}],"
        + "\"node\":{\"id\":\"sidecar~127.0.0.2~echo-client.default~default.svc.cluster.local\","
        + "\"locality\":{\"region\":\"r1\",\"zone\":\"z1\"},"
        + "\"metadata\":{\"GENERATOR\":\"grpc\",\"NAMESPACE\":\"default\"}},"
        + "\"certificate_providers\":{\"default\":{\"plugin_name\":\"file_watcher\",\"config\":{"
        + "\"certificate_file\":\"" + Path.Combine(certificateDirectory, "cert-chain.pem") + "\","
        + "\"private_key_file\":\"" + Path.Combine(certificateDirectory, "key.pem") + "\","
        + "\"ca_certificate_file\":\"" + Path.Combine(certificateDirectory, "root-cert.pem") + "\","
        + "\"refresh_interval\":\"60s\"}}}}";

    /// <summary>
    /// Runs tests/peers/python/xds_mtls_client.py to completion (60 s at most), stopping at the first attempt ending with
    /// <paramref name="untilCode"/> (0: the first success), and returns its stdout and stderr.
    /// </summary>
    internal static async Task<string> RunMtlsClient(string python, string target, int attempts, string bootstrap, int untilCode = 0)
    {
        var script = Path.Combine(RepoPaths.Peers, "python", "xds_mtls_client.py");
        var psi = new ProcessStartInfo(python, ["-u", script, "--target", target, "--attempts", attempts.ToString(CultureInfo.InvariantCulture),
            "--until-code", untilCode.ToString(CultureInfo.InvariantCulture)])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.Environment.Remove("GRPC_XDS_BOOTSTRAP");
        foreach (var (k, v) in PeerKind.Environment(bootstrap))
        {
            psi.Environment[k] = v;
        }

        // gRPC 1.51 reads the cluster's TLS only with this switch (on by default in later releases).
        psi.Environment["GRPC_XDS_EXPERIMENTAL_SECURITY_SUPPORT"] = "true";
        using var process = Process.Start(psi)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var stdout = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var stderr = process.StandardError.ReadToEndAsync(timeout.Token);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
        }

        return await stdout + "\n--- client stderr:\n" + await stderr;
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

    private static async Task<StatusCode> Call(GrpcChannel channel, Method<byte[], byte[]> method, (string Name, string Value)[]? headers = null)
    {
        try
        {
            var metadata = new Metadata();
            foreach (var (name, value) in headers ?? [])
            {
                metadata.Add(name, value);
            }

            var reply = await channel.CreateCallInvoker().AsyncUnaryCall(method, null, new CallOptions(metadata, DateTime.UtcNow.AddSeconds(5)), []);
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

    internal static int FreePort()
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

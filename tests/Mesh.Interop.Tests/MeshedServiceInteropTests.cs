using System.Globalization;
using System.Text.Json;
using Grpc.Core;
using Grpc.Net.Client;
using Mesh.Interop.Tests.Echo;
using Mesh.Interop.Tests.Infrastructure;
using Mesh.Sdk.AspNetCore.Security;
using Mesh.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Mesh.Interop.Tests;

/// <summary>
/// gRPC C-core (Debian python3-grpcio) as the client of a meshed .NET gRPC service: an ASP.NET app with only
/// <c>builder.AddMesh()</c> and <c>Mesh:Security:Enabled</c>, registered with our control plane as <c>secure-echo</c>
/// (service port 9090), its port STRICT; the C-core client resolves <c>xds:///secure-echo:9090</c> with xDS channel
/// credentials and file_watcher certificates issued by our CA.
/// </summary>
public sealed class MeshedServiceInteropTests(ITestOutputHelper output)
{
    private const string Target = "xds:///secure-echo:9090";
    private const string ClientId = "spiffe://cluster.local/ns/default/sa/echo-client";

    private const string Strict = """
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {name: secure-echo, namespace: default}
        spec:
          selector: {matchLabels: {app: secure-echo}}
          mtls: {mode: STRICT}
        """;

    private const string IstioMutual = """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: secure-echo, namespace: default}
        spec:
          host: secure-echo
          trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
        """;

    private const string AllowSomeoneElse = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: secure-echo-allow, namespace: default}
        spec:
          selector: {matchLabels: {app: secure-echo}}
          action: ALLOW
          rules:
          - from: [{source: {principals: [cluster.local/ns/default/sa/someone-else]}}]
        """;

    [Fact]
    public async Task CCoreXdsClient_IstioMutual_ServedWithItsSpiffeId_AllowingAnotherPrincipalIsPermissionDenied_WithoutDestinationRuleStrictRefusesItsPlaintext()
    {
        var python = PeerKind.Get(PeerKind.Python);
        var dir = Directory.CreateTempSubdirectory("mesh-meshed-service-");
        try
        {
            var config = Directory.CreateDirectory(Path.Combine(dir.FullName, "config")).FullName;
            IstioYaml.WriteAtomically(config, "strict.yaml", Strict);
            IstioYaml.WriteAtomically(config, "istio-mutual.yaml", IstioMutual);
            await using var cp = await ControlPlaneHarness.StartAsync(config);
            using var caChannel = GrpcChannel.ForAddress($"http://127.0.0.1:{cp.Port}");
            var ca = new Istio.V1.Auth.IstioCertificateService.IstioCertificateServiceClient(caChannel);
            var clientCerts = await InboundPolicyInteropTests.WriteCertificates(ca, ClientId, Path.Combine(dir.FullName, "client-certs"));
            var bootstrap = InboundPolicyInteropTests.ClientBootstrap(cp.Port, clientCerts);
            using var appLogs = new CapturingLoggerProvider();
            await using var app = new Stopping(await StartSecureEchoAsync(cp.Port, appLogs));
            string Diag() => $"\n--- app:\n{appLogs.Dump()}\n--- control plane:\n{cp.Log()}";

            // (a) DestinationRule ISTIO_MUTUAL: the cluster carries istiod's UpstreamTlsContext, C-core does mTLS with the
            // bootstrap's certificates and checks the server's SAN; the client retries until the app has registered.
            var served = await InboundPolicyInteropTests.RunMtlsClient(python.Executable, Target, attempts: 100, bootstrap);
            output.WriteLine(served);
            var reply = Replies(served).FirstOrDefault(static r => r.Ok);
            Assert.True(reply.Ok, "the ISTIO_MUTUAL call never succeeded:\n" + served + Diag());
            var sayReply = SayReply.Parser.ParseFrom(Convert.FromBase64String(reply.ReplyBase64!));
            Assert.Equal("secure-echo", sayReply.Workload);
            // The .NET service saw the C-core client's certificate: its SPIFFE id from IMeshPeerIdentityFeature.
            Assert.Equal(ClientId, sayReply.Message);
            Assert.StartsWith("grpc-python/", sayReply.Headers["user-agent"], StringComparison.Ordinal);

            // (c) An ALLOW policy naming another principal: the SDK refuses the C-core client with PERMISSION_DENIED.
            IstioYaml.WriteAtomically(config, "allow.yaml", AllowSomeoneElse);
            var denied = await InboundPolicyInteropTests.RunMtlsClient(python.Executable, Target, attempts: 100, bootstrap, untilCode: 7);
            output.WriteLine(denied);
            var last = Replies(denied).LastOrDefault();
            Assert.True(last is { Ok: false, Code: 7 }, "the call was never refused with PERMISSION_DENIED:\n" + denied + Diag());
            Assert.Equal("RBAC: access denied", last.Error);

            File.Delete(Path.Combine(config, "allow.yaml"));
            var again = await InboundPolicyInteropTests.RunMtlsClient(python.Executable, Target, attempts: 100, bootstrap);
            Assert.True(Replies(again).Any(static r => r.Ok), "removing the policy did not let the client back in:\n" + again + Diag());

            // (b) Without the DestinationRule the cluster offers only istiod's auto-mTLS (transport_socket_matches), which
            // C-core does not read (gRFC A29 has no auto-mTLS): the client goes plaintext and the STRICT port closes the
            // connection. The client's first attempts may still see the cached ISTIO_MUTUAL cluster of an earlier run,
            // so it runs until it is refused.
            File.Delete(Path.Combine(config, "istio-mutual.yaml"));
            var refused = await InboundPolicyInteropTests.RunMtlsClient(python.Executable, Target, attempts: 20, bootstrap, untilCode: 14);
            output.WriteLine(refused);
            var outcomes = Replies(refused);
            Assert.True(outcomes.Count > 0 && outcomes[^1] is { Ok: false, Code: 14 }, "the plaintext call was not refused with UNAVAILABLE:\n" + refused + Diag());
            Assert.EndsWith("Socket closed", outcomes[^1].Error, StringComparison.Ordinal);
            // It was the app's STRICT port that refused plaintext (event 8210), not a failed TLS handshake.
            Assert.Contains($"[8210] Closed a plaintext connection from 127.0.0.1:", appLogs.Dump(), StringComparison.Ordinal);
            // And a second run, with the DestinationRule's removal settled, never gets through.
            var stillRefused = await InboundPolicyInteropTests.RunMtlsClient(python.Executable, Target, attempts: 3, bootstrap);
            output.WriteLine(stillRefused);
            Assert.All(Replies(stillRefused), static r => Assert.Equal((false, 14), (r.Ok, r.Code)));
            Assert.Equal(3, Replies(stillRefused).Count);
            Assert.Empty(cp.Warnings);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    /// <summary>The attempts the client printed, in order.</summary>
    private static List<Attempt> Replies(string clientOutput)
    {
        var attempts = new List<Attempt>();
        foreach (var line in clientOutput.Split('\n'))
        {
            if (!line.StartsWith("{\"i\": ", StringComparison.Ordinal))
            {
                continue;
            }

            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            var ok = root.GetProperty("ok").GetBoolean();
            attempts.Add(ok
                ? new Attempt(true, 0, null, root.GetProperty("reply_b64").GetString())
                : new Attempt(false, root.GetProperty("code").GetInt32(), root.GetProperty("error").GetString(), null));
        }

        return attempts;
    }

    /// <summary>
    /// The meshed app: HTTP/2-only Kestrel endpoint on 127.0.0.1 (C-core speaks h2c in plaintext and h2 by ALPN over TLS),
    /// self-registered as <c>secure-echo</c> with its ephemeral port mapped to service port 9090, service account
    /// <c>secure-echo</c>, label <c>app: secure-echo</c>, certificate from the control plane's CA.
    /// </summary>
    private static async Task<WebApplication> StartSecureEchoAsync(int xdsPort, CapturingLoggerProvider logs)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders().SetMinimumLevel(LogLevel.Debug)
            .AddFilter((category, level) => category?.StartsWith("Mesh.", StringComparison.Ordinal) == true ? level >= LogLevel.Debug : level >= LogLevel.Warning)
            .AddProvider(logs);
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.WebHost.ConfigureKestrel(static k => k.ConfigureEndpointDefaults(static l => l.Protocols = HttpProtocols.Http2));
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Mesh:BootstrapConfig"] = "{\"xds_servers\":[{\"server_uri\":\"127.0.0.1:" + xdsPort.ToString(CultureInfo.InvariantCulture)
                + "\",\"channel_creds\":[{\"type\":\"insecure\"}],\"server_features\":[\"xds_v3\"]}],"
                + "\"node\":{\"locality\":{\"region\":\"r1\",\"zone\":\"z1\"},\"metadata\":{\"GENERATOR\":\"grpc\"}}}",
            ["Mesh:ServiceName"] = "secure-echo",
            ["Mesh:ServicePort"] = "9090",
            ["Mesh:ServiceAccount"] = "secure-echo",
            ["Mesh:Labels:app"] = "secure-echo",
            ["Mesh:InstanceIp"] = "127.0.0.1",
            ["Mesh:Security:Enabled"] = "true",
        });
        builder.AddMesh();
        builder.Services.AddGrpc();
        var app = builder.Build();
        app.MapGrpcService<SecureEchoService>();
        try
        {
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        return app;
    }

    /// <summary>Stops the app, then disposes it.</summary>
    private sealed class Stopping(WebApplication app) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await app.StopAsync(timeout.Token);
            await app.DisposeAsync();
        }
    }

    private readonly record struct Attempt(bool Ok, int Code, string? Error, string? ReplyBase64);

    /// <summary>Echo's Say answering with the workload name, the caller's SPIFFE id (or <c>none</c>) and the request headers.</summary>
    private sealed class SecureEchoService : Echo.Echo.EchoBase
    {
        public override Task<SayReply> Say(SayRequest request, ServerCallContext context)
        {
            var peer = context.GetHttpContext().Features.Get<IMeshPeerIdentityFeature>();
            var reply = new SayReply { Workload = "secure-echo", Message = peer?.SpiffeId ?? "none" };
            foreach (var entry in context.RequestHeaders)
            {
                if (!entry.IsBinary)
                {
                    reply.Headers[entry.Key] = entry.Value;
                }
            }

            return Task.FromResult(reply);
        }
    }
}

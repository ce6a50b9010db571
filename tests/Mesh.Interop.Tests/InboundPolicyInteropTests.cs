using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
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
    private static string ServerBootstrap(int xdsPort) =>
        "{\"xds_servers\":[{\"server_uri\":\"127.0.0.1:" + xdsPort.ToString(CultureInfo.InvariantCulture)
        + "\",\"channel_creds\":[{\"type\":\"insecure\"}],\"server_features\":[\"xds_v3\"]}],"
        + "\"node\":{\"id\":\"sidecar~127.0.0.1~echo-server.default~default.svc.cluster.local\","
        + "\"locality\":{\"region\":\"r1\",\"zone\":\"z1\"},"
        + "\"metadata\":{\"GENERATOR\":\"grpc\",\"NAMESPACE\":\"default\",\"LABELS\":{\"app\":\"echo-server\"}}},"
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

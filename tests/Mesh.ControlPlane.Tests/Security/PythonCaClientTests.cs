using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;

namespace Mesh.ControlPlane.Tests.Security;

/// <summary>
/// An independent client of the CA: gRPC C-core (Debian python3-grpcio) sending a request whose protobuf bytes are
/// written by hand from istio/api's field numbers (csr = 1, validity_duration = 3) and reading cert_chain = 1, so
/// the wire contract is checked without our generated code on the client side.
/// </summary>
public sealed class PythonCaClientTests
{
    private const string Script = """
        import json, sys, grpc

        def varint(n):
            out = bytearray()
            while True:
                b = n & 0x7F
                n >>= 7
                if n:
                    out.append(b | 0x80)
                else:
                    out.append(b)
                    return bytes(out)

        def read_varint(buf, i):
            shift = result = 0
            while True:
                b = buf[i]; i += 1
                result |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    return result, i

        address, csr_path, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3])
        csr = open(csr_path, 'rb').read()
        request = b'\x0a' + varint(len(csr)) + csr + b'\x18' + varint(seconds)   # csr = 1 (string), validity_duration = 3 (int64)
        channel = grpc.insecure_channel(address)
        call = channel.unary_unary('/istio.v1.auth.IstioCertificateService/CreateCertificate')
        try:
            response = call(request, timeout=20)
        except grpc.RpcError as e:
            print(json.dumps({"code": e.code().name, "detail": e.details()}))
            sys.exit(0)
        chain, i = [], 0
        while i < len(response):
            key, i = read_varint(response, i)
            assert key == 0x0a, "unexpected field key %d" % key      # cert_chain = 1, length-delimited
            n, i = read_varint(response, i)
            chain.append(response[i:i + n].decode()); i += n
        print(json.dumps({"chain": chain}))
        """;

    [Fact]
    public async Task GrpcCoreClient_HandEncodedRequest_GetsChainAndAskedValidity()
    {
        using var dir = new TempFolder();
        await using var ca = await CaHarness.StartAsync();
        Openssl.NewCsr(dir.Path, "w", "URI:spiffe://cluster.local/ns/default/sa/productpage");
        var script = dir.Write("ca_client.py", Script);

        using var result = JsonDocument.Parse(await RunPythonAsync(script, $"127.0.0.1:{ca.ControlPlane.XdsPort}", dir.File("w-csr.pem"), "7200"));

        var chain = result.RootElement.GetProperty("chain").EnumerateArray().Select(e => e.GetString()!).ToList();
        Assert.Equal(2, chain.Count);
        Assert.Equal(ca.ControlPlane.RootCertificatePem, chain[1]);
        using var leaf = X509Certificate2.CreateFromPem(chain[0]);
        Assert.Equal(TimeSpan.FromHours(2) + TimeSpan.FromMinutes(2), leaf.NotAfter - leaf.NotBefore);
        Assert.Equal(["spiffe://cluster.local/ns/default/sa/productpage"], Mesh.Xds.Security.UriSubjectAlternativeNames.Read(leaf));
    }

    private static async Task<string> RunPythonAsync(string script, params string[] args)
    {
        var info = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(script);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        if (!File.Exists("/usr/bin/python3"))
        {
            throw new InvalidOperationException("This test needs /usr/bin/python3 with grpcio (Debian: apt-get install python3-grpcio).");
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        var output = await stdout;
        Assert.True(process.ExitCode == 0, $"python3 exited {process.ExitCode}:\n{output}\n{await stderr}");
        return output;
    }
}

using System.Diagnostics;
using Mesh.EndToEnd.Tests.Infrastructure;

namespace Mesh.EndToEnd.Tests;

/// <summary>
/// Zero trust as a user runs it: the standalone control plane (<c>--config DIR</c>, nothing else), a server app with
/// only <c>builder.AddMesh()</c> and two client apps with only <c>services.AddMesh()</c>, every option from
/// <c>Mesh__*</c> variables, checked from outside with curl and openssl.
/// </summary>
public sealed class MutualTlsEndToEndTests : IAsyncLifetime
{
    private const string Strict = """
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata:
          name: default
          namespace: default
        spec:
          mtls:
            mode: STRICT
        """;

    private const string Policies = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata:
          name: deny-admin
          namespace: default
        spec:
          selector:
            matchLabels:
              app: web
          action: DENY
          rules:
          - to:
            - operation:
                paths: ["/admin"]
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata:
          name: allow-client
          namespace: default
        spec:
          selector:
            matchLabels:
              app: web
          action: ALLOW
          rules:
          - from:
            - source:
                principals: ["cluster.local/ns/default/sa/client"]
        """;

    private readonly ProcessGroup _processes = new();
    private int _serverPort;
    private int _clientPort;
    private int _otherClientPort;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(20) };

    public async Task InitializeAsync()
    {
        Cli.Require("curl", "curl");
        Cli.Require("openssl", "openssl");
        await _processes.WriteConfigAsync("peer-authentication.yaml", Strict);
        await _processes.WriteConfigAsync("authorization.yaml", Policies);
        await _processes.StartControlPlaneAsync();
        var server = _processes.StartApp("web", Paths.TestServer, new Dictionary<string, string>
        {
            ["Mesh__ServiceName"] = "web",
            ["Mesh__ServicePort"] = "8080",
            ["Mesh__ServiceAccount"] = "web",
            ["Mesh__Labels__app"] = "web",
            ["Mesh__Security__Enabled"] = "true",
        });
        var client = StartClient("client");
        var other = StartClient("other");
        _serverPort = await server.WaitForListeningPortAsync(ProcessGroup.StartTimeout);
        _clientPort = await client.WaitForListeningPortAsync(ProcessGroup.StartTimeout);
        _otherClientPort = await other.WaitForListeningPortAsync(ProcessGroup.StartTimeout);
    }

    [Fact]
    public async Task Strict_ThenPermissive_AsSeenByMeshedClientsCurlAndOpenssl()
    {
        // The allowed client reaches the server over mTLS once the server's registration and certificate are in.
        var hello = await EventuallyAsync(_clientPort, "http://web:8080/hello", static r => r.StartsWith("200 ", StringComparison.Ordinal));
        Assert.Equal("200 web /hello HTTP/1.1", hello);
        Assert.Equal("403 RBAC: access denied", await CallAsync(_clientPort, "http://web:8080/admin"));
        Assert.Equal("403 RBAC: access denied", await EventuallyAsync(_otherClientPort, "http://web:8080/hello", static r => !r.StartsWith("error", StringComparison.Ordinal)));

        // From outside the mesh: plaintext and TLS without a client certificate get no HTTP response at all.
        var plain = await Cli.RunAsync("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", $"http://127.0.0.1:{_serverPort}/hello");
        Assert.True(plain.ExitCode != 0 && plain.Stdout == "000", "plaintext under STRICT got an answer: " + plain);
        var noCertificate = await Cli.RunAsync("curl", "-sS", "-k", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", $"https://127.0.0.1:{_serverPort}/hello");
        Assert.True(noCertificate.ExitCode != 0 && noCertificate.Stdout == "000", "TLS without a client certificate got an answer: " + noCertificate);

        // The certificate the server presents names exactly its SPIFFE identity.
        var san = await Cli.RunAsync("bash", "-c",
            $"openssl s_client -connect 127.0.0.1:{_serverPort} </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName");
        Assert.True(san.ExitCode == 0, "openssl could not read the server certificate: " + san);
        var names = san.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(static l => !l.StartsWith("X509v3", StringComparison.Ordinal)).ToList();
        Assert.Equal(new[] { "URI:spiffe://cluster.local/ns/default/sa/web" }, names);

        // PERMISSIVE while everything runs: plaintext now reaches the policy, which refuses a caller with no identity.
        await _processes.WriteConfigAsync("peer-authentication.yaml", Strict.Replace("STRICT", "PERMISSIVE", StringComparison.Ordinal));
        var clock = Stopwatch.StartNew();
        CliResult permissive;
        do
        {
            await Task.Delay(200);
            permissive = await Cli.RunAsync("curl", "-sS", "-w", "\n%{http_code}", "--max-time", "10", $"http://127.0.0.1:{_serverPort}/hello");
        }
        while (!permissive.Stdout.EndsWith("\n403", StringComparison.Ordinal) && clock.Elapsed < TimeSpan.FromSeconds(15));
        Assert.Equal("RBAC: access denied\n403", permissive.Stdout);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15));

        // The meshed client still gets through, over mTLS.
        Assert.Equal("200 web /hello HTTP/1.1", await CallAsync(_clientPort, "http://web:8080/hello"));
    }

    private DotnetProcess StartClient(string serviceAccount) => _processes.StartApp(serviceAccount, Paths.TestClient, new Dictionary<string, string>
    {
        ["Mesh__ServiceAccount"] = serviceAccount,
        ["Mesh__Labels__app"] = serviceAccount,
        ["Mesh__Security__Enabled"] = "true",
    });

    private async Task<string> CallAsync(int clientPort, string url)
    {
        using var response = await _http.GetAsync($"http://127.0.0.1:{clientPort}/call?url={Uri.EscapeDataString(url)}");
        return await response.Content.ReadAsStringAsync();
    }

    private async Task<string> EventuallyAsync(int clientPort, string url, Func<string, bool> done)
    {
        var clock = Stopwatch.StartNew();
        string last;
        do
        {
            last = await CallAsync(clientPort, url);
            if (done(last))
            {
                return last;
            }

            await Task.Delay(250);
        }
        while (clock.Elapsed < TimeSpan.FromSeconds(30));

        Assert.Fail($"GET {url} from port {clientPort} never succeeded within 30 s; last answer: {last}\n{_processes.Logs()}");
        return last;
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _processes.DisposeAsync();
    }
}

using System.Globalization;
using System.Text;
using Grpc.Core;
using Grpc.Net.Client;
using Mesh.ControlPlane;
using Mesh.Sdk.FunctionalTests.Grpc.Greeter;
using Mesh.Sdk.FunctionalTests.Infrastructure;
using Mesh.Sdk.Grpc;
using Mesh.Sdk.LoadBalancing;
using Mesh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.FunctionalTests.Security;

/// <summary>
/// Outbound Istio mutual TLS end to end: the real control plane turns Istio YAML (DestinationRule <c>tls.mode</c>,
/// WorkloadEntry service accounts and the <c>security.istio.io/tlsMode</c> label) into clusters, a meshed client with
/// <c>Mesh:Security:Enabled</c> (certificate files in the <c>file_watcher</c> layout, issued by a test CA for
/// <c>sa/productpage</c>) sends HttpClient and <c>xds:///</c> gRPC calls, and real Kestrel workloads requiring mutual
/// TLS report the identity they saw.
/// </summary>
public sealed class OutboundMtlsTests : IAsyncLifetime
{
    private const int ServicePort = 9080;
    private static int s_services;

    private readonly CapturingLoggerProvider _logs = new();
    private readonly List<MtlsWorkload> _workloads = [];
    private TestPki _pki = null!;
    private TestPki _foreign = null!;
    private string _directory = null!;
    private string _certificates = null!;
    private MeshControlPlane _controlPlane = null!;
    private ILoggerFactory _controlPlaneLogs = null!;
    private ServiceProvider _client = null!;
    private MeshRuntime _runtime = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _pki = TestPki.Create("mesh test root");
        _foreign = TestPki.Create("foreign root");
        _directory = Directory.CreateTempSubdirectory("mesh-mtls-").FullName;
        _certificates = Path.Combine(_directory, "certs");
        _pki.WriteFiles(_certificates, _pki.Issue(TestPki.Spiffe("productpage"), TimeSpan.FromHours(1)));
        var config = Path.Combine(_directory, "config");
        Directory.CreateDirectory(config);
        _controlPlaneLogs = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Warning).AddProvider(_logs));
        _controlPlane = new MeshControlPlane(new MeshControlPlaneOptions
        {
            ConfigDirectory = config,
            XdsAddress = "127.0.0.1",
            XdsPort = 0,
            PushDebounce = TimeSpan.FromMilliseconds(20),
            ConfigDebounce = TimeSpan.FromMilliseconds(50),
            LoggerFactory = _controlPlaneLogs,
        });
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _controlPlane.StartAsync(cts.Token);
        _client = MeshHarness.CreateClient(_controlPlane.XdsPort, _logs, o =>
        {
            o.Security.Enabled = true;
            o.Security.CertificateDirectory = _certificates;
            o.Security.FileRefreshInterval = TimeSpan.FromMilliseconds(200);
        });
        // No host runs here: the certificate source is started as WorkloadCertificateHostedService would.
        _client.GetRequiredService<Mesh.Sdk.Security.WorkloadCertificateSource>().Start();
        _runtime = _client.GetRequiredService<MeshRuntime>();
        _http = _client.GetRequiredService<IHttpClientFactory>().CreateClient("functional");
        _http.Timeout = TimeSpan.FromSeconds(20);
    }

    public async Task DisposeAsync()
    {
        _http?.Dispose();
        if (_client is not null)
        {
            await _client.DisposeAsync();
        }

        foreach (var workload in _workloads)
        {
            await workload.DisposeAsync();
        }

        if (_controlPlane is not null)
        {
            await _controlPlane.DisposeAsync();
        }

        _controlPlaneLogs?.Dispose();
        _pki?.Dispose();
        _foreign?.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A temp folder left behind is harmless.
        }
    }

    [Fact]
    public async Task IstioMutual_HttpClient_SpeaksMtls_AndTheServerSeesTheClientSpiffeId()
    {
        var workload = await StartWorkloadAsync(_pki.Issue(TestPki.Spiffe("reviews"), TimeSpan.FromHours(1)));
        var service = await ApplyAsync(workload, tlsMode: "ISTIO_MUTUAL", serviceAccount: "reviews", expected: UpstreamTransport.IstioMutual);

        var answers = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            answers.Add(await _http.GetStringAsync(Url(service)));
        }

        Assert.Equal(Enumerable.Repeat($"tls=True peer={TestPki.Spiffe("productpage")} protocol=HTTP/1.1", 3), answers);
        Assert.Equal([TestPki.Spiffe("productpage")], workload.Handshakes.Distinct());

        // HTTP/2 requests negotiate h2 by ALPN on the same endpoint.
        using var request = new HttpRequestMessage(HttpMethod.Get, Url(service)) { Version = new Version(2, 0), VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        using var response = await _http.SendAsync(request);
        Assert.Equal($"tls=True peer={TestPki.Spiffe("productpage")} protocol=HTTP/2", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task IstioMutual_XdsGrpcChannel_SpeaksMtlsOverHttp2()
    {
        var workload = await StartWorkloadAsync(_pki.Issue(TestPki.Spiffe("reviews"), TimeSpan.FromHours(1)));
        var service = await ApplyAsync(workload, tlsMode: "ISTIO_MUTUAL", serviceAccount: "reviews", expected: UpstreamTransport.IstioMutual, protocol: "GRPC");
        using var channel = GrpcChannel.ForAddress($"xds:///{service}:{ServicePort}", new GrpcChannelOptions().UseMesh(_client));
        var client = new Greeter.GreeterClient(channel);

        var replies = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var reply = await client.SayHelloAsync(new HelloRequest { Name = "mtls" }, deadline: DateTime.UtcNow.AddSeconds(20));
            replies.Add($"{reply.Method} {reply.Workload} {reply.Version}");
        }

        Assert.Equal(Enumerable.Repeat($"tls {TestPki.Spiffe("productpage")} HTTP/2", 3), replies);
    }

    [Fact]
    public async Task AutoMtls_WorkloadLabelledTlsModeIstio_GetsMtls_WithoutDestinationRuleTls()
    {
        var workload = await StartWorkloadAsync(_pki.Issue(TestPki.Spiffe("reviews"), TimeSpan.FromHours(1)));
        var service = await ApplyAsync(workload, tlsMode: null, serviceAccount: "reviews", expected: UpstreamTransport.IstioMutual, tlsModeLabel: true);

        Assert.Equal($"tls=True peer={TestPki.Spiffe("productpage")} protocol=HTTP/1.1", await _http.GetStringAsync(Url(service)));
    }

    [Fact]
    public async Task AutoMtls_WorkloadWithoutLabel_StaysPlaintext()
    {
        var workload = await StartWorkloadAsync(_pki.Issue(TestPki.Spiffe("reviews"), TimeSpan.FromHours(1)));
        var service = await ApplyAsync(workload, tlsMode: null, serviceAccount: "reviews", expected: UpstreamTransport.Plaintext, plaintextPort: true);

        Assert.Equal("tls=False peer=none protocol=HTTP/1.1", await _http.GetStringAsync(Url(service)));
    }

    [Fact]
    public async Task DestinationRuleDisable_OverridesTheTlsModeLabel_Plaintext()
    {
        var workload = await StartWorkloadAsync(_pki.Issue(TestPki.Spiffe("reviews"), TimeSpan.FromHours(1)));
        var service = await ApplyAsync(workload, tlsMode: "DISABLE", serviceAccount: "reviews", expected: UpstreamTransport.Plaintext, plaintextPort: true, tlsModeLabel: true);

        Assert.Equal("tls=False peer=none protocol=HTTP/1.1", await _http.GetStringAsync(Url(service)));
    }

    [Fact]
    public async Task ForeignRoot_IsRefused_NamingClusterEndpointAndIssuer()
    {
        var workload = await StartWorkloadAsync(_foreign.Issue(TestPki.Spiffe("reviews"), TimeSpan.FromHours(1)));
        var service = await ApplyAsync(workload, tlsMode: "ISTIO_MUTUAL", serviceAccount: "reviews", expected: UpstreamTransport.IstioMutual);

        var message = await RefusalAsync(service);

        Assert.Contains($"Refused the mesh mTLS connection to endpoint '127.0.0.1:{workload.TlsPort}' of cluster '{Cluster(service)}'", message, StringComparison.Ordinal);
        Assert.Contains($"the server presented '{TestPki.Spiffe("reviews")}', whose certificate does not chain to the mesh roots (issuer 'CN=foreign root': a foreign root)", message, StringComparison.Ordinal);
        Assert.Equal(0, workload.Requests);
    }

    [Fact]
    public async Task WrongSan_IsRefused_NamingExpectedAndPresentedIdentity()
    {
        var workload = await StartWorkloadAsync(_pki.Issue(TestPki.Spiffe("ratings"), TimeSpan.FromHours(1)));
        var service = await ApplyAsync(workload, tlsMode: "ISTIO_MUTUAL", serviceAccount: "reviews", expected: UpstreamTransport.IstioMutual);

        var message = await RefusalAsync(service);

        Assert.Contains(
            $"Refused the mesh mTLS connection to endpoint '127.0.0.1:{workload.TlsPort}' of cluster '{Cluster(service)}': the server presented '{TestPki.Spiffe("ratings")}', expected one of '{TestPki.Spiffe("reviews")}'.",
            message, StringComparison.Ordinal);
        Assert.Equal(0, workload.Requests);

        // gRPC sees the same refusal, as UNAVAILABLE.
        using var channel = GrpcChannel.ForAddress($"xds:///{service}:{ServicePort}", new GrpcChannelOptions().UseMesh(_client));
        var error = await Assert.ThrowsAsync<RpcException>(() => new Greeter.GreeterClient(channel).SayHelloAsync(new HelloRequest(), deadline: DateTime.UtcNow.AddSeconds(20)).ResponseAsync);
        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Contains($"presented '{TestPki.Spiffe("ratings")}', expected one of '{TestPki.Spiffe("reviews")}'", error.Status.Detail + error.Status.DebugException, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ExpiredServerCertificate_IsRefused_NamingItsValidity()
    {
        var expired = _pki.Issue(TestPki.Spiffe("reviews"), DateTimeOffset.UtcNow.AddHours(-2), DateTimeOffset.UtcNow.AddHours(-1));
        var workload = await StartWorkloadAsync(expired);
        var service = await ApplyAsync(workload, tlsMode: "ISTIO_MUTUAL", serviceAccount: "reviews", expected: UpstreamTransport.IstioMutual);

        var message = await RefusalAsync(service);

        Assert.Contains(
            $"the server presented '{TestPki.Spiffe("reviews")}', whose certificate is not valid now (valid from {expired.NotBefore.ToUniversalTime():u} to {expired.NotAfter.ToUniversalTime():u}; expired or not yet valid)",
            message, StringComparison.Ordinal);
        Assert.Equal(0, workload.Requests);
    }

    [Fact]
    public async Task RefusedEndpoint_IsAConnectFailure_RetriedOnAnotherHost_AndEjectedByOutlierDetection()
    {
        var impostor = await StartWorkloadAsync(_pki.Issue(TestPki.Spiffe("ratings"), TimeSpan.FromHours(1)));
        var good = await StartWorkloadAsync(_pki.Issue(TestPki.Spiffe("reviews"), TimeSpan.FromHours(1)));
        var service = "mtls" + Interlocked.Increment(ref s_services).ToString(CultureInfo.InvariantCulture);
        var host = service + ".default.svc.cluster.local";
        // No VirtualService: istiod's default route retries connect-failure twice on other hosts (previous_hosts).
        IstioYaml.WriteAtomically(Path.Combine(_directory, "config"), service + ".yaml", $$"""
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: {{service}}, namespace: default}
            spec:
              hosts: [{{host}}]
              location: MESH_INTERNAL
              ports: [{number: {{ServicePort}}, name: http, protocol: HTTP}]
              resolution: STATIC
              workloadSelector:
                labels:
                  app: {{service}}
            ---
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: {{service}}-impostor, namespace: default}
            spec:
              address: 127.0.0.1
              serviceAccount: reviews
              ports:
                http: {{impostor.TlsPort}}
              labels:
                app: {{service}}
            ---
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: {{service}}-good, namespace: default}
            spec:
              address: 127.0.0.1
              serviceAccount: reviews
              ports:
                http: {{good.TlsPort}}
              labels:
                app: {{service}}
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: {{service}}, namespace: default}
            spec:
              host: {{host}}
              trafficPolicy:
                tls: {mode: ISTIO_MUTUAL}
                outlierDetection: {consecutive5xxErrors: 2, interval: 1s, baseEjectionTime: 60s, maxEjectionPercent: 100}
            """);
        await WaitForClusterAsync(service, UpstreamTransport.IstioMutual, endpoints: 2);

        var answers = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            answers.Add(await _http.GetStringAsync(Url(service)));
        }

        Assert.Equal(Enumerable.Repeat($"tls=True peer={TestPki.Spiffe("productpage")} protocol=HTTP/1.1", 20), answers);
        Assert.Equal((0, 20), (impostor.Requests, good.Requests));
        Assert.True(_runtime.Clusters.TryGetCluster(Cluster(service), out var cluster));
        var states = cluster.LoadBalancer.Endpoints.All.ToDictionary(e => e.Port, e => e.State.Outlier.IsEjected);
        Assert.Equal(new Dictionary<int, bool> { [impostor.TlsPort] = true, [good.TlsPort] = false }, states);
    }

    [Fact]
    public async Task Rotation_ShortLivedCertificates_SteadyHttpAndGrpcCalls_NoFailure()
    {
        var workload = await StartWorkloadAsync(_pki.Issue(TestPki.Spiffe("reviews"), TimeSpan.FromSeconds(6)));
        // A pool keeps connections while they are in use; a connection lifetime makes new handshakes happen during the run.
        var service = await ApplyAsync(workload, tlsMode: "ISTIO_MUTUAL", serviceAccount: "reviews", expected: UpstreamTransport.IstioMutual,
            protocol: "HTTP", connectionPool: "tcp:\n  maxConnectionDuration: 1s\n");
        using var channel = GrpcChannel.ForAddress($"xds:///{service}:{ServicePort}", new GrpcChannelOptions().UseMesh(_client));
        var grpc = new Greeter.GreeterClient(channel);
        var certificates = _client.GetRequiredService<Mesh.Sdk.Security.WorkloadCertificateSource>();
        var seenClientCertificates = new HashSet<string>(StringComparer.Ordinal);
        var failures = new List<string>();
        var (http, calls) = (0, 0);
        var end = DateTime.UtcNow + TimeSpan.FromSeconds(9);
        var nextRotation = DateTime.UtcNow + TimeSpan.FromSeconds(1.5);
        var rotations = 0;
        while (DateTime.UtcNow < end)
        {
            if (DateTime.UtcNow >= nextRotation)
            {
                // Both sides get certificates of 4 s lifetime, every 1.5 s: old ones expire during the run.
                _pki.WriteFiles(_certificates, _pki.Issue(TestPki.Spiffe("productpage"), DateTimeOffset.UtcNow.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(4)));
                workload.ServerCertificate = _pki.Issue(TestPki.Spiffe("reviews"), DateTimeOffset.UtcNow.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(4));
                rotations++;
                nextRotation = DateTime.UtcNow + TimeSpan.FromSeconds(1.5);
            }

            try
            {
                var answer = await _http.GetStringAsync(Url(service));
                http++;
                if (!answer.StartsWith("tls=True peer=" + TestPki.Spiffe("productpage"), StringComparison.Ordinal))
                {
                    failures.Add("http: " + answer);
                }

                var reply = await grpc.SayHelloAsync(new HelloRequest(), deadline: DateTime.UtcNow.AddSeconds(10));
                calls++;
                if (reply.Method != "tls")
                {
                    failures.Add("grpc: " + reply);
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or RpcException or TaskCanceledException)
            {
                failures.Add(ex.GetType().Name + ": " + ex.Message);
            }

            if (certificates.Current is { } current)
            {
                seenClientCertificates.Add(current.Certificate.Thumbprint);
            }

            await Task.Delay(20);
        }

        Assert.True(failures.Count == 0, string.Join("\n", failures) + "\n" + _logs.Dump());
        Assert.True(rotations >= 5, $"rotations: {rotations}");
        Assert.True(seenClientCertificates.Count >= 4, $"client certificates in force during the run: {seenClientCertificates.Count}");
        Assert.True(http >= 50 && calls >= 50, $"http {http}, grpc {calls}");
    }

    private static string Url(string service) => $"http://{service}.default.svc.cluster.local:{ServicePort}/identity";

    private static string Cluster(string service) => $"outbound|{ServicePort}||{service}.default.svc.cluster.local";

    private async Task<string> RefusalAsync(string service)
    {
        var error = await Assert.ThrowsAsync<HttpRequestException>(() => _http.GetStringAsync(Url(service)));
        return error.Message + " | " + error.InnerException?.Message;
    }

    private async Task<MtlsWorkload> StartWorkloadAsync(System.Security.Cryptography.X509Certificates.X509Certificate2 serverCertificate)
    {
        var workload = await MtlsWorkload.StartAsync(serverCertificate, _pki.Root);
        _workloads.Add(workload);
        return workload;
    }

    /// <summary>
    /// Writes a service with one workload (its TLS port, or its plaintext port), waits until the client's cluster has the
    /// endpoint with <paramref name="expected"/> transport, and returns the service name.
    /// </summary>
    private async Task<string> ApplyAsync(MtlsWorkload workload, string? tlsMode, string serviceAccount, UpstreamTransport expected,
        string protocol = "HTTP", bool plaintextPort = false, bool tlsModeLabel = false, string? connectionPool = null)
    {
        var service = "mtls" + Interlocked.Increment(ref s_services).ToString(CultureInfo.InvariantCulture);
        var host = service + ".default.svc.cluster.local";
        var yaml = new StringBuilder().Append(CultureInfo.InvariantCulture, $"""
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata:
              name: {service}
              namespace: default
            spec:
              hosts:
              - {host}
              location: MESH_INTERNAL
              ports:
              - number: {ServicePort}
                name: {protocol.ToLowerInvariant()}
                protocol: {protocol}
              resolution: STATIC
              workloadSelector:
                labels:
                  app: {service}
            ---
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata:
              name: {service}-1
              namespace: default
            spec:
              address: 127.0.0.1
              serviceAccount: {serviceAccount}
              ports:
                {protocol.ToLowerInvariant()}: {(plaintextPort ? workload.PlainPort : workload.TlsPort)}
              labels:
                app: {service}

            """);
        if (tlsModeLabel)
        {
            yaml.Append("    security.istio.io/tlsMode: istio\n");
        }

        if (tlsMode is not null || connectionPool is not null)
        {
            yaml.Append(CultureInfo.InvariantCulture, $"""
                ---
                apiVersion: networking.istio.io/v1
                kind: DestinationRule
                metadata:
                  name: {service}
                  namespace: default
                spec:
                  host: {host}
                  trafficPolicy:

                """);
            if (tlsMode is not null)
            {
                yaml.Append(CultureInfo.InvariantCulture, $"    tls:\n      mode: {tlsMode}\n");
            }

            if (connectionPool is not null)
            {
                yaml.Append("    connectionPool:\n");
                foreach (var line in connectionPool.Split('\n', StringSplitOptions.RemoveEmptyEntries))
                {
                    yaml.Append("      ").Append(line).Append('\n');
                }
            }
        }

        IstioYaml.WriteAtomically(Path.Combine(_directory, "config"), service + ".yaml", yaml.ToString());
        await WaitForClusterAsync(service, expected, endpoints: 1);
        return service;
    }

    /// <summary>Waits until the client's cluster of <paramref name="service"/> has <paramref name="endpoints"/> endpoints, all with <paramref name="expected"/> transport.</summary>
    private async Task WaitForClusterAsync(string service, UpstreamTransport expected, int endpoints)
    {
        var host = service + ".default.svc.cluster.local";
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        try
        {
            await _runtime.ResolveListenerAsync(host, ServicePort, cts.Token);
        }
        catch (TimeoutException)
        {
        }

        var cluster = Cluster(service);
        while (!(_runtime.Clusters.TryGetCluster(cluster, out var runtime)
            && runtime.LoadBalancer.Endpoints.All.Count == endpoints
            && runtime.LoadBalancer.Endpoints.All.All(e => e.Transport.Kind == expected)))
        {
            if (cts.IsCancellationRequested)
            {
                throw new TimeoutException($"Cluster '{cluster}' did not reach the client with {endpoints} {expected} endpoints.\n{_logs.Dump()}\nconfig errors: {string.Join("; ", _controlPlane.ConfigErrors)}");
            }

            await Task.Delay(10);
        }
    }
}

using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using BenchmarkDotNet.Attributes;
using Envoy.Config.Core.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Envoy.Type.Matcher.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.Http;
using Mesh.Sdk.LoadBalancing;
using Mesh.Sdk.Resilience;
using Mesh.Sdk.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.Benchmarks.Security;

/// <summary>
/// The cost of mesh mTLS per request over real loopback Kestrel: the same GET (a 2-byte answer) through the SDK's
/// endpoint pool (<see cref="MeshTransports.CreateHandler(ConnectionPoolSettings, MeshEndpoint?, string, UpstreamMutualTls?)"/>)
/// in plaintext and in Istio mutual TLS (ECDSA P-256 certificates from a test root, SAN checked), over kept-alive
/// HTTP/1.1 and HTTP/2 connections; and one row that makes a new mTLS connection per request (the handshake).
/// </summary>
[MemoryDiagnoser]
public class MtlsBenchmarks
{
    private const string ClusterName = "outbound|9080||reviews.default.svc.cluster.local";
    private const string ServerId = "spiffe://cluster.local/ns/default/sa/reviews";

    private WebApplication _server = null!;
    private StaticCertificateSource _certificates = null!;
    private UpstreamMutualTls _mutualTls = null!;
    private ConnectionPoolSettings _settings = null!;
    private MeshEndpoint _mtlsEndpoint = null!;
    private HttpMessageInvoker _plain11 = null!;
    private HttpMessageInvoker _plain2 = null!;
    private HttpMessageInvoker _mtls11 = null!;
    private HttpMessageInvoker _mtls2 = null!;
    private Uri _uri = null!;

    [GlobalSetup]
    public void Setup()
    {
        using var rootKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var rootRequest = new CertificateRequest("CN=bench root", rootKey, HashAlgorithmName.SHA256);
        rootRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        rootRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        var now = DateTimeOffset.UtcNow;
        using var root = rootRequest.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));
        var serverCertificate = Issue(root, ServerId);
        var clientCertificate = Issue(root, "spiffe://cluster.local/ns/default/sa/productpage");

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AllowAlternateSchemes = true;
            k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http1);
            k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http2);
            k.Listen(IPAddress.Loopback, 0, o =>
            {
                o.Protocols = HttpProtocols.Http1AndHttp2;
                o.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificate = serverCertificate,
                    ClientCertificateMode = ClientCertificateMode.RequireCertificate,
                    ClientCertificateValidation = (_, _, _) => true,
                });
            });
        });
        _server = builder.Build();
        _server.MapGet("/", () => "ok");
        _server.StartAsync().GetAwaiter().GetResult();
        var ports = _server.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses
            .Select(a => new Uri(a)).ToArray();
        var plain1 = ports[0].Port;
        var plain2 = ports[1].Port;
        var tls = ports.Single(u => u.Scheme == "https").Port;

        _certificates = new StaticCertificateSource(new WorkloadCertificate(clientCertificate, [], [X509CertificateLoader.LoadCertificate(root.RawData)], "bench"));
        _certificates.Start();
        _certificates.WaitForCertificateAsync(CancellationToken.None).GetAwaiter().GetResult();
        _mutualTls = new UpstreamMutualTls(_certificates, TimeProvider.System);
        _settings = ConnectionPoolSettings.FromCluster(new Envoy.Config.Cluster.V3.Cluster { Name = ClusterName });
        _mtlsEndpoint = Endpoint(tls, EndpointTransport.Of(ClusterName, MutualSocket()));
        _plain11 = new HttpMessageInvoker(MeshTransports.CreateHandler(_settings, Endpoint(plain1, EndpointTransport.Plaintext), ClusterName, _mutualTls));
        _plain2 = new HttpMessageInvoker(MeshTransports.CreateHandler(_settings, Endpoint(plain2, EndpointTransport.Plaintext), ClusterName, _mutualTls));
        _mtls11 = new HttpMessageInvoker(MeshTransports.CreateHandler(_settings, _mtlsEndpoint, ClusterName, _mutualTls));
        _mtls2 = new HttpMessageInvoker(MeshTransports.CreateHandler(_settings, _mtlsEndpoint, ClusterName, _mutualTls));
        _uri = new Uri("http://reviews:9080/");

        foreach (var (invoker, version) in new[] { (_plain11, 1), (_plain2, 2), (_mtls11, 1), (_mtls2, 2) })
        {
            if (Send(invoker, version).GetAwaiter().GetResult() != 2)
            {
                throw new InvalidOperationException("The benchmark server did not answer 'ok'.");
            }
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _plain11.Dispose();
        _plain2.Dispose();
        _mtls11.Dispose();
        _mtls2.Dispose();
        _server.StopAsync().GetAwaiter().GetResult();
        _certificates.Dispose();
    }

    [Benchmark(Baseline = true)]
    public Task<int> PlaintextHttp11() => Send(_plain11, 1);

    [Benchmark]
    public Task<int> MtlsHttp11() => Send(_mtls11, 1);

    [Benchmark]
    public Task<int> PlaintextHttp2() => Send(_plain2, 2);

    [Benchmark]
    public Task<int> MtlsHttp2() => Send(_mtls2, 2);

    /// <summary>A new pool per request: TCP connect, the full mTLS handshake (both certificates checked), one HTTP/1.1 request.</summary>
    [Benchmark]
    public async Task<int> MtlsNewConnectionHttp11()
    {
        using var invoker = new HttpMessageInvoker(MeshTransports.CreateHandler(_settings, _mtlsEndpoint, ClusterName, _mutualTls));
        return await Send(invoker, 1);
    }

    private async Task<int> Send(HttpMessageInvoker invoker, int version)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, _uri)
        {
            Version = version == 2 ? HttpVersion.Version20 : HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        using var response = await invoker.SendAsync(request, CancellationToken.None);
        var body = await response.Content.ReadAsByteArrayAsync();
        return body.Length;
    }

    private static MeshEndpoint Endpoint(int port, EndpointTransport transport)
        => new("127.0.0.1", port, 1, HealthStatus.Healthy, string.Empty, null, new Locality(), 0, new EndpointState()) { Transport = transport };

    private static TransportSocket MutualSocket() => new()
    {
        Name = "envoy.transport_sockets.tls",
        TypedConfig = Any.Pack(new UpstreamTlsContext
        {
            CommonTlsContext = new CommonTlsContext
            {
                TlsCertificateProviderInstance = new CertificateProviderPluginInstance { InstanceName = "default", CertificateName = "default" },
                CombinedValidationContext = new CommonTlsContext.Types.CombinedCertificateValidationContext
                {
                    DefaultValidationContext = new CertificateValidationContext
                    {
                        CaCertificateProviderInstance = new CertificateProviderPluginInstance { InstanceName = "default", CertificateName = "ROOTCA" },
                        MatchSubjectAltNames = { new StringMatcher { Exact = ServerId } },
                    },
                },
            },
        }),
    };

    private static X509Certificate2 Issue(X509Certificate2 root, string spiffeId)
    {
        using var rootKey = root.GetECDsaPrivateKey()!;
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName(string.Empty), key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri(spiffeId));
        request.CertificateExtensions.Add(san.Build(critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false));
        var now = DateTimeOffset.UtcNow;
        using var leaf = request.Create(root.SubjectName, X509SignatureGenerator.CreateForECDsa(rootKey), now.AddMinutes(-5), now.AddDays(1), [1, 2, 3, 4, 5, 6, 7, 8]);
        using var withKey = leaf.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>A certificate source that publishes one certificate and keeps it.</summary>
    private sealed class StaticCertificateSource(WorkloadCertificate certificate) : WorkloadCertificateSource
    {
        public override string Description => "a fixed certificate";

        protected override Task RunAsync(CancellationToken stopping)
        {
            Publish(certificate);
            return Task.CompletedTask;
        }
    }
}

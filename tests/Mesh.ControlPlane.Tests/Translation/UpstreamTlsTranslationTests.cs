using Envoy.Config.Cluster.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Google.Protobuf;
using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Registry;
using Mesh.ControlPlane.Translation;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.ControlPlane.Tests.Translation;

/// <summary>
/// DestinationRule <c>tls.mode</c> → the Cluster's transport socket, as istiod's grpcgen (<c>cds.go applyTLS</c>) writes it
/// for proxyless clients: ISTIO_MUTUAL adds one; without <c>tls</c>, auto-mTLS as istiod's sidecar cluster builder writes
/// it (<c>transport_socket_matches</c> and EDS metadata) when the service has workloads labelled
/// <c>security.istio.io/tlsMode: istio</c>; DISABLE and unlabelled workloads get no TLS.
/// </summary>
public class UpstreamTlsTranslationTests
{
    private const string Fqdn = "reviews.default.svc.cluster.local";

    // reviews on two ports; v1 runs as 'reviews', v2 as 'reviews-v2', a third endpoint has no account.
    private const string Service = """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: reviews}
        spec:
          hosts: [reviews.default.svc.cluster.local]
          ports:
          - {number: 9080, name: http, protocol: HTTP}
          - {number: 9090, name: admin, protocol: HTTP}
          resolution: STATIC
          workloadSelector: {labels: {app: reviews}}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: reviews-v2}
        spec: {address: 127.0.0.2, labels: {app: reviews, version: v2}, serviceAccount: reviews-v2}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: reviews-v1}
        spec: {address: 127.0.0.1, labels: {app: reviews, version: v1}, serviceAccount: reviews}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: reviews-v3}
        spec: {address: 127.0.0.3, labels: {app: reviews, version: v3}}
        ---
        """;

    private static readonly string[] AllIdentities = ["spiffe://cluster.local/ns/default/sa/reviews", "spiffe://cluster.local/ns/default/sa/reviews-v2"];

    private static XdsSnapshot Translate(string yaml, string trustDomain = "cluster.local")
    {
        var store = new ConfigStore("default", NullLogger.Instance);
        store.Apply("/cfg/test.yaml", yaml);
        Assert.Empty(store.LastErrors);
        using var registry = new ServiceRegistry(TimeProvider.System, TimeSpan.FromSeconds(10), "cluster.local", NullLogger.Instance);
        registry.UpdateConfig(store.Current);
        return new XdsTranslator("cluster.local", XdsTranslator.DefaultRootNamespace, trustDomain).Translate(store.Current, registry.Current, 1);
    }

    private static Cluster ClusterOf(XdsSnapshot snapshot, uint port, string subset = "") =>
        snapshot.All(ResourceTypes.Cluster)[$"outbound|{port}|{subset}|{Fqdn}"].Resource.Unpack<Cluster>();

    private static string Rule(string trafficPolicy) => "\n" + """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: reviews}
        spec:
          host: reviews
        """ + "\n" + trafficPolicy;

    /// <summary>The exact UpstreamTlsContext istiod's grpcgen writes, with <paramref name="sans"/> as exact matchers.</summary>
    private static void AssertIstioMutual(Cluster cluster, params string[] sans)
    {
        Assert.NotNull(cluster.TransportSocket);
        Assert.Equal("envoy.transport_sockets.tls", cluster.TransportSocket.Name);
        Assert.Equal("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", cluster.TransportSocket.TypedConfig.TypeUrl);
        var tls = cluster.TransportSocket.TypedConfig.Unpack<UpstreamTlsContext>();
        Assert.Equal(("", false), (tls.Sni, tls.AllowRenegotiation));
        var common = tls.CommonTlsContext;
        Assert.Equal(("default", "default"), (common.TlsCertificateProviderInstance.InstanceName, common.TlsCertificateProviderInstance.CertificateName));
        Assert.Equal(("default", "default"), (common.TlsCertificateCertificateProviderInstance.InstanceName, common.TlsCertificateCertificateProviderInstance.CertificateName));
        Assert.Empty(common.TlsCertificates);
        Assert.Empty(common.AlpnProtocols);
        var combined = common.CombinedValidationContext;
        Assert.Equal(("default", "ROOTCA"), (combined.ValidationContextCertificateProviderInstance.InstanceName, combined.ValidationContextCertificateProviderInstance.CertificateName));
        var validation = combined.DefaultValidationContext;
        Assert.Equal(("default", "ROOTCA"), (validation.CaCertificateProviderInstance.InstanceName, validation.CaCertificateProviderInstance.CertificateName));
        Assert.Equal(sans, validation.MatchSubjectAltNames.Select(m => m.Exact));
        Assert.All(validation.MatchSubjectAltNames, m => Assert.Equal(Envoy.Type.Matcher.V3.StringMatcher.MatchPatternOneofCase.Exact, m.MatchPatternCase));
        Assert.Empty(validation.MatchTypedSubjectAltNames);
    }

    [Fact]
    public void IstioMutual_EveryClusterOfTheRuleGetsTheUpstreamTlsContext_WithTheServiceAccountsOfTheServicesWorkloads()
    {
        var snapshot = Translate(Service + Rule("""
              trafficPolicy:
                tls: {mode: ISTIO_MUTUAL}
              subsets:
              - {name: v1, labels: {version: v1}}
              - {name: v2, labels: {version: v2}}
            """));

        // istiod's grpcgen takes push.ServiceAccounts(host, namespace): every account of the service, also on subset clusters.
        AssertIstioMutual(ClusterOf(snapshot, 9080), AllIdentities);
        AssertIstioMutual(ClusterOf(snapshot, 9090), AllIdentities);
        AssertIstioMutual(ClusterOf(snapshot, 9080, "v1"), AllIdentities);
        AssertIstioMutual(ClusterOf(snapshot, 9080, "v2"), AllIdentities);
    }

    [Fact]
    public void IstioMutual_SansUseTheControlPlanesTrustDomain()
    {
        var snapshot = Translate(Service + Rule("""
              trafficPolicy:
                tls: {mode: ISTIO_MUTUAL}
            """), trustDomain: "example.org");

        AssertIstioMutual(ClusterOf(snapshot, 9080), "spiffe://example.org/ns/default/sa/reviews", "spiffe://example.org/ns/default/sa/reviews-v2");
    }

    [Fact]
    public void IstioMutual_ServiceWithoutAccounts_HasTlsWithNoSanCheck()
    {
        var snapshot = Translate("""
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: reviews}
            spec:
              hosts: [reviews.default.svc.cluster.local]
              ports: [{number: 9080, name: http, protocol: HTTP}]
              resolution: STATIC
              endpoints: [{address: 127.0.0.1}]
            ---
            """ + Rule("""
              trafficPolicy:
                tls: {mode: ISTIO_MUTUAL}
            """));

        AssertIstioMutual(ClusterOf(snapshot, 9080));
    }

    [Fact]
    public void SubsetDisable_OverridesRuleIstioMutual_AndSubsetIstioMutual_OverridesNone()
    {
        var snapshot = Translate(Service + Rule("""
              trafficPolicy:
                tls: {mode: ISTIO_MUTUAL}
              subsets:
              - name: v1
                labels: {version: v1}
                trafficPolicy:
                  tls: {mode: DISABLE}
              - name: v2
                labels: {version: v2}
            """));

        Assert.Null(ClusterOf(snapshot, 9080, "v1").TransportSocket);
        AssertIstioMutual(ClusterOf(snapshot, 9080, "v2"), AllIdentities);
        AssertIstioMutual(ClusterOf(snapshot, 9080), AllIdentities);
    }

    [Fact]
    public void PortLevelTls_AppliesToThatPortOnly()
    {
        var snapshot = Translate(Service + Rule("""
              trafficPolicy:
                portLevelSettings:
                - port: {number: 9090}
                  tls: {mode: ISTIO_MUTUAL}
            """));

        Assert.Null(ClusterOf(snapshot, 9080).TransportSocket);
        AssertIstioMutual(ClusterOf(snapshot, 9090), AllIdentities);
    }

    [Fact]
    public void PortLevelDisable_TurnsOffTheRulesIstioMutualForThatPort()
    {
        var snapshot = Translate(Service + Rule("""
              trafficPolicy:
                tls: {mode: ISTIO_MUTUAL}
                portLevelSettings:
                - port: {number: 9090}
                  tls: {mode: DISABLE}
            """));

        AssertIstioMutual(ClusterOf(snapshot, 9080), AllIdentities);
        Assert.Null(ClusterOf(snapshot, 9090).TransportSocket);
    }

    [Theory]
    [InlineData("")]
    [InlineData("  trafficPolicy:\n    tls: {mode: DISABLE}\n")]
    [InlineData("  trafficPolicy:\n    tls: {mode: SIMPLE}\n")]
    [InlineData("  trafficPolicy:\n    tls: {mode: MUTUAL}\n")]
    public void NoIstioMutual_ClusterIsByteIdenticalToNoRuleAtAll(string trafficPolicy)
    {
        // No auto-mTLS either: the workloads' PeerAuthentication and tlsMode labels do not turn TLS on (grpcgen sends none).
        const string strict = """
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: default, namespace: istio-system}
            spec: {mtls: {mode: STRICT}}
            ---
            """;
        var bare = Translate(Service);
        var withRule = Translate(Service + "\n" + strict + Rule(trafficPolicy));
        foreach (var port in new uint[] { 9080, 9090 })
        {
            var cluster = ClusterOf(withRule, port);
            Assert.Null(cluster.TransportSocket);
            Assert.Equal(ClusterOf(bare, port).ToByteArray(), cluster.ToByteArray());
        }
    }

    [Fact]
    public void IstioMutual_ServiceEntrySubjectAltNames_JoinTheWorkloadsIdentities()
    {
        var snapshot = Translate(Service.Replace("  resolution: STATIC\n", "  resolution: STATIC\n  subjectAltNames: [spiffe://other.example/ns/x/sa/legacy, reviews.example.com]\n", StringComparison.Ordinal)
            + Rule("""
              trafficPolicy:
                tls: {mode: ISTIO_MUTUAL}
            """));

        AssertIstioMutual(ClusterOf(snapshot, 9080),
            "reviews.example.com", "spiffe://cluster.local/ns/default/sa/reviews", "spiffe://cluster.local/ns/default/sa/reviews-v2", "spiffe://other.example/ns/x/sa/legacy");
    }

    private const string LabelledService = """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: reviews}
        spec:
          hosts: [reviews.default.svc.cluster.local]
          ports:
          - {number: 9080, name: http, protocol: HTTP}
          resolution: STATIC
          workloadSelector: {labels: {app: reviews}}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: reviews-v1}
        spec: {address: 127.0.0.1, labels: {app: reviews, version: v1, security.istio.io/tlsMode: istio}, serviceAccount: reviews}
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: reviews-v2}
        spec: {address: 127.0.0.2, labels: {app: reviews, version: v2}, serviceAccount: reviews-v2}
        ---
        """;

    private static Envoy.Config.Endpoint.V3.ClusterLoadAssignment EndpointsOf(XdsSnapshot snapshot, uint port, string subset = "") =>
        snapshot.All(ResourceTypes.Endpoint)[$"outbound|{port}|{subset}|{Fqdn}"].Resource.Unpack<Envoy.Config.Endpoint.V3.ClusterLoadAssignment>();

    [Fact]
    public void AutoMtls_LabelledWorkload_ClusterGetsIstiodsTransportSocketMatches_AndTheEndpointItsMetadata()
    {
        var snapshot = Translate(LabelledService + Rule("""
              subsets:
              - {name: v1, labels: {version: v1}}
              - {name: v2, labels: {version: v2}}
            """));

        var cluster = ClusterOf(snapshot, 9080);
        Assert.Null(cluster.TransportSocket);
        Assert.Equal(["tlsMode-istio", "tlsMode-disabled"], cluster.TransportSocketMatches.Select(m => m.Name));
        var istio = cluster.TransportSocketMatches[0];
        Assert.Equal("{ \"tlsMode\": \"istio\" }", istio.Match.ToString());
        AssertIstioMutual(new Cluster { TransportSocket = istio.TransportSocket }, "spiffe://cluster.local/ns/default/sa/reviews", "spiffe://cluster.local/ns/default/sa/reviews-v2");
        var disabled = cluster.TransportSocketMatches[1];
        Assert.Empty(disabled.Match.Fields);
        Assert.Equal(("envoy.transport_sockets.raw_buffer", "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"),
            (disabled.TransportSocket.Name, disabled.TransportSocket.TypedConfig.TypeUrl));

        var metadata = EndpointsOf(snapshot, 9080).Endpoints.SelectMany(l => l.LbEndpoints)
            .ToDictionary(e => e.Endpoint.Address.SocketAddress.Address, e => e.Metadata?.ToString() ?? "none");
        Assert.Equal(new Dictionary<string, string>
        {
            ["127.0.0.1"] = "{ \"filterMetadata\": { \"envoy.transport_socket_match\": { \"tlsMode\": \"istio\" } } }",
            ["127.0.0.2"] = "none",
        }, metadata);

        // A subset without labelled workloads needs no matches: its cluster is what it was before auto-mTLS.
        Assert.Single(ClusterOf(snapshot, 9080, "v1").TransportSocketMatches, m => m.Name == "tlsMode-istio");
        Assert.Empty(ClusterOf(snapshot, 9080, "v2").TransportSocketMatches);
    }

    [Theory]
    [InlineData("DISABLE")]
    [InlineData("ISTIO_MUTUAL")]
    public void AutoMtls_ExplicitTlsMode_Wins(string mode)
    {
        var snapshot = Translate(LabelledService + Rule($$"""
              trafficPolicy:
                tls: {mode: {{mode}}}
            """));

        var cluster = ClusterOf(snapshot, 9080);
        Assert.Empty(cluster.TransportSocketMatches);
        if (mode == "DISABLE")
        {
            Assert.Null(cluster.TransportSocket);
        }
        else
        {
            AssertIstioMutual(cluster, "spiffe://cluster.local/ns/default/sa/reviews", "spiffe://cluster.local/ns/default/sa/reviews-v2");
        }
    }
}

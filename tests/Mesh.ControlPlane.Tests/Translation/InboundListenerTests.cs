using Envoy.Config.Listener.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Registry;
using Mesh.ControlPlane.Translation;
using Mesh.Xds;
using Microsoft.Extensions.Logging.Abstractions;
using RbacFilter = Envoy.Extensions.Filters.Http.Rbac.V3.RBAC;

namespace Mesh.ControlPlane.Tests.Translation;

/// <summary>
/// Inbound listeners as istiod's grpcgen (<c>pilot/pkg/networking/grpcgen/lds.go</c>) writes them, with the mTLS mode
/// composed as istiod's <c>ComposePeerAuthentication</c> (<c>pilot/pkg/security/authn/policy_applier.go</c>) does.
/// </summary>
public class InboundListenerTests
{
    private const string Name9080 = "xds.istio.io/grpc/lds/inbound/0.0.0.0:9080";

    // Mesh.Sdk's node (it sniffs TLS: PERMISSIVE is two chains for it).
    private static readonly ClientScope Reviews = new("default", new Dictionary<string, string> { ["app"] = "reviews" }) { SniffsTls = true };

    // A gRPC xDS server's node (PERMISSIVE is one plaintext chain for it, as istiod's grpcgen sends it).
    private static readonly ClientScope GrpcReviews = new("default", new Dictionary<string, string> { ["app"] = "reviews" });

    internal static XdsSnapshot Translate(string yaml, string rootNamespace = "istio-system")
    {
        var store = new ConfigStore("default", NullLogger.Instance);
        store.Apply("/cfg/test.yaml", yaml);
        Assert.Empty(store.LastErrors);
        using var registry = new ServiceRegistry(TimeProvider.System, TimeSpan.FromSeconds(10), "cluster.local", NullLogger.Instance);
        registry.UpdateConfig(store.Current);
        return new XdsTranslator("cluster.local", rootNamespace).Translate(store.Current, registry.Current, 3);
    }

    internal static Listener Inbound(XdsSnapshot snapshot, string name, ClientScope client)
    {
        var resource = snapshot.Find(ResourceTypes.Listener, name, client);
        Assert.NotNull(resource);
        Assert.Equal(name, resource.Name);
        return resource.Resource.Unpack<Listener>();
    }

    internal static HttpConnectionManager Hcm(Listener listener)
    {
        // PERMISSIVE listeners repeat the HCM in both chains; the last (plaintext) one is what gRPC servers use.
        var chain = listener.FilterChains[^1];
        var filter = Assert.Single(chain.Filters);
        return filter.TypedConfig.Unpack<HttpConnectionManager>();
    }

    /// <summary>STRICT: one mTLS chain; PERMISSIVE: a <c>tls</c> mTLS chain then a <c>raw_buffer</c> plaintext one; DISABLE: one plaintext chain.</summary>
    internal static string Mode(Listener listener) => listener.FilterChains.Count switch
    {
        1 when listener.FilterChains[0].TransportSocket is not null => "STRICT",
        1 => "DISABLE",
        2 when listener.FilterChains[0] is { TransportSocket: not null, FilterChainMatch.TransportProtocol: "tls", Name: "inbound-mtls" }
            && listener.FilterChains[1] is { TransportSocket: null, FilterChainMatch.TransportProtocol: "raw_buffer", Name: "inbound-plaintext" } => "PERMISSIVE",
        _ => "unexpected chains: " + string.Join(", ", listener.FilterChains.Select(c => c.Name)),
    };

    private static string PeerAuth(string ns, string mode, string? selector = null, string? portLevel = null) => $"""
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {"{"}name: pa-{ns}-{mode.ToLowerInvariant()}{(selector is null ? "" : "-sel")}, namespace: {ns}{"}"}
        spec:
        {(selector is null ? "" : $"  selector: {{matchLabels: {{{selector}}}}}\n")}  mtls: {"{"}mode: {mode}{"}"}
        {(portLevel is null ? "" : $"  portLevelMtls: {{{portLevel}}}\n")}---

        """;

    private static bool IsStrict(Listener listener) => Mode(listener) == "STRICT";

    [Fact]
    public void DisabledPort_OnePlaintextChain_WithIstiodsShape()
    {
        var listener = Inbound(Translate(PeerAuth("default", "DISABLE") + TestYaml.ReviewsServiceEntry), Name9080, Reviews);

        Assert.Equal(Name9080, listener.Name);
        Assert.Equal(("0.0.0.0", 9080u), (listener.Address.SocketAddress.Address, listener.Address.SocketAddress.PortValue));
        var chain = Assert.Single(listener.FilterChains);
        Assert.Equal("inbound-plaintext", chain.Name);
        Assert.Null(chain.TransportSocket);
        Assert.Null(chain.FilterChainMatch);
        Assert.Equal("inbound-hcmplaintext", Assert.Single(chain.Filters).Name);
        var hcm = Hcm(listener);
        Assert.Equal("inbound", hcm.RouteConfig.Name);
        var vhost = Assert.Single(hcm.RouteConfig.VirtualHosts);
        Assert.Equal(["*"], vhost.Domains);
        var route = Assert.Single(vhost.Routes);
        Assert.Equal("/", route.Match.Prefix);
        Assert.NotNull(route.NonForwardingAction);
        Assert.Equal([HttpFilterNames.Router], hcm.HttpFilters.Select(f => f.Name));
        Assert.Equal([XdsTypeUrls.Router], hcm.HttpFilters.Select(f => f.TypedConfig.TypeUrl));
        Assert.Null(listener.ApiListener);
    }

    [Fact]
    public void NoPolicies_GrpcServer_OnePlaintextChain_AsIstiodsGrpcgenSendsIt()
    {
        var listener = Inbound(Translate(TestYaml.ReviewsServiceEntry), Name9080, GrpcReviews);

        var chain = Assert.Single(listener.FilterChains);
        Assert.Equal(("inbound-plaintext", null), (chain.Name, chain.TransportSocket));
        Assert.Null(chain.FilterChainMatch);
    }

    [Fact]
    public void NoPolicies_MeshSdk_Permissive_TlsChainThenRawBufferChain_AsEnvoySidecarsGetThem()
    {
        var listener = Inbound(Translate(TestYaml.ReviewsServiceEntry), Name9080, Reviews);

        Assert.Equal(2, listener.FilterChains.Count);
        var (tls, plain) = (listener.FilterChains[0], listener.FilterChains[1]);
        Assert.Equal(("inbound-mtls", "tls", "inbound-hcmmtls"), (tls.Name, tls.FilterChainMatch.TransportProtocol, Assert.Single(tls.Filters).Name));
        Assert.True(tls.TransportSocket.TypedConfig.Unpack<DownstreamTlsContext>().RequireClientCertificate);
        Assert.Equal(("inbound-plaintext", "raw_buffer", "inbound-hcmplaintext"), (plain.Name, plain.FilterChainMatch.TransportProtocol, Assert.Single(plain.Filters).Name));
        Assert.Null(plain.TransportSocket);
        // Both chains carry the same HTTP filters and route.
        Assert.Equal(tls.Filters[0].TypedConfig.Unpack<HttpConnectionManager>(), plain.Filters[0].TypedConfig.Unpack<HttpConnectionManager>());
    }

    [Fact]
    public void MeshWideStrict_MtlsChain_WithIstiodsDownstreamTlsContext()
    {
        var listener = Inbound(Translate(PeerAuth("istio-system", "STRICT") + TestYaml.ReviewsServiceEntry), Name9080, Reviews);

        var chain = Assert.Single(listener.FilterChains);
        Assert.Equal("inbound-mtls", chain.Name);
        Assert.Equal("inbound-hcmmtls", Assert.Single(chain.Filters).Name);
        Assert.Equal("envoy.transport_sockets.tls", chain.TransportSocket.Name);
        Assert.Equal("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext", chain.TransportSocket.TypedConfig.TypeUrl);
        var tls = chain.TransportSocket.TypedConfig.Unpack<DownstreamTlsContext>();
        Assert.True(tls.RequireClientCertificate);
        Assert.Null(tls.RequireSni);
        var common = tls.CommonTlsContext;
        Assert.Equal(("default", "default"), (common.TlsCertificateProviderInstance.InstanceName, common.TlsCertificateProviderInstance.CertificateName));
        Assert.Equal(("default", "default"), (common.TlsCertificateCertificateProviderInstance.InstanceName, common.TlsCertificateCertificateProviderInstance.CertificateName));
        var validation = common.CombinedValidationContext;
        Assert.Equal(("default", "ROOTCA"), (validation.DefaultValidationContext.CaCertificateProviderInstance.InstanceName,
            validation.DefaultValidationContext.CaCertificateProviderInstance.CertificateName));
        Assert.Equal(("default", "ROOTCA"), (validation.ValidationContextCertificateProviderInstance.InstanceName,
            validation.ValidationContextCertificateProviderInstance.CertificateName));
        Assert.Empty(validation.DefaultValidationContext.MatchSubjectAltNames);
        Assert.Empty(common.TlsCertificates);
    }

    [Theory]
    // Scopes: mesh (root namespace, no selector) < namespace (no selector) < workload (selector); UNSET inherits.
    [InlineData("", "PERMISSIVE")]
    [InlineData("mesh:STRICT", "STRICT")]
    [InlineData("mesh:STRICT ns:DISABLE", "DISABLE")]
    [InlineData("mesh:STRICT ns:UNSET", "STRICT")]
    [InlineData("mesh:DISABLE ns:STRICT", "STRICT")]
    [InlineData("ns:STRICT wl:DISABLE", "DISABLE")]
    [InlineData("ns:DISABLE wl:STRICT", "STRICT")]
    [InlineData("ns:STRICT wl:UNSET", "STRICT")]
    [InlineData("ns:STRICT other:DISABLE", "STRICT")]
    [InlineData("mesh:DISABLE ns:UNSET", "DISABLE")]
    // PERMISSIVE is two chains; gRPC servers only ever match the raw_buffer one.
    [InlineData("mesh:PERMISSIVE", "PERMISSIVE")]
    [InlineData("mesh:STRICT wl:PERMISSIVE", "PERMISSIVE")]
    // A root-namespace policy with a selector is not mesh-wide: it selects workloads of the root namespace only.
    [InlineData("rootsel:STRICT", "PERMISSIVE")]
    // Another namespace's namespace-wide policy does not apply.
    [InlineData("otherns:STRICT", "PERMISSIVE")]
    public void PeerAuthenticationScopes_DecideTheMode(string policies, string mode)
    {
        var yaml = string.Concat(policies.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(p =>
        {
            var (scope, mode) = (p[..p.IndexOf(':')], p[(p.IndexOf(':') + 1)..]);
            return scope switch
            {
                "mesh" => PeerAuth("istio-system", mode),
                "ns" => PeerAuth("default", mode),
                "wl" => PeerAuth("default", mode, "app: reviews"),
                "other" => PeerAuth("default", mode, "app: ratings"),
                "rootsel" => PeerAuth("istio-system", mode, "app: reviews"),
                _ => PeerAuth("shop", mode),
            };
        }));

        var listener = Inbound(Translate(yaml + TestYaml.ReviewsServiceEntry), Name9080, Reviews);

        Assert.Equal(mode, Mode(listener));
    }

    [Theory]
    // Workload mode STRICT; port 9080 DISABLE, 9091 UNSET (inherits the workload's STRICT), 9093 PERMISSIVE, others the workload's.
    [InlineData("STRICT", 9080u, "DISABLE")]
    [InlineData("STRICT", 9090u, "STRICT")]
    [InlineData("STRICT", 9091u, "STRICT")]
    [InlineData("STRICT", 9093u, "PERMISSIVE")]
    // Workload mode UNSET under a DISABLE namespace: unlisted ports and 9091 inherit DISABLE, 9092 is STRICT.
    [InlineData("UNSET", 9090u, "DISABLE")]
    [InlineData("UNSET", 9091u, "DISABLE")]
    [InlineData("UNSET", 9092u, "STRICT")]
    public void PortLevelMtls_OverridesTheWorkloadMode_UnsetInheritsIt(string workloadMode, uint port, string mode)
    {
        var yaml = PeerAuth("default", "DISABLE")
            + PeerAuth("default", workloadMode, "app: reviews", "9080: {mode: DISABLE}, 9091: {mode: UNSET}, 9092: {mode: STRICT}, 9093: {mode: PERMISSIVE}")
            + TestYaml.ReviewsServiceEntry;

        var listener = Inbound(Translate(yaml), $"xds.istio.io/grpc/lds/inbound/0.0.0.0:{port}", Reviews);

        Assert.Equal(mode, Mode(listener));
    }

    [Theory]
    [InlineData("PERMISSIVE", "istio", false, "STRICT")]
    [InlineData("PERMISSIVE", "disabled", false, "DISABLE")]
    [InlineData("DISABLE", "istio", false, "DISABLE")]
    [InlineData("STRICT", "disabled", false, "STRICT")]
    // Mesh.Sdk (node user_agent_name "Mesh.Sdk") tells TLS from plaintext by the first bytes: the label changes nothing.
    [InlineData("PERMISSIVE", "istio", true, "PERMISSIVE")]
    [InlineData("STRICT", "istio", true, "STRICT")]
    public void TlsModeIstioLabel_MakesPermissiveStrict_ForGrpcServersOnly(string mode, string label, bool sdk, string expected)
    {
        var client = new ClientScope("default", new Dictionary<string, string> { ["app"] = "reviews", ["security.istio.io/tlsMode"] = label }) { SniffsTls = sdk };

        var listener = Inbound(Translate(PeerAuth("default", mode) + TestYaml.ReviewsServiceEntry), Name9080, client);

        Assert.Equal(expected, Mode(listener));
    }

    [Fact]
    public void SameNameAskedBySdkAndGrpcNode_EachGetsItsOwnListener()
    {
        var snapshot = Translate(PeerAuth("default", "PERMISSIVE") + TestYaml.ReviewsServiceEntry);
        var labels = new Dictionary<string, string> { ["app"] = "reviews", ["security.istio.io/tlsMode"] = "istio" };

        Assert.Equal("STRICT", Mode(Inbound(snapshot, Name9080, new ClientScope("default", labels))));
        Assert.Equal("PERMISSIVE", Mode(Inbound(snapshot, Name9080, new ClientScope("default", labels) { SniffsTls = true })));
        Assert.Equal("STRICT", Mode(Inbound(snapshot, Name9080, new ClientScope("default", labels))));
        labels.Remove("security.istio.io/tlsMode");
        Assert.Equal("DISABLE", Mode(Inbound(snapshot, Name9080, new ClientScope("default", labels))));
    }

    [Fact]
    public void RootNamespace_IsAnOption()
    {
        var yaml = PeerAuth("mesh-root", "STRICT") + TestYaml.ReviewsServiceEntry;

        Assert.False(IsStrict(Inbound(Translate(yaml), Name9080, Reviews)));
        Assert.True(IsStrict(Inbound(Translate(yaml, rootNamespace: "mesh-root"), Name9080, Reviews)));
    }

    [Fact]
    public void RegisteredEndpoint_AtTheRequestedIpAndPort_IsTheWorkload()
    {
        // WorkloadEntry reviews-v1 listens on 127.0.0.1:41001 (namespace default, app: reviews, version: v1).
        var yaml = PeerAuth("default", "STRICT", "version: v1") + TestYaml.ReviewsServiceEntry + "\n---\n" + TestYaml.Workload("reviews-v1", "v1", 41001);
        var snapshot = Translate(yaml);
        var anonymous = new ClientScope("elsewhere", new Dictionary<string, string>());

        // The address and port name the workload, whoever asks.
        Assert.True(IsStrict(Inbound(snapshot, "xds.istio.io/grpc/lds/inbound/127.0.0.1:41001", anonymous)));
        // Another port of the same address is not that workload: the node's own metadata decides.
        Assert.False(IsStrict(Inbound(snapshot, "xds.istio.io/grpc/lds/inbound/127.0.0.1:41002", anonymous)));
        // A wildcard address falls back to the node's namespace and labels.
        Assert.True(IsStrict(Inbound(snapshot, "xds.istio.io/grpc/lds/inbound/0.0.0.0:41001",
            new ClientScope("default", new Dictionary<string, string> { ["version"] = "v1" }))));
        Assert.False(IsStrict(Inbound(snapshot, "xds.istio.io/grpc/lds/inbound/0.0.0.0:41001", anonymous)));
    }

    [Fact]
    public void UnknownWorkload_StillGetsAListener_IPv6AddressUnbracketed()
    {
        var listener = Inbound(Translate(TestYaml.ReviewsServiceEntry), "xds.istio.io/grpc/lds/inbound/[::]:50051", ClientScope.None);

        Assert.Equal(("::", 50051u), (listener.Address.SocketAddress.Address, listener.Address.SocketAddress.PortValue));
        Assert.False(IsStrict(listener));
        Assert.Equal([HttpFilterNames.Router], Hcm(listener).HttpFilters.Select(f => f.Name));
    }

    [Theory]
    [InlineData("xds.istio.io/grpc/lds/inbound/0.0.0.0")]
    [InlineData("xds.istio.io/grpc/lds/inbound/0.0.0.0:port")]
    [InlineData("xds.istio.io/grpc/lds/inbound/:9080")]
    [InlineData("xds.istio.io/grpc/lds/inbound/0.0.0.0:70000")]
    public void MalformedInboundName_IsNotFound(string name)
    {
        Assert.Null(Translate(TestYaml.ReviewsServiceEntry).Find(ResourceTypes.Listener, name, Reviews));
    }

    [Fact]
    public void InboundListeners_AreNotPartOfWildcardLds()
    {
        var snapshot = Translate(PeerAuth("istio-system", "STRICT") + TestYaml.ReviewsServiceEntry);

        Assert.Equal(["reviews.default.svc.cluster.local:9080"], snapshot.All(ResourceTypes.Listener).Keys);
    }

    [Fact]
    public void RbacFilters_DenyThenAllowThenRouter_WithIstiodsNames()
    {
        var yaml = """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: allow-get, namespace: default}
            spec:
              rules: [{to: [{operation: {methods: [GET]}}]}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: deny-admin, namespace: default}
            spec:
              action: DENY
              rules: [{to: [{operation: {paths: [/admin*]}}]}]
            ---

            """ + TestYaml.ReviewsServiceEntry;

        var hcm = Hcm(Inbound(Translate(yaml), Name9080, Reviews));

        Assert.Equal(["envoy.filters.http.rbac.DENY", "envoy.filters.http.rbac", "envoy.filters.http.router"], hcm.HttpFilters.Select(f => f.Name));
        var deny = hcm.HttpFilters[0].TypedConfig.Unpack<RbacFilter>();
        Assert.Equal(Envoy.Config.Rbac.V3.RBAC.Types.Action.Deny, deny.Rules.Action);
        Assert.Equal(["default-deny-admin-0"], deny.Rules.Policies.Keys);
        var allow = hcm.HttpFilters[1].TypedConfig.Unpack<RbacFilter>();
        Assert.Equal(Envoy.Config.Rbac.V3.RBAC.Types.Action.Allow, allow.Rules.Action);
        Assert.Equal(["default-allow-get-0"], allow.Rules.Policies.Keys);
        Assert.Equal("type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC", hcm.HttpFilters[0].TypedConfig.TypeUrl);
    }

    [Fact]
    public void PolicyChange_ChangesTheListenerHash_SameConfigKeepsIt()
    {
        var before = Translate(TestYaml.ReviewsServiceEntry).Find(ResourceTypes.Listener, Name9080, Reviews)!;
        var same = Translate(TestYaml.ReviewsServiceEntry).Find(ResourceTypes.Listener, Name9080, Reviews)!;
        var after = Translate(PeerAuth("default", "STRICT") + TestYaml.ReviewsServiceEntry).Find(ResourceTypes.Listener, Name9080, Reviews)!;

        Assert.Equal(before.Hash, same.Hash);
        Assert.NotEqual(before.Hash, after.Hash);
    }
}

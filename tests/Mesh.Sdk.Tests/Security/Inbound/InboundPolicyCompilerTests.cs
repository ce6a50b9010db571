using Envoy.Config.Core.V3;
using Envoy.Config.Listener.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.Security.Inbound;
using Mesh.Xds;
using Microsoft.Extensions.Logging.Abstractions;
using RbacFilter = Envoy.Extensions.Filters.Http.Rbac.V3.RBAC;
using Router = Envoy.Extensions.Filters.Http.Router.V3.Router;

namespace Mesh.Sdk.Tests.Security.Inbound;

/// <summary>Inbound listeners in the shapes istiod and Mesh.ControlPlane write, compiled into per-port policies.</summary>
public class InboundPolicyCompilerTests
{
    private const string Name = "xds.istio.io/grpc/lds/inbound/127.0.0.1:8080";

    private static HttpFilter Rbac() => new() { Name = HttpFilterNames.Rbac, TypedConfig = Any.Pack(new RbacFilter()) };

    private static HttpFilter RouterFilter() => new() { Name = HttpFilterNames.Router, TypedConfig = Any.Pack(new Router()) };

    private static FilterChain Chain(string name, bool mtls, string? transportProtocol, bool requireClientCertificate = true, params HttpFilter[] filters)
    {
        var hcm = new HttpConnectionManager();
        hcm.HttpFilters.AddRange(filters.Length == 0 ? [Rbac(), RouterFilter()] : filters);
        var chain = new FilterChain { Name = name, Filters = { new Filter { Name = "hcm", TypedConfig = Any.Pack(hcm) } } };
        if (transportProtocol is not null)
        {
            chain.FilterChainMatch = new FilterChainMatch { TransportProtocol = transportProtocol };
        }

        if (mtls)
        {
            chain.TransportSocket = new TransportSocket
            {
                Name = "envoy.transport_sockets.tls",
                TypedConfig = Any.Pack(new DownstreamTlsContext { RequireClientCertificate = requireClientCertificate }),
            };
        }

        return chain;
    }

    private static Listener Listener(params FilterChain[] chains)
    {
        var listener = new Listener { Name = Name, Address = new Address { SocketAddress = new SocketAddress { Address = "127.0.0.1", PortValue = 8080 } } };
        listener.FilterChains.AddRange(chains);
        return listener;
    }

    [Fact]
    public void OneMtlsChain_IsStrict_WithTheHcmFilters()
    {
        var policy = InboundPolicyCompiler.Compile(Listener(Chain("inbound-mtls", mtls: true, null)), 8080);

        Assert.Equal((8080, InboundMtlsMode.Strict, Name), (policy.Port, policy.Mode, policy.Source));
        Assert.Equal([HttpFilterNames.Rbac, HttpFilterNames.Router], policy.HttpFilters.Select(f => f.Name));
    }

    [Fact]
    public void OnePlaintextChain_IsDisable()
    {
        Assert.Equal(InboundMtlsMode.Disable, InboundPolicyCompiler.Compile(Listener(Chain("inbound-plaintext", mtls: false, null)), 8080).Mode);
        Assert.Equal(InboundMtlsMode.Disable, InboundPolicyCompiler.Compile(Listener(Chain("p", mtls: false, "raw_buffer")), 8080).Mode);
    }

    [Fact]
    public void TlsAndRawBufferChains_ArePermissive_InEitherOrder()
    {
        var tlsFirst = Listener(Chain("inbound-mtls", mtls: true, "tls"), Chain("inbound-plaintext", mtls: false, "raw_buffer"));
        var plainFirst = Listener(Chain("inbound-plaintext", mtls: false, "raw_buffer"), Chain("inbound-mtls", mtls: true, "tls"));

        Assert.Equal(InboundMtlsMode.Permissive, InboundPolicyCompiler.Compile(tlsFirst, 8080).Mode);
        Assert.Equal(InboundMtlsMode.Permissive, InboundPolicyCompiler.Compile(plainFirst, 8080).Mode);
        Assert.Equal(2, InboundPolicyCompiler.Compile(plainFirst, 8080).HttpFilters.Count);
    }

    [Theory]
    [InlineData("none", "has 0 filter chains")]
    [InlineData("three", "has 3 filter chains")]
    [InlineData("one-way-tls", "does not require client certificates")]
    [InlineData("tls-chain-without-tls", "matches TLS but has no DownstreamTlsContext")]
    [InlineData("plain-chain-with-tls", "matches plaintext but has a TLS transport socket")]
    [InlineData("different-filters", "carry different HTTP filters")]
    [InlineData("unknown-protocol", "matches transport_protocol 'quic'")]
    [InlineData("two-tls", "two filter chains match transport_protocol 'tls'")]
    [InlineData("no-hcm", "must hold exactly one filter, an HttpConnectionManager")]
    public void OtherShapes_AreRefused_WithTheReason(string shape, string reason)
    {
        var listener = shape switch
        {
            "none" => Listener(),
            "three" => Listener(Chain("a", true, "tls"), Chain("b", false, "raw_buffer"), Chain("c", false, null)),
            "one-way-tls" => Listener(Chain("a", true, null, requireClientCertificate: false)),
            "tls-chain-without-tls" => Listener(Chain("a", false, "tls"), Chain("b", false, "raw_buffer")),
            "plain-chain-with-tls" => Listener(Chain("a", true, "tls"), Chain("b", true, "raw_buffer")),
            "different-filters" => Listener(Chain("a", true, "tls"), Chain("b", false, "raw_buffer", true, RouterFilter())),
            "unknown-protocol" => Listener(Chain("a", true, "tls"), Chain("b", false, "quic")),
            "two-tls" => Listener(Chain("a", true, "tls"), Chain("b", true, "tls")),
            _ => Listener(new FilterChain { Name = "a" }),
        };

        var error = Assert.Throws<InboundPolicyException>(() => InboundPolicyCompiler.Compile(listener, 8080));

        Assert.Contains(reason, error.Message);
    }

    [Fact]
    public void Policies_DefaultPermissive_InvalidListenerKeepsTheLastGoodPolicy()
    {
        using var policies = new InboundPolicies(NullLogger<InboundPolicies>.Instance);
        var changes = new List<InboundMtlsMode>();
        policies.Changed += p => changes.Add(p.Mode);
        Assert.Equal(InboundMtlsMode.Permissive, policies.Get(8080).Mode);

        policies.Apply(8080, Listener(Chain("inbound-mtls", mtls: true, null)));
        policies.Apply(8080, Listener(Chain("a", true, null, requireClientCertificate: false)));

        Assert.Equal(InboundMtlsMode.Strict, policies.Get(8080).Mode);
        Assert.Equal(InboundMtlsMode.Permissive, policies.Get(9090).Mode);
        Assert.Equal([InboundMtlsMode.Strict], changes);
    }
}

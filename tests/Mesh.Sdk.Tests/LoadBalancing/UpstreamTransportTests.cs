using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Envoy.Type.Matcher.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.LoadBalancing;

namespace Mesh.Sdk.Tests.LoadBalancing;

public sealed class UpstreamTransportTests
{
    private const string ClusterName = "outbound|9080||reviews.default.svc.cluster.local";
    private const string Reviews = "spiffe://cluster.local/ns/default/sa/reviews";

    /// <summary>The ISTIO_MUTUAL socket istiod writes, with exact SAN matchers.</summary>
    internal static TransportSocket IstioMutualSocket(params string[] sans)
    {
        var validation = new CertificateValidationContext
        {
            CaCertificateProviderInstance = new CertificateProviderPluginInstance { InstanceName = "default", CertificateName = "ROOTCA" },
        };
        foreach (var san in sans)
        {
            validation.MatchSubjectAltNames.Add(new StringMatcher { Exact = san });
        }

        return new TransportSocket
        {
            Name = "envoy.transport_sockets.tls",
            TypedConfig = Any.Pack(new UpstreamTlsContext
            {
                CommonTlsContext = new CommonTlsContext
                {
                    TlsCertificateProviderInstance = new CertificateProviderPluginInstance { InstanceName = "default", CertificateName = "default" },
                    CombinedValidationContext = new CommonTlsContext.Types.CombinedCertificateValidationContext { DefaultValidationContext = validation },
                },
            }),
        };
    }

    internal static Metadata TlsModeIstio(string mode = "istio") => new()
    {
        FilterMetadata = { ["envoy.transport_socket_match"] = new Struct { Fields = { ["tlsMode"] = Value.ForString(mode) } } },
    };

    private static Cluster AutoMtls() => new()
    {
        Name = ClusterName,
        TransportSocketMatches =
        {
            new Cluster.Types.TransportSocketMatch
            {
                Name = "tlsMode-istio",
                Match = new Struct { Fields = { ["tlsMode"] = Value.ForString("istio") } },
                TransportSocket = IstioMutualSocket(Reviews),
            },
            new Cluster.Types.TransportSocketMatch
            {
                Name = "tlsMode-disabled",
                Match = new Struct(),
                TransportSocket = new TransportSocket { Name = "envoy.transport_sockets.raw_buffer", TypedConfig = new Any { TypeUrl = "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer" } },
            },
        },
    };

    [Fact]
    public void TransportSocketMatches_PickPerEndpointMetadata_FirstMatchWins_EmptyMatchIsTheFallback()
    {
        var transports = ClusterTransports.Of(AutoMtls());

        var labelled = transports.For(TlsModeIstio());
        Assert.Equal((UpstreamTransport.IstioMutual, $"one of '{Reviews}'"), (labelled.Kind, labelled.DescribeExpected()));
        Assert.Equal(UpstreamTransport.Plaintext, transports.For(null).Kind);
        Assert.Equal(UpstreamTransport.Plaintext, transports.For(TlsModeIstio("disabled")).Kind);
        Assert.Equal(UpstreamTransport.Plaintext, transports.For(new Metadata()).Kind);
        Assert.Equal(UpstreamTransport.Plaintext, transports.Default.Kind);
        Assert.True(transports.AnyMutual);
    }

    [Fact]
    public void NoMatchingEntry_UsesTheClustersOwnTransportSocket()
    {
        var cluster = AutoMtls();
        cluster.TransportSocketMatches.RemoveAt(1);
        cluster.TransportSocket = IstioMutualSocket("spiffe://cluster.local/ns/default/sa/other");
        var transports = ClusterTransports.Of(cluster);

        Assert.Equal("one of 'spiffe://cluster.local/ns/default/sa/other'", transports.For(null).DescribeExpected());
        Assert.Equal($"one of '{Reviews}'", transports.For(TlsModeIstio()).DescribeExpected());
    }

    [Fact]
    public void SanMatchers_TypedAndUntyped_MatchUriSans_EmptyAcceptsAnyMeshIdentity()
    {
        var socket = IstioMutualSocket(Reviews);
        var tls = socket.TypedConfig.Unpack<UpstreamTlsContext>();
        tls.CommonTlsContext.CombinedValidationContext.DefaultValidationContext.MatchTypedSubjectAltNames.Add(new SubjectAltNameMatcher
        {
            SanType = SubjectAltNameMatcher.Types.SanType.Uri,
            Matcher = new StringMatcher { Prefix = "spiffe://cluster.local/ns/ratings/" },
        });
        socket.TypedConfig = Any.Pack(tls);
        var transport = EndpointTransport.Of(ClusterName, socket);

        Assert.Equal($"one of 'prefix:spiffe://cluster.local/ns/ratings/', '{Reviews}'", transport.DescribeExpected());
        Assert.True(transport.AcceptsIdentity([Reviews], []));
        Assert.True(transport.AcceptsIdentity(["spiffe://cluster.local/ns/ratings/sa/ratings"], []));
        Assert.False(transport.AcceptsIdentity(["spiffe://cluster.local/ns/default/sa/ratings"], []));
        Assert.False(transport.AcceptsIdentity([], ["spiffe://cluster.local/ns/ratings/sa/x"]));
        Assert.False(transport.AcceptsIdentity([], []));

        var any = EndpointTransport.Of(ClusterName, IstioMutualSocket());
        Assert.True(any.AcceptsIdentity([], []));
        Assert.Equal("any identity issued under the mesh roots", any.DescribeExpected());
    }

    [Fact]
    public void SameSettings_AreEqualTransports_DifferentSans_AreNot()
    {
        Assert.Equal(EndpointTransport.Of(ClusterName, IstioMutualSocket(Reviews)), EndpointTransport.Of(ClusterName, IstioMutualSocket(Reviews)));
        Assert.NotEqual(EndpointTransport.Of(ClusterName, IstioMutualSocket(Reviews)), EndpointTransport.Of(ClusterName, IstioMutualSocket()));
        Assert.Same(EndpointTransport.Plaintext, EndpointTransport.Of(ClusterName, null));
        Assert.Same(EndpointTransport.SimpleTls, EndpointTransport.Of(ClusterName, new TransportSocket { Name = "tls", TypedConfig = Any.Pack(new UpstreamTlsContext { Sni = "x" }) }));
    }

    [Fact]
    public void InvalidSanRegex_RejectsTheCluster_NamingItAndTheField()
    {
        var socket = IstioMutualSocket();
        var tls = socket.TypedConfig.Unpack<UpstreamTlsContext>();
        tls.CommonTlsContext.CombinedValidationContext.DefaultValidationContext.MatchSubjectAltNames.Add(new StringMatcher { SafeRegex = new RegexMatcher { Regex = "(" } });
        socket.TypedConfig = Any.Pack(tls);

        var error = Assert.Throws<InvalidDataException>(() => ClusterTransports.Of(new Cluster { Name = ClusterName, TransportSocket = socket }));

        Assert.StartsWith($"Cluster '{ClusterName}': match_subject_alt_names holds an invalid matcher: ", error.Message, StringComparison.Ordinal);
    }
}

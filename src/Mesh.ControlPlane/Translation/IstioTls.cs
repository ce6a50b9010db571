using Envoy.Config.Core.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Envoy.Type.Matcher.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.ControlPlane.Registry;
using Mesh.Xds;

namespace Mesh.ControlPlane.Translation;

/// <summary>
/// The TLS contexts istiod writes for proxyless gRPC: the workload's identity from certificate provider instance
/// <c>default</c> (certificate <c>default</c>), peers validated against the same instance's <c>ROOTCA</c>; both the
/// current and the deprecated provider fields, as istiod writes them for gRPC releases before 1.66.
/// </summary>
internal static class IstioTls
{
    /// <summary>The certificate provider instance every proxyless bootstrap must declare for mTLS.</summary>
    public const string ProviderInstance = "default";

    /// <summary>The common context; <paramref name="sans"/> (exact matches) restrict the peer's identity when not empty.</summary>
    public static CommonTlsContext Common(IReadOnlyList<string> sans)
    {
        var validation = new CertificateValidationContext
        {
            CaCertificateProviderInstance = new CertificateProviderPluginInstance { InstanceName = ProviderInstance, CertificateName = "ROOTCA" },
        };
        foreach (var san in sans)
        {
            validation.MatchSubjectAltNames.Add(new StringMatcher { Exact = san });
        }

        return new CommonTlsContext
        {
            TlsCertificateProviderInstance = new CertificateProviderPluginInstance { InstanceName = ProviderInstance, CertificateName = "default" },
            TlsCertificateCertificateProviderInstance = new CommonTlsContext.Types.CertificateProviderInstance { InstanceName = ProviderInstance, CertificateName = "default" },
            CombinedValidationContext = new CommonTlsContext.Types.CombinedCertificateValidationContext
            {
                ValidationContextCertificateProviderInstance = new CommonTlsContext.Types.CertificateProviderInstance { InstanceName = ProviderInstance, CertificateName = "ROOTCA" },
                DefaultValidationContext = validation,
            },
        };
    }

    /// <summary>
    /// istiod's <c>ISTIO_MUTUAL</c> transport socket for a proxyless client's cluster: an <c>UpstreamTlsContext</c> whose
    /// SANs are the SPIFFE identities of the destination service's workloads.
    /// </summary>
    public static TransportSocket UpstreamSocket(IReadOnlyList<string> sans) => new()
    {
        Name = XdsExtensionNames.TlsTransportSocket,
        TypedConfig = Any.Pack(new UpstreamTlsContext { CommonTlsContext = Common(sans) }),
    };

    /// <summary>The endpoint metadata filter Envoy reads for <c>transport_socket_matches</c>.</summary>
    public const string TransportSocketMatchFilter = "envoy.transport_socket_match";

    /// <summary>The workload label that says a workload holds a mesh certificate (<c>istio</c>), and its metadata key.</summary>
    public const string TlsModeLabel = "security.istio.io/tlsMode";

    /// <summary>The transport socket istiod writes for plaintext (<c>tlsMode-disabled</c>).</summary>
    public static TransportSocket RawBufferSocket() => new()
    {
        Name = "envoy.transport_sockets.raw_buffer",
        TypedConfig = new Any { TypeUrl = "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer" },
    };

    /// <summary>
    /// istiod's auto-mTLS for a cluster without DestinationRule <c>tls</c>: endpoints whose metadata carries
    /// <c>envoy.transport_socket_match: {tlsMode: istio}</c> get the <c>ISTIO_MUTUAL</c> socket (<c>tlsMode-istio</c>),
    /// every other endpoint plaintext (<c>tlsMode-disabled</c>, an empty match).
    /// </summary>
    public static IEnumerable<Envoy.Config.Cluster.V3.Cluster.Types.TransportSocketMatch> AutoMtlsMatches(IReadOnlyList<string> sans) =>
    [
        new()
        {
            Name = "tlsMode-istio",
            Match = new Struct { Fields = { ["tlsMode"] = Value.ForString("istio") } },
            TransportSocket = UpstreamSocket(sans),
        },
        new() { Name = "tlsMode-disabled", Match = new Struct(), TransportSocket = RawBufferSocket() },
    ];

    /// <summary>
    /// istiod's EDS metadata for a workload's <c>security.istio.io/tlsMode</c> label: <c>envoy.transport_socket_match:
    /// {tlsMode: &lt;value&gt;}</c> when the label is set to anything but <c>disabled</c>; otherwise <see langword="null"/>.
    /// </summary>
    public static Metadata? EndpointMetadata(IReadOnlyDictionary<string, string> labels)
    {
        if (!labels.TryGetValue(TlsModeLabel, out var mode) || mode.Length == 0 || mode == "disabled")
        {
            return null;
        }

        return new Metadata { FilterMetadata = { [TransportSocketMatchFilter] = new Struct { Fields = { ["tlsMode"] = Value.ForString(mode) } } } };
    }

    /// <summary>
    /// istiod's <c>ServiceAccounts(hostname, namespace)</c>: the SPIFFE id of every service account among the service's
    /// endpoints (all of them, not only a subset's) plus the ServiceEntry's <c>subjectAltNames</c> verbatim, distinct and
    /// sorted; endpoints without an account add none.
    /// </summary>
    public static IReadOnlyList<string> ServiceIdentities(MeshService service, string trustDomain)
    {
        var ids = new SortedSet<string>(service.SubjectAltNames, StringComparer.Ordinal);
        foreach (var endpoint in service.Endpoints)
        {
            if (!string.IsNullOrEmpty(endpoint.ServiceAccount))
            {
                ids.Add($"spiffe://{trustDomain}/ns/{service.Namespace}/sa/{endpoint.ServiceAccount}");
            }
        }

        return [.. ids];
    }
}

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

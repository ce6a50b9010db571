using Envoy.Config.Cluster.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Mesh.Xds;

namespace Mesh.Sdk.LoadBalancing;

/// <summary>How the data plane reaches a cluster's endpoints, read once per CDS update.</summary>
internal enum UpstreamTransport
{
    /// <summary>No transport socket: plaintext HTTP/1.1 or h2c.</summary>
    Plaintext,

    /// <summary>An <c>UpstreamTlsContext</c> without mesh certificate providers: TLS, validated by the system's roots.</summary>
    Tls,

    /// <summary>
    /// Istio mutual TLS: the <c>UpstreamTlsContext</c> names certificate provider instances (the workload
    /// certificate and the mesh roots), as istiod and Mesh.ControlPlane send for a DestinationRule
    /// <c>tls.mode: ISTIO_MUTUAL</c>. The SDK does not originate mesh mTLS yet: requests stay plaintext and
    /// the cluster is reported once with a warning.
    /// </summary>
    IstioMutualNotOriginated,
}

/// <summary>Reads <see cref="UpstreamTransport"/> from a cluster.</summary>
internal static class UpstreamTransports
{
    public static UpstreamTransport Of(Cluster cluster)
    {
        if (cluster.TransportSocket?.TypedConfig is not { } config)
        {
            return UpstreamTransport.Plaintext;
        }

        if (config.TypeUrl == XdsTypeUrls.UpstreamTlsContext
            && config.TryUnpack<UpstreamTlsContext>(out var tls)
            && tls.CommonTlsContext is { } common
            && (common.TlsCertificateProviderInstance is not null
                || common.TlsCertificateCertificateProviderInstance is not null
                || common.CombinedValidationContext?.ValidationContextCertificateProviderInstance is not null
                || common.ValidationContext?.CaCertificateProviderInstance is not null
                || common.CombinedValidationContext?.DefaultValidationContext?.CaCertificateProviderInstance is not null))
        {
            return UpstreamTransport.IstioMutualNotOriginated;
        }

        return UpstreamTransport.Tls;
    }
}

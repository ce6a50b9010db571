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
    /// istiod's EDS metadata of an endpoint: <c>envoy.transport_socket_match: {tlsMode: &lt;value&gt;}</c> when the
    /// <c>security.istio.io/tlsMode</c> label is set to anything but <c>disabled</c>, and <c>istio: {workload:
    /// &lt;telemetry&gt;}</c> when <paramref name="telemetry"/> is given (see <see cref="TelemetryWorkload"/>); otherwise
    /// <see langword="null"/>.
    /// </summary>
    public static Metadata? EndpointMetadata(IReadOnlyDictionary<string, string> labels, string? telemetry = null)
    {
        Metadata? metadata = null;
        if (labels.TryGetValue(TlsModeLabel, out var mode) && mode.Length > 0 && mode != "disabled")
        {
            metadata = new Metadata { FilterMetadata = { [TransportSocketMatchFilter] = new Struct { Fields = { ["tlsMode"] = Value.ForString(mode) } } } };
        }

        if (telemetry is not null)
        {
            metadata ??= new Metadata();
            metadata.FilterMetadata[IstioMetadataFilter] = new Struct { Fields = { ["workload"] = Value.ForString(telemetry) } };
        }

        return metadata;
    }

    /// <summary>The filter metadata key istiod writes the endpoint's telemetry labels under.</summary>
    public const string IstioMetadataFilter = "istio";

    /// <summary>
    /// istiod's compressed telemetry metadata of an endpoint (<c>AppendLbEndpointMetadata</c>), which lets the caller
    /// label its metrics with the destination workload: <c>workload-name;namespace;canonical-name;canonical-revision;cluster-id</c>.
    /// The canonical name is the label <c>service.istio.io/canonical-name</c>, else <c>app.kubernetes.io/name</c>, else
    /// <c>app</c>, else the workload name; the revision <c>service.istio.io/canonical-revision</c>, else
    /// <c>app.kubernetes.io/version</c>, else <c>version</c>, else empty (istiod leaves out its default <c>latest</c>).
    /// The cluster id is Istio's default, <c>Kubernetes</c>. <see langword="null"/> when the endpoint names no workload.
    /// </summary>
    public static string? TelemetryWorkload(ServiceEndpoint endpoint, MeshService service)
    {
        if (endpoint.WorkloadName is not { Length: > 0 } workload)
        {
            return null;
        }

        var labels = endpoint.Labels;
        var name = First(labels, "service.istio.io/canonical-name", "app.kubernetes.io/name", "app") ?? workload;
        var revision = First(labels, "service.istio.io/canonical-revision", "app.kubernetes.io/version", "version") ?? string.Empty;
        if (revision == "latest")
        {
            revision = string.Empty;
        }

        return string.Join(';', workload, endpoint.WorkloadNamespace ?? service.Namespace, name, revision, DefaultClusterId);
    }

    /// <summary>Istio's default cluster id.</summary>
    public const string DefaultClusterId = "Kubernetes";

    private static string? First(IReadOnlyDictionary<string, string> labels, string a, string b, string c)
        => labels.TryGetValue(a, out var v) && v.Length > 0 ? v
            : labels.TryGetValue(b, out v) && v.Length > 0 ? v
            : labels.TryGetValue(c, out v) && v.Length > 0 ? v : null;

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

using System.Collections.Concurrent;
using System.Text.Json;
using Envoy.Config.Core.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Mesh.Xds.Security;
using PValue = Google.Protobuf.WellKnownTypes.Value;

namespace Mesh.Sdk.Telemetry;

/// <summary>
/// The six labels that describe one side of a request in Istio's metrics: workload, its namespace, principal, app,
/// version and cluster. Missing values are <c>unknown</c>, as Istio reports them.
/// </summary>
internal sealed record WorkloadLabels(string Workload, string Namespace, string Principal, string App, string Version, string Cluster)
{
    public const string Unknown = "unknown";

    /// <summary>Istio's default cluster id.</summary>
    public const string DefaultClusterId = "Kubernetes";

    public static readonly WorkloadLabels None = new(Unknown, Unknown, Unknown, Unknown, Unknown, Unknown);

    /// <summary>
    /// This workload's own labels, from its options: <see cref="MeshOptions.WorkloadName"/> (else the service name),
    /// the namespace, the SPIFFE principal when <c>Mesh:Security:Enabled</c>, the labels <c>app</c> and <c>version</c>
    /// (else <c>app.kubernetes.io/name</c> and <c>app.kubernetes.io/version</c>), and the node metadata <c>CLUSTER_ID</c>.
    /// </summary>
    public static WorkloadLabels Own(MeshOptions options, string @namespace, JsonElement nodeMetadata)
    {
        var principal = options.Security.Enabled
            ? new SpiffeId(options.Security.TrustDomain, @namespace, options.ServiceAccount ?? "default").ToString()
            : Unknown;
        var cluster = nodeMetadata.ValueKind == JsonValueKind.Object && nodeMetadata.TryGetProperty("CLUSTER_ID", out var c)
            && c.ValueKind == JsonValueKind.String && c.GetString() is { Length: > 0 } id ? id : DefaultClusterId;
        return new WorkloadLabels(
            OrUnknown(options.WorkloadName ?? options.ServiceName),
            OrUnknown(@namespace),
            principal,
            OrUnknown(Label(options.Labels, "app", "app.kubernetes.io/name")),
            OrUnknown(Label(options.Labels, "version", "app.kubernetes.io/version")),
            cluster);
    }

    /// <summary>
    /// A destination's labels from its EDS metadata as istiod writes it: <c>istio.workload</c> =
    /// <c>workload;namespace;canonical-name;canonical-revision;cluster</c>; the canonical name and revision stand for
    /// app and version. <see cref="None"/> when the endpoint carries none.
    /// </summary>
    public static WorkloadLabels FromEndpointMetadata(Metadata? metadata)
    {
        if (metadata is null || !metadata.FilterMetadata.TryGetValue("istio", out var istio)
            || !istio.Fields.TryGetValue("workload", out var workload) || workload.KindCase != PValue.KindOneofCase.StringValue)
        {
            return None;
        }

        var parts = workload.StringValue.Split(';');
        return new WorkloadLabels(
            OrUnknown(At(parts, 0)), OrUnknown(At(parts, 1)), Unknown, OrUnknown(At(parts, 2)), OrUnknown(At(parts, 3)), OrUnknown(At(parts, 4)));
    }

    /// <summary>
    /// The value of <see cref="MeshTelemetry.PeerMetadataHeader"/> for this workload: base64 of a serialized
    /// <c>google.protobuf.Struct</c>, as Istio's metadata exchange sends it.
    /// </summary>
    public string ToPeerMetadata()
    {
        var labels = new Struct();
        if (App != Unknown)
        {
            labels.Fields["app"] = PValue.ForString(App);
        }

        if (Version != Unknown)
        {
            labels.Fields["version"] = PValue.ForString(Version);
        }

        var node = new Struct
        {
            Fields =
            {
                ["NAME"] = PValue.ForString(Workload),
                ["NAMESPACE"] = PValue.ForString(Namespace),
                ["WORKLOAD_NAME"] = PValue.ForString(Workload),
                ["CLUSTER_ID"] = PValue.ForString(Cluster),
                ["LABELS"] = PValue.ForStruct(labels),
            },
        };
        return Convert.ToBase64String(node.ToByteArray());
    }

    /// <summary>
    /// Reads a caller's <see cref="MeshTelemetry.PeerMetadataHeader"/>; <see langword="null"/> when it is not valid
    /// base64 of a <c>google.protobuf.Struct</c>. The principal is never taken from it.
    /// </summary>
    public static WorkloadLabels? FromPeerMetadata(string header)
    {
        Struct node;
        try
        {
            node = Struct.Parser.ParseFrom(Convert.FromBase64String(header));
        }
        catch (Exception ex) when (ex is FormatException or InvalidProtocolBufferException)
        {
            return null;
        }

        var fields = node.Fields;
        var labels = fields.TryGetValue("LABELS", out var l) && l.KindCase == PValue.KindOneofCase.StructValue
            ? l.StructValue.Fields
            : null;
        return new WorkloadLabels(
            OrUnknown(Text(fields, "WORKLOAD_NAME") ?? Text(fields, "NAME")),
            OrUnknown(Text(fields, "NAMESPACE")),
            Unknown,
            OrUnknown(labels is null ? null : Text(labels, "app") ?? Text(labels, "service.istio.io/canonical-name")),
            OrUnknown(labels is null ? null : Text(labels, "version") ?? Text(labels, "service.istio.io/canonical-revision")),
            OrUnknown(Text(fields, "CLUSTER_ID")));
    }

    /// <summary>
    /// The SPIFFE id a server proved in a mesh mTLS handshake: the first <c>spiffe://</c> URI SAN of the certificate it
    /// presented on <paramref name="connection"/> (an authenticated <see cref="System.Net.Security.SslStream"/>);
    /// <see langword="null"/> for any other stream or certificate.
    /// </summary>
    public static string? PrincipalOf(Stream connection)
    {
        if (connection is not System.Net.Security.SslStream { IsAuthenticated: true, RemoteCertificate: { } remote })
        {
            return null;
        }

        var certificate = remote as System.Security.Cryptography.X509Certificates.X509Certificate2
            ?? System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(remote.GetRawCertData());
        foreach (var uri in UriSubjectAlternativeNames.Read(certificate))
        {
            if (uri.StartsWith("spiffe://", StringComparison.Ordinal))
            {
                return uri;
            }
        }

        return null;
    }

    private static string? Text(Google.Protobuf.Collections.MapField<string, PValue> fields, string key)
        => fields.TryGetValue(key, out var v) && v.KindCase == PValue.KindOneofCase.StringValue ? v.StringValue : null;

    private static string? Label(IDictionary<string, string> labels, string key, string fallback)
        => labels.TryGetValue(key, out var v) && v.Length > 0 ? v : labels.TryGetValue(fallback, out v) && v.Length > 0 ? v : null;

    private static string? At(string[] parts, int index) => index < parts.Length ? parts[index] : null;

    private static string OrUnknown(string? value) => string.IsNullOrEmpty(value) ? Unknown : value;
}

/// <summary>A bounded cache of parsed peer metadata headers, so a caller's header is decoded once.</summary>
internal sealed class PeerMetadataCache
{
    private const int Capacity = 1024;
    private readonly ConcurrentDictionary<string, WorkloadLabels?> _parsed = new(StringComparer.Ordinal);

    public WorkloadLabels? Get(string header)
    {
        if (_parsed.TryGetValue(header, out var labels))
        {
            return labels;
        }

        labels = WorkloadLabels.FromPeerMetadata(header);
        if (_parsed.Count < Capacity)
        {
            _parsed.TryAdd(header, labels);
        }

        return labels;
    }
}

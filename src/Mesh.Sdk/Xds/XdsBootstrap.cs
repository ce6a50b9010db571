using System.Text.Json;

namespace Mesh.Sdk.Xds;

/// <summary>
/// The parsed xDS bootstrap: which control plane to talk to and how this node describes itself.
/// Read from gRPC's bootstrap JSON (<c>GRPC_XDS_BOOTSTRAP</c>, <c>GRPC_XDS_BOOTSTRAP_CONFIG</c>) or the
/// <c>Mesh</c> configuration section; see <see cref="XdsBootstrapLoader"/>.
/// </summary>
public sealed class XdsBootstrap
{
    /// <summary>Creates a bootstrap.</summary>
    /// <param name="servers">The xDS servers, in order of preference; at least one.</param>
    /// <param name="node">The node identity sent to the control plane.</param>
    /// <param name="source">Where this bootstrap came from, used in messages.</param>
    public XdsBootstrap(IReadOnlyList<XdsServerConfig> servers, XdsNodeConfig node, string source)
    {
        ArgumentNullException.ThrowIfNull(servers);
        ArgumentNullException.ThrowIfNull(node);
        if (servers.Count == 0)
        {
            throw new ArgumentException("At least one xDS server is required.", nameof(servers));
        }

        Servers = servers;
        Node = node;
        Source = source ?? string.Empty;
    }

    /// <summary>The xDS servers, in order of preference. The client uses the first one.</summary>
    public IReadOnlyList<XdsServerConfig> Servers { get; }

    /// <summary>The node identity sent on the first request of every stream.</summary>
    public XdsNodeConfig Node { get; }

    /// <summary>Certificate provider instances by instance name (for example <c>default</c>).</summary>
    /// <value>Empty by default.</value>
    public IReadOnlyDictionary<string, XdsCertificateProviderConfig> CertificateProviders { get; init; } =
        new Dictionary<string, XdsCertificateProviderConfig>();

    /// <summary>
    /// Template of the listener name an xDS-enabled server asks for, with <c>%s</c> replaced by
    /// <c>ip:port</c>; for Istio <c>xds.istio.io/grpc/lds/inbound/%s</c>.
    /// </summary>
    /// <value><see langword="null"/> when absent.</value>
    public string? ServerListenerResourceNameTemplate { get; init; }

    /// <summary>Template of the listener name a client asks for, with <c>%s</c> replaced by the target authority.</summary>
    /// <value><c>%s</c>.</value>
    public string ClientDefaultListenerResourceNameTemplate { get; init; } = "%s";

    /// <summary>Where the bootstrap came from, such as <c>GRPC_XDS_BOOTSTRAP (/etc/b.json)</c>.</summary>
    public string Source { get; }
}

/// <summary>One entry of <c>xds_servers</c>.</summary>
/// <param name="ServerUri">The server URI as written: <c>host:port</c>, <c>dns:///host:port</c> or <c>unix:///path</c>.</param>
/// <param name="ChannelCredentials">The channel credentials type chosen (the first supported entry of <c>channel_creds</c>).</param>
/// <param name="ServerFeatures">The <c>server_features</c> strings, such as <c>ignore_resource_deletion</c> or <c>delta</c>.</param>
public sealed record XdsServerConfig(string ServerUri, string ChannelCredentials, IReadOnlyList<string> ServerFeatures)
{
    /// <summary>Server feature: keep listeners and clusters a State-of-the-World response leaves out.</summary>
    public const string IgnoreResourceDeletionFeature = "ignore_resource_deletion";

    /// <summary>Server feature (Mesh.Sdk's own): use the incremental (Delta) xDS protocol with this server.</summary>
    public const string DeltaFeature = "delta";

    /// <summary>Whether <c>server_features</c> contains <paramref name="feature"/>.</summary>
    /// <param name="feature">The feature string.</param>
    /// <returns><see langword="true"/> when present.</returns>
    public bool HasFeature(string feature) => ServerFeatures.Contains(feature, StringComparer.Ordinal);
}

/// <summary>The <c>node</c> object of the bootstrap.</summary>
public sealed record XdsNodeConfig
{
    /// <summary>The node id, for Istio <c>sidecar~IP~POD.NAMESPACE~NAMESPACE.svc.cluster.local</c>.</summary>
    /// <value>Empty when absent.</value>
    public string Id { get; init; } = string.Empty;

    /// <summary>The node's cluster (service cluster) name.</summary>
    /// <value>Empty when absent.</value>
    public string Cluster { get; init; } = string.Empty;

    /// <summary>The node's locality, or <see langword="null"/> when absent.</summary>
    public XdsLocality? Locality { get; init; }

    /// <summary>The node metadata as a JSON object (for Istio, <c>GENERATOR</c>, <c>NAMESPACE</c>, ...).</summary>
    /// <value>An empty object when absent.</value>
    public JsonElement Metadata { get; init; } = EmptyObject;

    internal static readonly JsonElement EmptyObject = JsonDocument.Parse("{}").RootElement.Clone();
}

/// <summary>A locality: region, zone and sub-zone.</summary>
/// <param name="Region">The region.</param>
/// <param name="Zone">The zone.</param>
/// <param name="SubZone">The sub-zone.</param>
public sealed record XdsLocality(string Region, string Zone, string SubZone);

/// <summary>A certificate provider instance of the bootstrap (for example <c>file_watcher</c>).</summary>
/// <param name="PluginName">The plugin name, such as <c>file_watcher</c>.</param>
/// <param name="Config">The plugin's configuration object.</param>
public sealed record XdsCertificateProviderConfig(string PluginName, JsonElement Config);

/// <summary>A bootstrap that could not be read; the message names the source and the field.</summary>
public sealed class XdsBootstrapException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong, where.</param>
    public XdsBootstrapException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a cause.</summary>
    /// <param name="message">What is wrong, where.</param>
    /// <param name="inner">The cause.</param>
    public XdsBootstrapException(string message, Exception inner)
        : base(message, inner)
    {
    }
}

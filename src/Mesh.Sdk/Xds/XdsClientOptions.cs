namespace Mesh.Sdk.Xds;

/// <summary>The xDS wire protocol variant.</summary>
public enum XdsProtocol
{
    /// <summary>State of the World: each response carries every resource of a type.</summary>
    Sotw,

    /// <summary>Incremental (Delta) xDS: responses carry changed and removed resources only.</summary>
    Delta,
}

/// <summary>Options of the xDS client, bound from the <c>Mesh:Xds</c> configuration section.</summary>
public sealed class XdsClientOptions
{
    /// <summary>
    /// The protocol to speak. When <see langword="null"/>, the bootstrap decides: Delta when the server's
    /// <c>server_features</c> contain <c>delta</c>, State of the World otherwise.
    /// </summary>
    /// <value><see langword="null"/>.</value>
    public XdsProtocol? Protocol { get; set; }

    /// <summary>Listener names subscribed at start, in addition to those the application asks for later.</summary>
    /// <value>Empty.</value>
    public IList<string> Listeners { get; } = new List<string>();

    /// <summary>
    /// How an <c>HttpClient</c> host maps to a listener name. On: a short host is expanded as Kubernetes DNS does
    /// (<c>http://reviews:9080</c> → <c>reviews.&lt;namespace&gt;.svc.cluster.local:9080</c>), istiod's naming, which
    /// istiod and Mesh.ControlPlane serve. Off: the host and port as written (<c>reviews:9080</c>), for xDS servers
    /// that name listeners the way gRPC clients ask for them (gRFC A27). Either way the name then goes through the
    /// bootstrap's <c>client_default_listener_resource_name_template</c>. <c>xds:///</c> gRPC targets are always
    /// named as written (gRFC A27), whatever this says.
    /// </summary>
    /// <value><see langword="true"/>.</value>
    public bool ExpandHostNames { get; set; } = true;

    internal XdsProtocol ResolveProtocol(XdsServerConfig server) =>
        Protocol ?? (server.HasFeature(XdsServerConfig.DeltaFeature) ? XdsProtocol.Delta : XdsProtocol.Sotw);
}

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

    internal XdsProtocol ResolveProtocol(XdsServerConfig server) =>
        Protocol ?? (server.HasFeature(XdsServerConfig.DeltaFeature) ? XdsProtocol.Delta : XdsProtocol.Sotw);
}

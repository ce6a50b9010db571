namespace Mesh.Sdk.Xds.Internal;

/// <summary>
/// Receives updates for one watched resource. Calls for one client arrive serialized on the ADS reader, except
/// the cached value handed to a new watcher, which arrives on the thread calling <see cref="XdsClient.Watch"/>.
/// </summary>
internal interface IXdsResourceWatcher
{
    /// <summary>A new valid version of the resource was accepted.</summary>
    /// <param name="type">The resource type.</param>
    /// <param name="name">The resource name.</param>
    /// <param name="value">The validated value (see <see cref="XdsResourceType.Validate"/>).</param>
    void OnResourceChanged(XdsResourceType type, string name, object value);

    /// <summary>The server says the resource does not exist (deleted, or left out of a State-of-the-World response).</summary>
    void OnResourceDoesNotExist(XdsResourceType type, string name);

    /// <summary>An update of the resource was rejected; the last accepted version stays in force.</summary>
    void OnResourceError(XdsResourceType type, string name, string error);
}

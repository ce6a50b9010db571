namespace Mesh.Sdk.Routing;

/// <summary>A virtual host with its routes in order.</summary>
/// <param name="Name">The virtual host name.</param>
/// <param name="Domains">The domains as configured.</param>
/// <param name="Routes">The compiled routes; the first that matches wins.</param>
internal sealed record CompiledVirtualHost(string Name, IReadOnlyList<string> Domains, CompiledRoute[] Routes);

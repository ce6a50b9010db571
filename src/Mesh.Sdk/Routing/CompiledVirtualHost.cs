namespace Mesh.Sdk.Routing;

/// <summary>A virtual host with its routes in order.</summary>
/// <param name="Name">The virtual host name.</param>
/// <param name="Domains">The domains as configured.</param>
/// <param name="Routes">The compiled routes; the first that matches wins.</param>
internal sealed record CompiledVirtualHost(string Name, IReadOnlyList<string> Domains, CompiledRoute[] Routes)
{
    /// <summary>
    /// For each route, text the <c>:path</c> must start with for the route to match: tested inline in the match
    /// loop so most non-matching routes cost one ordinal prefix comparison.
    /// </summary>
    internal string[] PathGates { get; } = Gates(Routes);

    private static string[] Gates(CompiledRoute[] routes)
    {
        var gates = new string[routes.Length];
        for (var i = 0; i < routes.Length; i++)
        {
            gates[i] = routes[i].Path.GuaranteedPrefix;
        }

        return gates;
    }
}

using System.Collections.Frozen;

namespace Mesh.Sdk.Routing;

/// <summary>
/// An immutable, compiled <c>RouteConfiguration</c>, built once per RDS update by <see cref="RouteTableCompiler"/>
/// and read by any number of requests at once. Virtual hosts are found by authority with Envoy's precedence:
/// exact domain (a frozen dictionary), then suffix wildcards (<c>*.foo.com</c>) longest first, then prefix
/// wildcards (<c>foo.*</c>) longest first, then <c>*</c>; hosts compare case-insensitively. Then the host's routes
/// are tried in order and the first match wins.
/// </summary>
internal sealed class CompiledRouteTable
{
    private readonly FrozenDictionary<string, CompiledVirtualHost>.AlternateLookup<ReadOnlySpan<char>> _exact;
    private readonly WildcardGroup[] _suffixes;
    private readonly WildcardGroup[] _prefixes;
    private readonly CompiledVirtualHost? _any;
    private readonly Random _random;

    internal CompiledRouteTable(
        string name,
        IReadOnlyList<CompiledVirtualHost> virtualHosts,
        FrozenDictionary<string, CompiledVirtualHost> exact,
        WildcardGroup[] suffixes,
        WildcardGroup[] prefixes,
        CompiledVirtualHost? any,
        bool ignorePortInHostMatching,
        Random random)
    {
        Name = name;
        VirtualHosts = virtualHosts;
        _exact = exact.GetAlternateLookup<ReadOnlySpan<char>>();
        _suffixes = suffixes;
        _prefixes = prefixes;
        _any = any;
        IgnorePortInHostMatching = ignorePortInHostMatching;
        _random = random;
    }

    /// <summary>The route configuration name.</summary>
    public string Name { get; }

    /// <summary>The virtual hosts in configuration order.</summary>
    public IReadOnlyList<CompiledVirtualHost> VirtualHosts { get; }

    /// <summary>Whether the authority's port is ignored when matching domains.</summary>
    public bool IgnorePortInHostMatching { get; }

    /// <summary>The random source for <c>runtime_fraction</c> and weighted picks.</summary>
    public Random Random => _random;

    /// <summary>Finds the virtual host for an authority (<c>host[:port]</c>), or <see langword="null"/>.</summary>
    public CompiledVirtualHost? FindVirtualHost(ReadOnlySpan<char> authority)
    {
        if (IgnorePortInHostMatching)
        {
            authority = RouteHost.WithoutPort(authority);
        }

        if (_exact.TryGetValue(authority, out var host))
        {
            return host;
        }

        // A wildcard stands for at least one character, so the authority must be longer than the literal part.
        foreach (var group in _suffixes)
        {
            if (authority.Length > group.Length && group.Lookup.TryGetValue(authority[^group.Length..], out host))
            {
                return host;
            }
        }

        foreach (var group in _prefixes)
        {
            if (authority.Length > group.Length && group.Lookup.TryGetValue(authority[..group.Length], out host))
            {
                return host;
            }
        }

        return _any;
    }

    /// <summary>Matches a request: virtual host by authority, then the first matching route and its target.</summary>
    public RouteMatchResult Match<TRequest>(in TRequest request)
        where TRequest : IRouteRequest
    {
        var virtualHost = FindVirtualHost(request.Authority);
        if (virtualHost is null)
        {
            return RouteMatchResult.NoVirtualHostResult;
        }

        var pathAndQuery = request.PathAndQuery.AsSpan();
        SplitPath(pathAndQuery, out var path, out var query);
        var routes = virtualHost.Routes;
        var gates = virtualHost.PathGates;
        for (var i = 0; i < routes.Length && i < gates.Length; i++)
        {
            if (!pathAndQuery.StartsWith(gates[i].AsSpan()))
            {
                continue;
            }

            var route = routes[i];
            if (route.Matches(in request, pathAndQuery, path, query, _random))
            {
                return RouteMatchResult.Matched(virtualHost, route, route.PickTarget(in request, _random));
            }
        }

        return RouteMatchResult.NoRouteResult(virtualHost);
    }

    /// <summary>Splits a <c>:path</c> into the path (without query and fragment) and the query (without <c>?</c> and fragment).</summary>
    public static void SplitPath(ReadOnlySpan<char> pathAndQuery, out ReadOnlySpan<char> path, out ReadOnlySpan<char> query)
    {
        var q = pathAndQuery.IndexOfAny('?', '#');
        path = q < 0 ? pathAndQuery : pathAndQuery[..q];
        query = q < 0 || pathAndQuery[q] == '#' ? default : pathAndQuery[(q + 1)..];
        var fragment = query.IndexOf('#');
        if (fragment >= 0)
        {
            query = query[..fragment];
        }
    }

    /// <summary>Wildcard domains of one literal length.</summary>
    internal sealed class WildcardGroup(int length, FrozenDictionary<string, CompiledVirtualHost> hosts)
    {
        /// <summary>The length of the literal part (the domain without its <c>*</c>).</summary>
        public int Length { get; } = length;

        /// <summary>Hosts by literal part, case-insensitive.</summary>
        public FrozenDictionary<string, CompiledVirtualHost>.AlternateLookup<ReadOnlySpan<char>> Lookup { get; } = hosts.GetAlternateLookup<ReadOnlySpan<char>>();
    }
}

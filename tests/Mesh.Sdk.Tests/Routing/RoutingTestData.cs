using System.Diagnostics.CodeAnalysis;
using System.Net;
using Envoy.Config.Route.V3;
using Mesh.Sdk.Routing;

namespace Mesh.Sdk.Tests.Routing;

/// <summary>A request for routing tests: headers by lower-case name, values as routing sees them.</summary>
internal readonly struct TestRequest : IRouteRequest
{
    private readonly Dictionary<string, string> _headers;

    public TestRequest(string authority, string pathAndQuery, string method = "GET", string scheme = "http", IPAddress? source = null, params (string Name, string Value)[] headers)
    {
        Authority = authority;
        PathAndQuery = pathAndQuery;
        Method = method;
        Scheme = scheme;
        SourceAddress = source;
        _headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in headers)
        {
            _headers[name] = _headers.TryGetValue(name, out var existing) ? existing + "," + value : value;
        }
    }

    public string Authority { get; }

    public string PathAndQuery { get; }

    public string Method { get; }

    public string Scheme { get; }

    public IPAddress? SourceAddress { get; }

    public bool TryGetHeader(string name, [NotNullWhen(true)] out string? value) => _headers.TryGetValue(name, out value);

    public static TestRequest Get(string pathAndQuery, params (string Name, string Value)[] headers)
        => new("svc", pathAndQuery, headers: headers);
}

/// <summary>Builders for wire route configurations.</summary>
internal static class Rds
{
    public static RouteConfiguration Config(params VirtualHost[] hosts)
    {
        var config = new RouteConfiguration { Name = "rc" };
        config.VirtualHosts.AddRange(hosts);
        return config;
    }

    public static VirtualHost Host(string name, string[] domains, params Route[] routes)
    {
        var host = new VirtualHost { Name = name };
        host.Domains.AddRange(domains);
        host.Routes.AddRange(routes);
        return host;
    }

    /// <summary>A single virtual host for <c>svc</c> holding <paramref name="routes"/>.</summary>
    public static RouteConfiguration Single(params Route[] routes) => Config(Host("vh", ["svc"], routes));

    public static Route Prefix(string prefix, string cluster, string? name = null)
        => new() { Name = name ?? string.Empty, Match = new RouteMatch { Prefix = prefix }, Route_ = new RouteAction { Cluster = cluster } };

    public static Route Path(string path, string cluster)
        => new() { Match = new RouteMatch { Path = path }, Route_ = new RouteAction { Cluster = cluster } };

    public static Route Regex(string regex, string cluster)
        => new() { Match = new RouteMatch { SafeRegex = new Envoy.Type.Matcher.V3.RegexMatcher { Regex = regex } }, Route_ = new RouteAction { Cluster = cluster } };

    public static CompiledRouteTable Compile(RouteConfiguration config, Random? random = null)
        => RouteTableCompiler.Compile(config, null, random ?? new Random(1));

    /// <summary>The cluster a request is routed to, or null when nothing matched.</summary>
    public static string? ClusterFor(this CompiledRouteTable table, TestRequest request)
    {
        var result = table.Match(in request);
        return result.IsMatch ? result.Cluster : null;
    }

    /// <summary>Compiles a single-route configuration and returns the compile errors as text.</summary>
    public static string[] Errors(RouteConfiguration config)
    {
        var errors = RouteTableCompiler.Validate(config);
        return errors.Select(static e => e.ToString()).ToArray();
    }
}

using System.Security.Cryptography;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Mesh.ControlPlane.Registry;
using Mesh.Xds;

namespace Mesh.ControlPlane.Translation;

/// <summary>The four resource types served, by type URL.</summary>
internal static class ResourceTypes
{
    public const string Listener = XdsTypeUrls.Listener;
    public const string Route = XdsTypeUrls.RouteConfiguration;
    public const string Cluster = XdsTypeUrls.Cluster;
    public const string Endpoint = XdsTypeUrls.ClusterLoadAssignment;

    public static readonly IReadOnlyList<string> All = [Listener, Route, Cluster, Endpoint];

    /// <summary>LDS and CDS: a SotW response lists every resource (absence = deletion); an empty subscription means all.</summary>
    public static bool IsFullState(string typeUrl) => typeUrl == Listener || typeUrl == Cluster;
}

/// <summary>One xDS resource, packed, with a content hash used as its version.</summary>
internal sealed record XdsResource(string Name, Any Resource, string Hash)
{
    public static XdsResource Create(string name, IMessage message)
    {
        var any = Any.Pack(message);
        var hash = Convert.ToHexString(SHA256.HashData(any.Value.Span), 0, 8).ToLowerInvariant();
        return new XdsResource(name, any, hash);
    }
}

/// <summary>An immutable set of xDS resources for one configuration + registry state.</summary>
internal sealed class XdsSnapshot
{
    private static readonly IReadOnlyDictionary<string, ScopedRouteConfiguration> NoScopedRoutes = new Dictionary<string, ScopedRouteConfiguration>();

    private readonly Dictionary<string, IReadOnlyDictionary<string, XdsResource>> _byType;
    private readonly IReadOnlyDictionary<string, ScopedRouteConfiguration> _scopedRoutes;
    private readonly string _domain;

    /// <param name="routes">Route configurations that are the same for every client.</param>
    /// <param name="scopedRoutes">Route configurations that differ per client (source-restricted VirtualService matches).</param>
    public XdsSnapshot(long version, string domain, IReadOnlyDictionary<string, XdsResource> listeners, IReadOnlyDictionary<string, XdsResource> routes,
        IReadOnlyDictionary<string, XdsResource> clusters, IReadOnlyDictionary<string, XdsResource> endpoints,
        IReadOnlyDictionary<string, ScopedRouteConfiguration>? scopedRoutes = null)
    {
        Version = version;
        _domain = domain;
        _scopedRoutes = scopedRoutes ?? NoScopedRoutes;
        _byType = new(StringComparer.Ordinal)
        {
            [ResourceTypes.Listener] = listeners,
            [ResourceTypes.Route] = routes,
            [ResourceTypes.Cluster] = clusters,
            [ResourceTypes.Endpoint] = endpoints,
        };
    }

    public static XdsSnapshot Empty { get; } = new(0, "cluster.local", new Dictionary<string, XdsResource>(), new Dictionary<string, XdsResource>(),
        new Dictionary<string, XdsResource>(), new Dictionary<string, XdsResource>());

    public long Version { get; }

    public string VersionInfo => Version.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The inbound (server) listeners, built per asking workload (<see cref="InboundListeners"/>).</summary>
    public InboundListeners Inbound { get; init; } = InboundListeners.Empty;

    /// <summary>The tracing and access log of Mesh.Sdk nodes' listeners, which differ per workload (<see cref="TelemetryListeners"/>).</summary>
    public TelemetryListeners Telemetry { get; init; } = TelemetryListeners.Empty;

    /// <summary>The route configurations that differ per client, by name.</summary>
    public IReadOnlyDictionary<string, ScopedRouteConfiguration> ScopedRoutes => _scopedRoutes;

    /// <summary>Every resource of a type as a client without labels or namespace sees it (<see cref="ClientScope.None"/>).</summary>
    public IReadOnlyDictionary<string, XdsResource> All(string typeUrl) => All(typeUrl, ClientScope.None);

    /// <summary>Every resource of a type as <paramref name="client"/> sees it.</summary>
    public IReadOnlyDictionary<string, XdsResource> All(string typeUrl, ClientScope client)
    {
        var map = _byType.TryGetValue(typeUrl, out var m) ? m : new Dictionary<string, XdsResource>();
        if (typeUrl == ResourceTypes.Listener && client.IsSdk && Telemetry.IsConfigured)
        {
            return map.ToDictionary(static p => p.Key, p => Telemetry.Apply(p.Value, client), StringComparer.Ordinal);
        }

        if (typeUrl != ResourceTypes.Route || _scopedRoutes.Count == 0)
        {
            return map;
        }

        var merged = new Dictionary<string, XdsResource>(map, StringComparer.Ordinal);
        foreach (var (name, scoped) in _scopedRoutes)
        {
            merged[name] = scoped.Resolve(client);
        }

        return merged;
    }

    /// <summary>Finds a resource for a client known only by its namespace.</summary>
    public XdsResource? Find(string typeUrl, string name, string nodeNamespace) => Find(typeUrl, name, ClientScope.InNamespace(nodeNamespace));

    /// <summary>
    /// Finds a resource by the name a client asked for, as that client sees it. Listener names may be aliases
    /// (<c>reviews:9080</c>, <c>reviews.default:9080</c>, ...); the returned listener carries the requested name.
    /// </summary>
    public XdsResource? Find(string typeUrl, string name, ClientScope client)
    {
        var found = FindShared(typeUrl, name, client);
        return found is not null && typeUrl == ResourceTypes.Listener ? Telemetry.Apply(found, client) : found;
    }

    private XdsResource? FindShared(string typeUrl, string name, ClientScope client)
    {
        if (typeUrl == ResourceTypes.Route && _scopedRoutes.TryGetValue(name, out var scoped))
        {
            return scoped.Resolve(client);
        }

        if (typeUrl == ResourceTypes.Listener && name.StartsWith(IstioNaming.InboundListenerPrefix, StringComparison.Ordinal))
        {
            return Inbound.Find(name, client);
        }

        var all = _byType.TryGetValue(typeUrl, out var m) ? m : new Dictionary<string, XdsResource>();
        if (all.TryGetValue(name, out var exact))
        {
            return exact;
        }

        var nodeNamespace = client.Namespace;

        if (typeUrl != ResourceTypes.Listener)
        {
            return null;
        }

        var colon = name.LastIndexOf(':');
        var host = colon < 0 ? name : name[..colon];
        var port = colon < 0 ? null : name[(colon + 1)..];
        if (host.Length == 0 || (port is not null && !uint.TryParse(port, out _)))
        {
            return null;
        }

        foreach (var candidate in HostNames.Candidates(host, nodeNamespace, _domain))
        {
            XdsResource? canonical = null;
            if (port is not null)
            {
                all.TryGetValue($"{candidate}:{port}", out canonical);
            }
            else
            {
                // No port: the service's only port, when it has exactly one.
                var matches = all.Values.Where(r => r.Name.StartsWith(candidate + ":", StringComparison.Ordinal)
                    && !r.Name.AsSpan(candidate.Length + 1).Contains(':')).Take(2).ToList();
                canonical = matches.Count == 1 ? matches[0] : null;
            }

            if (canonical is not null)
            {
                var listener = canonical.Resource.Unpack<Listener>();
                listener.Name = name;
                return XdsResource.Create(name, listener);
            }
        }

        return null;
    }
}

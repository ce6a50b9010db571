using System.Collections.Concurrent;
using Envoy.Config.Route.V3;
using Mesh.ControlPlane.Config;
using EnvoyRoute = Envoy.Config.Route.V3.Route;

namespace Mesh.ControlPlane.Translation;

/// <summary>
/// Who is asking: the namespace and labels of an ADS client's node (metadata <c>NAMESPACE</c> and
/// <c>LABELS</c>). Route configurations with <c>sourceLabels</c> / <c>sourceNamespace</c> matches
/// differ per client.
/// </summary>
internal sealed record ClientScope(string Namespace, IReadOnlyDictionary<string, string> Labels)
{
    /// <summary>
    /// Whether the client tells TLS from plaintext on one port by the first bytes (Mesh.Sdk does, gRPC xDS servers do
    /// not): it is served PERMISSIVE as Envoy sidecars are, not made STRICT by the <c>security.istio.io/tlsMode</c> label.
    /// </summary>
    public bool SniffsTls { get; init; }

    /// <summary>
    /// Whether the client is a Mesh.Sdk node (<c>user_agent_name</c> "Mesh.Sdk"): it gets the HCM fields istiod writes for a
    /// sidecar's telemetry (tracing, access log); proxyless gRPC clients do not.
    /// </summary>
    public bool IsSdk { get; init; }

    /// <summary>The node's <c>cluster</c> (istiod's service cluster: the OpenTelemetry tracer's <c>service_name</c>).</summary>
    public string NodeCluster { get; init; } = string.Empty;

    /// <summary>The node's <c>MESH_ID</c> metadata (the <c>istio.mesh_id</c> span tag), if any.</summary>
    public string? MeshId { get; init; }

    /// <summary>The node's <c>CLUSTER_ID</c> metadata (the <c>istio.cluster_id</c> span tag), if any.</summary>
    public string? ClusterId { get; init; }

    /// <summary>A client with no labels and no namespace: source-restricted routes never apply to it.</summary>
    public static ClientScope None { get; } = new(string.Empty, Empty.Labels);

    public static ClientScope InNamespace(string ns) => new(ns, Empty.Labels);
}

/// <summary>
/// A VirtualService match's source condition (istiod's <c>sourceMatchHTTP</c>): every label in
/// <see cref="Labels"/> is among the client's labels, and the client's namespace is
/// <see cref="Namespace"/> when that is set.
/// </summary>
internal sealed class SourcePredicate
{
    private SourcePredicate(IReadOnlyDictionary<string, string> labels, string? ns, string key)
    {
        Labels = labels;
        Namespace = ns;
        Key = key;
    }

    public IReadOnlyDictionary<string, string> Labels { get; }

    public string? Namespace { get; }

    /// <summary>Canonical text of the condition; equal conditions have equal keys.</summary>
    public string Key { get; }

    /// <summary>The predicate of a match, or null when the match applies to every client.</summary>
    public static SourcePredicate? For(HttpMatchRequest? match)
    {
        // A match that names gateways is decided by them alone (istiod's sourceMatchHTTP ignores its sourceLabels
        // and sourceNamespace then); only those listing "mesh" reach the mesh's route tables.
        if (match is null || match.Gateways.Count > 0 || (match.SourceLabels.Count == 0 && match.SourceNamespace is null))
        {
            return null;
        }

        var labels = string.Join(",", match.SourceLabels.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}={kv.Value}"));
        return new SourcePredicate(match.SourceLabels, match.SourceNamespace, $"{labels}|{match.SourceNamespace}");
    }

    public bool Matches(ClientScope client)
    {
        if (Namespace is not null && Namespace != client.Namespace)
        {
            return false;
        }

        foreach (var (key, value) in Labels)
        {
            if (!client.Labels.TryGetValue(key, out var actual) || actual != value)
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>One translated route and the source condition it carries (null: applies to every client).</summary>
/// <param name="Route">The route.</param>
/// <param name="Source">The source condition; null when the route applies to every client.</param>
/// <param name="Group">The VirtualService (index) the route comes from; -1 for the default route.</param>
/// <param name="CatchAll">
/// Whether the route matches every request (istiod's <c>IsCatchAllRoute</c>): where it applies, the rest of its
/// VirtualService's routes are not sent.
/// </param>
internal readonly record struct ScopedRoute(EnvoyRoute Route, SourcePredicate? Source, int Group, bool CatchAll);

/// <summary>
/// A RouteConfiguration whose routes depend on the client (istiod generates RDS per proxy). It is
/// translated once per snapshot with every route guarded by its source condition; a client gets the
/// routes whose condition holds for it. Clients with the same outcome for every distinct condition
/// share one packed resource, cached for the life of the snapshot, so a thousand clients with two
/// label sets cost two serializations.
/// </summary>
internal sealed class ScopedRouteConfiguration
{
    private readonly RouteConfiguration _skeleton;
    private readonly IReadOnlyList<(EnvoyRoute Route, int Predicate, int Group, bool CatchAll)> _routes;
    private readonly IReadOnlyList<SourcePredicate> _predicates;
    private readonly EnvoyRoute? _fallback;
    private readonly ConcurrentDictionary<string, XdsResource> _variants = new(StringComparer.Ordinal);

    /// <param name="skeleton">The configuration with one virtual host and no routes.</param>
    /// <param name="routes">The virtual host's routes in order.</param>
    /// <param name="fallback">The route a client gets when none of <paramref name="routes"/> applies to it (istiod's default route).</param>
    public ScopedRouteConfiguration(RouteConfiguration skeleton, IReadOnlyList<ScopedRoute> routes, EnvoyRoute? fallback = null)
    {
        _skeleton = skeleton;
        _fallback = fallback;
        var predicates = new List<SourcePredicate>();
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var list = new List<(EnvoyRoute, int, int, bool)>(routes.Count);
        foreach (var (route, source, group, catchAll) in routes)
        {
            var i = -1;
            if (source is not null && !index.TryGetValue(source.Key, out i))
            {
                i = predicates.Count;
                index[source.Key] = i;
                predicates.Add(source);
            }

            list.Add((route, i, group, catchAll));
        }

        _routes = list;
        _predicates = predicates;
    }

    public string Name => _skeleton.Name;

    /// <summary>How many distinct variants were built so far (one per distinct outcome of the conditions).</summary>
    public int VariantCount => _variants.Count;

    /// <summary>The configuration as <paramref name="client"/> sees it.</summary>
    public XdsResource Resolve(ClientScope client)
    {
        var outcome = string.Create(_predicates.Count, (_predicates, client), static (span, state) =>
        {
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = state._predicates[i].Matches(state.client) ? '1' : '0';
            }
        });
        return _variants.GetOrAdd(outcome, static (key, self) => self.Build(key), this);
    }

    private XdsResource Build(string outcome)
    {
        var config = _skeleton.Clone();
        var vhost = config.VirtualHosts[0];
        var endedGroup = int.MinValue;
        foreach (var (route, predicate, group, catchAll) in _routes)
        {
            if (group == endedGroup || (predicate >= 0 && outcome[predicate] != '1'))
            {
                continue;
            }

            vhost.Routes.Add(route);
            if (catchAll)
            {
                // istiod stops translating a VirtualService at the first catch-all route that applies to the proxy.
                endedGroup = group;
            }
        }

        if (vhost.Routes.Count == 0 && _fallback is not null)
        {
            vhost.Routes.Add(_fallback);
        }

        return XdsResource.Create(config.Name, config);
    }
}

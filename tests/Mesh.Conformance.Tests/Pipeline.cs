using System.Text;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Registry;
using Mesh.ControlPlane.Translation;
using Mesh.Sdk.Routing;
using Mesh.Sdk.Xds.Internal;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Conformance.Tests;

/// <summary>
/// Both halves of routing, as in production but in memory: Istio YAML → <c>ConfigStore</c> → <c>XdsTranslator</c>
/// (the control plane) → the client listener and its <c>RouteConfiguration</c> → the SDK's listener validation and
/// <c>RouteTableCompiler</c> → <c>RouteExplainer</c>.
/// </summary>
internal static class Pipeline
{
    public const string Fqdn = "reviews.default.svc.cluster.local";
    public const string Listener = Fqdn + ":9080";
    public const string RouteName = "outbound|9080||" + Fqdn;

    /// <summary>The YAML a row's <c>http:</c> block is applied with.</summary>
    public static string Yaml(string http, string? trafficPolicy)
    {
        var yaml = new StringBuilder();
        yaml.Append("""
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: reviews, namespace: default}
            spec:
              hosts: [reviews.default.svc.cluster.local]
              location: MESH_INTERNAL
              ports:
              - {number: 9080, name: http, protocol: HTTP}
              resolution: STATIC
              workloadSelector: {labels: {app: reviews}}
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: reviews, namespace: default}
            spec:
              host: reviews
            """).Append('\n');
        if (trafficPolicy is not null)
        {
            yaml.Append("  trafficPolicy:\n").Append(Indent(trafficPolicy, 4));
        }

        yaml.Append("""
              subsets:
              - {name: v1, labels: {version: v1}}
              - {name: v2, labels: {version: v2}}
              - {name: v3, labels: {version: v3}}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: reviews, namespace: default}
            spec:
              hosts: [reviews]
              http:
            """).Append('\n');
        yaml.Append(Indent(http, 2));
        return yaml.ToString();
    }

    /// <summary>Translates a row's YAML with the control plane and compiles the result with the SDK.</summary>
    public static CompiledRouteTable FromIstio(IstioRow row, out string yaml, out RouteConfiguration wire)
    {
        yaml = Yaml(row.Http, row.TrafficPolicy);
        var store = new ConfigStore("default", NullLogger.Instance);
        store.Apply("/conformance/" + row.Id + ".yaml", yaml);
        if (store.LastErrors.Count > 0)
        {
            throw new ConformanceException($"The control plane rejected the row's YAML: {string.Join("; ", store.LastErrors)}");
        }

        using var registry = new ServiceRegistry(TimeProvider.System, TimeSpan.FromSeconds(10), "cluster.local", NullLogger.Instance);
        registry.UpdateConfig(store.Current);
        var snapshot = new XdsTranslator("cluster.local").Translate(store.Current, registry.Current, 1);
        var scope = ClientScope.InNamespace("default");
        var listener = snapshot.Find(ResourceTypes.Listener, Listener, scope)?.Resource.Unpack<Listener>()
            ?? throw new ConformanceException($"The control plane sent no listener '{Listener}'.");
        wire = snapshot.Find(ResourceTypes.Route, RouteName, scope)?.Resource.Unpack<RouteConfiguration>()
            ?? throw new ConformanceException($"The control plane sent no route configuration '{RouteName}'.");
        // The SDK's own listener validation decodes the connection manager and its HTTP filters (fault filter).
        var hcm = XdsResourceValidator.ValidateListener(listener).HttpConnectionManager;
        return Compile(wire, hcm.HttpFilters);
    }

    /// <summary>Compiles a hand-built route list in one virtual host for every authority (<c>*</c>).</summary>
    public static CompiledRouteTable FromEnvoy(EnvoyRow row, out RouteConfiguration wire)
    {
        var host = new VirtualHost { Name = "reviews", Domains = { "*" } };
        host.Routes.AddRange(row.Build());
        wire = new RouteConfiguration { Name = "conformance", VirtualHosts = { host } };
        return Compile(wire, null);
    }

    private static CompiledRouteTable Compile(RouteConfiguration wire, IReadOnlyList<Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpFilter>? filters)
    {
        // Seeded: weighted picks and sampled fractions are the same on every run.
        if (!RouteTableCompiler.TryCompile(wire, filters, new Random(42), out var table, out var errors))
        {
            throw new ConformanceException($"The SDK rejected the route configuration: {string.Join("; ", errors)}");
        }

        return table;
    }

    /// <summary>Explains a row's request against a compiled table, through the adapter the HTTP handler uses.</summary>
    public static RouteExplanation Explain(CompiledRouteTable table, Req request)
    {
        using var message = MeshRouteExplainer.Build(request.Authority, request.PathAndQuery, request.Method, request.Headers.Select(h => KeyValuePair.Create(h.Name, h.Value)));
        var view = new HttpRequestRouteRequest(message, System.Net.IPAddress.Loopback, message.Headers.Host ?? RouteHost.AuthorityOf(message.RequestUri!));
        return RouteExplainer.Explain(table, Listener, in view);
    }

    private static string Indent(string block, int spaces)
    {
        var pad = new string(' ', spaces);
        var text = new StringBuilder();
        foreach (var line in block.ReplaceLineEndings("\n").Split('\n'))
        {
            if (line.Length > 0)
            {
                text.Append(pad).Append(line);
            }

            text.Append('\n');
        }

        return text.ToString();
    }
}

/// <summary>A row could not be run: a half rejected its configuration.</summary>
internal sealed class ConformanceException(string message) : Exception(message);

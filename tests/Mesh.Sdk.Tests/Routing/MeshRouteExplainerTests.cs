using System.Collections.Frozen;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Mesh.Sdk.Resources;
using Mesh.Sdk.Routing;
using Mesh.Sdk.Xds;
using Microsoft.Extensions.Time.Testing;

namespace Mesh.Sdk.Tests.Routing;

/// <summary>The public explainer over a runtime fed by published snapshots (no control plane, no network).</summary>
public sealed class MeshRouteExplainerTests : IDisposable
{
    private const string Fqdn = "reviews.default.svc.cluster.local";
    private const string ListenerName = Fqdn + ":9080";

    private readonly MeshSnapshotSource _snapshots = new(new FakeTimeProvider());
    private readonly MeshRuntime _runtime;
    private readonly MeshRouteExplainer _explainer;

    public MeshRouteExplainerTests()
    {
        var bootstrap = new XdsBootstrap([new XdsServerConfig("127.0.0.1:15010", "insecure", [])], new XdsNodeConfig { Id = "test" }, "test");
        _runtime = new MeshRuntime(new MeshOptions { Namespace = "default", InstanceIp = "10.1.0.9" }, bootstrap, new FakeTimeProvider(), loggerFactory: null, _snapshots);
        _explainer = new MeshRouteExplainer(_runtime);
    }

    public void Dispose() => _runtime.Dispose();

    private void Publish(bool withRoutes)
    {
        var host = new VirtualHost { Name = "reviews", Domains = { "reviews:9080", ListenerName } };
        var jason = new Route { Name = "jason", Match = new RouteMatch { Prefix = "/" }, Route_ = new RouteAction { Cluster = "v2" } };
        jason.Match.Headers.Add(new HeaderMatcher { Name = "end-user", StringMatch = new Envoy.Type.Matcher.V3.StringMatcher { Exact = "jason" } });
        host.Routes.Add(jason);
        host.Routes.Add(new Route { Name = "rest", Match = new RouteMatch { Prefix = "/" }, Route_ = new RouteAction { Cluster = "v1" } });
        var routes = new Dictionary<string, RouteConfiguration>();
        if (withRoutes)
        {
            routes["9080"] = new RouteConfiguration { Name = "9080", VirtualHosts = { host } };
        }

        _snapshots.Publish(new MeshSnapshot(
            1,
            new Dictionary<string, ListenerResource> { [ListenerName] = new(ListenerName, new Listener { Name = ListenerName, ApiListener = new ApiListener() }, new HttpConnectionManager(), "9080", null) }.ToFrozenDictionary(),
            routes.ToFrozenDictionary(),
            FrozenDictionary<string, ClusterResource>.Empty,
            FrozenDictionary<string, ClusterLoadAssignment>.Empty));
    }

    [Fact]
    public void Explain_ShortNameAndHeaders_UsesTheListenerTableAndTheRequestsHeaders()
    {
        Publish(withRoutes: true);

        var jason = _explainer.Explain("reviews:9080", "/reviews/0", "get", [KeyValuePair.Create("end-user", "jason")]);
        var other = _explainer.Explain("reviews:9080", "/reviews/0");

        Assert.Equal((ListenerName, "9080", "GET", "jason", "v2"), (jason.Listener, jason.RouteConfiguration, jason.Method, jason.Route, jason.Cluster));
        Assert.Equal(("rest", "v1", "header 'end-user' exact \"jason\": header missing"), (other.Route, other.Cluster, other.Routes[0].Reason));
    }

    [Fact]
    public void Explain_HttpRequestMessage_RoutesByItsHostHeader()
    {
        Publish(withRoutes: true);
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://reviews:9080/");
        request.Headers.Host = "other:9080";

        var explanation = _explainer.Explain(request);

        // The listener comes from the URI, the virtual host from the Host header, as for a sent request.
        Assert.Equal((RouteExplanationOutcome.NoVirtualHost, ListenerName, "other:9080", (int?)404), (explanation.Outcome, explanation.Listener, explanation.Authority, explanation.Status));
    }

    [Fact]
    public void Explain_ListenerWithoutRoutes_IpLiteral_AndUnknownHost_SayWhy()
    {
        Publish(withRoutes: false);

        var waiting = _explainer.Explain("reviews:9080", "/");
        var literal = _explainer.Explain("10.0.0.1:9080", "/");
        var unknown = _explainer.Explain("ratings:9080", "/");

        Assert.Equal((RouteExplanationOutcome.NoRouteConfiguration, (int?)503), (waiting.Outcome, waiting.Status));
        Assert.Contains($"listener '{ListenerName}' has no route configuration in force", waiting.Detail, StringComparison.Ordinal);
        Assert.Equal((RouteExplanationOutcome.NotInMesh, (string?)null), (literal.Outcome, literal.Listener));
        Assert.Equal((RouteExplanationOutcome.NotInMesh, "ratings.default.svc.cluster.local:9080"), (unknown.Outcome, unknown.Listener));
        Assert.Throws<ArgumentException>(() => _explainer.Explain("reviews:9080", "no-slash"));
    }
}

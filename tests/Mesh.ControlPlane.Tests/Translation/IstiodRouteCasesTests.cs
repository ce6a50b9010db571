using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Http.Fault.V3;
using Envoy.Type.Matcher.V3;
using Envoy.Type.V3;
using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Translation;
using Mesh.Xds;

namespace Mesh.ControlPlane.Tests.Translation;

/// <summary>
/// istiod's own route tests replayed: every case of <c>pilot/pkg/networking/core/route/route_test.go</c>
/// (<c>TestBuildHTTPRoutes</c>) and <c>route_internal_test.go</c> about fields a proxyless client receives, written
/// here from the facts those cases assert (the VirtualService in, the Route fields out). Each test names the istiod
/// case it mirrors. istiod's cases use the wildcard service <c>*.example.org</c> on port 8080 with destinations on
/// port 8484; wildcard hosts are not served here, so the service is <c>foo.example.org</c> with both ports.
/// Cases about gateways (ingress/gateway route semantics, HTTP/3 alt-svc, X-Forwarded-Host from mesh config,
/// wildcard hosts, inference pools), inbound routes, CORS and JWT-claim metadata matching concern nothing this
/// control plane sends; they are listed in docs/control-plane.md.
/// </summary>
public class IstiodRouteCasesTests
{
    private const string Host = "foo.example.org";
    private const string Table = $"outbound|8080||{Host}";
    private const string Dest8484 = $"outbound|8484||{Host}";

    private const string Service = """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: foo}
        spec:
          hosts: [foo.example.org]
          ports:
          - {number: 8080, name: http, protocol: HTTP}
          - {number: 8484, name: http-alt, protocol: HTTP}
          resolution: STATIC
          endpoints: [{address: 10.0.0.1}]
        """;

    private static string VirtualService(string http) => """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: acme}
        spec:
          hosts: [foo.example.org]
          http:
        """ + "\n" + http;

    private static string DestinationRule(string spec) => """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: acme}
        spec:
          host: foo.example.org
        """ + "\n" + spec;

    private static XdsSnapshot Snapshot(string http, string? destinationRuleSpec = null) =>
        TrafficPolicyTranslationTests.Translate(Service + "\n---\n" + VirtualService(http)
            + (destinationRuleSpec is null ? string.Empty : "\n---\n" + DestinationRule(destinationRuleSpec)));

    private static List<Route> RoutesOf(XdsSnapshot snapshot, ClientScope? client = null, string table = Table) =>
        snapshot.Find(ResourceTypes.Route, table, client ?? ClientScope.InNamespace("default"))!
            .Resource.Unpack<RouteConfiguration>().VirtualHosts[0].Routes.ToList();

    private static List<Route> Routes(string http, string? destinationRuleSpec = null, ClientScope? client = null) =>
        RoutesOf(Snapshot(http, destinationRuleSpec), client);

    private static ConfigException Refused(string http) =>
        Assert.Throws<ConfigException>(() => IstioYamlParser.Parse(Service + "\n---\n" + VirtualService(http), "default"));

    private static ClientScope Client(string ns, params (string Key, string Value)[] labels) =>
        new(ns, labels.ToDictionary(l => l.Key, l => l.Value));

    private static (string Name, string Path, TimeSpan? Ttl, (string, string)[] Attributes) CookieOf(RouteAction.Types.HashPolicy policy) =>
        (policy.Cookie.Name, policy.Cookie.Path, policy.Cookie.Ttl?.ToTimeSpan(), policy.Cookie.Attributes.Select(a => (a.Name, a.Value)).ToArray());

    private static StringMatcher StringMatcherOf(HeaderMatcher header)
    {
        Assert.True(HeaderMatchers.TryGetStringMatcher(header, out var matcher), $"header matcher '{header.Name}' is not a string match");
        return matcher;
    }

    // virtualServicePlain: one route "routeA" to *.example.org port 8484.
    private const string Plain = """
          - name: routeA
            route:
            - destination: {host: foo.example.org, port: {number: 8484}}
              weight: 100
        """;

    // ---- TestBuildHTTPRoutes ----

    [Fact]
    public void ForVirtualService_NoTimeoutIsZero()
    {
        // istiod: "for virtual service" (timeout unset → 0; proxyless clients also get max_stream_duration 0).
        var route = Assert.Single(Routes(Plain));
        Assert.Equal(("routeA", Dest8484), (route.Name, route.Route_.Cluster));
        Assert.Equal((TimeSpan.Zero, TimeSpan.Zero), (route.Route_.Timeout.ToTimeSpan(), route.Route_.MaxStreamDuration.MaxStreamDuration_.ToTimeSpan()));
    }

    [Theory]
    [InlineData("10s", 10)] // istiod: "for virtual service with timeout"
    [InlineData("0s", 0)] // istiod: "for virtual service with disabled timeout"
    public void ForVirtualService_WithTimeout(string timeout, int seconds)
    {
        var route = Assert.Single(Routes($"""
              - timeout: {timeout}
                route:
                - destination: {"{"}host: foo.example.org, port: {"{"}number: 8484{"}"}{"}"}
                  weight: 100
            """));
        Assert.Equal((TimeSpan.FromSeconds(seconds), TimeSpan.FromSeconds(seconds)),
            (route.Route_.Timeout.ToTimeSpan(), route.Route_.MaxStreamDuration.MaxStreamDuration_.ToTimeSpan()));
    }

    [Fact]
    public void CatchAllRoute_EndsTheVirtualService()
    {
        // istiod: "for virtual service with catch all route": routes "route.non-catch-all" then "route.catch-all";
        // nothing after the catch-all is sent (the "later" route here).
        var routes = Routes("""
              - name: route
                match:
                - name: non-catch-all
                  uri: {prefix: /route/v1}
                - name: catch-all
                  uri: {prefix: /}
                route: [{destination: {host: foo.example.org, port: {number: 8484}}, weight: 100}]
              - name: later
                route: [{destination: {host: foo.example.org, port: {number: 8484}}}]
            """);
        Assert.Equal(["route.non-catch-all", "route.catch-all"], routes.Select(r => r.Name));
        Assert.Equal(("/route/v1", "/"), (routes[0].Match.Prefix, routes[1].Match.Prefix));
    }

    [Fact]
    public void CatchAllRoute_PortOnlyMatch()
    {
        // istiod: "for virtual service with catch all route：port match": a match that only names the port is a
        // catch-all on that port's table; "route 2" and "route 3" are not sent there.
        var snapshot = Snapshot("""
              - name: route 1
                match: [{name: catch-all for 8080, port: 8080}]
                route: [{destination: {host: foo.example.org, port: {number: 8484}}}]
              - name: route 2
                match: [{name: header match, headers: {cookie: {exact: canary}}}]
                route: [{destination: {host: foo.example.org, port: {number: 8484}}}]
              - name: route 3
                route: [{destination: {host: foo.example.org, port: {number: 8484}}}]
            """);
        Assert.Equal(["route 1.catch-all for 8080"], RoutesOf(snapshot).Select(r => r.Name));

        // On port 8484 the port match does not apply, so the later routes are sent (istiod: TranslateRoute returns nil).
        Assert.Equal(["route 2.header match", "route 3"], RoutesOf(snapshot, table: Dest8484).Select(r => r.Name));
    }

    [Fact]
    public void TopLevelCatchAllRoute_AfterASourceRestrictedMatch()
    {
        // istiod: "for virtual service with top level catch all route": the first match needs sourceLabels version=v1,
        // which istiod's test proxy lacks, so the route without match is the only one.
        const string Http = """
              - match:
                - name: headers-only
                  headers: {version: {exact: v2}}
                  sourceLabels: {version: v1}
                route: [{destination: {host: foo.example.org, subset: v2}, weight: 100}]
              - route: [{destination: {host: foo.example.org, subset: v1}, weight: 100}]
            """;
        var snapshot = Snapshot(Http);
        var only = Assert.Single(RoutesOf(snapshot));
        Assert.Equal($"outbound|8080|v1|{Host}", only.Route_.Cluster);

        // A client with the label gets both (the header match is not a catch-all).
        Assert.Equal([$"outbound|8080|v2|{Host}", $"outbound|8080|v1|{Host}"],
            RoutesOf(snapshot, Client("default", ("version", "v1"))).Select(r => r.Route_.Cluster));
    }

    [Fact]
    public void MultiPrefixCatchAllRoute_RestrictedToOtherClients()
    {
        // istiod: "for virtual service with multi prefix catch all route": the catch-all match is restricted to
        // sourceLabels the proxy lacks, so only "/a" is sent.
        const string Http = """
              - match:
                - name: catch-all
                  uri: {prefix: /}
                  sourceLabels: {matchingNoSrc: xxx}
                - name: specific match
                  uri: {prefix: /a}
                route: [{destination: {host: foo.example.org, port: {number: 8484}}, weight: 100}]
            """;
        var snapshot = Snapshot(Http);
        Assert.Equal(["/a"], RoutesOf(snapshot).Select(r => r.Match.Prefix));

        // For a client it applies to, the catch-all ends the VirtualService.
        Assert.Equal(["/"], RoutesOf(snapshot, Client("default", ("matchingNoSrc", "xxx"))).Select(r => r.Match.Prefix));
    }

    [Fact]
    public void RegexMatchingOnUri()
    {
        // istiod: "for virtual service with regex matching on URI".
        var route = Assert.Single(Routes("""
              - match: [{uri: {regex: "\\/(.?)\\/status"}}]
                route: [{destination: {host: foo.example.org, port: {number: 8484}}}]
            """));
        Assert.Equal("\\/(.?)\\/status", route.Match.SafeRegex.Regex);
        Assert.True(route.Match.CaseSensitive);
    }

    [Fact]
    public void MethodAuthoritySchemeAndIgnoreUriCase()
    {
        // istiod's TranslateRouteMatch (no route_test.go case of its own): method, authority and scheme become header
        // matchers on the pseudo-headers, after the sorted header matchers; case_sensitive is !ignoreUriCase.
        var match = Assert.Single(Routes("""
              - match:
                - uri: {prefix: /Api}
                  ignoreUriCase: true
                  method: {exact: GET}
                  authority: {prefix: foo.}
                  scheme: {}
                  headers: {z-last: {exact: "1"}, a-first: {exact: "2"}}
                route: [{destination: {host: foo.example.org}}]
            """)).Match;
        Assert.Equal(("/Api", false), (match.Prefix, match.CaseSensitive));
        Assert.Equal(["a-first", "z-last", ":method", ":authority", ":scheme"], match.Headers.Select(h => h.Name));
        Assert.Equal("GET", StringMatcherOf(match.Headers[2]).Exact);
        Assert.Equal("foo.", StringMatcherOf(match.Headers[3]).Prefix);
        Assert.True(match.Headers[4].PresentMatch);
    }

    [Fact]
    public void CorsPolicyAndTcpRoutes_AreReportedAsNotApplied()
    {
        // istiod: TestTranslateCORSPolicy / ...ForwardNotMatchingPreflights build Envoy's CORS filter config, which no
        // proxyless client has; the policy is read and reported once per file, the routes still apply.
        var parsed = IstioYamlParser.Parse(Service + "\n---\n" + VirtualService("""
              - corsPolicy: {allowOrigins: [{exact: exact}], unmatchedPreflights: IGNORE}
                route: [{destination: {host: foo.example.org}}]
            """) + "\n  tcp:\n  - route: [{destination: {host: foo.example.org}}]", "default");
        Assert.Equal(2, parsed.Notes.Count);
        Assert.StartsWith("18:17: VirtualService 'default/acme': 'spec.http[].corsPolicy' is parsed but not applied", parsed.Notes[0], StringComparison.Ordinal);
        Assert.StartsWith("21:3: VirtualService 'default/acme': 'spec.tcp' routes are parsed but not applied", parsed.Notes[1], StringComparison.Ordinal);
        Assert.Single(Assert.IsType<Mesh.ControlPlane.Config.VirtualService>(parsed.Resources[1]).Http);
    }

    [Fact]
    public void StatPrefixOnMatch()
    {
        // istiod: "for virtual service with stat_prefix set for a match on URI".
        var routes = Routes("""
              - name: foo
                match:
                - name: foo
                  uri: {prefix: /foo}
                  statPrefix: foo
                - name: baz
                  uri: {prefix: /baz}
                route: [{destination: {host: foo.example.org, port: {number: 8484}}, weight: 100}]
              - name: bar
                match:
                - name: bar
                  uri: {prefix: /bar}
                route: [{destination: {host: bar.example.org, port: {number: 8484}}, weight: 100}]
            """);
        Assert.Equal([("/foo", "foo"), ("/baz", ""), ("/bar", "")], routes.Select(r => (r.Match.Prefix, r.StatPrefix)));
        Assert.Single(routes[0].Route_.RetryPolicy.RetryHostPredicate);
    }

    [Fact]
    public void JwtClaimMatching_IsForGatewaysOnly()
    {
        // istiod: "for virtual service with exact matching on JWT claims with extended" builds dynamic metadata matchers
        // for a gateway; Istio's validation refuses claim routing on a VirtualService bound to the mesh.
        var ex = Refused("""
              - match: [{headers: {"@request.auth.claims.Foo": {exact: Bar}}}]
                route: [{destination: {host: foo.example.org}}]
            """);
        Assert.Contains("routing on JWT claims is only supported for gateways", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RegexMatchingOnHeader()
    {
        // istiod: "for virtual service with regex matching on header" (istiod writes string_match.safe_regex; the
        // single-purpose safe_regex_match is sent here, which gRPC C-core also accepts; same match).
        var route = Assert.Single(Routes("""
              - match: [{headers: {Authorization: {regex: "Bearer .+?\\..+?\\..+?"}}}]
                route: [{destination: {host: foo.example.org, port: {number: 8484}}}]
            """));
        var header = Assert.Single(route.Match.Headers);
        Assert.Equal(("authorization", "Bearer .+?\\..+?\\..+?", false), (header.Name, StringMatcherOf(header).SafeRegex.Regex, header.InvertMatch));
    }

    [Fact]
    public void RegexMatchingOnWithoutHeader_TreatsAMissingHeaderAsEmpty()
    {
        // istiod: "for virtual service with regex matching on without_header": invert_match and treat_missing_header_as_empty.
        var route = Assert.Single(Routes("""
              - match: [{withoutHeaders: {FOO-HEADER: {regex: "BAR .+?\\..+?\\..+?"}}}]
                route: [{destination: {host: foo.example.org, port: {number: 8484}}}]
            """));
        var header = Assert.Single(route.Match.Headers);
        Assert.Equal(("BAR .+?\\..+?\\..+?", true, true), (StringMatcherOf(header).SafeRegex.Regex, header.InvertMatch, header.TreatMissingHeaderAsEmpty));
    }

    [Fact]
    public void PresenceMatchingOnHeader()
    {
        // istiod: "for virtual service with presence matching on header": an empty StringMatch is present_match.
        // (istiod writes the name as given, FOO-HEADER; names are lower-cased here, which matches the same requests.)
        var route = Assert.Single(Routes("""
              - name: presence
                match: [{name: presence, headers: {FOO-HEADER: {}}}]
                redirect: {uri: example.org, authority: some-authority.default.svc.cluster.local, redirectCode: 308}
            """));
        var header = Assert.Single(route.Match.Headers);
        Assert.Equal(("foo-header", HeaderMatcher.HeaderMatchSpecifierOneofCase.PresentMatch, true, false, false),
            (header.Name, header.HeaderMatchSpecifierCase, header.PresentMatch, header.InvertMatch, header.TreatMissingHeaderAsEmpty));

        // The case's other form, a null header match, is refused by Istio's validation ("null header match": invalid).
        var ex = Refused("""
              - match: [{headers: {FOO-HEADER: null}}]
                route: [{destination: {host: foo.example.org}}]
            """);
        Assert.Contains("cannot be null", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("null")]
    [InlineData("{regex: \"*\"}")]
    [InlineData("{}")]
    public void PresenceMatchingOnWithoutHeader(string value)
    {
        // istiod: "for virtual service with presence matching on header and without_header": inverted present_match,
        // without treat_missing_header_as_empty (Envoy refuses it with present_match).
        var route = Assert.Single(Routes($"""
              - match: [{"{"}withoutHeaders: {"{"}FOO-HEADER: {value}{"}"}{"}"}]
                route: [{"{"}destination: {"{"}host: foo.example.org{"}"}{"}"}]
            """));
        var header = Assert.Single(route.Match.Headers);
        Assert.Equal((true, true, false), (header.PresentMatch, header.InvertMatch, header.TreatMissingHeaderAsEmpty));
    }

    [Theory]
    [InlineData("headers")]
    [InlineData("queryParams")]
    public void RegexStarOnHeaderOrQueryParameter_IsRefusedAsIstioValidationDoes(string key)
    {
        // istiod: "for virtual service with regex matching for all cases on header" / "... on query parameter" translate
        // regex "*" to present_match, but Istio's validation compiles it as RE2 (fails) everywhere except withoutHeaders.
        var ex = Refused($"""
              - match: [{"{"}{key}: {"{"}token: {"{"}regex: "*"{"}"}{"}"}{"}"}]
                route: [{"{"}destination: {"{"}host: foo.example.org{"}"}{"}"}]
            """);
        Assert.Contains("regex '*'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("'{}'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void QueryParameterMatches_ExactPrefixRegexAndPresence()
    {
        // istiod: "for virtual service with exact / prefix / regex matching on query parameter" and the presence
        // form of "... regex matching for all cases on query parameter" (present_match on the QueryParameterMatcher).
        var routes = Routes("""
              - match:
                - queryParams: {token: {exact: foo}}
                - queryParams: {token: {prefix: foo-}}
                - queryParams: {token: {regex: "BAR .+?\\..+?\\..+?"}}
                - queryParams: {token: {}}
                route: [{destination: {host: foo.example.org}}]
            """);
        var matchers = routes.Select(r => Assert.Single(r.Match.QueryParameters)).ToList();
        Assert.All(matchers, m => Assert.Equal("token", m.Name));
        Assert.Equal("foo", matchers[0].StringMatch.Exact);
        Assert.Equal("foo-", matchers[1].StringMatch.Prefix);
        Assert.Equal("BAR .+?\\..+?\\..+?", matchers[2].StringMatch.SafeRegex.Regex);
        Assert.Equal((QueryParameterMatcher.QueryParameterMatchSpecifierOneofCase.PresentMatch, true),
            (matchers[3].QueryParameterMatchSpecifierCase, matchers[3].PresentMatch));
    }

    [Fact]
    public void SourceNamespaceMatching()
    {
        // istiod: "for virtual service with source namespace matching": a proxy in foo gets only "foo", one in bar only "bar".
        var snapshot = Snapshot("""
              - name: foo
                match: [{sourceNamespace: foo}]
                route: [{destination: {host: foo.example.org, port: {number: 8484}}, weight: 100}]
              - name: bar
                match: [{sourceNamespace: bar}]
                route: [{destination: {host: bar.example.org, port: {number: 8484}}, weight: 100}]
            """);
        Assert.Equal(["foo"], RoutesOf(snapshot, ClientScope.InNamespace("foo")).Select(r => r.Name));
        Assert.Equal(["bar"], RoutesOf(snapshot, ClientScope.InNamespace("bar")).Select(r => r.Name));

        // No route applies: istiod builds no virtual host from the VirtualService, so the service's default route is sent.
        Assert.Equal(["default"], RoutesOf(snapshot, ClientScope.InNamespace("other")).Select(r => r.Name));
    }

    private const string HashCookie = """
          trafficPolicy:
            loadBalancer:
              consistentHash:
                httpCookie: {name: hash-cookie, ttl: 1s}
        """;

    [Fact]
    public void RingHash_CookieOnTheRouteAndNoPreviousHostsPredicate()
    {
        // istiod: "for virtual service with ring hash" (its ttl is 100ns; durations here have millisecond units).
        var route = Assert.Single(Routes(Plain, HashCookie));
        var policy = Assert.Single(route.Route_.HashPolicy);
        Assert.Equal(("hash-cookie", "", (TimeSpan?)TimeSpan.FromSeconds(1)), (CookieOf(policy).Name, CookieOf(policy).Path, CookieOf(policy).Ttl));
        Assert.Empty(route.Route_.RetryPolicy.RetryHostPredicate);
    }

    [Fact]
    public void RingHash_QueryParameter()
    {
        // istiod: "for virtual service with query param based ring hash".
        var route = Assert.Single(Routes(Plain, """
              trafficPolicy:
                loadBalancer:
                  consistentHash: {httpQueryParameterName: query}
            """));
        Assert.Equal("query", Assert.Single(route.Route_.HashPolicy).QueryParameter.Name);
        Assert.Empty(route.Route_.RetryPolicy.RetryHostPredicate);
    }

    private const string SomeSubset = """
          subsets:
          - name: some-subset
            trafficPolicy:
              loadBalancer:
                consistentHash:
                  httpCookie: {name: other-cookie}
        """;

    private const string ToSomeSubset = """
          - route:
            - destination: {host: foo.example.org, subset: some-subset, port: {number: 65000}}
              weight: 100
        """;

    [Fact]
    public void RingHash_FromTheSubset()
    {
        // istiod: "for virtual service with subsets with ring hash".
        var route = Assert.Single(Routes(ToSomeSubset, SomeSubset));
        Assert.Equal($"outbound|65000|some-subset|{Host}", route.Route_.Cluster);
        var cookie = CookieOf(Assert.Single(route.Route_.HashPolicy));
        Assert.Equal(("other-cookie", (TimeSpan?)null), (cookie.Name, cookie.Ttl));
    }

    [Fact]
    public void RingHash_SubsetOverridesTopLevelTrafficPolicy()
    {
        // istiod: "for virtual service with subsets and top level traffic policy with ring hash".
        var route = Assert.Single(Routes(ToSomeSubset, HashCookie + "\n" + SomeSubset));
        Assert.Equal("other-cookie", CookieOf(Assert.Single(route.Route_.HashPolicy)).Name);
    }

    [Fact]
    public void RingHash_SubsetPortLevelSettings()
    {
        // istiod: "for virtual service with subsets with port level settings with ring hash".
        var route = Assert.Single(Routes("""
              - route:
                - destination: {host: foo.example.org, subset: port-level-settings-subset, port: {number: 8484}}
                  weight: 100
            """, """
              trafficPolicy:
                portLevelSettings:
                - port: {number: 8484}
                  loadBalancer: {consistentHash: {httpCookie: {name: hash-cookie}}}
              subsets:
              - name: port-level-settings-subset
                trafficPolicy:
                  portLevelSettings:
                  - port: {number: 8484}
                    loadBalancer: {consistentHash: {httpCookie: {name: port-level-settings-cookie}}}
            """));
        Assert.Equal("port-level-settings-cookie", CookieOf(Assert.Single(route.Route_.HashPolicy)).Name);
    }

    [Theory]
    [InlineData(8484, "matching-port-cookie")] // istiod: "for virtual service with port level settings matching service port"
    [InlineData(443, null)] // istiod: "for virtual service with port level settings mismatched port"
    public void RingHash_PortLevelSettingsMustNameTheDestinationPort(int settingsPort, string? cookie)
    {
        var route = Assert.Single(Routes(Plain, $"""
              trafficPolicy:
                portLevelSettings:
                - port: {"{"}number: {settingsPort}{"}"}
                  loadBalancer: {"{"}consistentHash: {"{"}httpCookie: {"{"}name: {cookie ?? "mismatched-port-cookie"}{"}"}{"}"}{"}"}
            """));
        Assert.Equal(cookie is null ? Array.Empty<string>() : [cookie], route.Route_.HashPolicy.Select(p => p.Cookie.Name));
    }

    [Fact]
    public void RingHash_CookieAttributes()
    {
        // istiod: "for virtual service with cookie hash policy with attributes".
        var route = Assert.Single(Routes(Plain, """
              trafficPolicy:
                loadBalancer:
                  consistentHash:
                    httpCookie:
                      name: hash-cookie-with-attributes
                      ttl: 1s
                      path: /api
                      attributes:
                      - {name: SameSite, value: Strict}
                      - {name: Secure, value: "true"}
                      - {name: HttpOnly, value: "true"}
            """));
        var cookie = CookieOf(Assert.Single(route.Route_.HashPolicy));
        Assert.Equal(("hash-cookie-with-attributes", "/api", (TimeSpan?)TimeSpan.FromSeconds(1)), (cookie.Name, cookie.Path, cookie.Ttl));
        Assert.Equal([("SameSite", "Strict"), ("Secure", "true"), ("HttpOnly", "true")], cookie.Attributes);
        Assert.Empty(route.Route_.RetryPolicy.RetryHostPredicate);
    }

    [Fact]
    public void RingHash_PortSelectorBasedTrafficPolicy()
    {
        // istiod: "port selector based traffic policy".
        var route = Assert.Single(Routes(Plain, """
              trafficPolicy:
                portLevelSettings:
                - port: {number: 8484}
                  loadBalancer: {consistentHash: {httpCookie: {name: hash-cookie}}}
            """));
        Assert.Equal("hash-cookie", CookieOf(Assert.Single(route.Route_.HashPolicy)).Name);
    }

    private static (string, string, HeaderValueOption.Types.HeaderAppendAction)[] Ops(IEnumerable<HeaderValueOption> options) =>
        options.Select(o => (o.Header.Key, o.Header.Value, o.AppendAction)).ToArray();

    private const HeaderValueOption.Types.HeaderAppendAction Overwrite = HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExistsOrAdd;
    private const HeaderValueOption.Types.HeaderAppendAction Append = HeaderValueOption.Types.HeaderAppendAction.AppendIfExistsOrAdd;

    [Fact]
    public void HeaderOperations_SingleCluster()
    {
        // istiod: "for header operations for single cluster": the route's then the destination's operations, set before
        // add; :authority becomes the host rewrite (the route's wins), never a header operation. istiod's fixture also
        // adds :authority in the route's add, which Istio's validation refuses ("authority header cannot be set multiple
        // times", see HeaderOperations_AuthorityTwiceOnTheRoute_IsRefused); the destination's set and add both may.
        var route = Assert.Single(Routes("""
              - headers:
                  request:
                    set: {x-req-set: v1, ":authority": foo.extsvc.com}
                    add: {x-req-add: v2}
                    remove: [x-req-remove]
                  response:
                    set: {x-resp-set: v1}
                    add: {x-resp-add: v2}
                    remove: [x-resp-remove]
                route:
                - destination: {host: c-weighted.extsvc.com, subset: v1}
                  weight: 100
                  headers:
                    request:
                      set: {x-route-req-set: v1, ":authority": internal.foo.extsvc.com}
                      add: {x-route-req-add: v2, ":authority": internal.bar.extsvc.com}
                      remove: [x-route-req-remove]
                    response:
                      set: {x-route-resp-set: v1}
                      add: {x-route-resp-add: v2}
                      remove: [x-route-resp-remove]
            """));
        Assert.Equal([("x-req-set", "v1", Overwrite), ("x-req-add", "v2", Append), ("x-route-req-set", "v1", Overwrite), ("x-route-req-add", "v2", Append)],
            Ops(route.RequestHeadersToAdd));
        Assert.Equal(["x-req-remove", "x-route-req-remove"], route.RequestHeadersToRemove);
        Assert.Equal([("x-resp-set", "v1", Overwrite), ("x-resp-add", "v2", Append), ("x-route-resp-set", "v1", Overwrite), ("x-route-resp-add", "v2", Append)],
            Ops(route.ResponseHeadersToAdd));
        Assert.Equal(["x-resp-remove", "x-route-resp-remove"], route.ResponseHeadersToRemove);
        Assert.Equal("foo.extsvc.com", route.Route_.HostRewriteLiteral);
    }

    [Theory]
    [InlineData("rewrite: {authority: a.example}\n    headers: {request: {set: {host: b.example}}}", "the authority header cannot be set multiple times")]
    [InlineData("headers: {request: {set: {\":authority\": a.example}, add: {\":authority\": b.example}}}", "the authority header cannot be set multiple times")]
    [InlineData("headers: {request: {remove: [\":path\"]}}", "invalid header ':path' in 'spec.http[].headers.request.remove'")]
    [InlineData("headers: {request: {set: {\":path\": /x}}}", "invalid header ':path' in 'spec.http[].headers.request.set'")]
    [InlineData("headers: {response: {set: {host: x}}}", "invalid header 'host' in 'spec.http[].headers.response.set'")]
    public void HeaderOperations_IstioValidation(string fields, string reason)
    {
        // Istio's validateAuthorityRewrite and header-name checks (the route_test.go fixtures skip validation).
        var ex = Refused($"""
              - {fields}
                route: [{"{"}destination: {"{"}host: foo.example.org{"}"}{"}"}]
            """);
        Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HeaderOperations_WeightedCluster()
    {
        // istiod: "for header operations for weighted cluster": each destination's operations and authority go on its
        // ClusterWeight; weights 9 and 1 are relative and written as given.
        var route = Assert.Single(Routes("""
              - headers:
                  request: {set: {x-req-set: v1}}
                route:
                - destination: {host: c-weighted.extsvc.com, subset: blue}
                  weight: 9
                  headers:
                    request:
                      set: {x-route-req-set-blue: v1, ":authority": blue.foo.extsvc.com}
                      add: {x-route-req-add-blue: v2, ":authority": blue.bar.extsvc.com}
                      remove: [x-route-req-remove-blue]
                    response:
                      set: {x-route-resp-set-blue: v1}
                      add: {x-route-resp-add-blue: v2}
                      remove: [x-route-resp-remove-blue]
                - destination: {host: c-weighted.extsvc.com, subset: green}
                  weight: 1
                  headers:
                    request:
                      set: {x-route-req-set-green: v1, ":authority": green.foo.extsvc.com}
                      add: {x-route-req-add-green: v2, ":authority": green.bar.extsvc.com}
                      remove: [x-route-req-remove-green]
                    response:
                      set: {x-route-resp-set-green: v1}
                      add: {x-route-resp-add-green: v2}
                      remove: [x-route-resp-remove-green]
            """));
        var clusters = route.Route_.WeightedClusters.Clusters;
        Assert.Equal([("outbound|8080|blue|c-weighted.extsvc.com", 9u), ("outbound|8080|green|c-weighted.extsvc.com", 1u)], clusters.Select(c => (c.Name, c.Weight ?? 0)));
        foreach (var (cluster, color) in clusters.Zip(["blue", "green"]))
        {
            Assert.Equal([($"x-route-req-set-{color}", "v1", Overwrite), ($"x-route-req-add-{color}", "v2", Append)], Ops(cluster.RequestHeadersToAdd));
            Assert.Equal([$"x-route-req-remove-{color}"], cluster.RequestHeadersToRemove);
            Assert.Equal([($"x-route-resp-set-{color}", "v1", Overwrite), ($"x-route-resp-add-{color}", "v2", Append)], Ops(cluster.ResponseHeadersToAdd));
            Assert.Equal([$"x-route-resp-remove-{color}"], cluster.ResponseHeadersToRemove);
            Assert.Equal($"{color}.foo.extsvc.com", cluster.HostRewriteLiteral);
        }

        Assert.Equal([("x-req-set", "v1", Overwrite)], Ops(route.RequestHeadersToAdd));
    }

    [Fact]
    public void RedirectCode()
    {
        // istiod: "for redirect code".
        var redirect = Assert.Single(Routes("""
              - redirect: {uri: example.org, authority: some-authority.default.svc.cluster.local, redirectCode: 308}
            """)).Redirect;
        Assert.Equal((RedirectAction.Types.RedirectResponseCode.PermanentRedirect, "example.org", "some-authority.default.svc.cluster.local"),
            (redirect.ResponseCode, redirect.PathRedirect, redirect.HostRedirect));
    }

    [Fact]
    public void InvalidRedirectCode_RouteLeftOutWithAWarning()
    {
        // istiod: "for invalid redirect code" (317): Istio's validation accepts any 3xx and istiod sends the route with
        // no action, which Envoy and gRPC clients refuse with the whole route table. Here the route is left out, the
        // file is accepted with a warning naming the line, and the other routes apply.
        var http = """
              - name: odd
                match: [{uri: {prefix: /odd}}]
                redirect: {uri: /example, authority: some-authority.default.svc.cluster.local, redirectCode: 317}
              - name: rest
                route: [{destination: {host: foo.example.org}}]
            """;
        var parsed = IstioYamlParser.Parse(Service + "\n---\n" + VirtualService(http), "default");
        var warning = Assert.Single(parsed.Warnings);
        Assert.StartsWith("20:98: VirtualService 'default/acme': 'spec.http[].redirect.redirectCode' 317 is not a redirect code Envoy supports", warning, StringComparison.Ordinal);
        Assert.Equal(["rest"], Routes(http).Select(r => r.Name));
    }

    [Fact]
    public void HostRewrite()
    {
        // istiod: "for host rewrite" (and, as no mesh config asks for it, no append_x_forwarded_host: "... with
        // XForwardedHost enabled" needs mesh-wide proxy headers this control plane has no setting for).
        var route = Assert.Single(Routes("""
              - match: [{name: host-rewrite}]
                rewrite: {authority: bar.example.org}
                route: [{destination: {host: foo.example.org}, weight: 100}]
            """));
        Assert.Equal(("bar.example.org", false), (route.Route_.HostRewriteLiteral, route.Route_.AppendXForwardedHost));
    }

    [Fact]
    public void FullPathRewrite_PrefixRewrite_PathAndHostRewrite_RegexMatchWithRegexRewrite()
    {
        // istiod: "for full path rewrite", "for prefix path rewrite", "for path and host rewrite",
        // "for path regex match with regex rewrite".
        var routes = Routes("""
              - match: [{name: full-path-rewrite, uri: {prefix: /full}}]
                rewrite: {uriRegexRewrite: {match: /.*, rewrite: /replace-full}}
                route: [{destination: {host: foo.example.org}}]
              - match: [{name: prefix-path-rewrite, uri: {prefix: /prefix}}]
                rewrite: {uri: /replace-prefix}
                route: [{destination: {host: foo.example.org}}]
              - match: [{name: full-path-and-host-rewrite, uri: {prefix: /both}}]
                rewrite: {uriRegexRewrite: {match: /.*, rewrite: /replace-full}, authority: bar.example.org}
                route: [{destination: {host: foo.example.org}}]
              - match: [{name: regex, uri: {regex: "^/service/[^/]+/.*$"}}]
                rewrite: {uriRegexRewrite: {match: "^/service/([^/]+)(/.*)$", rewrite: "\\2/instance/\\1"}}
                route: [{destination: {host: foo.example.org}}]
            """);
        Assert.Equal(("/.*", "/replace-full"), (routes[0].Route_.RegexRewrite.Pattern.Regex, routes[0].Route_.RegexRewrite.Substitution));
        Assert.Equal("/replace-prefix", routes[1].Route_.PrefixRewrite);
        Assert.Equal(("/.*", "/replace-full", "bar.example.org"),
            (routes[2].Route_.RegexRewrite.Pattern.Regex, routes[2].Route_.RegexRewrite.Substitution, routes[2].Route_.HostRewriteLiteral));
        Assert.Equal(("^/service/[^/]+/.*$", "^/service/([^/]+)(/.*)$", "\\2/instance/\\1"),
            (routes[3].Match.SafeRegex.Regex, routes[3].Route_.RegexRewrite.Pattern.Regex, routes[3].Route_.RegexRewrite.Substitution));
    }

    [Fact]
    public void FullPathRedirect_AndPrefixRewriteRedirect()
    {
        // istiod: "for full path redirect" and "for prefix_rewrite redirect".
        var routes = Routes("""
              - match: [{uri: {prefix: /full}}]
                redirect: {uri: /replace-full-path, authority: some-authority.default.svc.cluster.local, redirectCode: 308}
              - match: [{uri: {prefix: /prefix}}]
                redirect: {authority: foo.example.com, prefixRewrite: /, redirectCode: 301}
            """);
        Assert.Equal((RedirectAction.PathRewriteSpecifierOneofCase.PathRedirect, "/replace-full-path"),
            (routes[0].Redirect.PathRewriteSpecifierCase, routes[0].Redirect.PathRedirect));
        Assert.Equal((RedirectAction.PathRewriteSpecifierOneofCase.PrefixRewrite, "/", "foo.example.com", RedirectAction.Types.RedirectResponseCode.MovedPermanently),
            (routes[1].Redirect.PathRewriteSpecifierCase, routes[1].Redirect.PrefixRewrite, routes[1].Redirect.HostRedirect, routes[1].Redirect.ResponseCode));
    }

    [Fact]
    public void RedirectOrDirectResponse_WithHeaderManipulation()
    {
        // istiod: "for redirect and header manipulation", "for direct response code", "for direct response code and
        // header manipulation" (response header names keep their case).
        var routes = Routes("""
              - match: [{uri: {prefix: /r}}]
                redirect: {uri: /example, authority: some-authority.default.svc.cluster.local, redirectCode: 308}
                headers:
                  response:
                    set: {Strict-Transport-Security: "max-age=31536000; includeSubDomains; preload"}
              - match: [{uri: {prefix: /d}}]
                directResponse: {status: 200, body: {string: hello}}
                headers:
                  response:
                    set: {Strict-Transport-Security: "max-age=31536000; includeSubDomains; preload"}
            """);
        Assert.Equal(RedirectAction.Types.RedirectResponseCode.PermanentRedirect, routes[0].Redirect.ResponseCode);
        Assert.Equal((200u, "hello"), (routes[1].DirectResponse.Status, routes[1].DirectResponse.Body.InlineString));
        Assert.All(routes, r => Assert.Equal([("Strict-Transport-Security", "max-age=31536000; includeSubDomains; preload", Overwrite)], Ops(r.ResponseHeadersToAdd)));
    }

    [Theory]
    [InlineData(false, "hash-cookie")] // istiod: "for no virtualservice but has destinationrule with consistentHash loadbalancer"
    [InlineData(true, "hash-cookie-1")] // istiod: "for no virtualservice but has destinationrule with portLevel consistentHash loadbalancer"
    public void NoVirtualService_DefaultRouteCarriesTheHashPolicy(bool portLevel, string cookie)
    {
        var rule = DestinationRule(HashCookie + (portLevel ? """

                portLevelSettings:
                - port: {number: 8080}
                  loadBalancer: {consistentHash: {httpCookie: {name: hash-cookie-1}}}
            """ : string.Empty));
        var route = Assert.Single(RoutesOf(TrafficPolicyTranslationTests.Translate(Service + "\n---\n" + rule)));
        Assert.Equal(("default", "/", Table), (route.Name, route.Match.Prefix, route.Route_.Cluster));
        Assert.Equal(cookie, CookieOf(Assert.Single(route.Route_.HashPolicy)).Name);
    }

    // ---- route_internal_test.go ----

    private static Route WithMatch(Action<RouteMatch> configure)
    {
        var match = new RouteMatch();
        configure(match);
        return new Route { Name = "r", Match = match };
    }

    public static TheoryData<string, bool> CatchAllCases() => new()
    {
        { "catch all prefix", true },
        { "catch all prefix >= 1.14", true },
        { "catch all regex", true },
        { "catch all prefix with headers", false },
        { "uri regex with headers", false },
        { "uri regex with query params", false },
    };

    [Theory]
    [MemberData(nameof(CatchAllCases))]
    public void IsCatchAllRoute(string istiodCase, bool expected)
    {
        // istiod: TestIsCatchAllRoute.
        var route = istiodCase switch
        {
            "catch all prefix" => WithMatch(m => m.Prefix = "/"),
            "catch all prefix >= 1.14" => WithMatch(m => m.PathSeparatedPrefix = "/"),
            "catch all regex" => WithMatch(m => m.SafeRegex = new RegexMatcher { Regex = ".*" }),
            "catch all prefix with headers" => WithMatch(m =>
            {
                m.Prefix = "/";
                m.Headers.Add(new HeaderMatcher { Name = "Authentication", ExactMatch = "test" });
            }),
            "uri regex with headers" => WithMatch(m =>
            {
                m.SafeRegex = new RegexMatcher { Regex = ".*" };
                m.Headers.Add(new HeaderMatcher { Name = "Authentication", StringMatch = new StringMatcher { SafeRegex = new RegexMatcher { Regex = ".*" } } });
            }),
            _ => WithMatch(m =>
            {
                m.SafeRegex = new RegexMatcher { Regex = ".*" };
                m.QueryParameters.Add(new QueryParameterMatcher { Name = "Authentication", PresentMatch = true });
            }),
        };
        Assert.Equal(expected, XdsTranslator.IsCatchAll(route));
    }

    [Theory]
    [InlineData("mirrorPercent: 0", null, null)] // istiod TestMirrorPercent: "zero mirror percent"
    [InlineData("", 100u, FractionalPercent.Types.DenominatorType.Hundred)] // "mirror with no value given"
    [InlineData("mirrorPercent: 50", 50u, FractionalPercent.Types.DenominatorType.Hundred)] // "mirror with actual percent"
    [InlineData("mirrorPercentage: {value: 0.0}", null, null)] // "zero mirror percentage"
    [InlineData("mirrorPercentage: {value: 50.0}", 500_000u, FractionalPercent.Types.DenominatorType.Million)] // "mirrorpercentage with actual percent"
    [InlineData("mirrorPercent: 40\n    mirrorPercentage: {value: 50.0}", 500_000u, FractionalPercent.Types.DenominatorType.Million)] // "mirrorpercentage takes precedence when both are given"
    public void MirrorPercent(string percent, uint? numerator, FractionalPercent.Types.DenominatorType? denominator)
    {
        var route = Assert.Single(Routes($"""
              - mirror: {"{"}host: foo.example.org, port: {"{"}number: 8484{"}"}{"}"}
                {percent}
                route: [{"{"}destination: {"{"}host: foo.example.org{"}"}{"}"}]
            """));
        var mirrors = route.Route_.RequestMirrorPolicies;
        if (numerator is null)
        {
            Assert.Empty(mirrors);
            return;
        }

        var mirror = Assert.Single(mirrors);
        Assert.Equal((Dest8484, numerator.Value, denominator!.Value), (mirror.Cluster, mirror.RuntimeFraction.DefaultValue.Numerator, mirror.RuntimeFraction.DefaultValue.Denominator));
    }

    [Theory]
    [InlineData("", 100u, FractionalPercent.Types.DenominatorType.Hundred)] // istiod TestMirrorPercentByPolicy: "mirror with no value given"
    [InlineData("percentage: {value: 0.0}", null, null)] // "zero mirror percentage"
    [InlineData("percentage: {value: 50.0}", 500_000u, FractionalPercent.Types.DenominatorType.Million)] // "mirrorpercentage with actual percent"
    public void MirrorPercentByPolicy(string percentage, uint? numerator, FractionalPercent.Types.DenominatorType? denominator)
    {
        var route = Assert.Single(Routes($"""
              - mirrors:
                - destination: {"{"}host: foo.example.org, port: {"{"}number: 8484{"}"}{"}"}
                  {percentage}
                route: [{"{"}destination: {"{"}host: foo.example.org{"}"}{"}"}]
            """));
        var mirrors = route.Route_.RequestMirrorPolicies;
        if (numerator is null)
        {
            Assert.Empty(mirrors);
            return;
        }

        var mirror = Assert.Single(mirrors);
        Assert.Equal((numerator.Value, denominator!.Value), (mirror.RuntimeFraction.DefaultValue.Numerator, mirror.RuntimeFraction.DefaultValue.Denominator));
    }

    [Fact]
    public void TranslateRequestMirrorPolicy()
    {
        // istiod TestTranslateRequestMirrorPolicy: trace_sampled false, the shadow host suffix kept (istiod's default).
        var mirror = Assert.Single(Assert.Single(Routes("""
              - mirror: {host: service.namespace.svc.cluster.local, port: {number: 8080}}
                route: [{destination: {host: foo.example.org}}]
            """)).Route_.RequestMirrorPolicies);
        Assert.Equal(("outbound|8080||service.namespace.svc.cluster.local", false, false, 100u),
            (mirror.Cluster, mirror.TraceSampled, mirror.DisableShadowHostSuffixAppend, mirror.RuntimeFraction.DefaultValue.Numerator));
    }

    [Theory]
    [InlineData("foo", "foo", true)] // istiod TestSourceMatchHTTP: "source namespace match"
    [InlineData("foo", "bar", false)] // "source namespace not match"
    [InlineData("foo", "", false)] // "source namespace not match when empty"
    [InlineData(null, "bar", true)] // "source namespace any"
    public void SourceMatchHttp(string? sourceNamespace, string proxyNamespace, bool applies)
    {
        var match = sourceNamespace is null ? "{uri: {prefix: /s}}" : $"{{uri: {{prefix: /s}}, sourceNamespace: {sourceNamespace}}}";
        var routes = RoutesOf(Snapshot($"""
              - name: s
                match: [{match}]
                route: [{"{"}destination: {"{"}host: foo.example.org{"}"}{"}"}]
              - name: rest
                route: [{"{"}destination: {"{"}host: foo.example.org{"}"}{"}"}]
            """), ClientScope.InNamespace(proxyNamespace));
        Assert.Equal(applies ? ["s", "rest"] : ["rest"], routes.Select(r => r.Name));
    }

    [Fact]
    public void SourceMatchHttp_GatewaysDecideAlone()
    {
        // istiod's sourceMatchHTTP: a match that names gateways applies when "mesh" is among them, whatever its sourceLabels.
        var routes = RoutesOf(Snapshot("""
              - name: s
                match: [{uri: {prefix: /s}, gateways: [mesh], sourceLabels: {app: nobody}}]
                route: [{destination: {host: foo.example.org}}]
            """), Client("default", ("app", "productpage")));
        Assert.Equal(["s"], routes.Select(r => r.Name));
    }

    [Fact]
    public void TranslateFault()
    {
        // istiod TestTranslateFault: "http delay", "grpc abort", "both delay and abort".
        var routes = Routes("""
              - match: [{uri: {prefix: /delay}}]
                fault: {delay: {fixedDelay: 3s, percentage: {value: 50}}}
                route: [{destination: {host: foo.example.org}}]
              - match: [{uri: {prefix: /abort}}]
                fault: {abort: {grpcStatus: DEADLINE_EXCEEDED, percentage: {value: 50}}}
                route: [{destination: {host: foo.example.org}}]
              - match: [{uri: {prefix: /both}}]
                fault:
                  delay: {fixedDelay: 3s, percentage: {value: 50}}
                  abort: {grpcStatus: DEADLINE_EXCEEDED, percentage: {value: 50}}
                route: [{destination: {host: foo.example.org}}]
            """);
        var faults = routes.Select(r => r.TypedPerFilterConfig[HttpFilterNames.Fault].Unpack<HTTPFault>()).ToList();
        static (TimeSpan, uint, FractionalPercent.Types.DenominatorType) Delay(HTTPFault f) =>
            (f.Delay.FixedDelay.ToTimeSpan(), f.Delay.Percentage.Numerator, f.Delay.Percentage.Denominator);
        static (uint, uint, FractionalPercent.Types.DenominatorType) Abort(HTTPFault f) =>
            (f.Abort.GrpcStatus, f.Abort.Percentage.Numerator, f.Abort.Percentage.Denominator);

        Assert.Equal((TimeSpan.FromSeconds(3), 500_000u, FractionalPercent.Types.DenominatorType.Million), Delay(faults[0]));
        Assert.Null(faults[0].Abort);
        Assert.Equal((4u, 500_000u, FractionalPercent.Types.DenominatorType.Million), Abort(faults[1]));
        Assert.Null(faults[1].Delay);
        Assert.Equal((TimeSpan.FromSeconds(3), 500_000u, FractionalPercent.Types.DenominatorType.Million), Delay(faults[2]));
        Assert.Equal((4u, 500_000u, FractionalPercent.Types.DenominatorType.Million), Abort(faults[2]));
    }
}

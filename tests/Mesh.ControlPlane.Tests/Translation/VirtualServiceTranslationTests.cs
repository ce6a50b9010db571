using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Http.Fault.V3;
using Envoy.Type.V3;
using Mesh.ControlPlane.Translation;
using Mesh.Xds;

namespace Mesh.ControlPlane.Tests.Translation;

/// <summary>VirtualService http routes → Route fields, as istiod builds them.</summary>
public class VirtualServiceTranslationTests
{
    private const string Fqdn = "reviews.default.svc.cluster.local";
    private const string Base = $"outbound|9080||{Fqdn}";

    private static List<Route> Routes(string virtualServiceHttp, ClientScope? client = null)
    {
        var snapshot = TrafficPolicyTranslationTests.Translate(TestYaml.ReviewsServiceEntry + "\n---\n" + """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: reviews}
            spec:
              hosts: [reviews]
              http:
            """ + "\n" + virtualServiceHttp);
        var resource = snapshot.Find(ResourceTypes.Route, Base, client ?? ClientScope.InNamespace("default"))!;
        return resource.Resource.Unpack<RouteConfiguration>().VirtualHosts[0].Routes.ToList();
    }

    private static void AssertDefaultRetry(RetryPolicy policy, bool previousHosts = true)
    {
        Assert.Equal((2u, "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes", 5L),
            (policy.NumRetries ?? 0, policy.RetryOn, policy.HostSelectionRetryMaxAttempts));
        Assert.Empty(policy.RetriableStatusCodes);
        if (previousHosts)
        {
            var predicate = Assert.Single(policy.RetryHostPredicate);
            Assert.Equal(("envoy.retry_host_predicates.previous_hosts", "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"),
                (predicate.Name, predicate.TypedConfig.TypeUrl));
            Assert.True(predicate.TypedConfig.Value.IsEmpty);
        }
        else
        {
            Assert.Empty(policy.RetryHostPredicate);
        }
    }

    [Fact]
    public void Retries_DefaultPolicyWhenUnset_NoneForZeroAttempts_StatusCodesSplitOut()
    {
        var routes = Routes("""
              - name: unset
                match: [{uri: {prefix: /a}}]
                route: [{destination: {host: reviews}}]
              - name: off
                match: [{uri: {prefix: /b}}]
                retries: {attempts: 0}
                route: [{destination: {host: reviews}}]
              - name: custom
                match: [{uri: {prefix: /c}}]
                retries: {attempts: 4, perTryTimeout: 300ms, retryOn: "5xx, 503,reset", retryIgnorePreviousHosts: false, backoff: 40ms, retryRemoteLocalities: true}
                route: [{destination: {host: reviews}}]
            """);

        AssertDefaultRetry(routes[0].Route_.RetryPolicy);
        Assert.Null(routes[1].Route_.RetryPolicy);
        var custom = routes[2].Route_.RetryPolicy;
        Assert.Equal((4u, "5xx,reset,retriable-status-codes", TimeSpan.FromMilliseconds(300), TimeSpan.FromMilliseconds(40), 5L),
            (custom.NumRetries ?? 0, custom.RetryOn, custom.PerTryTimeout.ToTimeSpan(), custom.RetryBackOff.BaseInterval.ToTimeSpan(), custom.HostSelectionRetryMaxAttempts));
        Assert.Equal([503u], custom.RetriableStatusCodes);
        Assert.Empty(custom.RetryHostPredicate);
        Assert.Null(custom.RetryPriority);

        // No catch-all is appended after the VirtualService's routes (istiod adds none).
        Assert.Equal(["unset", "off", "custom"], routes.Select(r => r.Name));
        Assert.All(routes.Where(r => r.Route_ is not null), r =>
            Assert.Equal((TimeSpan.Zero, TimeSpan.Zero), (r.Route_.Timeout.ToTimeSpan(), r.Route_.MaxStreamDuration.MaxStreamDuration_.ToTimeSpan())));
    }

    [Fact]
    public void DirectResponse_RedirectSchemePort_RegexRewriteAndSchemeMatch()
    {
        var routes = Routes("""
              - name: gone
                match: [{uri: {exact: /old}, scheme: {exact: http}}]
                directResponse: {status: 410, body: {string: "moved away"}}
              - name: secure
                match: [{uri: {prefix: /s}}]
                redirect: {scheme: https, port: 8443, authority: secure.example, redirectCode: 308}
              - name: same-port
                match: [{uri: {prefix: /p}}]
                redirect: {uri: /q, derivePort: FROM_REQUEST_PORT}
              - name: default-port
                match: [{uri: {prefix: /d}}]
                redirect: {scheme: https, port: 443}
              - name: rx
                match: [{uri: {prefix: /r}}]
                rewrite: {uriRegexRewrite: {match: "^/r/(.*)$", rewrite: "/reviews/\\1"}, authority: backend}
                route: [{destination: {host: reviews}}]
            """);

        var gone = routes[0];
        Assert.Equal((410u, "moved away"), (gone.DirectResponse.Status, gone.DirectResponse.Body.InlineString));
        var scheme = Assert.Single(gone.Match.Headers);
        Assert.Equal((":scheme", "http"), (scheme.Name, scheme.ExactMatch));

        var secure = routes[1].Redirect;
        Assert.Equal(("https", 8443u, "secure.example", RedirectAction.Types.RedirectResponseCode.PermanentRedirect),
            (secure.SchemeRedirect, secure.PortRedirect, secure.HostRedirect, secure.ResponseCode));
        Assert.Equal(("/q", 9080u, RedirectAction.Types.RedirectResponseCode.MovedPermanently),
            (routes[2].Redirect.PathRedirect, routes[2].Redirect.PortRedirect, routes[2].Redirect.ResponseCode));
        // :443 is not written for https.
        Assert.Equal(("https", 0u), (routes[3].Redirect.SchemeRedirect, routes[3].Redirect.PortRedirect));

        var rx = routes[4].Route_;
        Assert.Equal(("^/r/(.*)$", "/reviews/\\1", "backend"), (rx.RegexRewrite.Pattern.Regex, rx.RegexRewrite.Substitution, rx.HostRewriteLiteral));
        Assert.Equal(string.Empty, rx.PrefixRewrite);
    }

    [Fact]
    public void DestinationHeaders_GoToTheRouteOrTheWeightedCluster_AuthorityBecomesHostRewrite()
    {
        var routes = Routes("""
              - name: single
                match: [{uri: {prefix: /one}}]
                headers:
                  request: {set: {x-route: r}}
                route:
                - destination: {host: reviews}
                  headers:
                    request: {set: {x-dest: d, ":authority": one.example}, remove: [x-drop]}
                    response: {add: {x-resp: a}}
              - name: split
                route:
                - destination: {host: reviews, subset: v1}
                  weight: 70
                  headers: {request: {add: {x-v: "1", host: v1.example}}, response: {remove: [server]}}
                - destination: {host: reviews, subset: v2}
                  weight: 30
                - destination: {host: reviews, subset: v3}
                  weight: 0
            """);

        var single = routes[0];
        Assert.Equal([("x-route", "r", HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExistsOrAdd), ("x-dest", "d", HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExistsOrAdd)],
            single.RequestHeadersToAdd.Select(h => (h.Header.Key, h.Header.Value, h.AppendAction)));
        Assert.Equal(["x-drop"], single.RequestHeadersToRemove);
        Assert.Equal([("x-resp", HeaderValueOption.Types.HeaderAppendAction.AppendIfExistsOrAdd)], single.ResponseHeadersToAdd.Select(h => (h.Header.Key, h.AppendAction)));
        Assert.Equal("one.example", single.Route_.HostRewriteLiteral);

        var clusters = routes[1].Route_.WeightedClusters.Clusters;
        Assert.Equal([($"outbound|9080|v1|{Fqdn}", 70u), ($"outbound|9080|v2|{Fqdn}", 30u)], clusters.Select(c => (c.Name, c.Weight ?? 0)));
        Assert.Equal([("x-v", "1")], clusters[0].RequestHeadersToAdd.Select(h => (h.Header.Key, h.Header.Value)));
        Assert.Equal(["server"], clusters[0].ResponseHeadersToRemove);
        Assert.Equal("v1.example", clusters[0].HostRewriteLiteral);
        Assert.Empty(clusters[1].RequestHeadersToAdd);
        Assert.Empty(routes[1].RequestHeadersToAdd);
    }

    [Fact]
    public void Mirrors_ListAndSingleForms_FaultDelayPercent()
    {
        var routes = Routes("""
              - name: many
                match: [{uri: {prefix: /m}}]
                mirrors:
                - destination: {host: reviews, subset: v2}
                  percentage: {value: 12.5}
                - destination: {host: ratings.shop.svc.cluster.local, port: {number: 9090}}
                - destination: {host: reviews, subset: v3}
                  percentage: {value: 0}
                route: [{destination: {host: reviews}}]
              - name: one
                match: [{uri: {prefix: /o}}]
                mirror: {host: reviews, subset: v1}
                mirrorPercentage: {value: 50}
                fault:
                  delay: {percent: 30, fixedDelay: 1s}
                route: [{destination: {host: reviews}}]
            """);

        // istiod: a written percentage per million; none written is 100 per hundred.
        Assert.Equal([($"outbound|9080|v2|{Fqdn}", 125_000u, FractionalPercent.Types.DenominatorType.Million),
                ("outbound|9090||ratings.shop.svc.cluster.local", 100u, FractionalPercent.Types.DenominatorType.Hundred)],
            routes[0].Route_.RequestMirrorPolicies.Select(m => (m.Cluster, m.RuntimeFraction.DefaultValue.Numerator, m.RuntimeFraction.DefaultValue.Denominator)));
        Assert.All(routes[0].Route_.RequestMirrorPolicies, m => Assert.False(m.TraceSampled));
        var one = Assert.Single(routes[1].Route_.RequestMirrorPolicies);
        Assert.Equal(($"outbound|9080|v1|{Fqdn}", 500_000u), (one.Cluster, one.RuntimeFraction.DefaultValue.Numerator));

        var fault = routes[1].TypedPerFilterConfig[HttpFilterNames.Fault].Unpack<HTTPFault>();
        // The deprecated integer percent is written per hundred, as istiod does.
        Assert.Equal((30u, FractionalPercent.Types.DenominatorType.Hundred, TimeSpan.FromSeconds(1)),
            (fault.Delay.Percentage.Numerator, fault.Delay.Percentage.Denominator, fault.Delay.FixedDelay.ToTimeSpan()));
    }

    [Fact]
    public void HeaderMatches_UseTheSinglePurposeMatcherFields()
    {
        var routes = Routes("""
              - name: h
                match:
                - name: m
                  headers: {x-exact: {exact: a}, x-prefix: {prefix: b}, x-regex: {regex: "c+"}}
                  withoutHeaders: {x-not: {exact: d}}
                route: [{destination: {host: reviews}}]
            """);

        var route = routes[0];
        Assert.Equal("h.m", route.Name);
        var headers = route.Match.Headers.ToDictionary(h => h.Name);
        Assert.Equal("a", headers["x-exact"].ExactMatch);
        Assert.Equal("b", headers["x-prefix"].PrefixMatch);
        Assert.Equal("c+", headers["x-regex"].SafeRegexMatch.Regex);
        Assert.Equal(("d", true), (headers["x-not"].ExactMatch, headers["x-not"].InvertMatch));
        Assert.All(route.Match.Headers, h => Assert.Null(h.StringMatch));
    }

    [Fact]
    public void WithoutHeaders_ValueMatchTreatsAMissingHeaderAsEmpty_PresenceMatchDoesNot()
    {
        // Without treat_missing_header_as_empty a request lacking x-canary fails the inverted exact match and misroutes.
        var match = Assert.Single(Routes("""
              - name: not-canary
                match: [{withoutHeaders: {x-canary: {exact: "true"}, x-debug: {}}, headers: {b-user: {prefix: a}}}]
                route: [{destination: {host: reviews}}]
            """)).Match;

        // Sorted by name as istiod writes them (headers and withoutHeaders together).
        Assert.Equal(["b-user", "x-canary", "x-debug"], match.Headers.Select(h => h.Name));
        Assert.Equal(("true", true, true), (match.Headers[1].ExactMatch, match.Headers[1].InvertMatch, match.Headers[1].TreatMissingHeaderAsEmpty));
        Assert.Equal((true, true, false), (match.Headers[2].PresentMatch, match.Headers[2].InvertMatch, match.Headers[2].TreatMissingHeaderAsEmpty));
        Assert.False(match.Headers[0].TreatMissingHeaderAsEmpty);
        Assert.True(match.CaseSensitive);
    }

    [Fact]
    public void Fault_WithoutPercentage_FaultsNoRequest()
    {
        // Istio's API: without percentage no request is delayed or aborted. istiod writes the delay as the deprecated
        // integer percent (0) per hundred, and no percentage at all for the abort (Envoy's default: 0).
        var routes = Routes("""
              - name: delay
                match: [{uri: {prefix: /d}}]
                fault: {delay: {fixedDelay: 5s}}
                route: [{destination: {host: reviews}}]
              - name: abort
                match: [{uri: {prefix: /a}}]
                fault: {abort: {httpStatus: 503}}
                route: [{destination: {host: reviews}}]
              - name: truncated
                match: [{uri: {prefix: /t}}]
                fault: {abort: {httpStatus: 503, percentage: {value: 0.57}}}
                route: [{destination: {host: reviews}}]
            """);
        var delay = routes[0].TypedPerFilterConfig[HttpFilterNames.Fault].Unpack<HTTPFault>().Delay;
        Assert.Equal((0u, FractionalPercent.Types.DenominatorType.Hundred), (delay.Percentage.Numerator, delay.Percentage.Denominator));
        var abort = routes[1].TypedPerFilterConfig[HttpFilterNames.Fault].Unpack<HTTPFault>().Abort;
        Assert.Equal((503u, (FractionalPercent?)null), (abort.HttpStatus, abort.Percentage));

        // istiod truncates percent x 10000 (0.57 -> 5699.999... -> 5699; rounding gave 5700).
        Assert.Equal(5_699u, routes[2].TypedPerFilterConfig[HttpFilterNames.Fault].Unpack<HTTPFault>().Abort.Percentage.Numerator);
    }

    [Fact]
    public void FaultAbort_WithoutErrorType_IsLeftOutWithAWarning()
    {
        // Istio's validation only warns ("abort configured, but error type not set"); istiod's TranslateFault drops the abort.
        const string Http = """
              - name: delay-only
                fault:
                  delay: {fixedDelay: 1s, percentage: {value: 10}}
                  abort: {percentage: {value: 50}}
                route: [{destination: {host: reviews}}]
            """;
        var fault = Assert.Single(Routes(Http)).TypedPerFilterConfig[HttpFilterNames.Fault].Unpack<HTTPFault>();
        Assert.Equal((100_000u, (Envoy.Extensions.Filters.Http.Fault.V3.FaultAbort?)null), (fault.Delay.Percentage.Numerator, fault.Abort));

        var parsed = Mesh.ControlPlane.Config.IstioYamlParser.Parse(TestYaml.ReviewsServiceEntry + "\n---\n" + """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: reviews}
            spec:
              hosts: [reviews]
              http:
            """ + "\n" + Http, "default");
        Assert.Contains("'fault.abort' sets neither 'httpStatus' nor 'grpcStatus'; the abort is left out", Assert.Single(parsed.Warnings), StringComparison.Ordinal);
    }

    [Fact]
    public void Weights_AreRelative_AsWritten()
    {
        // Weights 1 and 3 (a 25/75 split) were refused as "must sum to 100"; istiod accepts them and writes them as
        // given, without total_weight (Envoy and gRPC divide by the sum).
        var route = Assert.Single(Routes("""
              - name: split
                route:
                - destination: {host: reviews, subset: v1}
                  weight: 1
                - destination: {host: reviews, subset: v2}
                  weight: 3
            """));
        Assert.Equal([($"outbound|9080|v1|{Fqdn}", 1u), ($"outbound|9080|v2|{Fqdn}", 3u)],
            route.Route_.WeightedClusters.Clusters.Select(c => (c.Name, c.Weight ?? 0)));
    }

    [Fact]
    public void CatchAll_EndsItsVirtualService_IncludingAPortOnlyMatch()
    {
        var routes = Routes("""
              - name: everything
                match: [{port: 9080}]
                route: [{destination: {host: reviews, subset: v1}}]
              - name: never
                match: [{headers: {end-user: {exact: jason}}}]
                route: [{destination: {host: reviews, subset: v2}}]
            """);
        Assert.Equal(["everything"], routes.Select(r => r.Name));
    }

    [Fact]
    public void StatPrefix_IsWrittenToTheRoute()
    {
        var route = Assert.Single(Routes("""
              - name: stats
                match: [{uri: {prefix: /s}, statPrefix: reviews-s}]
                route: [{destination: {host: reviews}}]
            """));
        Assert.Equal("reviews-s", route.StatPrefix);
    }

    [Fact]
    public void SourceLabels_RoutesApplyOnlyToMatchingClients_AndVariantsAreShared()
    {
        var snapshot = TrafficPolicyTranslationTests.Translate(TestYaml.ReviewsServiceEntry + "\n---\n" + """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: reviews}
            spec:
              hosts: [reviews]
              http:
              - name: canary
                match:
                - sourceLabels: {app: productpage, version: v2}
                route: [{destination: {host: reviews, subset: v2}}]
              - name: shop-only
                match:
                - sourceNamespace: shop
                  uri: {prefix: /shop}
                - uri: {prefix: /mesh-gw-only}
                  gateways: [my-gateway]
                route: [{destination: {host: reviews, subset: v3}}]
              - name: rest
                route: [{destination: {host: reviews, subset: v1}}]
            """);
        List<string> NamesFor(string ns, params (string, string)[] labels) =>
            snapshot.Find(ResourceTypes.Route, Base, new ClientScope(ns, labels.ToDictionary(l => l.Item1, l => l.Item2)))!
                .Resource.Unpack<RouteConfiguration>().VirtualHosts[0].Routes.Select(r => r.Name).ToList();

        Assert.True(snapshot.ScopedRoutes.ContainsKey(Base));
        // "canary" matches every request of the clients it applies to (a catch-all for them): istiod sends those
        // clients nothing after it.
        Assert.Equal(["canary"], NamesFor("default", ("app", "productpage"), ("version", "v2"), ("extra", "x")));
        Assert.Equal(["rest"], NamesFor("default", ("app", "productpage"), ("version", "v1")));
        Assert.Equal(["shop-only", "rest"], NamesFor("shop", ("app", "other")));
        Assert.Equal(["canary"], NamesFor("shop", ("app", "productpage"), ("version", "v2")));
        Assert.Equal(["rest"], snapshot.All(ResourceTypes.Route)[Base].Resource.Unpack<RouteConfiguration>().VirtualHosts[0].Routes.Select(r => r.Name));

        // Another client with the same outcome (different labels) reuses the variant already built.
        var before = snapshot.ScopedRoutes[Base].VariantCount;
        Assert.Equal(["rest"], NamesFor("default", ("app", "details")));
        Assert.Equal(before, snapshot.ScopedRoutes[Base].VariantCount);
    }

    [Fact]
    public void HeaderOnlyRoute_GetsNoCatchAll_SoOtherRequestsMatchNoRoute()
    {
        var routes = Routes("""
              - name: jason
                match: [{headers: {end-user: {exact: jason}}}]
                route: [{destination: {host: reviews, subset: v2}}]
            """);

        var only = Assert.Single(routes);
        Assert.Equal("jason", only.Name);
        Assert.Equal("jason", Assert.Single(only.Match.Headers).ExactMatch);
        Assert.Equal("/", only.Match.Prefix);
    }

    [Fact]
    public void ServiceWithoutVirtualService_GetsTheDefaultRoute()
    {
        var snapshot = TrafficPolicyTranslationTests.Translate(TestYaml.ReviewsServiceEntry);

        var route = Assert.Single(snapshot.Find(ResourceTypes.Route, Base, ClientScope.InNamespace("default"))!
            .Resource.Unpack<RouteConfiguration>().VirtualHosts[0].Routes);

        // Everything to the service itself, with the default retry policy and no timeout (0).
        Assert.Equal(("default", "/", Base), (route.Name, route.Match.Prefix, route.Route_.Cluster));
        AssertDefaultRetry(route.Route_.RetryPolicy);
        Assert.Equal((TimeSpan.Zero, TimeSpan.Zero), (route.Route_.Timeout.ToTimeSpan(), route.Route_.MaxStreamDuration.MaxStreamDuration_.ToTimeSpan()));
    }

    [Fact]
    public void VirtualServiceWithNoRouteForThePort_LeavesTheDefaultRoute()
    {
        var routes = Routes("""
              - name: other-port
                match: [{port: 9999}]
                route: [{destination: {host: reviews}}]
            """);

        Assert.Equal("default", Assert.Single(routes).Name);
    }

    [Fact]
    public void SourceLabels_AClientNoRouteAppliesTo_GetsTheDefaultRoute()
    {
        var snapshot = TrafficPolicyTranslationTests.Translate(TestYaml.ReviewsServiceEntry + "\n---\n" + """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: reviews}
            spec:
              hosts: [reviews]
              http:
              - name: canary
                match:
                - sourceLabels: {app: productpage, version: v2}
                route: [{destination: {host: reviews, subset: v2}}]
            """);
        List<string> NamesFor(params (string, string)[] labels) =>
            snapshot.Find(ResourceTypes.Route, Base, new ClientScope("default", labels.ToDictionary(l => l.Item1, l => l.Item2)))!
                .Resource.Unpack<RouteConfiguration>().VirtualHosts[0].Routes.Select(r => r.Name).ToList();

        // istiod builds routes per proxy: with no route left for a client, the service's default route applies.
        Assert.Equal(["canary"], NamesFor(("app", "productpage"), ("version", "v2")));
        Assert.Equal(["default"], NamesFor(("app", "productpage"), ("version", "v1")));
    }
}

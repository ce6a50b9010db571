using Envoy.Config.Route.V3;
using Envoy.Type.Matcher.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.Routing;

namespace Mesh.Sdk.Tests.Routing;

public class RouteExplainerTests
{
    private static Route WithHeader(Route route, HeaderMatcher header)
    {
        route.Match.Headers.Add(header);
        return route;
    }

    private static RouteConfiguration Tiered()
    {
        var gold = WithHeader(Rds.Prefix("/", "gold", "gold"), new HeaderMatcher { Name = "x-tier", StringMatch = new StringMatcher { Exact = "gold" } });
        var api = Rds.Prefix("/api", "api", "api");
        var query = Rds.Prefix("/", "debug", "debug");
        query.Match.QueryParameters.Add(new QueryParameterMatcher { Name = "debug", StringMatch = new StringMatcher { Exact = "1" } });
        var weighted = new Route
        {
            Name = "split",
            Match = new RouteMatch { Prefix = "/" },
            Route_ = new RouteAction
            {
                WeightedClusters = new WeightedCluster
                {
                    Clusters =
                    {
                        new WeightedCluster.Types.ClusterWeight { Name = "v1", Weight = 1 },
                        new WeightedCluster.Types.ClusterWeight { Name = "v2", Weight = 3 },
                    },
                    HeaderName = "x-pick",
                },
                Timeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(2)),
                RetryPolicy = new Envoy.Config.Route.V3.RetryPolicy { RetryOn = "5xx,connect-failure", NumRetries = 3, PerTryTimeout = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(500)) },
            },
        };
        return Rds.Config(Rds.Host("vh", ["svc", "svc:9080"], gold, api, query, weighted));
    }

    [Fact]
    public void Explain_NamesFirstFailingConditionOfEachEarlierRoute_AndTheMatchedWeightedRoute()
    {
        var table = Rds.Compile(Tiered());
        var request = new TestRequest("svc", "/v1?debug=2", headers: [("x-tier", "silver"), ("x-pick", "2")]);

        var explanation = RouteExplainer.Explain(table, "svc:80", in request);

        Assert.Equal(RouteExplanationOutcome.Forward, explanation.Outcome);
        Assert.Equal(("vh", "split", 3), (explanation.VirtualHost, explanation.Route, explanation.RouteIndex));
        Assert.Equal(
            [
                "routes[0] 'gold': no match: header 'x-tier' exact \"gold\": value is \"silver\"",
                "routes[1] 'api': no match: path prefix '/api': path is '/v1?debug=2'",
                "routes[2] 'debug': no match: query parameter 'debug' exact \"1\": value is \"2\"",
                "routes[3] 'split': matched",
            ],
            explanation.Routes.Select(r => r.ToString()));
        // x-pick 2 falls in v2's slice [1, 4): deterministic, not a random draw.
        Assert.Equal(("v2", false), (explanation.Cluster, explanation.ClusterPickedAtRandom));
        Assert.Equal([("v1", 1u, 25.0), ("v2", 3u, 75.0)], explanation.WeightedClusters.Select(w => (w.Cluster, w.Weight, w.Percent)));
        Assert.Equal(TimeSpan.FromSeconds(2), explanation.Timeout);
        Assert.Equal(("5xx,connect-failure", 3u, (TimeSpan?)TimeSpan.FromMilliseconds(500)),
            (string.Join(",", explanation.Retry!.RetryOn), explanation.Retry.NumRetries, explanation.Retry.PerTryTimeout));
    }

    [Fact]
    public void Explain_MissingHeader_SaysHeaderMissing_AndNoRouteWhenNothingMatches()
    {
        var config = Rds.Single(WithHeader(Rds.Prefix("/", "gold", "gold"), new HeaderMatcher { Name = "x-tier", StringMatch = new StringMatcher { Exact = "gold" } }));
        var table = Rds.Compile(config);
        var request = TestRequest.Get("/");

        var explanation = RouteExplainer.Explain(table, null, in request);

        Assert.Equal((RouteExplanationOutcome.NoRoute, (int?)404, (string?)null), (explanation.Outcome, explanation.Status, explanation.Cluster));
        Assert.Equal("header 'x-tier' exact \"gold\": header missing", Assert.Single(explanation.Routes).Reason);
        Assert.Contains("=> 404 (no route, NR)", explanation.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Explain_UnknownAuthority_ListsEveryDomain()
    {
        var table = Rds.Compile(Tiered());
        var request = new TestRequest("other:80", "/");

        var explanation = RouteExplainer.Explain(table, null, in request);

        Assert.Equal((RouteExplanationOutcome.NoVirtualHost, (string?)null), (explanation.Outcome, explanation.VirtualHost));
        Assert.Equal(["svc", "svc:9080"], explanation.Domains);
        Assert.Contains("no virtual host matches authority 'other:80' (domains: svc, svc:9080)", explanation.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Explain_AgreesWithMatch_ForEveryRequestOfAGrid()
    {
        // The explainer runs the request path's predicates: over a grid of requests it must name the same route and
        // the same target (both tables seeded alike, so runtime fractions and weighted draws line up).
        var config = Tiered();
        var sampled = Rds.Prefix("/s", "sampled", "sampled");
        sampled.Match.RuntimeFraction = new Envoy.Config.Core.V3.RuntimeFractionalPercent { DefaultValue = new Envoy.Type.V3.FractionalPercent { Numerator = 50 } };
        config.VirtualHosts[0].Routes.Insert(0, sampled);
        var inverted = WithHeader(Rds.Prefix("/", "not-bot", "not-bot"), new HeaderMatcher { Name = "user-agent", StringMatch = new StringMatcher { Contains = "bot", IgnoreCase = true }, InvertMatch = true });
        config.VirtualHosts[0].Routes.Insert(1, inverted);
        var matchTable = Rds.Compile(config, new Random(7));
        var explainTable = Rds.Compile(config, new Random(7));
        var checkedCount = 0;
        foreach (var path in new[] { "/", "/api", "/api/x?debug=1", "/s", "/s/1", "/v1?debug=1" })
        {
            foreach (var tier in new[] { null, "gold", "GOLD" })
            {
                foreach (var agent in new[] { null, "GoogleBot", "curl" })
                {
                    var headers = new List<(string, string)>();
                    if (tier is not null)
                    {
                        headers.Add(("x-tier", tier));
                    }

                    if (agent is not null)
                    {
                        headers.Add(("user-agent", agent));
                    }

                    var request = new TestRequest("svc:9080", path, headers: [.. headers]);
                    var match = matchTable.Match(in request);
                    var explanation = RouteExplainer.Explain(explainTable, null, in request);
                    Assert.Equal((match.Route?.Name, match.Cluster), (explanation.Route, explanation.Cluster));
                    checkedCount++;
                }
            }
        }

        Assert.Equal(54, checkedCount);
    }

    [Fact]
    public void Explain_PrintsPoliciesAnOperatorReads()
    {
        var route = Rds.Prefix("/", "reviews-v1", "default");
        route.Route_.PrefixRewrite = "/v2/";
        route.Route_.HostRewriteLiteral = "reviews.internal";
        route.Route_.Timeout = Duration.FromTimeSpan(TimeSpan.Zero);
        route.Route_.RequestMirrorPolicies.Add(new RouteAction.Types.RequestMirrorPolicy { Cluster = "shadow", RuntimeFraction = new Envoy.Config.Core.V3.RuntimeFractionalPercent { DefaultValue = new Envoy.Type.V3.FractionalPercent { Numerator = 10 } } });
        route.Route_.HashPolicy.Add(new RouteAction.Types.HashPolicy { Header = new RouteAction.Types.HashPolicy.Types.Header { HeaderName = "x-user" } });
        route.RequestHeadersToAdd.Add(new Envoy.Config.Core.V3.HeaderValueOption { Header = new Envoy.Config.Core.V3.HeaderValue { Key = "x-mesh", Value = "1" }, AppendAction = Envoy.Config.Core.V3.HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExistsOrAdd });
        route.ResponseHeadersToRemove.Add("server");
        var table = Rds.Compile(Rds.Single(route));
        var request = TestRequest.Get("/reviews/0");

        var text = RouteExplainer.Explain(table, "svc:80", in request).ToString();

        Assert.Equal(
            """
            GET svc/reviews/0
              listener: svc:80
              route configuration: rc
              virtual host: vh (domains: svc)
              routes[0] 'default': matched
              => cluster: reviews-v1
              path sent: /v2/reviews/0
              authority sent: reviews.internal
              timeout: none
              retries: none
              mirror: shadow (10 %)
              hash: header 'x-user'
              request headers: set x-mesh: 1
              response headers: remove server

            """.ReplaceLineEndings("\n"),
            text);
    }
}

using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Envoy.Type.Matcher.V3;
using Envoy.Type.V3;
using Mesh.Sdk.Routing;

namespace Mesh.Sdk.Tests.Routing;

public sealed class CompiledRouteTableTests
{
    private static CompiledRouteTable DomainTable(bool ignorePort = false)
    {
        var config = Rds.Config(
            Rds.Host("exact", ["www.foo.com", "reviews:9080"], Rds.Prefix("/", "exact")),
            Rds.Host("suffix-short", ["*.com"], Rds.Prefix("/", "suffix-short")),
            Rds.Host("suffix-long", ["*.foo.com"], Rds.Prefix("/", "suffix-long")),
            Rds.Host("suffix-dash", ["*-bar.foo.com"], Rds.Prefix("/", "suffix-dash")),
            Rds.Host("prefix-short", ["foo.*"], Rds.Prefix("/", "prefix-short")),
            Rds.Host("prefix-long", ["foo.bar.*"], Rds.Prefix("/", "prefix-long")),
            Rds.Host("any", ["*"], Rds.Prefix("/", "any")));
        config.IgnorePortInHostMatching = ignorePort;
        return Rds.Compile(config);
    }

    [Theory]
    [InlineData("www.foo.com", "exact")]
    [InlineData("WWW.Foo.COM", "exact")] // hosts compare case-insensitively
    [InlineData("api.foo.com", "suffix-long")] // longest suffix wins
    [InlineData("baz-bar.foo.com", "suffix-dash")]
    [InlineData("-bar.foo.com", "suffix-long")] // a wildcard matches at least one character
    [InlineData("x.com", "suffix-short")]
    [InlineData("foo.com", "suffix-short")] // suffix wildcards come before prefix wildcards
    [InlineData("foo.bar.org", "prefix-long")]
    [InlineData("foo.org", "prefix-short")]
    [InlineData("elsewhere.org", "any")]
    [InlineData("reviews:9080", "exact")] // port-qualified domain
    [InlineData("reviews:9081", "any")]
    [InlineData("reviews", "any")]
    public void FindVirtualHost_FollowsEnvoyPrecedence(string authority, string expected)
    {
        Assert.Equal(expected, DomainTable().FindVirtualHost(authority)?.Name);
    }

    [Fact]
    public void FindVirtualHost_IgnorePortInHostMatchingStripsThePort()
    {
        var table = DomainTable(ignorePort: true);
        Assert.Equal("exact", table.FindVirtualHost("www.foo.com:8080")?.Name);
        Assert.Equal("suffix-long", table.FindVirtualHost("api.foo.com:1")?.Name);
        Assert.Equal("exact", DomainTable().FindVirtualHost("reviews:9080")?.Name);
    }

    [Fact]
    public void Match_NoVirtualHostAndNoRoute()
    {
        var table = Rds.Compile(Rds.Config(Rds.Host("vh", ["svc"], Rds.Path("/only", "c"))));
        var noHost = table.Match(new TestRequest("other", "/only"));
        Assert.Equal(RouteMatchStatus.NoVirtualHost, noHost.Status);
        Assert.Null(noHost.Cluster);
        var noRoute = table.Match(TestRequest.Get("/else"));
        Assert.Equal(RouteMatchStatus.NoRoute, noRoute.Status);
        Assert.Equal("vh", noRoute.VirtualHost!.Name);
        Assert.Equal(404, RouteMatchResult.NoRouteStatus);
    }

    [Fact]
    public void Match_FirstMatchingRouteWinsInOrder()
    {
        var table = Rds.Compile(Rds.Single(
            Rds.Prefix("/api/v1", "v1", "first"),
            Rds.Prefix("/api", "api"),
            Rds.Prefix("/api/v1/special", "never"),
            Rds.Prefix("/", "root")));
        var result = table.Match(TestRequest.Get("/api/v1/special"));
        Assert.Equal("v1", result.Cluster);
        Assert.Equal("first", result.Route!.Name);
        Assert.Equal(0, result.Route.Index);
        Assert.Equal("api", table.ClusterFor(TestRequest.Get("/api/v2")));
        Assert.Equal("root", table.ClusterFor(TestRequest.Get("/x")));
    }

    [Theory]
    [InlineData("/reviews/0", "prefix")]
    [InlineData("/REVIEWS/0", "ci-prefix")]
    [InlineData("/exact", "exact")]
    [InlineData("/exact?x=1", "exact")] // query is ignored for exact paths
    [InlineData("/EXACT", "root")] // exact is case-sensitive by default
    [InlineData("/v2/users/42", "regex")]
    [InlineData("/v2/users/42?q=1", "regex")]
    [InlineData("/v2/users/x", "root")]
    [InlineData("/sep", "sep")]
    [InlineData("/sep/a", "sep")]
    [InlineData("/sepx", "root")]
    [InlineData("/sep?x", "sep")]
    public void Match_PathSpecifiers(string path, string expected)
    {
        var ci = new Route { Match = new RouteMatch { Prefix = "/reviews", CaseSensitive = false }, Route_ = new RouteAction { Cluster = "ci-prefix" } };
        var sep = new Route { Match = new RouteMatch { PathSeparatedPrefix = "/sep" }, Route_ = new RouteAction { Cluster = "sep" } };
        var table = Rds.Compile(Rds.Single(
            Rds.Prefix("/reviews", "prefix"),
            ci,
            Rds.Path("/exact", "exact"),
            Rds.Regex("/v[0-9]/users/[0-9]+", "regex"),
            sep,
            Rds.Prefix("/", "root")));
        Assert.Equal(expected, table.ClusterFor(TestRequest.Get(path)));
    }

    [Theory]
    [InlineData("/v1/αβγ", "greek")]
    [InlineData("/v2/Ωμέγα", "greek")]
    [InlineData("/v1/abc", "root")] // Latin, not Greek
    [InlineData("/v3/αβγ", "root")]
    [InlineData("/a😀/x", "astral")] // one code point for '.'
    [InlineData("/a😀😀/x", "root")]
    [InlineData("/items/x-[]", "class")] // [a-z-[] then a literal ']' (no .NET class subtraction)
    [InlineData("/items/a", "root")]
    [InlineData("/opt/debug", "absent")] // present_match: false on a query parameter: only without it
    [InlineData("/opt/debug?trace=1", "root")]
    public void Match_Re2RegexesAndQueryAbsence_EndToEnd(string path, string expected)
    {
        var absent = Rds.Prefix("/opt/", "absent");
        absent.Match.QueryParameters.Add(new QueryParameterMatcher { Name = "trace", PresentMatch = false });
        var table = Rds.Compile(Rds.Single(
            Rds.Regex(@"/(?P<ver>v[12])/\p{Greek}+", "greek"),
            Rds.Regex("/a./x", "astral"),
            Rds.Regex("/items/[a-z-[]+]", "class"),
            absent,
            Rds.Prefix("/", "root")));
        Assert.Equal(expected, table.ClusterFor(TestRequest.Get(path)));
    }

    [Fact]
    public void Match_PrefixSeesTheQueryStringAsEnvoyDoes()
    {
        var table = Rds.Compile(Rds.Single(Rds.Prefix("/a?x", "q"), Rds.Prefix("/", "root")));
        Assert.Equal("q", table.ClusterFor(TestRequest.Get("/a?x=1")));
        Assert.Equal("root", table.ClusterFor(TestRequest.Get("/a")));
    }

    [Fact]
    public void Match_HeadersAndQueryParametersMustAllMatch()
    {
        var route = Rds.Prefix("/", "jason");
        route.Match.Headers.Add(new HeaderMatcher { Name = "end-user", StringMatch = new StringMatcher { Exact = "jason" } });
        route.Match.Headers.Add(new HeaderMatcher { Name = "x-canary", PresentMatch = true, InvertMatch = true });
        route.Match.QueryParameters.Add(new QueryParameterMatcher { Name = "v", StringMatch = new StringMatcher { Prefix = "2" } });
        var table = Rds.Compile(Rds.Single(route, Rds.Prefix("/", "default")));
        Assert.Equal("jason", table.ClusterFor(TestRequest.Get("/p?v=22", ("end-user", "jason"))));
        Assert.Equal("default", table.ClusterFor(TestRequest.Get("/p?v=22", ("end-user", "jason"), ("x-canary", "1"))));
        Assert.Equal("default", table.ClusterFor(TestRequest.Get("/p?v=3", ("end-user", "jason"))));
        Assert.Equal("default", table.ClusterFor(TestRequest.Get("/p?v=22", ("end-user", "bob"))));
    }

    [Fact]
    public void Match_GrpcOnlyRoutesNeedGrpcContentType()
    {
        var grpc = Rds.Prefix("/", "grpc");
        grpc.Match.Grpc = new RouteMatch.Types.GrpcRouteMatchOptions();
        var table = Rds.Compile(Rds.Single(grpc, Rds.Prefix("/", "http")));
        Assert.Equal("grpc", table.ClusterFor(TestRequest.Get("/pkg.Svc/M", ("content-type", "application/grpc+proto"))));
        Assert.Equal("http", table.ClusterFor(TestRequest.Get("/pkg.Svc/M", ("content-type", "application/json"))));
        Assert.Equal("http", table.ClusterFor(TestRequest.Get("/pkg.Svc/M")));
    }

    [Fact]
    public void Match_RuntimeFractionSamplesWithTheInjectedRandom()
    {
        var sampled = Rds.Prefix("/", "sampled");
        sampled.Match.RuntimeFraction = new RuntimeFractionalPercent { DefaultValue = new FractionalPercent { Numerator = 2500, Denominator = FractionalPercent.Types.DenominatorType.TenThousand } };
        var table = Rds.Compile(Rds.Single(sampled, Rds.Prefix("/", "rest")), new Random(7));
        var hits = 0;
        for (var i = 0; i < 10_000; i++)
        {
            if (table.ClusterFor(TestRequest.Get("/")) == "sampled")
            {
                hits++;
            }
        }

        Assert.InRange(hits, 2300, 2700);
    }

    [Fact]
    public void Match_WeightedClustersSplitWithinTwoPoints()
    {
        var route = new Route { Match = new RouteMatch { Prefix = "/" }, Route_ = new RouteAction { WeightedClusters = new WeightedCluster() } };
        route.Route_.WeightedClusters.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = "v1", Weight = 10 });
        route.Route_.WeightedClusters.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = "v2", Weight = 0 });
        route.Route_.WeightedClusters.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = "v3", Weight = 30 });
        route.Route_.WeightedClusters.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = "v4", Weight = 60 });
        var table = Rds.Compile(Rds.Single(route), new Random(12345));
        var counts = new Dictionary<string, int> { ["v1"] = 0, ["v2"] = 0, ["v3"] = 0, ["v4"] = 0 };
        const int Picks = 10_000;
        for (var i = 0; i < Picks; i++)
        {
            counts[table.ClusterFor(TestRequest.Get("/"))!]++;
        }

        Assert.InRange(counts["v1"] * 100.0 / Picks, 8, 12);
        Assert.Equal(0, counts["v2"]);
        Assert.InRange(counts["v3"] * 100.0 / Picks, 28, 32);
        Assert.InRange(counts["v4"] * 100.0 / Picks, 58, 62);

        var compiled = table.VirtualHosts[0].Routes[0];
        Assert.Equal(100UL, compiled.TotalWeight);
        Assert.Equal([10UL, 10UL, 40UL, 100UL], compiled.Targets.Select(static t => t.CumulativeWeight));
        Assert.Equal("v1", compiled.PickByValue(9).Cluster);
        Assert.Equal("v3", compiled.PickByValue(10).Cluster);
        Assert.Equal("v4", compiled.PickByValue(40).Cluster);
        Assert.Equal("v4", compiled.PickByValue(99).Cluster);
    }

    [Fact]
    public void Match_WeightedClusterHeaderPicksDeterministically()
    {
        var route = new Route { Match = new RouteMatch { Prefix = "/" }, Route_ = new RouteAction { WeightedClusters = new WeightedCluster { HeaderName = "x-pick" } } };
        route.Route_.WeightedClusters.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = "a", Weight = 50 });
        route.Route_.WeightedClusters.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = "b", Weight = 50 });
        var table = Rds.Compile(Rds.Single(route));
        Assert.Equal("a", table.ClusterFor(TestRequest.Get("/", ("x-pick", "149"))));
        Assert.Equal("b", table.ClusterFor(TestRequest.Get("/", ("x-pick", "150"))));
    }

    [Fact]
    public void Match_AllocatesNothingOnceWarm()
    {
        var header = Rds.Regex("/v[0-9]+/items", "regex");
        header.Match.Headers.Add(new HeaderMatcher { Name = "end-user", StringMatch = new StringMatcher { SafeRegex = new RegexMatcher { Regex = "j.*n" } } });
        var weighted = new Route { Match = new RouteMatch { Prefix = "/w" }, Route_ = new RouteAction { WeightedClusters = new WeightedCluster() } };
        weighted.Route_.WeightedClusters.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = "a", Weight = 1 });
        weighted.Route_.WeightedClusters.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = "b", Weight = 1 });
        var table = Rds.Compile(Rds.Config(
            Rds.Host("vh", ["svc", "*.svc.local"], Rds.Path("/exact", "exact"), header, weighted, Rds.Prefix("/p", "prefix"))));
        TestRequest[] requests =
        [
            TestRequest.Get("/exact?q=1"),
            TestRequest.Get("/v2/items", ("end-user", "jason")),
            TestRequest.Get("/w"),
            TestRequest.Get("/p/x"),
            TestRequest.Get("/none"),
            new("a.svc.local", "/p"),
            new("unknown", "/p"),
        ];
        for (var i = 0; i < 100; i++)
        {
            foreach (var request in requests)
            {
                _ = table.Match(in request);
            }
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        var matched = 0;
        for (var i = 0; i < 1000; i++)
        {
            foreach (var request in requests)
            {
                matched += table.Match(in request).IsMatch ? 1 : 0;
            }
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(5000, matched);
    }
}

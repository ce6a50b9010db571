using Envoy.Config.Route.V3;
using Envoy.Type.Matcher.V3;
using Mesh.Sdk.Routing;

namespace Mesh.Sdk.Tests.Routing;

public sealed class CompiledRouteTests
{
    private static CompiledRoute Only(Route route) => Rds.Compile(Rds.Single(route)).VirtualHosts[0].Routes[0];

    [Theory]
    [InlineData("/api/v1/users?x=1", "/v2/users?x=1")]
    [InlineData("/api/v1", "/v2")]
    public void RewritePath_PrefixRewriteReplacesMatchedPrefix(string path, string expected)
    {
        var route = Rds.Prefix("/api/v1", "c");
        route.Route_.PrefixRewrite = "/v2";
        Assert.Equal(expected, Only(route).RewritePath(path));
    }

    [Fact]
    public void RewritePath_PrefixRewriteToRootAndCaseInsensitivePrefix()
    {
        var route = new Route { Match = new RouteMatch { Prefix = "/API/", CaseSensitive = false }, Route_ = new RouteAction { Cluster = "c", PrefixRewrite = "/" } };
        Assert.Equal("/users", Only(route).RewritePath("/api/users"));
    }

    [Fact]
    public void RewritePath_ExactPathRewritesWholePathKeepingQuery()
    {
        var route = Rds.Path("/old", "c");
        route.Route_.PrefixRewrite = "/new/place";
        Assert.Equal("/new/place?q=1", Only(route).RewritePath("/old?q=1"));
    }

    [Fact]
    public void RewritePath_RegexRewriteUsesCaptureGroupsOnThePathOnly()
    {
        var route = Rds.Prefix("/", "c");
        route.Route_.RegexRewrite = new RegexMatchAndSubstitute { Pattern = new RegexMatcher { Regex = "^/service/([^/]+)(/.*)$" }, Substitution = "\\2/instance/\\1" };
        Assert.Equal("/foo/instance/bar?a=b", Only(route).RewritePath("/service/bar/foo?a=b"));
        var global = Rds.Prefix("/", "c");
        global.Route_.RegexRewrite = new RegexMatchAndSubstitute { Pattern = new RegexMatcher { Regex = "o" }, Substitution = "0" };
        Assert.Equal("/f00/b00?o", Only(global).RewritePath("/foo/boo?o"));
    }

    [Fact]
    public void RewritePath_NoRewriteReturnsSameInstance()
    {
        const string path = "/x?y";
        Assert.Same(path, Only(Rds.Prefix("/", "c")).RewritePath(path));
    }

    [Fact]
    public void HostRewrite_LiteralAndAuto()
    {
        var literal = Rds.Prefix("/", "c");
        literal.Route_.HostRewriteLiteral = "backend.internal";
        Assert.Equal("backend.internal", Only(literal).Targets[0].HostRewriteLiteral);
        var auto = Rds.Prefix("/", "c");
        auto.Route_.AutoHostRewrite = true;
        auto.Route_.AppendXForwardedHost = true;
        Assert.True(Only(auto).AutoHostRewrite);
        Assert.True(Only(auto).AppendXForwardedHost);
        Assert.Null(Only(auto).Targets[0].HostRewriteLiteral);
    }

    private static string Location(RedirectAction redirect, TestRequest request, RouteMatch? match = null)
    {
        var route = new Route { Match = match ?? new RouteMatch { Prefix = "/" }, Redirect = redirect };
        var table = Rds.Compile(Rds.Config(Rds.Host("vh", ["*"], route)));
        var result = table.Match(in request);
        Assert.Equal(RouteActionKind.Redirect, result.Route!.Action);
        return result.Route.BuildRedirectLocation(in request);
    }

    [Fact]
    public void Redirect_HttpsDropsDefaultPort()
    {
        var redirect = new RedirectAction { HttpsRedirect = true };
        Assert.Equal("https://shop.com/cart?id=1", Location(redirect, new TestRequest("shop.com:80", "/cart?id=1")));
        Assert.Equal("https://shop.com:8080/cart", Location(redirect, new TestRequest("shop.com:8080", "/cart")));
    }

    [Fact]
    public void Redirect_HostPortPathAndStripQuery()
    {
        var redirect = new RedirectAction { HostRedirect = "new.com", PortRedirect = 8443, PathRedirect = "/landing", StripQuery = true, ResponseCode = RedirectAction.Types.RedirectResponseCode.TemporaryRedirect };
        Assert.Equal("http://new.com:8443/landing", Location(redirect, new TestRequest("old.com:9080", "/a?b=c")));
        var route = Rds.Compile(Rds.Config(Rds.Host("vh", ["*"], new Route { Match = new RouteMatch { Prefix = "/" }, Redirect = redirect }))).VirtualHosts[0].Routes[0];
        Assert.Equal(307, route.Redirect!.StatusCode);
        Assert.Equal(301, Rds.Compile(Rds.Config(Rds.Host("vh", ["*"], new Route { Match = new RouteMatch { Prefix = "/" }, Redirect = new RedirectAction { HostRedirect = "x" } }))).VirtualHosts[0].Routes[0].Redirect!.StatusCode);
    }

    [Fact]
    public void Redirect_PortOnlyReplacesRequestPort()
    {
        Assert.Equal("http://svc:81/p?q", Location(new RedirectAction { PortRedirect = 81 }, new TestRequest("svc:80", "/p?q")));
        Assert.Equal("https://[::1]:9443/p", Location(new RedirectAction { SchemeRedirect = "HTTPS", PortRedirect = 9443 }, new TestRequest("[::1]:8080", "/p")));
    }

    [Fact]
    public void Redirect_PathRedirectWithQueryReplacesQuery()
    {
        Assert.Equal("http://svc/new?fixed=1", Location(new RedirectAction { PathRedirect = "/new?fixed=1" }, new TestRequest("svc", "/old?orig=2")));
    }

    [Theory]
    [InlineData("example.org", "/old?x=1", "http://svc/example.org?x=1")] // istiod's redirect test: uri "example.org"
    [InlineData("example.org", "/old", "http://svc/example.org")]
    [InlineData("new?y=2", "/old?x=1", "http://svc/new?y=2")]
    [InlineData("?y=2", "/old?x=1", "http://svc/?y=2")]
    [InlineData("", "/old?x=1", "http://svc/old?x=1")] // an empty path_redirect keeps the request's path, as in Envoy
    public void Redirect_PathRedirectWithoutLeadingSlash_GetsOne_AsEnvoyBuildsTheLocation(string pathRedirect, string requestPath, string expected)
    {
        Assert.Equal(expected, Location(new RedirectAction { PathRedirect = pathRedirect }, new TestRequest("svc", requestPath)));
    }

    [Fact]
    public void Redirect_PathRedirectWithoutLeadingSlash_StripQueryAndNewHost()
    {
        var redirect = new RedirectAction { HostRedirect = "new.com", PathRedirect = "landing", StripQuery = true };
        Assert.Equal("http://new.com/landing", Location(redirect, new TestRequest("old.com", "/a?b=c")));
    }

    [Fact]
    public void Redirect_PrefixRewriteToEmpty_LocationPathIsSlash()
    {
        Assert.Equal("http://svc/", Location(new RedirectAction { PrefixRewrite = string.Empty }, new TestRequest("svc", "/v1"), new RouteMatch { Prefix = "/v1" }));
        Assert.Equal("http://svc/?q=1", Location(new RedirectAction { PrefixRewrite = string.Empty }, new TestRequest("svc", "/v1?q=1"), new RouteMatch { Path = "/v1" }));
    }

    [Fact]
    public void Redirect_PrefixAndRegexRewrite()
    {
        Assert.Equal(
            "http://svc/v2/items?x=1",
            Location(new RedirectAction { PrefixRewrite = "/v2/" }, new TestRequest("svc", "/v1/items?x=1"), new RouteMatch { Prefix = "/v1/" }));
        Assert.Equal(
            "http://svc/items/42",
            Location(
                new RedirectAction { RegexRewrite = new RegexMatchAndSubstitute { Pattern = new RegexMatcher { Regex = "^/item\\?id=|^/item/(\\d+)$" }, Substitution = "/items/\\1" } },
                new TestRequest("svc", "/item/42")));
    }

    [Fact]
    public void Redirect_ResponseCodes()
    {
        var codes = new[]
        {
            (RedirectAction.Types.RedirectResponseCode.MovedPermanently, 301),
            (RedirectAction.Types.RedirectResponseCode.Found, 302),
            (RedirectAction.Types.RedirectResponseCode.SeeOther, 303),
            (RedirectAction.Types.RedirectResponseCode.TemporaryRedirect, 307),
            (RedirectAction.Types.RedirectResponseCode.PermanentRedirect, 308),
        };
        foreach (var (wire, status) in codes)
        {
            var route = Rds.Compile(Rds.Single(new Route { Match = new RouteMatch { Prefix = "/" }, Redirect = new RedirectAction { ResponseCode = wire } }));
            Assert.Equal(status, route.VirtualHosts[0].Routes[0].Redirect!.StatusCode);
        }
    }

    [Fact]
    public void Redirect_UnknownResponseCodeIsRefused()
    {
        // Envoy's RedirectResponseCode is defined_only: a value outside 0-4 is refused, not defaulted.
        var errors = Rds.Errors(Rds.Single(new Route { Match = new RouteMatch { Prefix = "/" }, Redirect = new RedirectAction { ResponseCode = (RedirectAction.Types.RedirectResponseCode)5 } }));
        Assert.Contains("redirect.response_code 5 is unknown", Assert.Single(errors).ToString());
    }
}

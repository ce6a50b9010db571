using System.Net;
using Mesh.Sdk.Routing;

namespace Mesh.Sdk.Tests.Routing;

public sealed class HttpRequestRouteRequestTests
{
    [Fact]
    public void ReadsAuthorityPathMethodSchemeAndHeaders()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "http://reviews:9080/reviews/0?x=1") { Content = new StringContent("{}") };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
        request.Headers.TryAddWithoutValidation("x-tag", "a");
        request.Headers.TryAddWithoutValidation("x-tag", "b");
        request.Headers.TryAddWithoutValidation("end-user", "jason");
        var view = new HttpRequestRouteRequest(request, IPAddress.Loopback);
        Assert.Equal("reviews:9080", view.Authority);
        Assert.Equal("/reviews/0?x=1", view.PathAndQuery);
        Assert.Equal("POST", view.Method);
        Assert.Equal("http", view.Scheme);
        Assert.Equal(IPAddress.Loopback, view.SourceAddress);
        Assert.True(view.TryGetHeader("x-tag", out var tags));
        Assert.Equal("a,b", tags);
        Assert.True(view.TryGetHeader("end-user", out var user));
        Assert.Equal("jason", user);
        Assert.True(view.TryGetHeader("content-type", out var contentType));
        Assert.Equal("application/grpc", contentType);
        Assert.False(view.TryGetHeader("missing", out _));
    }

    [Fact]
    public void DefaultPortIsOmittedAndHostHeaderWins()
    {
        using var plain = new HttpRequestMessage(HttpMethod.Get, "http://reviews/x");
        Assert.Equal("reviews", new HttpRequestRouteRequest(plain).Authority);
        using var withHost = new HttpRequestMessage(HttpMethod.Get, "http://10.0.0.1:9080/x");
        withHost.Headers.Host = "reviews:9080";
        Assert.Equal("reviews:9080", new HttpRequestRouteRequest(withHost).Authority);
    }

    [Fact]
    public void RejectsRelativeUris()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/relative");
        var ex = Assert.Throws<ArgumentException>(() => new HttpRequestRouteRequest(request));
        Assert.Contains("absolute RequestUri", ex.Message);
    }

    [Fact]
    public void RoutesAnHttpRequestMessageEndToEnd()
    {
        var route = Rds.Prefix("/reviews", "outbound|9080|v2|reviews");
        route.Match.Headers.Add(new Envoy.Config.Route.V3.HeaderMatcher { Name = "end-user", StringMatch = new Envoy.Type.Matcher.V3.StringMatcher { Exact = "jason" } });
        var table = Rds.Compile(Rds.Config(Rds.Host("reviews", ["reviews:9080", "reviews.default.svc.cluster.local:9080"], route, Rds.Prefix("/", "outbound|9080|v1|reviews"))));
        using var jason = new HttpRequestMessage(HttpMethod.Get, "http://reviews:9080/reviews/0");
        jason.Headers.Add("end-user", "jason");
        using var other = new HttpRequestMessage(HttpMethod.Get, "http://reviews.default.svc.cluster.local:9080/reviews/0");
        Assert.Equal("outbound|9080|v2|reviews", table.Match(new HttpRequestRouteRequest(jason)).Cluster);
        Assert.Equal("outbound|9080|v1|reviews", table.Match(new HttpRequestRouteRequest(other)).Cluster);
    }

    [Fact]
    public void GrpcXdsCallsRouteByTheChannelTarget()
    {
        // grpc-dotnet resolves the method path against the channel address, as here.
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(new Uri("xds:///reviews:9080"), "/pkg.Reviews/Get"));
        Assert.Equal("/pkg.Reviews/Get", new HttpRequestRouteRequest(request, authority: "reviews:9080").PathAndQuery);
        Assert.Equal("reviews:9080", new HttpRequestRouteRequest(request, authority: "reviews:9080").Authority);
        var ex = Assert.Throws<ArgumentException>(() => new HttpRequestRouteRequest(request));
        Assert.Contains("pass the channel target as 'authority'", ex.Message);
    }
}

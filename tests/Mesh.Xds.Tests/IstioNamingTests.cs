namespace Mesh.Xds.Tests;

public sealed class IstioNamingTests
{
    [Theory]
    [InlineData("reviews", "reviews.default.svc.cluster.local")]
    [InlineData("reviews.ns", "reviews.ns.svc.cluster.local")]
    [InlineData("reviews.ns.svc", "reviews.ns.svc.cluster.local")]
    [InlineData("reviews.ns.svc.cluster.local", "reviews.ns.svc.cluster.local")]
    [InlineData("api.example.com", "api.example.com")]
    [InlineData("10.1.2.3", "10.1.2.3")]
    [InlineData("::1", "::1")]
    public void ServiceFqdn_ExpandsLikeClusterDns(string host, string expected)
        => Assert.Equal(expected, IstioNaming.ServiceFqdn(host));

    [Fact]
    public void ServiceFqdn_UsesGivenNamespaceAndDomain()
    {
        Assert.Equal("ratings.shop.svc.corp.internal", IstioNaming.ServiceFqdn("ratings", "shop", "corp.internal"));
        Assert.Equal("ratings.other.svc.corp.internal", IstioNaming.ServiceFqdn("ratings.other", "shop", "corp.internal"));
    }

    [Theory]
    [InlineData("")]
    [InlineData(".reviews")]
    [InlineData("reviews.")]
    [InlineData("reviews..default")]
    public void ServiceFqdn_RejectsEmptyLabels(string host)
        => Assert.ThrowsAny<ArgumentException>(() => IstioNaming.ServiceFqdn(host));

    [Fact]
    public void ListenerName_JoinsHostAndPort()
    {
        Assert.Equal("reviews.default.svc.cluster.local:9080", IstioNaming.ListenerName("reviews.default.svc.cluster.local", 9080));
        Assert.Equal("[::1]:80", IstioNaming.ListenerName("::1", 80));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(65536)]
    [InlineData(-1)]
    public void ListenerName_RejectsPortOutOfRange(int port)
        => Assert.Throws<ArgumentOutOfRangeException>(() => IstioNaming.ListenerName("reviews", port));

    [Theory]
    [InlineData("reviews.default.svc.cluster.local:9080", "reviews.default.svc.cluster.local", 9080)]
    [InlineData("reviews:1", "reviews", 1)]
    [InlineData("[::1]:65535", "::1", 65535)]
    public void TryParseListenerName_SplitsHostAndPort(string name, string host, int port)
    {
        Assert.True(IstioNaming.TryParseListenerName(name, out var parsedHost, out var parsedPort));
        Assert.Equal(host, parsedHost);
        Assert.Equal(port, parsedPort);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("reviews")]
    [InlineData(":9080")]
    [InlineData("reviews:")]
    [InlineData("reviews:0")]
    [InlineData("reviews:70000")]
    [InlineData("reviews:+80")]
    [InlineData("::1:80")]
    public void TryParseListenerName_RejectsMalformedNames(string? name)
    {
        Assert.False(IstioNaming.TryParseListenerName(name, out var host, out var port));
        Assert.Equal(string.Empty, host);
        Assert.Equal(0, port);
    }

    [Fact]
    public void ListenerName_RoundTripsThroughTryParse()
    {
        var name = IstioNaming.ListenerName(IstioNaming.ServiceFqdn("details.bookinfo"), 9080);
        Assert.True(IstioNaming.TryParseListenerName(name, out var host, out var port));
        Assert.Equal("details.bookinfo.svc.cluster.local", host);
        Assert.Equal(9080, port);
    }

    [Fact]
    public void RouteName_IsOutboundWithEmptySubset()
        => Assert.Equal(
            "outbound|9080||reviews.default.svc.cluster.local",
            IstioNaming.RouteName(9080, "reviews.default.svc.cluster.local"));

    [Fact]
    public void ClusterName_CarriesSubset()
    {
        Assert.Equal(
            "outbound|9080|v1|reviews.default.svc.cluster.local",
            IstioNaming.ClusterName(9080, "v1", "reviews.default.svc.cluster.local"));
        Assert.Equal("outbound|80||a.b.svc.cluster.local", IstioNaming.ClusterName(80, "", "a.b.svc.cluster.local"));
        Assert.Equal("outbound|80||a.b.svc.cluster.local", IstioNaming.ClusterName(80, null, "a.b.svc.cluster.local"));
        Assert.Throws<ArgumentException>(() => IstioNaming.ClusterName(80, "v|1", "a"));
    }

    [Theory]
    [InlineData("outbound|9080|v1|reviews.default.svc.cluster.local", "outbound", 9080, "v1", "reviews.default.svc.cluster.local")]
    [InlineData("outbound|9080||reviews.default.svc.cluster.local", "outbound", 9080, "", "reviews.default.svc.cluster.local")]
    [InlineData("inbound|8080||", null, 0, null, null)]
    [InlineData("inbound|8080||ratings", "inbound", 8080, "", "ratings")]
    [InlineData("outbound|x|v1|reviews", null, 0, null, null)]
    [InlineData("sideways|80||reviews", null, 0, null, null)]
    [InlineData("outbound|80|reviews", null, 0, null, null)]
    [InlineData("reviews", null, 0, null, null)]
    public void TryParseClusterName_ReadsIstioClusterNames(
        string name, string? direction, int port, string? subset, string? host)
    {
        var ok = IstioNaming.TryParseClusterName(name, out var d, out var p, out var s, out var h);
        Assert.Equal(direction is not null, ok);
        Assert.Equal(direction ?? string.Empty, d);
        Assert.Equal(port, p);
        Assert.Equal(subset ?? string.Empty, s);
        Assert.Equal(host ?? string.Empty, h);
    }

    [Fact]
    public void InboundListenerName_UsesIstioPrefix()
    {
        Assert.Equal("xds.istio.io/grpc/lds/inbound/0.0.0.0:9080", IstioNaming.InboundListenerName(9080));
        Assert.Equal("xds.istio.io/grpc/lds/inbound/[::]:9080", IstioNaming.InboundListenerName(9080, "::"));
        Assert.Equal(
            IstioNaming.InboundListenerNameTemplate.Replace("%s", "0.0.0.0:9080", StringComparison.Ordinal),
            IstioNaming.InboundListenerName(9080));
    }

    [Fact]
    public void TryParseInboundListenerName_ReadsAddressAndPort()
    {
        Assert.True(IstioNaming.TryParseInboundListenerName("xds.istio.io/grpc/lds/inbound/[::]:50051", out var address, out var port));
        Assert.Equal("::", address);
        Assert.Equal(50051, port);
        Assert.False(IstioNaming.TryParseInboundListenerName("reviews.default.svc.cluster.local:9080", out _, out _));
        Assert.False(IstioNaming.TryParseInboundListenerName("xds.istio.io/grpc/lds/inbound/0.0.0.0", out _, out _));
    }

    [Fact]
    public void SpiffeId_FollowsIstioLayout()
    {
        var id = IstioNaming.SpiffeId("cluster.local", "default", "reviews");
        Assert.Equal("spiffe://cluster.local/ns/default/sa/reviews", id);
        Assert.True(IstioNaming.TryParseSpiffeId(id, out var td, out var ns, out var sa));
        Assert.Equal(("cluster.local", "default", "reviews"), (td, ns, sa));
        Assert.Throws<ArgumentException>(() => IstioNaming.SpiffeId("cluster.local", "a/b", "reviews"));
    }

    [Theory]
    [InlineData("spiffe://cluster.local/ns/default/sa/")]
    [InlineData("spiffe://cluster.local/ns/default")]
    [InlineData("spiffe://cluster.local/sa/default/ns/reviews")]
    [InlineData("https://cluster.local/ns/default/sa/reviews")]
    [InlineData("spiffe://cluster.local/ns/default/sa/reviews/extra")]
    public void TryParseSpiffeId_RejectsOtherShapes(string id)
        => Assert.False(IstioNaming.TryParseSpiffeId(id, out _, out _, out _));
}

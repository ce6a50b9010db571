using Mesh.ControlPlane.Config;

namespace Mesh.ControlPlane.Tests.Config;

public class IstioYamlParserTests
{
    [Fact]
    public void Parse_ReadsEveryKindWithFields()
    {
        var parsed = IstioYamlParser.Parse(TestYaml.All, "default");

        Assert.Equal(5, parsed.Resources.Count);
        var se = Assert.Single(parsed.Resources.OfType<ServiceEntry>());
        Assert.Equal(["reviews.default.svc.cluster.local"], se.Hosts);
        Assert.Equal(new ServicePort(9080, "http", "HTTP", null), Assert.Single(se.Ports));
        Assert.Equal("app", Assert.Single(se.WorkloadSelector!).Key);
        Assert.Equal("STATIC", se.Resolution);
        Assert.Equal(1, se.Source.Line);

        var we = parsed.Resources.OfType<WorkloadEntry>().First();
        Assert.Equal("v1", we.Spec.Labels["version"]);
        Assert.Equal(19081u, we.Spec.Ports["http"]);
        Assert.Equal("r1/z1", we.Spec.Locality);
        Assert.Equal(3u, we.Spec.Weight);
        Assert.Equal("v1beta1", we.ApiVersion.Split('/')[1]);

        var dr = Assert.Single(parsed.Resources.OfType<DestinationRule>());
        Assert.Equal(SimpleLb.LeastRequest, dr.TrafficPolicy!.LoadBalancer!.Simple);
        Assert.Equal("x-user", dr.Subsets[1].TrafficPolicy!.LoadBalancer!.ConsistentHash!.HttpHeaderName);
        Assert.Equal(1024ul, dr.Subsets[1].TrafficPolicy!.LoadBalancer!.ConsistentHash!.MinimumRingSize);

        var vs = Assert.Single(parsed.Resources.OfType<VirtualService>());
        Assert.Equal("default", vs.Namespace);
        Assert.Equal(new StringMatch(StringMatchKind.Exact, "jason"), vs.Http[0].Match[0].Headers["end-user"]);
        Assert.Equal(new StringMatch(StringMatchKind.Prefix, "/reviews"), vs.Http[0].Match[0].Uri);
        Assert.Equal(100u, vs.Http[0].Route[0].Weight);
        Assert.Equal([80u, 20u], vs.Http[1].Route.Select(r => r.Weight));
    }

    [Fact]
    public void Parse_KeepsTimeoutRetriesFaultAndNamespace()
    {
        var parsed = IstioYamlParser.Parse("""
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: ratings, namespace: shop}
            spec:
              hosts: [ratings]
              http:
              - timeout: 1.5s
                retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "5xx"}
                fault:
                  delay: {percentage: {value: 10}, fixedDelay: 2s}
                  abort: {percentage: {value: 0.5}, httpStatus: 503}
                route:
                - destination: {host: ratings, port: {number: 9080}}
            """, "default");

        var route = Assert.Single(Assert.IsType<VirtualService>(Assert.Single(parsed.Resources)).Http);
        Assert.Equal("shop", parsed.Resources[0].Namespace);
        Assert.Equal(TimeSpan.FromSeconds(1.5), route.Timeout);
        Assert.Equal(new HttpRetry(3, TimeSpan.FromMilliseconds(500), "5xx"), route.Retries);
        Assert.Equal(new FaultDelay(10, TimeSpan.FromSeconds(2)), route.Fault!.Delay);
        Assert.Equal(new FaultAbort(0.5, 503, null), route.Fault.Abort);
        Assert.Equal(9080u, route.Route[0].Destination.Port);
    }

    [Fact]
    public void Parse_IgnoresOtherApiGroups()
    {
        var parsed = IstioYamlParser.Parse("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: deny}
            spec: {}
            ---
            """ + "\n" + TestYaml.ReviewsServiceEntry, "default");

        Assert.IsType<ServiceEntry>(Assert.Single(parsed.Resources));
        Assert.Contains("AuthorizationPolicy", Assert.Single(parsed.Ignored));
    }

    [Theory]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x}\nspec:\n  hosts: [a\n  ports: []\n", 6, "YAML syntax error")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: x}\nspec:\n  subsets: []\n", 5, "'spec.host' is required")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x}\nspec:\n  hosts: []\n", 5, "'spec.hosts' is required")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  ports:\n  - number: http\n    name: http\n", 7, "'spec.ports[].number' must be an integer from 1 to 65535, got 'http'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x}\nspec:\n  hosts: a\n", 5, "'spec.hosts' must be a list")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: x}\nspec:\n  host: a\n  trafficPolicy:\n    loadBalancer:\n      simple: FASTEST\n", 8, "unknown load balancer 'FASTEST'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - route:\n    - destination: {host: a, subset: v1}\n      weight: 70\n    - destination: {host: a, subset: v2}\n      weight: 20\n", 8, "route weights sum to 90, they must sum to 100")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - route:\n    - destination: {subset: v1}\n", 8, "'spec.http[].route[].destination.host' is required")]
    public void Parse_RejectsInvalidFileWithLineAndReason(string yaml, int line, string reason)
    {
        var ex = Assert.Throws<ConfigException>(() => IstioYamlParser.Parse(yaml, "default"));

        Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
        Assert.Equal(line, ex.Line);
    }

    [Theory]
    [InlineData("1.5s", 1500)]
    [InlineData("250ms", 250)]
    [InlineData("2m", 120_000)]
    [InlineData("1h", 3_600_000)]
    public void TryParseDuration_ReadsIstioDurations(string text, int milliseconds)
    {
        Assert.True(IstioYamlParser.TryParseDuration(text, out var value));
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), value);
    }
}

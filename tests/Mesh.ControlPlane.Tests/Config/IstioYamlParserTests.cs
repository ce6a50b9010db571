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
        Assert.Equal(new FaultDelay(10, 0, TimeSpan.FromSeconds(2)), route.Fault!.Delay);
        Assert.Equal(new FaultAbort(0.5, 503, null), route.Fault.Abort);
        Assert.Equal(9080u, route.Route[0].Destination.Port);
    }

    [Fact]
    public void Parse_IgnoresOtherApiGroups()
    {
        var parsed = IstioYamlParser.Parse("""
            apiVersion: security.istio.io/v1
            kind: RequestAuthentication
            metadata: {name: deny}
            spec: {}
            ---
            """ + "\n" + TestYaml.ReviewsServiceEntry, "default");

        Assert.IsType<ServiceEntry>(Assert.Single(parsed.Resources));
        var skipped = Assert.Single(parsed.Unapplied);
        Assert.Equal(("security.istio.io/v1", "RequestAuthentication", "deny", 1, true), (skipped.ApiVersion, skipped.Kind, skipped.Name, skipped.Line, skipped.Severe));
    }

    [Theory]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x}\nspec:\n  hosts: [a\n  ports: []\n", 6, "YAML syntax error")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: x}\nspec:\n  subsets: []\n", 5, "'spec.host' is required")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x}\nspec:\n  hosts: []\n", 5, "'spec.hosts' is required")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  ports:\n  - number: http\n    name: http\n", 7, "'spec.ports[].number' must be an integer from 1 to 65535, got 'http'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x}\nspec:\n  hosts: a\n", 5, "'spec.hosts' must be a list")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: x}\nspec:\n  host: a\n  trafficPolicy:\n    loadBalancer:\n      simple: FASTEST\n", 8, "unknown load balancer 'FASTEST'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - route:\n    - destination: {host: a, subset: v1}\n    - destination: {host: a, subset: v2}\n      weight: 0\n", 8, "'spec.http[].route' has 2 destinations and their weights total 0")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - route:\n    - destination: {host: a, subset: v1}\n      weight: -1\n    - destination: {host: a, subset: v2}\n      weight: 2\n", 9, "'spec.http[].route[].weight' must be an integer from 0 to 2147483647, got '-1'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - route:\n    - destination: {subset: v1}\n", 8, "'spec.http[].route[].destination.host' is required")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: x}\nspec:\n  host: a\n  trafficPolicy:\n    loadBalancer:\n      consistentHash:\n        httpHeaderName: x\n        maglev: {tableSize: 65537}\n", 10, "'spec.trafficPolicy.loadBalancer.consistentHash.maglev' is not supported")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: x}\nspec:\n  host: a\n  trafficPolicy:\n    loadBalancer:\n      consistentHash: {httpHeaderName: x, useSourceIp: true}\n", 8, "sets httpHeaderName and useSourceIp; set exactly one hash key")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: x}\nspec:\n  host: a\n  trafficPolicy:\n    outlierDetection:\n      maxEjectionPercent: 101\n", 8, "'spec.trafficPolicy.outlierDetection.maxEjectionPercent' must be an integer from 0 to 100, got '101'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: x}\nspec:\n  host: a\n  trafficPolicy:\n    outlierDetection:\n      minHealthPercent: -1\n", 8, "'spec.trafficPolicy.outlierDetection.minHealthPercent' must be an integer from 0 to 100, got '-1'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: x}\nspec:\n  host: a\n  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 80}\n    - port: {number: 80}\n", 9, "duplicate port 80 in 'spec.trafficPolicy.portLevelSettings'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: x}\nspec:\n  host: a\n  trafficPolicy:\n    portLevelSettings:\n    - loadBalancer: {simple: RANDOM}\n", 8, "'spec.trafficPolicy.portLevelSettings[].port' is required")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: x}\nspec:\n  host: a\n  trafficPolicy:\n    portLevelSettings:\n    - port: {number: 80}\n      loadBalancer: {simple: FAST}\n", 9, "unknown load balancer 'FAST' in 'spec.trafficPolicy.portLevelSettings[80].loadBalancer.simple'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: x}\nspec:\n  host: a\n  trafficPolicy:\n    connectionPool:\n      http: {h2UpgradePolicy: SOMETIMES}\n", 8, "unknown value 'SOMETIMES' for 'h2UpgradePolicy'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: x}\nspec:\n  host: a\n  trafficPolicy:\n    loadBalancer:\n      localityLbSetting:\n        distribute:\n        - from: r1/*\n          to: {r1/*: 60, r2/*: 30}\n", 10, "weights sum to 90, they must sum to 100")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - redirect: {port: 8080, derivePort: FROM_REQUEST_PORT}\n", 7, "'spec.http[].redirect' cannot set both 'port' and 'derivePort'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - redirect: {derivePort: SOMEWHERE}\n", 7, "unknown value 'SOMEWHERE' for 'spec.http[].redirect.derivePort'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - redirect: {uri: /x, redirectCode: 250}\n", 7, "'spec.http[].redirect.redirectCode' 250 is not a valid redirect code, it must be 3xx")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - redirect: {redirectCode: 302}\n", 7, "'spec.http[].redirect' must set uri, prefixRewrite, authority, scheme, port or derivePort")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - redirect: {uri: /a, prefixRewrite: /b}\n", 7, "'spec.http[].redirect' may set only one of 'uri' and 'prefixRewrite'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - match: [{uri: {exact: /a}}]\n    redirect: {prefixRewrite: /b}\n", 8, "'spec.http[].redirect.prefixRewrite' needs every uri match of the route to be a prefix match")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - redirect: {uri: /a}\n    fault: {abort: {httpStatus: 500}}\n", 7, "'spec.http[]' cannot set 'fault' together with 'redirect'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - directResponse: {status: 200}\n    rewrite: {uri: /b}\n", 7, "'spec.http[]' cannot set 'rewrite' together with 'directResponse'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - match: [{headers: {x-canary: null}}]\n    route: [{destination: {host: a}}]\n", 7, "'spec.http[].match[].headers.x-canary' cannot be null (Istio's validation refuses it); write '{}' to match the header's presence")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - match: [{headers: {x-canary: {regex: \"*\"}}}]\n    route: [{destination: {host: a}}]\n", 7, "regex '*' in 'spec.http[].match[].headers.x-canary' is not a valid RE2 regex")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - match: [{queryParams: {token: {regex: \"*\"}}}]\n    route: [{destination: {host: a}}]\n", 7, "regex '*' in 'spec.http[].match[].queryParams.token' is not a valid RE2 regex")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - match: [{headers: {x-canary: {prefix: \"\"}}}]\n    route: [{destination: {host: a}}]\n", 7, "'spec.http[].match[].headers.x-canary.prefix' must not be empty")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - fault: {abort: {http2Error: 7}}\n    route: [{destination: {host: a}}]\n", 7, "'fault.abort.http2Error' is not supported")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - fault: {abort: {httpStatus: 500, percentage: {value: 0.00001}}}\n    route: [{destination: {host: a}}]\n", 7, "'fault.abort.percentage.value' 0.00001 is below 0.0001")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - retries: {retryOn: 5xx, perTryTimeout: 1s}\n    route: [{destination: {host: a}}]\n", 7, "'spec.http[].retries' sets perTryTimeout, retryOn or retryRemoteLocalities while attempts is 0 or unset")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - retries: {attempts: 2, retryOn: \"5xx,599\"}\n    route: [{destination: {host: a}}]\n", 7, "unknown retryOn policy '599'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - fault: {}\n    route: [{destination: {host: a}}]\n", 7, "'fault' must set 'delay' and/or 'abort'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - retries: {attempts: 2, retryOn: \"5xx,sometimes\"}\n    route: [{destination: {host: a}}]\n", 7, "unknown retryOn policy 'sometimes'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - directResponse: {status: 503}\n    route: [{destination: {host: a}}]\n", 7, "'spec.http[]' can set only one of 'route', 'redirect' and 'directResponse'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - directResponse: {status: 99}\n", 7, "'spec.http[].directResponse.status' must be an integer from 200 to 599, got '99'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - mirror: {host: b}\n    mirrors: [{destination: {host: c}}]\n    route: [{destination: {host: a}}]\n", 8, "'spec.http[]' cannot set both 'mirror' and 'mirrors'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - mirrors: [{destination: {host: c}, percentage: {value: 120}}]\n    route: [{destination: {host: a}}]\n", 7, "'spec.http[].mirrors[].percentage.value' must be a number from 0 to 100, got '120'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - rewrite: {uriRegexRewrite: {match: \"(\", rewrite: /}}\n    route: [{destination: {host: a}}]\n", 7, "invalid regex in 'spec.http[].rewrite.uriRegexRewrite.match'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - rewrite: {uriRegexRewrite: {match: \"^/a\"}}\n    route: [{destination: {host: a}}]\n", 7, "'spec.http[].rewrite.uriRegexRewrite.rewrite' is required")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - rewrite: {uriRegexRewrite: {match: \"^/a\", rewrite: \"\"}}\n    route: [{destination: {host: a}}]\n", 7, "'spec.http[].rewrite.uriRegexRewrite.rewrite' is required")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - fault: {delay: {exponentialDelay: 1s}}\n    route: [{destination: {host: a}}]\n", 7, "'fault.delay.exponentialDelay' is not supported")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - fault: {delay: {percent: 130, fixedDelay: 1s}}\n    route: [{destination: {host: a}}]\n", 7, "'fault.delay.percent' must be an integer from 0 to 100, got '130'")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - match: [{scheme: {exact: http, prefix: h}}]\n    route: [{destination: {host: a}}]\n", 7, "'spec.http[].match[].scheme' must set one of exact, prefix, regex (or be {} to match presence)")]
    [InlineData("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n  - match: [{sourceLabels: [app]}]\n    route: [{destination: {host: a}}]\n", 7, "'spec.http[].match[].sourceLabels' must be a mapping, got a list")]
    public void Parse_RejectsInvalidFileWithLineAndReason(string yaml, int line, string reason)
    {
        var ex = Assert.Throws<ConfigException>(() => IstioYamlParser.Parse(yaml, "default"));

        Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
        Assert.Equal(line, ex.Line);
    }

    [Fact]
    public void Parse_RecordsFieldsThatAreReadButNotApplied()
    {
        var parsed = IstioYamlParser.Parse("""
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: r}
            spec:
              host: r
              trafficPolicy:
                connectionPool:
                  tcp: {tcpKeepalive: {time: 10s, probes: 3}}
                  http: {h2UpgradePolicy: UPGRADE}
                loadBalancer:
                  simple: ROUND_ROBIN
                  warmupDurationSecs: 30s
                  localityLbSetting: {enabled: true, failoverPriority: [topology.kubernetes.io/region]}
            """, "default");

        var dr = Assert.IsType<DestinationRule>(Assert.Single(parsed.Resources));
        Assert.Equal(("UPGRADE", true), (dr.TrafficPolicy!.ConnectionPool!.H2UpgradePolicy, dr.TrafficPolicy.ConnectionPool.HasTcpKeepalive));
        Assert.Equal(TimeSpan.FromSeconds(30), dr.TrafficPolicy.LoadBalancer!.WarmupDuration);
        var locality = dr.TrafficPolicy.LoadBalancer.LocalityLbSetting!;
        Assert.Equal(((bool?)true, 0, 0), (locality.Enabled, locality.DistributeCount, locality.FailoverCount));
        Assert.Equal(["topology.kubernetes.io/region"], locality.FailoverPriority);
        Assert.Equal(4, parsed.Notes.Count);
        Assert.Contains(parsed.Notes, n => n.StartsWith("9:13: DestinationRule 'default/r': 'spec.trafficPolicy.connectionPool.http.h2UpgradePolicy' is parsed but not applied", StringComparison.Ordinal));
        Assert.Contains(parsed.Notes, n => n.Contains("'spec.trafficPolicy.loadBalancer.warmupDurationSecs'", StringComparison.Ordinal));
    }

    [Fact]
    public void Parse_ReadsSourceMatchesRetriesAndRedirectForms()
    {
        var parsed = IstioYamlParser.Parse("""
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: r}
            spec:
              hosts: [r]
              http:
              - match:
                - sourceLabels: {app: productpage}
                  sourceNamespace: shop
                  scheme: {prefix: http}
                retries: {attempts: 3, retryOn: "gateway-error,503", retryRemoteLocalities: true, retryIgnorePreviousHosts: true}
                route: [{destination: {host: r}}]
              - redirect: {scheme: https, derivePort: FROM_PROTOCOL_DEFAULT}
            """, "default");

        var vs = Assert.IsType<VirtualService>(Assert.Single(parsed.Resources));
        var match = vs.Http[0].Match[0];
        Assert.Equal(("productpage", "shop", new StringMatch(StringMatchKind.Prefix, "http")), (match.SourceLabels["app"], match.SourceNamespace, match.Scheme));
        Assert.Equal((3, "gateway-error,503", true, true), (vs.Http[0].Retries!.Attempts, vs.Http[0].Retries!.RetryOn, vs.Http[0].Retries!.RetryRemoteLocalities, vs.Http[0].Retries!.RetryIgnorePreviousHosts));
        Assert.Equal(("https", RedirectPortKind.FromProtocolDefault), (vs.Http[1].Redirect!.Scheme, vs.Http[1].Redirect!.PortKind));
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

    // Every place of a VirtualService that carries a regex: a YAML fragment of route 'spec.http[0]' (the pattern
    // goes where {0} is) and the path the parser names in its errors.
    public static TheoryData<string, string> RegexPlaces => new()
    {
        { "  - match: [{uri: {regex: '{0}'}}]\n    route: [{destination: {host: a}}]\n", "spec.http[].match[].uri.regex" },
        { "  - match: [{method: {regex: '{0}'}}]\n    route: [{destination: {host: a}}]\n", "spec.http[].match[].method.regex" },
        { "  - match: [{authority: {regex: '{0}'}}]\n    route: [{destination: {host: a}}]\n", "spec.http[].match[].authority.regex" },
        { "  - match: [{scheme: {regex: '{0}'}}]\n    route: [{destination: {host: a}}]\n", "spec.http[].match[].scheme.regex" },
        { "  - match: [{headers: {x-v: {regex: '{0}'}}}]\n    route: [{destination: {host: a}}]\n", "spec.http[].match[].headers.x-v.regex" },
        { "  - match: [{queryParams: {v: {regex: '{0}'}}}]\n    route: [{destination: {host: a}}]\n", "spec.http[].match[].queryParams.v.regex" },
        { "  - match: [{withoutHeaders: {x-v: {regex: '{0}'}}}]\n    route: [{destination: {host: a}}]\n", "spec.http[].match[].withoutHeaders.x-v.regex" },
        { "  - rewrite: {uriRegexRewrite: {match: '{0}', rewrite: /x}}\n    route: [{destination: {host: a}}]\n", "spec.http[].rewrite.uriRegexRewrite.match" },
        { "  - corsPolicy: {allowOrigins: [{regex: '{0}'}]}\n    route: [{destination: {host: a}}]\n", "spec.http[].corsPolicy.allowOrigins[].regex" },
    };

    private static string VirtualServiceWith(string fragment, string pattern) =>
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec:\n  hosts: [a]\n  http:\n"
        + fragment.Replace("{0}", pattern, StringComparison.Ordinal);

    [Theory]
    [MemberData(nameof(RegexPlaces))]
    public void Parse_AcceptsRe2SyntaxDotNetDoesNotKnow_InEveryRegexPlace(string fragment, string path)
    {
        // RE2 (Go's regexp, which Istio's validation compiles with): Unicode scripts, Python-style named groups,
        // quoted literals and POSIX classes. .NET's own Regex refuses all four.
        foreach (var pattern in new[] { @"\p{Greek}+", @"/(?P<v>v\d+)/.*", @"\Qa.b\E", "[[:alpha:]]+" })
        {
            var parsed = IstioYamlParser.Parse(VirtualServiceWith(fragment, pattern), "default");

            var vs = Assert.IsType<VirtualService>(Assert.Single(parsed.Resources));
            var route = Assert.Single(vs.Http);
            var kept = path.Split('.')[3] switch
            {
                "uri" => route.Match[0].Uri!.Value,
                "method" => route.Match[0].Method!.Value,
                "authority" => route.Match[0].Authority!.Value,
                "scheme" => route.Match[0].Scheme!.Value,
                "headers" => route.Match[0].Headers["x-v"].Value,
                "queryParams" => route.Match[0].QueryParams["v"].Value,
                "withoutHeaders" => route.Match[0].WithoutHeaders["x-v"].Value,
                "uriRegexRewrite" => route.Rewrite!.UriRegexRewrite!.Match,
                "allowOrigins[]" => pattern, // corsPolicy is validated, not applied
                var other => throw new InvalidOperationException(other),
            };
            Assert.Equal(pattern, kept);
        }
    }

    [Theory]
    [MemberData(nameof(RegexPlaces))]
    public void Parse_RefusesNonRe2Regex_InEveryRegexPlace_WithLineAndTranslatorMessage(string fragment, string path)
    {
        // A lookahead and a backreference: .NET and PCRE take them, RE2 (and so Istio's validation and Envoy) refuse them.
        var lookahead = Assert.Throws<ConfigException>(() => IstioYamlParser.Parse(VirtualServiceWith(fragment, "(?=x)"), "default"));
        var backreference = Assert.Throws<ConfigException>(() => IstioYamlParser.Parse(VirtualServiceWith(fragment, @"(a)\1"), "default"));

        Assert.Equal((7, 7), (lookahead.Line, backreference.Line));
        Assert.StartsWith($"invalid regex in '{path}': regex '(?=x)' ", lookahead.Message, StringComparison.Ordinal);
        Assert.Contains("lookahead '(?=' at offset 0", lookahead.Message, StringComparison.Ordinal);
        Assert.StartsWith($"invalid regex in '{path}': regex '(a)\\1' ", backreference.Message, StringComparison.Ordinal);
        Assert.Contains(@"backreference '\1' at offset 3", backreference.Message, StringComparison.Ordinal);
        Assert.EndsWith("Istio uses RE2 syntax (https://github.com/google/re2/wiki/Syntax)", lookahead.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_RefusesRegexOver1024Bytes_AsIstioValidationDoes()
    {
        var fragment = "  - match: [{uri: {regex: '{0}'}}]\n    route: [{destination: {host: a}}]\n";
        var atLimit = IstioYamlParser.Parse(VirtualServiceWith(fragment, new string('a', 1024)), "default");
        var ex = Assert.Throws<ConfigException>(() => IstioYamlParser.Parse(VirtualServiceWith(fragment, new string('a', 1023) + "é"), "default"));

        Assert.Single(atLimit.Resources);
        Assert.Equal(7, ex.Line);
        Assert.Equal("regex in 'spec.http[].match[].uri.regex' is too large: 1025 bytes, Istio's validation allows at most 1024", ex.Message);
    }

    [Fact]
    public void Parse_WithoutHeadersRegexStar_StaysPresence_WhileStarElsewhereIsRefused()
    {
        var parsed = IstioYamlParser.Parse(VirtualServiceWith("  - match: [{withoutHeaders: {x-v: {regex: '{0}'}}}]\n    route: [{destination: {host: a}}]\n", "*"), "default");
        var ex = Assert.Throws<ConfigException>(() => IstioYamlParser.Parse(VirtualServiceWith("  - match: [{uri: {regex: '{0}'}}]\n    route: [{destination: {host: a}}]\n", "*"), "default"));

        var vs = Assert.IsType<VirtualService>(Assert.Single(parsed.Resources));
        Assert.Equal(StringMatchKind.Present, vs.Http[0].Match[0].WithoutHeaders["x-v"].Kind);
        Assert.StartsWith("regex '*' in 'spec.http[].match[].uri' is not a valid RE2 regex", ex.Message, StringComparison.Ordinal);
    }
}

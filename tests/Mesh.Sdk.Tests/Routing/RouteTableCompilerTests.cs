using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Common.Fault.V3;
using Envoy.Extensions.Filters.Http.Fault.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Type.Matcher.V3;
using Envoy.Type.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.Routing;
using Mesh.Xds;

namespace Mesh.Sdk.Tests.Routing;

public sealed class RouteTableCompilerTests
{
    private const string Where = "route configuration 'rc' virtual_hosts[0] 'vh' routes[0] 'r0': ";

    private static Route Named(Route route)
    {
        route.Name = "r0";
        return route;
    }

    private static string SingleError(Route route)
    {
        var errors = Rds.Errors(Rds.Single(Named(route)));
        Assert.Single(errors);
        return errors[0];
    }

    [Fact]
    public void Validate_AcceptsPathRedirectWithoutLeadingSlash_AsEnvoyDoes()
    {
        // istiod's own redirect test writes Istio's 'redirect: {uri: example.org}' as path_redirect "example.org";
        // Envoy only checks it is a header value, so the whole route configuration must not be refused for it.
        var config = Rds.Config(Rds.Host("vh", ["*"], Named(new Route { Match = new RouteMatch { Prefix = "/" }, Redirect = new RedirectAction { PathRedirect = "example.org" } })));

        Assert.Empty(Rds.Errors(config));
        Assert.Equal("example.org", Rds.Compile(config).VirtualHosts[0].Routes[0].Redirect!.Path);
    }

    public static TheoryData<string, string> RejectedRoutes()
    {
        var data = new TheoryData<string, string>
        {
            { "regex-lookahead", "match.safe_regex: regex '/a(?=b)' uses lookahead '(?=' at offset 2, which RE2 does not support" },
            { "regex-backreference", "match.safe_regex: regex '(a)\\1' uses a backreference '\\1' at offset 3, which RE2 does not support" },
            { "no-match", "route has no match" },
            { "no-path", "match has no path specifier (prefix, path, safe_regex or path_separated_prefix)" },
            { "connect", "match.ConnectMatcher is not supported (prefix, path, safe_regex or path_separated_prefix)" },
            { "tls-context", "match.tls_context is not supported" },
            { "separated-slash", "match.path_separated_prefix '/a/' must start with '/', not end with '/', and contain no '?' or '#'" },
            { "fraction-over", "match.runtime_fraction numerator 101 exceeds its denominator" },
            { "no-action", "route has no action (route, redirect or direct_response)" },
            { "non-forwarding", "action NonForwardingAction is not supported (route, redirect or direct_response)" },
            { "cluster-header", "route.ClusterHeader is not supported (cluster or weighted_clusters)" },
            { "empty-cluster", "route.cluster is empty" },
            { "weights-zero", "route.weighted_clusters total weight is 0" },
            { "metadata-match", "route.metadata_match (subset load balancing) is not supported" },
            { "hedge", "route.hedge_policy is not supported" },
            { "both-rewrites", "route sets both prefix_rewrite and regex_rewrite; only one is allowed" },
            { "host-rewrite-header", "route.HostRewriteHeader is not supported (host_rewrite_literal or auto_host_rewrite)" },
            { "retry-token", "route.retry_policy: retry_on token 'sometimes' is unknown" },
            { "retry-predicate", "route.retry_policy: retry_host_predicate 'envoy.retry_host_predicates.omit_canary_hosts' is not supported (only 'envoy.retry_host_predicates.previous_hosts')" },
            { "backoff-order", "route.retry_policy: retry_back_off.max_interval 00:00:00.0010000 is below base_interval 00:00:00.0100000" },
            { "negative-timeout", "route.timeout -1s0ns is negative or out of range" },
            { "hash-empty", "route.hash_policy[0]: hash_policy has no policy (header, cookie, connection_properties, query_parameter or filter_state)" },
            { "mirror-header", "route.request_mirror_policies[0] must name a cluster (cluster_header is not supported)" },
            { "add-host", "request_headers_to_add names 'Host': pseudo-headers and host cannot be modified" },
            { "remove-pseudo", "request_headers_to_remove names ':path': pseudo-headers and host cannot be removed" },
            { "formatter", "request_headers_to_add 'x-from' value '%DOWNSTREAM_REMOTE_ADDRESS%' uses a '%' substitution command, which is not supported (write '%%' for a literal '%')" },
            { "unknown-filter", "typed_per_filter_config 'envoy.filters.http.lua' has type 'type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute', which is not supported (mark it optional with a FilterConfig to have it ignored)" },
            { "fault-status", "typed_per_filter_config 'envoy.filters.http.fault': fault abort http_status 700 is outside 200-599" },
            { "direct-status", "direct_response.status 42 is outside 200-599" },
            { "direct-file", "direct_response.body Filename is not supported (inline_string or inline_bytes)" },
            { "redirect-path", "redirect.path_redirect '/a b' contains a NUL, CR or LF, which a header value cannot carry" },
            { "redirect-substitution", "redirect.regex_rewrite: substitution '\\2' refers to group 2 but the pattern has 1" },
            { "weighted-header", "route.weighted_clusters.clusters[0] '' must name a cluster (cluster_header is not supported)" },
            { "weighted-metadata", "route.weighted_clusters.clusters[0] 'a' metadata_match (subset load balancing) is not supported" },
            { "path-rewrite-policy", "route.path_rewrite_policy is not supported (use prefix_rewrite or regex_rewrite)" },
            { "internal-redirect", "route.internal_redirect_policy is not supported" },
            { "retry-typed", "route.retry_policy_typed_config is not supported" },
            { "cookie-ttl", "route.hash_policy[0]: hash_policy cookie ttl -5s0ns is negative or out of range" },
            { "source-ip-false", "route.hash_policy[0]: hash_policy connection_properties has source_ip false, which hashes nothing" },
        };
        return data;
    }

    private static Route Build(string kind)
    {
        var route = Rds.Prefix("/", "c");
        switch (kind)
        {
            case "regex-lookahead": route = Rds.Regex("/a(?=b)", "c"); break;
            case "regex-backreference": route = Rds.Regex("(a)\\1", "c"); break;
            case "no-match": route.Match = null; break;
            case "no-path": route.Match = new RouteMatch(); break;
            case "connect": route.Match = new RouteMatch { ConnectMatcher = new RouteMatch.Types.ConnectMatcher() }; break;
            case "tls-context": route.Match.TlsContext = new RouteMatch.Types.TlsContextMatchOptions(); break;
            case "separated-slash": route.Match = new RouteMatch { PathSeparatedPrefix = "/a/" }; break;
            case "fraction-over": route.Match.RuntimeFraction = new RuntimeFractionalPercent { DefaultValue = new FractionalPercent { Numerator = 101 } }; break;
            case "no-action": route.ClearAction(); break;
            case "non-forwarding": route.NonForwardingAction = new NonForwardingAction(); break;
            case "cluster-header": route.Route_ = new RouteAction { ClusterHeader = "x-cluster" }; break;
            case "empty-cluster": route.Route_ = new RouteAction { Cluster = string.Empty }; break;
            case "weights-zero":
                route.Route_ = new RouteAction { WeightedClusters = new WeightedCluster() };
                route.Route_.WeightedClusters.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = "a", Weight = 0 });
                break;
            case "metadata-match": route.Route_.MetadataMatch = new Metadata(); break;
            case "hedge": route.Route_.HedgePolicy = new HedgePolicy(); break;
            case "both-rewrites":
                route.Route_.PrefixRewrite = "/x";
                route.Route_.RegexRewrite = new RegexMatchAndSubstitute { Pattern = new RegexMatcher { Regex = "a" }, Substitution = "b" };
                break;
            case "host-rewrite-header": route.Route_.HostRewriteHeader = "x-host"; break;
            case "retry-token": route.Route_.RetryPolicy = new Envoy.Config.Route.V3.RetryPolicy { RetryOn = "5xx,sometimes" }; break;
            case "retry-predicate":
                route.Route_.RetryPolicy = new Envoy.Config.Route.V3.RetryPolicy { RetryOn = "5xx" };
                route.Route_.RetryPolicy.RetryHostPredicate.Add(new Envoy.Config.Route.V3.RetryPolicy.Types.RetryHostPredicate { Name = "envoy.retry_host_predicates.omit_canary_hosts" });
                break;
            case "backoff-order":
                route.Route_.RetryPolicy = new Envoy.Config.Route.V3.RetryPolicy
                {
                    RetryOn = "5xx",
                    RetryBackOff = new Envoy.Config.Route.V3.RetryPolicy.Types.RetryBackOff { BaseInterval = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(10)), MaxInterval = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(1)) },
                };
                break;
            case "negative-timeout": route.Route_.Timeout = new Duration { Seconds = -1 }; break;
            case "hash-empty": route.Route_.HashPolicy.Add(new RouteAction.Types.HashPolicy()); break;
            case "mirror-header": route.Route_.RequestMirrorPolicies.Add(new RouteAction.Types.RequestMirrorPolicy { ClusterHeader = "x" }); break;
            case "add-host": route.RequestHeadersToAdd.Add(new HeaderValueOption { Header = new HeaderValue { Key = "Host", Value = "x" } }); break;
            case "remove-pseudo": route.RequestHeadersToRemove.Add(":path"); break;
            case "formatter": route.RequestHeadersToAdd.Add(new HeaderValueOption { Header = new HeaderValue { Key = "x-from", Value = "%DOWNSTREAM_REMOTE_ADDRESS%" } }); break;
            case "unknown-filter":
                route.TypedPerFilterConfig.Add("envoy.filters.http.lua", new Any { TypeUrl = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute" });
                break;
            case "fault-status":
                route.TypedPerFilterConfig.Add(HttpFilterNames.Fault, Any.Pack(new HTTPFault { Abort = new FaultAbort { HttpStatus = 700 } }));
                break;
            case "direct-status": route.DirectResponse = new DirectResponseAction { Status = 42 }; break;
            case "direct-file": route.DirectResponse = new DirectResponseAction { Status = 200, Body = new DataSource { Filename = "/etc/passwd" } }; break;
            case "redirect-path": route.Redirect = new RedirectAction { PathRedirect = "/a\nb" }; break;
            case "redirect-substitution":
                route.Redirect = new RedirectAction { RegexRewrite = new RegexMatchAndSubstitute { Pattern = new RegexMatcher { Regex = "(a)" }, Substitution = "\\2" } };
                break;
            case "weighted-header":
                route.Route_ = new RouteAction { WeightedClusters = new WeightedCluster() };
                route.Route_.WeightedClusters.Clusters.Add(new WeightedCluster.Types.ClusterWeight { ClusterHeader = "x-c", Weight = 1 });
                break;
            case "weighted-metadata":
                route.Route_ = new RouteAction { WeightedClusters = new WeightedCluster() };
                route.Route_.WeightedClusters.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = "a", Weight = 1, MetadataMatch = new Metadata() });
                break;
            case "path-rewrite-policy": route.Route_.PathRewritePolicy = new TypedExtensionConfig { Name = "x" }; break;
            case "internal-redirect": route.Route_.InternalRedirectPolicy = new InternalRedirectPolicy(); break;
            case "retry-typed": route.Route_.RetryPolicyTypedConfig = new Any { TypeUrl = "type.googleapis.com/x.Retry" }; break;
            case "cookie-ttl":
                route.Route_.HashPolicy.Add(new RouteAction.Types.HashPolicy { Cookie = new RouteAction.Types.HashPolicy.Types.Cookie { Name = "s", Ttl = new Duration { Seconds = -5 } } });
                break;
            case "source-ip-false":
                route.Route_.HashPolicy.Add(new RouteAction.Types.HashPolicy { ConnectionProperties = new RouteAction.Types.HashPolicy.Types.ConnectionProperties() });
                break;
        }

        return route;
    }

    [Theory]
    [MemberData(nameof(RejectedRoutes))]
    public void Validate_NamesWhereAndWhy(string kind, string reason)
    {
        var error = SingleError(Build(kind));
        Assert.StartsWith(Where, error);
        Assert.StartsWith(reason, error[Where.Length..]);
    }

    [Fact]
    public void Compile_ThrowsWithEveryErrorAndUnnamedRoutesUseTheirIndex()
    {
        var config = Rds.Single(Rds.Prefix("/", "c"), Rds.Regex("(?>x)", "c"), new Route { Match = new RouteMatch { Prefix = "/" } });
        var ex = Assert.Throws<RouteCompilationException>(() => RouteTableCompiler.Compile(config));
        Assert.Equal(2, ex.Errors.Count);
        Assert.Equal("route configuration 'rc' virtual_hosts[0] 'vh' routes[1]: match.safe_regex: regex '(?>x)' uses an atomic group '(?>' at offset 0, which RE2 does not support", ex.Errors[0].ToString());
        Assert.Equal(1, ex.Errors[0].RouteIndex);
        Assert.Equal("vh", ex.Errors[0].VirtualHost);
        Assert.Contains("routes[2]: route has no action", ex.Message);
        Assert.False(RouteTableCompiler.TryCompile(config, null, null, out var table, out var errors));
        Assert.Null(table);
        Assert.Equal(2, errors.Count);
    }

    [Theory]
    [InlineData(new[] { "a.com", "A.COM" }, "domain 'A.COM' is listed more than once (domains must be unique across virtual hosts)")]
    [InlineData(new[] { "a.*.com" }, "domain 'a.*.com' is invalid: a wildcard '*' may only stand alone, start or end the domain")]
    [InlineData(new[] { "*.a.*" }, "domain '*.a.*' is invalid: a wildcard '*' may only stand alone, start or end the domain")]
    public void Validate_RejectsBadDomains(string[] domains, string reason)
    {
        var errors = Rds.Errors(Rds.Config(Rds.Host("vh", domains, Rds.Prefix("/", "c"))));
        Assert.Equal(["route configuration 'rc' virtual_hosts[0] 'vh': " + reason], errors);
    }

    [Fact]
    public void Validate_RejectsConfigAndVirtualHostLevelFields()
    {
        var config = Rds.Single(Rds.Prefix("/", "c"));
        config.VirtualHosts[0].RequireTls = VirtualHost.Types.TlsRequirementType.All;
        config.IgnorePathParametersInPathMatching = true;
        config.ClusterSpecifierPlugins.Add(new ClusterSpecifierPlugin());
        config.VirtualHosts[0].HedgePolicy = new HedgePolicy();
        config.VirtualHosts[0].RetryPolicyTypedConfig = new Any { TypeUrl = "type.googleapis.com/x.Retry" };
        config.VirtualHosts[0].RetryPolicy = new Envoy.Config.Route.V3.RetryPolicy { RetryOn = "5xx", RetryPriority = new Envoy.Config.Route.V3.RetryPolicy.Types.RetryPriority { Name = "envoy.retry_priorities.previous_priorities" } };
        var errors = Rds.Errors(config);
        Assert.Equal(6, errors.Length);
        Assert.Contains("route configuration 'rc': cluster_specifier_plugins are not supported", errors);
        Assert.Contains("route configuration 'rc' virtual_hosts[0] 'vh': hedge_policy is not supported", errors);
        Assert.Contains("route configuration 'rc' virtual_hosts[0] 'vh': retry_policy_typed_config is not supported", errors);
        Assert.Contains("route configuration 'rc' virtual_hosts[0] 'vh': retry_policy: retry_priority 'envoy.retry_priorities.previous_priorities' is not supported", errors);
        Assert.Contains("route configuration 'rc': ignore_path_parameters_in_path_matching is not supported", errors);
        Assert.Contains("route configuration 'rc' virtual_hosts[0] 'vh': require_tls All is not supported by a client-side data plane", errors);
    }

    [Fact]
    public void Timeouts_DefaultsAndZeroDisables()
    {
        var unset = Rds.Prefix("/a", "c");
        var zero = Rds.Prefix("/b", "c");
        zero.Route_.Timeout = new Duration();
        zero.Route_.IdleTimeout = new Duration();
        var set = Rds.Prefix("/c", "c");
        set.Route_.Timeout = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(1500));
        set.Route_.IdleTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(30));
        set.Route_.MaxStreamDuration = new RouteAction.Types.MaxStreamDuration
        {
            MaxStreamDuration_ = Duration.FromTimeSpan(TimeSpan.FromSeconds(5)),
            GrpcTimeoutHeaderMax = Duration.FromTimeSpan(TimeSpan.FromSeconds(2)),
        };
        var routes = Rds.Compile(Rds.Single(unset, zero, set)).VirtualHosts[0].Routes;
        Assert.Equal(TimeSpan.FromSeconds(15), routes[0].Timeout);
        Assert.Null(routes[0].IdleTimeout);
        Assert.Null(routes[0].MaxStreamDuration);
        Assert.Equal(Timeout.InfiniteTimeSpan, routes[1].Timeout);
        Assert.Equal(Timeout.InfiniteTimeSpan, routes[1].IdleTimeout);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), routes[2].Timeout);
        Assert.Equal(TimeSpan.FromSeconds(30), routes[2].IdleTimeout);
        Assert.Equal(TimeSpan.FromSeconds(5), routes[2].MaxStreamDuration);
        Assert.Equal(TimeSpan.FromSeconds(2), routes[2].GrpcTimeoutHeaderMax);
    }

    private static RouteConfiguration HeaderLevels(bool mostSpecificWins)
    {
        var route = new Route { Match = new RouteMatch { Prefix = "/" }, Route_ = new RouteAction { WeightedClusters = new WeightedCluster() } };
        var weighted = new WeightedCluster.Types.ClusterWeight { Name = "w", Weight = 1 };
        weighted.RequestHeadersToAdd.Add(Set("x-level", "cluster"));
        weighted.ResponseHeadersToAdd.Add(Set("x-resp", "cluster"));
        route.Route_.WeightedClusters.Clusters.Add(weighted);
        route.RequestHeadersToAdd.Add(Set("x-level", "route"));
        route.RequestHeadersToAdd.Add(new HeaderValueOption { Header = new HeaderValue { Key = "x-list", Value = "route" } });
        route.RequestHeadersToRemove.Add("x-secret");
        var config = Rds.Single(route);
        config.VirtualHosts[0].RequestHeadersToAdd.Add(Set("x-level", "vhost"));
        config.VirtualHosts[0].RequestHeadersToAdd.Add(new HeaderValueOption { Header = new HeaderValue { Key = "x-list", Value = "vhost" } });
        config.RequestHeadersToAdd.Add(Set("x-level", "config"));
        config.RequestHeadersToAdd.Add(new HeaderValueOption { Header = new HeaderValue { Key = "x-only-if", Value = "new" }, AppendAction = HeaderValueOption.Types.HeaderAppendAction.AddIfAbsent });
        config.ResponseHeadersToRemove.Add("server");
        config.MostSpecificHeaderMutationsWins = mostSpecificWins;
        return config;
    }

    private static HeaderValueOption Set(string key, string value)
        => new() { Header = new HeaderValue { Key = key, Value = value }, AppendAction = HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExistsOrAdd };

    [Theory]
    [InlineData(false, "config", "route,vhost")]
    [InlineData(true, "cluster", "vhost,route")]
    public void HeaderMutations_FollowEnvoyOrder(bool mostSpecificWins, string expectedLevel, string expectedList)
    {
        var table = Rds.Compile(HeaderLevels(mostSpecificWins));
        var result = table.Match(TestRequest.Get("/"));
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://svc/");
        request.Headers.Add("x-secret", "1");
        request.Headers.Add("x-only-if", "old");
        result.Target!.RequestHeaders.ApplyTo(request);
        Assert.Equal([expectedLevel], request.Headers.GetValues("x-level"));
        Assert.Equal(expectedList, string.Join(',', request.Headers.GetValues("x-list")));
        Assert.False(request.Headers.Contains("x-secret"));
        Assert.Equal(["old"], request.Headers.GetValues("x-only-if"));

        using var response = new HttpResponseMessage { Content = new StringContent("x") };
        response.Headers.Add("server", "upstream");
        result.Target.ResponseHeaders.ApplyTo(response);
        Assert.False(response.Headers.Contains("server"));
        Assert.Equal(["cluster"], response.Headers.GetValues("x-resp"));
    }

    [Fact]
    public void HeaderMutations_KeepEmptyValueAndEscapedPercent()
    {
        var route = Rds.Prefix("/", "c");
        route.RequestHeadersToAdd.Add(new HeaderValueOption { Header = new HeaderValue { Key = "x-dropped", Value = string.Empty } });
        route.RequestHeadersToAdd.Add(new HeaderValueOption { Header = new HeaderValue { Key = "x-kept", Value = string.Empty }, KeepEmptyValue = true });
        route.RequestHeadersToAdd.Add(new HeaderValueOption { Header = new HeaderValue { Key = "x-pct", Value = "100%%" } });
        route.RequestHeadersToAdd.Add(new HeaderValueOption { Header = new HeaderValue { Key = "x-ow", Value = "new" }, AppendAction = HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExists });
        var target = Rds.Compile(Rds.Single(route)).Match(TestRequest.Get("/")).Target!;
        Assert.Equal(
            ["Append x-kept=", "Append x-pct=100%", "OverwriteIfExists x-ow=new"],
            target.RequestHeaders.Operations.Select(static o => $"{o.Kind} {o.Name}={o.Value}"));
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://svc/");
        target.RequestHeaders.ApplyTo(request);
        Assert.False(request.Headers.Contains("x-ow")); // OVERWRITE_IF_EXISTS adds nothing when absent
        Assert.Equal(["100%"], request.Headers.GetValues("x-pct"));
    }

    private static Any FaultAny(uint status, uint percent = 100)
        => Any.Pack(new HTTPFault { Abort = new FaultAbort { HttpStatus = status, Percentage = new FractionalPercent { Numerator = percent } } });

    [Fact]
    public void Fault_MostSpecificOverrideReplacesListenerDefault()
    {
        var filters = new List<HttpFilter>
        {
            new() { Name = HttpFilterNames.Fault, TypedConfig = Any.Pack(new HTTPFault { Delay = new FaultDelay { FixedDelay = Duration.FromTimeSpan(TimeSpan.FromSeconds(3)), Percentage = new FractionalPercent { Numerator = 50 } } }) },
            new() { Name = HttpFilterNames.Router, TypedConfig = new Any { TypeUrl = XdsTypeUrls.Router } },
        };
        var plain = Rds.Prefix("/plain", "c");
        var routeLevel = Rds.Prefix("/route", "c");
        routeLevel.TypedPerFilterConfig.Add(HttpFilterNames.Fault, FaultAny(503));
        var disabled = Rds.Prefix("/off", "c");
        disabled.TypedPerFilterConfig.Add(HttpFilterNames.Fault, Any.Pack(new FilterConfig { Disabled = true }));
        var weighted = new Route { Match = new RouteMatch { Prefix = "/w" }, Route_ = new RouteAction { WeightedClusters = new WeightedCluster() } };
        var cw = new WeightedCluster.Types.ClusterWeight { Name = "a", Weight = 1 };
        cw.TypedPerFilterConfig.Add(HttpFilterNames.Fault, Any.Pack(new FilterConfig { Config = FaultAny(418), IsOptional = true }));
        weighted.Route_.WeightedClusters.Clusters.Add(cw);
        weighted.Route_.WeightedClusters.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = "b", Weight = 1 });
        weighted.TypedPerFilterConfig.Add(HttpFilterNames.Fault, FaultAny(500));
        var config = Rds.Single(plain, routeLevel, disabled, weighted);
        config.VirtualHosts[0].TypedPerFilterConfig.Add(HttpFilterNames.Fault, FaultAny(502));
        var vhostOnly = Rds.Config(Rds.Host("vh", ["svc"], plain.Clone()));

        var routes = RouteTableCompiler.Compile(config, filters).VirtualHosts[0].Routes;
        Assert.Equal(502, routes[0].Targets[0].Fault!.AbortHttpStatus); // virtual host override
        Assert.Equal(FaultDelayKind.None, routes[0].Targets[0].Fault!.DelayKind); // replaces, never merges
        Assert.Equal(503, routes[1].Targets[0].Fault!.AbortHttpStatus);
        Assert.Null(routes[2].Targets[0].Fault);
        Assert.Equal(418, routes[3].Targets[0].Fault!.AbortHttpStatus);
        Assert.Equal(500, routes[3].Targets[1].Fault!.AbortHttpStatus);

        var fallback = RouteTableCompiler.Compile(vhostOnly, filters).VirtualHosts[0].Routes[0].Targets[0].Fault!;
        Assert.Equal(FaultDelayKind.Fixed, fallback.DelayKind);
        Assert.Equal(TimeSpan.FromSeconds(3), fallback.FixedDelay);
        Assert.Equal(new Fraction(50, 100), fallback.DelayPercentage);

        // No fault filter in the listener's chain: per-route configs have nothing to override.
        var noFault = RouteTableCompiler.Compile(config, [filters[1]]).VirtualHosts[0].Routes;
        Assert.All(noFault, static r => Assert.All(r.Targets, static t => Assert.Null(t.Fault)));

        // Unknown chain (null): per-route overrides apply without a listener default.
        Assert.Null(RouteTableCompiler.Compile(vhostOnly).VirtualHosts[0].Routes[0].Targets[0].Fault);
        Assert.Equal(503, RouteTableCompiler.Compile(config).VirtualHosts[0].Routes[1].Targets[0].Fault!.AbortHttpStatus);
    }

    [Fact]
    public void TypedPerFilterConfig_OptionalUnknownAndOtherFiltersAreIgnored()
    {
        var route = Rds.Prefix("/", "c");
        route.TypedPerFilterConfig.Add("envoy.filters.http.lua", Any.Pack(new FilterConfig { IsOptional = true, Config = new Any { TypeUrl = "type.googleapis.com/x.Lua" } }));
        route.TypedPerFilterConfig.Add(HttpFilterNames.Rbac, new Any { TypeUrl = XdsTypeUrls.RbacPerRoute });
        Assert.Empty(Rds.Errors(Rds.Single(route)));
    }

    [Fact]
    public void Mirrors_MostSpecificNonEmptyListWins()
    {
        var inherit = Rds.Prefix("/a", "c");
        var own = Rds.Prefix("/b", "c");
        own.Route_.RequestMirrorPolicies.Add(new RouteAction.Types.RequestMirrorPolicy
        {
            Cluster = "shadow-route",
            RuntimeFraction = new RuntimeFractionalPercent { DefaultValue = new FractionalPercent { Numerator = 25 } },
        });
        var config = Rds.Single(inherit, own);
        config.VirtualHosts[0].RequestMirrorPolicies.Add(new RouteAction.Types.RequestMirrorPolicy { Cluster = "shadow-vhost" });
        config.RequestMirrorPolicies.Add(new RouteAction.Types.RequestMirrorPolicy { Cluster = "shadow-config" });
        var routes = Rds.Compile(config).VirtualHosts[0].Routes;
        var vhostMirror = Assert.Single(routes[0].MirrorPolicies);
        Assert.Equal("shadow-vhost", vhostMirror.Cluster);
        Assert.Equal(Fraction.Always, vhostMirror.Fraction);
        var routeMirror = Assert.Single(routes[1].MirrorPolicies);
        Assert.Equal("shadow-route", routeMirror.Cluster);
        Assert.Equal(new Fraction(25, 100), routeMirror.Fraction);
        Assert.Equal("reviews-shadow:9080", routeMirror.ShadowAuthority("reviews:9080"));
        Assert.Equal("reviews-shadow", routeMirror.ShadowAuthority("reviews"));

        var random = new Random(3);
        var mirrored = 0;
        for (var i = 0; i < 10_000; i++)
        {
            mirrored += routeMirror.ShouldMirror(random) ? 1 : 0;
        }

        Assert.InRange(mirrored, 2300, 2700);
    }

    [Fact]
    public void Retry_RoutePolicyReplacesVirtualHostPolicy()
    {
        var inherit = Rds.Prefix("/a", "c");
        var own = Rds.Prefix("/b", "c");
        own.Route_.RetryPolicy = new Envoy.Config.Route.V3.RetryPolicy { RetryOn = "reset", NumRetries = 5 };
        var config = Rds.Single(inherit, own);
        config.VirtualHosts[0].RetryPolicy = new Envoy.Config.Route.V3.RetryPolicy { RetryOn = "5xx" };
        var routes = Rds.Compile(config).VirtualHosts[0].Routes;
        Assert.Equal(RetryOn.Http5xx, routes[0].RetryPolicy!.RetryOn);
        Assert.Equal(1u, routes[0].RetryPolicy!.NumRetries);
        Assert.Equal(RetryOn.Reset, routes[1].RetryPolicy!.RetryOn);
        Assert.Equal(5u, routes[1].RetryPolicy!.NumRetries);
        Assert.Null(Rds.Compile(Rds.Single(Rds.Prefix("/", "c"))).VirtualHosts[0].Routes[0].RetryPolicy);
    }

    [Fact]
    public void HashPolicies_CompileInOrderWithTheirSettings()
    {
        var route = Rds.Prefix("/", "c");
        route.Route_.HashPolicy.Add(new RouteAction.Types.HashPolicy { Header = new RouteAction.Types.HashPolicy.Types.Header { HeaderName = "X-User", RegexRewrite = new RegexMatchAndSubstitute { Pattern = new RegexMatcher { Regex = "^u-(.*)$" }, Substitution = "\\1" } } });
        var cookie = new RouteAction.Types.HashPolicy.Types.Cookie { Name = "session", Ttl = Duration.FromTimeSpan(TimeSpan.FromMinutes(10)), Path = "/app" };
        cookie.Attributes.Add(new RouteAction.Types.HashPolicy.Types.CookieAttribute { Name = "SameSite", Value = "Strict" });
        route.Route_.HashPolicy.Add(new RouteAction.Types.HashPolicy { Cookie = cookie, Terminal = true });
        route.Route_.HashPolicy.Add(new RouteAction.Types.HashPolicy { ConnectionProperties = new RouteAction.Types.HashPolicy.Types.ConnectionProperties { SourceIp = true } });
        route.Route_.HashPolicy.Add(new RouteAction.Types.HashPolicy { QueryParameter = new RouteAction.Types.HashPolicy.Types.QueryParameter { Name = "id" } });
        route.Route_.HashPolicy.Add(new RouteAction.Types.HashPolicy { FilterState = new RouteAction.Types.HashPolicy.Types.FilterState { Key = "io.istio.peer" } });
        var hashes = Rds.Compile(Rds.Single(route)).VirtualHosts[0].Routes[0].HashPolicies;
        Assert.Equal([HashPolicyKind.Header, HashPolicyKind.Cookie, HashPolicyKind.SourceIp, HashPolicyKind.QueryParameter, HashPolicyKind.FilterState], hashes.Select(static h => h.Kind));
        Assert.Equal("x-user", hashes[0].Name);
        Assert.True(hashes[1].Terminal);
        Assert.False(hashes[0].Terminal);
        Assert.Equal(TimeSpan.FromMinutes(10), hashes[1].CookieTtl);
        Assert.Equal("/app", hashes[1].CookiePath);
        Assert.Equal([new KeyValuePair<string, string>("SameSite", "Strict")], hashes[1].CookieAttributes);
        Assert.Equal("io.istio.peer", hashes[4].Name);

        var request = new TestRequest("svc", "/x?a=1&id=42", source: System.Net.IPAddress.Parse("10.0.0.7"), headers: [("x-user", "u-alice"), ("cookie", "a=b; session=\"s1\"")]);
        Assert.Equal("alice", hashes[0].GetKey(in request));
        Assert.Equal("s1", hashes[1].GetKey(in request));
        Assert.Equal("10.0.0.7", hashes[2].GetKey(in request));
        Assert.Equal("42", hashes[3].GetKey(in request));
        Assert.Null(hashes[4].GetKey(in request));
        Assert.Null(hashes[1].GetKey(TestRequest.Get("/")));
    }

    [Fact]
    public void DirectResponse_BodyLimitAndContent()
    {
        var route = new Route { Match = new RouteMatch { Prefix = "/" }, DirectResponse = new DirectResponseAction { Status = 418, Body = new DataSource { InlineString = "teapot" } } };
        var compiled = Rds.Compile(Rds.Single(route)).Match(TestRequest.Get("/"));
        Assert.Equal(RouteActionKind.DirectResponse, compiled.Route!.Action);
        Assert.Equal(418, compiled.Route.DirectResponse!.Status);
        Assert.Equal("teapot", System.Text.Encoding.UTF8.GetString(compiled.Route.DirectResponse.Body.Span));
        Assert.Equal(string.Empty, compiled.Cluster);

        var big = Rds.Single(new Route { Match = new RouteMatch { Prefix = "/" }, DirectResponse = new DirectResponseAction { Status = 200, Body = new DataSource { InlineBytes = ByteString.CopyFrom(new byte[5000]) } } });
        Assert.Contains("direct_response.body is 5000 bytes, over the 4096-byte limit", Assert.Single(Rds.Errors(big)));
        big.MaxDirectResponseBodySizeBytes = 8192;
        Assert.Empty(Rds.Errors(big));
    }

    [Fact]
    public void Compile_KeepsTheDecoratorOperation_TheSpanName()
    {
        var decorated = Rds.Prefix("/", "c");
        decorated.Decorator = new Decorator { Operation = "web.default.svc.cluster.local:9080/*" };
        var routes = RouteTableCompiler.Compile(Rds.Single(decorated, Rds.Prefix("/other", "c"))).VirtualHosts[0].Routes;
        Assert.Equal("web.default.svc.cluster.local:9080/*", routes[0].Operation);
        Assert.Null(routes[1].Operation);
    }
}

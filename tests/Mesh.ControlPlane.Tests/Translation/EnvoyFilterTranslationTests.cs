using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Http.LocalRatelimit.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Type.V3;
using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Registry;
using Mesh.ControlPlane.Translation;
using Mesh.Xds;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.ControlPlane.Tests.Translation;

/// <summary>
/// EnvoyFilter local rate limit patches (Istio's "Enabling Rate Limits using Envoy" task, local rate limit section)
/// applied to the proxyless inbound listeners as istiod applies SIDECAR_INBOUND patches.
/// </summary>
public class EnvoyFilterTranslationTests
{
    private const string Name9080 = "xds.istio.io/grpc/lds/inbound/0.0.0.0:9080";

    private static readonly ClientScope Productpage = new("default", new Dictionary<string, string> { ["app"] = "productpage" });
    private static readonly ClientScope Reviews = new("default", new Dictionary<string, string> { ["app"] = "reviews" });

    /// <summary>The task's first EnvoyFilter, unchanged: a listener-wide bucket of 4 requests per minute.</summary>
    internal const string TaskListenerVariant = """
        apiVersion: networking.istio.io/v1alpha3
        kind: EnvoyFilter
        metadata:
          name: filter-local-ratelimit-svc
          namespace: istio-system
        spec:
          workloadSelector:
            labels:
              app: productpage
          configPatches:
            - applyTo: HTTP_FILTER
              match:
                context: SIDECAR_INBOUND
                listener:
                  filterChain:
                    filter:
                      name: "envoy.filters.network.http_connection_manager"
              patch:
                operation: INSERT_BEFORE
                value:
                  name: envoy.filters.http.local_ratelimit
                  typed_config:
                    "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                    type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                    value:
                      stat_prefix: http_local_rate_limiter
                      token_bucket:
                        max_tokens: 4
                        tokens_per_fill: 4
                        fill_interval: 60s
                      filter_enabled:
                        runtime_key: local_rate_limit_enabled
                        default_value:
                          numerator: 100
                          denominator: HUNDRED
                      filter_enforced:
                        runtime_key: local_rate_limit_enforced
                        default_value:
                          numerator: 100
                          denominator: HUNDRED
                      response_headers_to_add:
                        - append: false
                          header:
                            key: x-local-rate-limit
                            value: 'true'
        """;

    /// <summary>The task's second EnvoyFilter, unchanged: the bucket on the routes of virtual host inbound|http|9080.</summary>
    internal const string TaskRouteVariant = """
        apiVersion: networking.istio.io/v1alpha3
        kind: EnvoyFilter
        metadata:
          name: filter-local-ratelimit-svc
          namespace: istio-system
        spec:
          workloadSelector:
            labels:
              app: productpage
          configPatches:
            - applyTo: HTTP_FILTER
              match:
                context: SIDECAR_INBOUND
                listener:
                  filterChain:
                    filter:
                      name: "envoy.filters.network.http_connection_manager"
              patch:
                operation: INSERT_BEFORE
                value:
                  name: envoy.filters.http.local_ratelimit
                  typed_config:
                    "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                    type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                    value:
                      stat_prefix: http_local_rate_limiter
            - applyTo: HTTP_ROUTE
              match:
                context: SIDECAR_INBOUND
                routeConfiguration:
                  vhost:
                    name: "inbound|http|9080"
                    route:
                      action: ANY
              patch:
                operation: MERGE
                value:
                  typed_per_filter_config:
                    envoy.filters.http.local_ratelimit:
                      "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                      type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                      value:
                        stat_prefix: http_local_rate_limiter
                        token_bucket:
                          max_tokens: 4
                          tokens_per_fill: 4
                          fill_interval: 60s
                        filter_enabled:
                          runtime_key: local_rate_limit_enabled
                          default_value:
                            numerator: 100
                            denominator: HUNDRED
                        filter_enforced:
                          runtime_key: local_rate_limit_enforced
                          default_value:
                            numerator: 100
                            denominator: HUNDRED
                        response_headers_to_add:
                          - append: false
                            header:
                              key: x-local-rate-limit
                              value: 'true'
        """;

    private const string AllowAll = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: allow-all, namespace: default}
        spec:
          rules:
          - {}
        """;

    internal static HttpConnectionManager InboundHcm(string yaml, ClientScope client, string name = Name9080)
        => InboundListenerTests.Hcm(InboundListenerTests.Inbound(InboundListenerTests.Translate(yaml), name, client));

    private static void AssertTaskBucket(LocalRateLimit config)
    {
        Assert.Equal("http_local_rate_limiter", config.StatPrefix);
        Assert.Equal((4u, 4u, TimeSpan.FromSeconds(60)), (config.TokenBucket.MaxTokens, config.TokenBucket.TokensPerFill!.Value, config.TokenBucket.FillInterval.ToTimeSpan()));
        Assert.Equal(("local_rate_limit_enabled", 100u, FractionalPercent.Types.DenominatorType.Hundred),
            (config.FilterEnabled.RuntimeKey, config.FilterEnabled.DefaultValue.Numerator, config.FilterEnabled.DefaultValue.Denominator));
        Assert.Equal(("local_rate_limit_enforced", 100u, FractionalPercent.Types.DenominatorType.Hundred),
            (config.FilterEnforced.RuntimeKey, config.FilterEnforced.DefaultValue.Numerator, config.FilterEnforced.DefaultValue.Denominator));
        var header = Assert.Single(config.ResponseHeadersToAdd);
        Assert.Equal(("x-local-rate-limit", "true", (bool?)false), (header.Header.Key, header.Header.Value, header.Append));
    }

    private static LocalRateLimit PerRoute(Route route)
        => route.TypedPerFilterConfig[HttpFilterNames.LocalRateLimit].Unpack<FilterConfig>().Config.Unpack<LocalRateLimit>();

    [Fact]
    public void TaskListenerVariant_InsertsTheFilterFirst_WithTheTasksBucket()
    {
        var hcm = InboundHcm(TaskListenerVariant, Productpage);

        Assert.Equal([HttpFilterNames.LocalRateLimit, HttpFilterNames.Router], hcm.HttpFilters.Select(f => f.Name));
        Assert.Equal([true, false], hcm.HttpFilters.Select(f => f.IsOptional));
        Assert.Equal(XdsTypeUrls.LocalRateLimit, hcm.HttpFilters[0].TypedConfig.TypeUrl);
        AssertTaskBucket(hcm.HttpFilters[0].TypedConfig.Unpack<LocalRateLimit>());
        var vhost = Assert.Single(hcm.RouteConfig.VirtualHosts);
        Assert.Equal("inbound|http|9080", vhost.Name);
        Assert.Empty(Assert.Single(vhost.Routes).TypedPerFilterConfig);
    }

    [Fact]
    public void TaskListenerVariant_WithRbac_RateLimitRunsBeforeTheRbacFilters()
    {
        var hcm = InboundHcm(TaskListenerVariant + "\n---\n" + AllowAll, Productpage);

        Assert.Equal([HttpFilterNames.LocalRateLimit, HttpFilterNames.Rbac, HttpFilterNames.Router], hcm.HttpFilters.Select(f => f.Name));
    }

    [Fact]
    public void TaskRouteVariant_PutsTheBucketOnTheInboundRoute()
    {
        var hcm = InboundHcm(TaskRouteVariant, Productpage);

        Assert.Equal([HttpFilterNames.LocalRateLimit, HttpFilterNames.Router], hcm.HttpFilters.Select(f => f.Name));
        var listenerConfig = hcm.HttpFilters[0].TypedConfig.Unpack<LocalRateLimit>();
        Assert.Equal("http_local_rate_limiter", listenerConfig.StatPrefix);
        Assert.Null(listenerConfig.TokenBucket);
        Assert.Null(listenerConfig.FilterEnabled);
        var route = Assert.Single(Assert.Single(hcm.RouteConfig.VirtualHosts).Routes);
        Assert.Equal("default", route.Name);
        var perRoute = route.TypedPerFilterConfig[HttpFilterNames.LocalRateLimit];
        Assert.Equal(XdsTypeUrls.FilterConfig, perRoute.TypeUrl);
        var wrapper = perRoute.Unpack<FilterConfig>();
        Assert.Equal((true, false, XdsTypeUrls.LocalRateLimit), (wrapper.IsOptional, wrapper.Disabled, wrapper.Config.TypeUrl));
        AssertTaskBucket(PerRoute(route));
    }

    [Fact]
    public void TaskRouteVariant_OnAnotherPort_OnlyTheListenerFilterApplies()
    {
        var hcm = InboundHcm(TaskRouteVariant, Productpage, "xds.istio.io/grpc/lds/inbound/0.0.0.0:9091");

        Assert.Equal([HttpFilterNames.LocalRateLimit, HttpFilterNames.Router], hcm.HttpFilters.Select(f => f.Name));
        Assert.Empty(Assert.Single(Assert.Single(hcm.RouteConfig.VirtualHosts).Routes).TypedPerFilterConfig);
    }

    [Fact]
    public void WorkloadSelector_OtherWorkloadsGetNoFilter()
    {
        var hcm = InboundHcm(TaskListenerVariant, Reviews);

        Assert.Equal([HttpFilterNames.Router], hcm.HttpFilters.Select(f => f.Name));
    }

    [Theory]
    [InlineData("default", "", true)]
    [InlineData("default", "workloadSelector: {labels: {app: productpage}}", true)]
    [InlineData("default", "workloadSelector: {labels: {app: reviews}}", false)]
    [InlineData("other", "", false)]
    [InlineData("istio-system", "", true)]
    public void Namespace_RootAppliesToAll_OthersToTheirOwn(string ns, string selector, bool applies)
    {
        var yaml = Filter("INSERT_BEFORE", ns: ns, selector: selector);

        var hcm = InboundHcm(yaml, Productpage);

        Assert.Equal(applies ? 2 : 1, hcm.HttpFilters.Count);
    }

    [Theory]
    [InlineData("INSERT_BEFORE", "", new[] { "rl", "rbac", "router" })]
    [InlineData("INSERT_FIRST", "subFilter: {name: envoy.filters.http.router}", new[] { "rl", "rbac", "router" })]
    [InlineData("INSERT_BEFORE", "subFilter: {name: envoy.filters.http.router}", new[] { "rbac", "rl", "router" })]
    [InlineData("INSERT_BEFORE", "subFilter: {name: envoy.router}", new[] { "rbac", "rl", "router" })]
    [InlineData("INSERT_AFTER", "subFilter: {name: envoy.filters.http.rbac}", new[] { "rbac", "rl", "router" })]
    [InlineData("INSERT_BEFORE", "subFilter: {name: envoy.filters.http.fault}", new[] { "rbac", "router" })]
    [InlineData("INSERT_AFTER", "", new[] { "rbac", "router", "rl" })]
    [InlineData("ADD", "", new[] { "rbac", "router", "rl" })]
    public void Operation_PlacesTheFilterAsIstiodDoes(string operation, string subFilter, string[] expected)
    {
        var hcm = InboundHcm(Filter(operation, subFilter: subFilter) + "\n---\n" + AllowAll, Productpage);

        Assert.Equal(expected, hcm.HttpFilters.Select(f => f.Name switch
        {
            HttpFilterNames.LocalRateLimit => "rl",
            HttpFilterNames.Rbac => "rbac",
            HttpFilterNames.Router => "router",
            var other => other,
        }));
    }

    [Theory]
    [InlineData(9080, 1)]
    [InlineData(9091, 2)]
    public void PortNumber_LimitsThePatchToThatPort(int port, int filters)
    {
        var hcm = InboundHcm(Filter("INSERT_BEFORE", port: 9091), Productpage, $"xds.istio.io/grpc/lds/inbound/0.0.0.0:{port}");

        Assert.Equal(filters, hcm.HttpFilters.Count);
    }

    /// <summary>The route variant with descriptors: a stricter bucket for <c>/productpage</c>, the path as descriptor.</summary>
    internal const string DescriptorVariant = """
        apiVersion: networking.istio.io/v1alpha3
        kind: EnvoyFilter
        metadata:
          name: filter-local-ratelimit-path
          namespace: default
        spec:
          workloadSelector:
            labels:
              app: productpage
          configPatches:
            - applyTo: HTTP_FILTER
              match:
                context: SIDECAR_INBOUND
                listener:
                  filterChain:
                    filter:
                      name: "envoy.filters.network.http_connection_manager"
              patch:
                operation: INSERT_BEFORE
                value:
                  name: envoy.filters.http.local_ratelimit
                  typed_config:
                    "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                    type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                    value:
                      stat_prefix: http_local_rate_limiter
            - applyTo: HTTP_ROUTE
              match:
                context: SIDECAR_INBOUND
                routeConfiguration:
                  vhost:
                    name: "inbound|http|9080"
                    route:
                      action: ANY
              patch:
                operation: MERGE
                value:
                  route:
                    rate_limits:
                      - actions:
                          - request_headers:
                              header_name: ":path"
                              descriptor_key: path
                  typed_per_filter_config:
                    envoy.filters.http.local_ratelimit:
                      "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                      type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                      value:
                        stat_prefix: http_local_rate_limiter
                        token_bucket:
                          max_tokens: 10
                          tokens_per_fill: 10
                          fill_interval: 60s
                        filter_enabled:
                          runtime_key: local_rate_limit_enabled
                          default_value:
                            numerator: 100
                            denominator: HUNDRED
                        filter_enforced:
                          runtime_key: local_rate_limit_enforced
                          default_value:
                            numerator: 100
                            denominator: HUNDRED
                        descriptors:
                          - entries:
                              - key: path
                                value: /productpage
                            token_bucket:
                              max_tokens: 2
                              tokens_per_fill: 2
                              fill_interval: 60s
        """;

    [Fact]
    public void DescriptorVariant_RateLimitsGoOnTheVirtualHost_DescriptorsOnTheRoute()
    {
        var hcm = InboundHcm(DescriptorVariant, Productpage);

        var vhost = Assert.Single(hcm.RouteConfig.VirtualHosts);
        var action = Assert.Single(Assert.Single(vhost.RateLimits).Actions);
        Assert.Equal((":path", "path", false), (action.RequestHeaders.HeaderName, action.RequestHeaders.DescriptorKey, action.RequestHeaders.SkipIfAbsent));
        var route = Assert.Single(vhost.Routes);
        Assert.NotNull(route.NonForwardingAction);
        var config = PerRoute(route);
        Assert.Equal(10u, config.TokenBucket.MaxTokens);
        var descriptor = Assert.Single(config.Descriptors);
        Assert.Equal(("path", "/productpage", 2u), (Assert.Single(descriptor.Entries).Key, descriptor.Entries[0].Value, descriptor.TokenBucket.MaxTokens));
    }

    [Theory]
    [InlineData("fill_interval: 60s", "fill_interval: 90s", "must be a multiple of token_bucket.fill_interval (60000ms)")]
    [InlineData("value: /productpage", "value: ''", "needs at least one entry, each with a key and a value")]
    public void InvalidDescriptor_RejectsTheFile(string text, string replacement, string reason)
    {
        // The descriptor's lines are the last ones holding these texts.
        var at = DescriptorVariant.LastIndexOf(text, StringComparison.Ordinal);
        var yaml = DescriptorVariant[..at] + replacement + DescriptorVariant[(at + text.Length)..];
        var store = new ConfigStore("default", NullLogger.Instance);

        store.Apply("/cfg/rl.yaml", yaml);

        Assert.Contains(reason, Assert.Single(store.LastErrors).Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void DirectLocalRateLimitType_IsAccepted()
    {
        var yaml = """
            apiVersion: networking.istio.io/v1alpha3
            kind: EnvoyFilter
            metadata: {name: rl, namespace: default}
            spec:
              configPatches:
              - applyTo: HTTP_FILTER
                match: {context: SIDECAR_INBOUND}
                patch:
                  operation: INSERT_FIRST
                  value:
                    name: envoy.filters.http.local_ratelimit
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                      stat_prefix: direct
                      status: {code: ServiceUnavailable}
                      token_bucket: {max_tokens: 2, fill_interval: 0.5s}
                      local_rate_limit_per_downstream_connection: true
            """;

        var config = InboundHcm(yaml, Productpage).HttpFilters[0].TypedConfig.Unpack<LocalRateLimit>();

        Assert.Equal(("direct", StatusCode.ServiceUnavailable, 2u, (uint?)null, TimeSpan.FromMilliseconds(500), true),
            (config.StatPrefix, config.Status.Code, config.TokenBucket.MaxTokens, config.TokenBucket.TokensPerFill, config.TokenBucket.FillInterval.ToTimeSpan(), config.LocalRateLimitPerDownstreamConnection));
    }

    [Theory]
    [InlineData("fill_interval: 0.01s", "max_tokens: 4", 17, "token_bucket.fill_interval' must be at least 50ms (Envoy refuses faster refills), got 10ms")]
    [InlineData("fill_interval: 1s", "max_tokens: 0", 16, "token_bucket.max_tokens' must be greater than 0")]
    [InlineData("fill_interval: 1s", "max_tokens: many", 13, "is not a valid LocalRateLimit")]
    [InlineData("fill_interval: 10ms", "max_tokens: 4", 13, "durations are written in seconds")]
    public void InvalidLocalRateLimit_RejectsTheFile_WithLineAndReason(string interval, string max, int line, string reason)
    {
        var yaml = $$"""
            apiVersion: networking.istio.io/v1alpha3
            kind: EnvoyFilter
            metadata: {name: rl, namespace: default}
            spec:
              configPatches:
              - applyTo: HTTP_FILTER
                match: {context: SIDECAR_INBOUND}
                patch:
                  operation: INSERT_FIRST
                  value:
                    name: envoy.filters.http.local_ratelimit
                    typed_config:
                      "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                      stat_prefix: rl
                      token_bucket:
                        {{max}}
                        {{interval}}
            """;
        var store = new ConfigStore("default", NullLogger.Instance);

        store.Apply("/cfg/rl.yaml", TestYaml.ReviewsServiceEntry);
        store.Apply("/cfg/rl2.yaml", yaml);

        var error = Assert.Single(store.LastErrors);
        Assert.Equal(("/cfg/rl2.yaml", line), (error.File, error.Line));
        Assert.Contains(reason, error.Reason, StringComparison.Ordinal);
        Assert.Empty(store.Current.EnvoyFilters);
        Assert.Single(store.Current.ServiceEntries);
    }

    [Fact]
    public void PerRouteWithoutTokenBucket_IsRejected()
    {
        var lines = TaskRouteVariant.Split('\n').ToList();
        var routePatch = lines.FindIndex(l => l.Contains("HTTP_ROUTE", StringComparison.Ordinal));
        lines.RemoveAll(l => lines.IndexOf(l) > routePatch && (l.Contains("token_bucket", StringComparison.Ordinal) || l.Contains("tokens", StringComparison.Ordinal) || l.Contains("fill_interval", StringComparison.Ordinal)));
        var yaml = string.Join('\n', lines);
        Assert.DoesNotContain("max_tokens", yaml, StringComparison.Ordinal);
        var store = new ConfigStore("default", NullLogger.Instance);

        store.Apply("/cfg/rl.yaml", yaml);

        var error = Assert.Single(store.LastErrors);
        Assert.Contains("token_bucket' is required", error.Reason, StringComparison.Ordinal);
        Assert.Equal(43, error.Line);
    }

    /// <summary>The global rate limit EnvoyFilters of the same task, for gateways: loaded, every patch reported as not applied.</summary>
    private const string TaskGlobalRateLimit = """
        apiVersion: networking.istio.io/v1alpha3
        kind: EnvoyFilter
        metadata:
          name: filter-ratelimit
          namespace: istio-system
        spec:
          workloadSelector:
            # select by label in the same namespace
            labels:
              istio: ingressgateway
          configPatches:
            # The Envoy config you want to modify
            - applyTo: HTTP_FILTER
              match:
                context: GATEWAY
                listener:
                  filterChain:
                    filter:
                      name: "envoy.filters.network.http_connection_manager"
                      subFilter:
                        name: "envoy.filters.http.router"
              patch:
                operation: INSERT_BEFORE
                # Adds the Envoy Rate Limit Filter in HTTP filter chain.
                value:
                  name: envoy.filters.http.ratelimit
                  typed_config:
                    "@type": type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit
                    # domain can be anything! Match it to the ratelimter service config
                    domain: ratelimit
                    failure_mode_deny: true
                    timeout: 10s
                    rate_limit_service:
                      grpc_service:
                        envoy_grpc:
                          cluster_name: outbound|8081||ratelimit.default.svc.cluster.local
                          authority: ratelimit.default.svc.cluster.local
                      transport_api_version: V3
        ---
        apiVersion: networking.istio.io/v1alpha3
        kind: EnvoyFilter
        metadata:
          name: other-shapes
          namespace: default
        spec:
          configPatches:
          - applyTo: CLUSTER
            patch: {operation: ADD, value: {name: x}}
          - applyTo: HTTP_FILTER
            match: {context: SIDECAR_INBOUND}
            patch:
              operation: REMOVE
          - applyTo: HTTP_FILTER
            match: {context: SIDECAR_INBOUND}
            patch:
              operation: INSERT_FIRST
              value:
                name: envoy.filters.http.local_ratelimit
                typed_config:
                  "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                  stat_prefix: rl
                  enable_x_ratelimit_headers: DRAFT_VERSION_03
          - applyTo: HTTP_ROUTE
            match: {context: SIDECAR_INBOUND, routeConfiguration: {vhost: {name: "inbound|http|9080"}}}
            patch:
              operation: MERGE
              value:
                route:
                  timeout: 5s
        """;

    [Fact]
    public void OtherShapes_AreLoaded_AndReportedOnceWithLineAndReason()
    {
        var logger = new RecordingLogger();
        var store = new ConfigStore("default", logger);

        store.Apply("/cfg/global.yaml", TaskGlobalRateLimit);
        store.Apply("/cfg/global.yaml", TaskGlobalRateLimit + "\n");

        Assert.Empty(store.LastErrors);
        Assert.Equal(["filter-ratelimit", "other-shapes"], store.Current.EnvoyFilters.Select(f => f.Name));
        Assert.All(store.Current.EnvoyFilters, f => Assert.Empty(f.HttpFilterPatches));
        var warnings = logger.Lines.Where(l => l.Level == LogLevel.Warning).Select(l => l.Message).ToArray();
        Assert.True(warnings.Length == 5, string.Join("\n", warnings));
        Assert.Contains(warnings, w => w.Contains("/cfg/global.yaml:13", StringComparison.Ordinal) && w.Contains("spec.configPatches[0]: match.context GATEWAY is not applied", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("/cfg/global.yaml:47", StringComparison.Ordinal) && w.Contains("applyTo CLUSTER is not applied", StringComparison.Ordinal));
        Assert.Contains(warnings, w => w.Contains("/cfg/global.yaml:49", StringComparison.Ordinal) && w.Contains("patch.operation REMOVE is not applied to HTTP_FILTER", StringComparison.Ordinal));
        Assert.True(warnings.Any(w => w.Contains("/cfg/global.yaml:53", StringComparison.Ordinal) && w.Contains("the LocalRateLimit field 'enable_x_ratelimit_headers' is not supported", StringComparison.Ordinal)), string.Join("\n", warnings));
        Assert.Contains(warnings, w => w.Contains("/cfg/global.yaml:63", StringComparison.Ordinal) && w.Contains("patch.value.route.timeout is not applied", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("productpage-local-ratelimit.yaml", "productpage", false)]
    [InlineData("productpage-local-ratelimit-route.yaml", "productpage", true)]
    [InlineData("ratings-local-ratelimit.yaml", "ratings", false)]
    public void BookinfoSamples_LoadAndApplyToTheirWorkloadOnly(string file, string app, bool perRoute)
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Mesh.Sdk.sln")))
        {
            root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("repository root not found above " + AppContext.BaseDirectory);
        }

        var yaml = File.ReadAllText(Path.Combine(root, "samples", "bookinfo-dotnet", "security", file));

        var selected = InboundHcm(yaml, new ClientScope("default", new Dictionary<string, string> { ["app"] = app }));
        var other = InboundHcm(yaml, new ClientScope("default", new Dictionary<string, string> { ["app"] = "details" }));

        Assert.Equal([HttpFilterNames.LocalRateLimit, HttpFilterNames.Router], selected.HttpFilters.Select(f => f.Name));
        var route = Assert.Single(Assert.Single(selected.RouteConfig.VirtualHosts).Routes);
        AssertTaskBucket(perRoute
            ? PerRoute(route)
            : selected.HttpFilters[0].TypedConfig.Unpack<LocalRateLimit>());
        Assert.Equal([HttpFilterNames.Router], other.HttpFilters.Select(f => f.Name));
    }

    private static string Filter(string operation, string ns = "default", string selector = "", string subFilter = "", int port = 0) => $$"""
        apiVersion: networking.istio.io/v1alpha3
        kind: EnvoyFilter
        metadata: {name: rl-{{ns}}, namespace: {{ns}}}
        spec:
          {{selector}}
          configPatches:
          - applyTo: HTTP_FILTER
            match:
              context: SIDECAR_INBOUND
              listener:
                {{(port == 0 ? "" : $"portNumber: {port}")}}
                filterChain:
                  filter:
                    name: envoy.filters.network.http_connection_manager
                    {{subFilter}}
            patch:
              operation: {{operation}}
              value:
                name: envoy.filters.http.local_ratelimit
                typed_config:
                  "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                  type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                  value:
                    stat_prefix: rl
                    token_bucket: {max_tokens: 1, fill_interval: 1s}
        """;
}

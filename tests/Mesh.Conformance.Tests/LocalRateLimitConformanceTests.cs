using Envoy.Config.Listener.V3;
using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Registry;
using Mesh.ControlPlane.Translation;
using Mesh.Sdk.RateLimiting;
using Mesh.Sdk.Routing;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Mesh.Xds;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Conformance.Tests;

/// <summary>
/// Istio's local rate limit task end to end in memory: the task's EnvoyFilter YAML → the control plane's inbound
/// listener for productpage → the SDK's local rate limiter.
/// </summary>
public class LocalRateLimitConformanceTests
{
    private const string InboundName = "xds.istio.io/grpc/lds/inbound/127.0.0.1:9080";

    private const string Header = """
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

        """;

    private const string Bucket = """
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

    private const string RoutePatch = """
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

        """;

    /// <summary>The task's first EnvoyFilter (the bucket on the listener's filter), as the task writes it.</summary>
    public static string ListenerVariant => Header + Indent(Bucket, 14);

    /// <summary>The task's second EnvoyFilter (the bucket on the inbound route), as the task writes it.</summary>
    public static string RouteVariant => Header + RoutePatch + Indent(Bucket, 16);

    private static string Indent(string text, int spaces)
        => string.Concat(text.Split('\n').Select(l => new string(' ', spaces) + l + "\n"));

    // The inbound listener's one filter chain holds the HCM. (The SDK's listener validation is not used here: it does
    // not accept the inbound route's non_forwarding_action yet.)
    private static HttpConnectionManager Hcm(Listener listener)
        => Assert.Single(Assert.Single(listener.FilterChains).Filters).TypedConfig.Unpack<HttpConnectionManager>();

    private static Listener InboundFor(string yaml, string app)
    {
        var store = new ConfigStore("default", NullLogger.Instance);
        store.Apply("/cfg/ratelimit.yaml", yaml);
        Assert.Empty(store.LastErrors);
        using var registry = new ServiceRegistry(TimeProvider.System, TimeSpan.FromSeconds(10), "cluster.local", NullLogger.Instance);
        registry.UpdateConfig(store.Current);
        var snapshot = new XdsTranslator("cluster.local", "istio-system").Translate(store.Current, registry.Current, 1);
        var resource = snapshot.Find(ResourceTypes.Listener, InboundName, new ClientScope("default", new Dictionary<string, string> { ["app"] = app }));
        Assert.NotNull(resource);
        return resource.Resource.Unpack<Listener>();
    }

    [Theory]
    [InlineData("listener")]
    [InlineData("route")]
    public void TaskYaml_FourPerMinute_FifthGets429WithHeader_RefillsAfterAMinute(string variant)
    {
        var listener = InboundFor(variant == "listener" ? ListenerVariant : RouteVariant, "productpage");
        var hcm = Hcm(listener);
        var time = new ManualTime();
        var filterEntry = hcm.HttpFilters.Single(LocalRateLimitFilter.Is);
        Assert.True(LocalRateLimitFilter.TryCompile(filterEntry, hcm.RouteConfig, time, null, null, out var filter, out var errors), string.Join("; ", errors));

        // The inbound route configuration has one virtual host with one route (index 0, 0).
        var first = Enumerable.Range(0, 5).Select(_ => filter.Check(0, 0)).ToArray();

        Assert.Equal([false, false, false, false, true], first.Select(d => d.IsLimited));
        Assert.Equal((429, "local_rate_limited"), (first[4].StatusCode, first[4].Body));
        var header = Assert.Single(first[4].ResponseHeaders.Operations);
        Assert.Equal(("x-local-rate-limit", "true"), (header.Name, header.Value));

        time.Advance(TimeSpan.FromSeconds(59.9));
        Assert.True(filter.Check(0, 0).IsLimited);
        time.Advance(TimeSpan.FromSeconds(0.1));
        Assert.Equal([false, false, false, false, true], Enumerable.Range(0, 5).Select(_ => filter.Check(0, 0).IsLimited));
    }

    private const string DescriptorPatch = """
            - applyTo: HTTP_ROUTE
              match:
                context: SIDECAR_INBOUND
                routeConfiguration:
                  vhost:
                    name: "inbound|http|9080"
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
                      "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                      stat_prefix: http_local_rate_limiter
                      token_bucket: {max_tokens: 10, tokens_per_fill: 10, fill_interval: 60s}
                      filter_enabled: {default_value: {numerator: 100, denominator: HUNDRED}}
                      filter_enforced: {default_value: {numerator: 100, denominator: HUNDRED}}
                      descriptors:
                        - entries: [{key: path, value: /productpage}]
                          token_bucket: {max_tokens: 2, tokens_per_fill: 2, fill_interval: 60s}

        """;

    [Fact]
    public void DescriptorYaml_PathDescriptorHasItsOwnBucket_OtherPathsShareTheDefault()
    {
        var hcm = Hcm(InboundFor(Header + DescriptorPatch, "productpage"));
        var time = new ManualTime();
        Assert.True(LocalRateLimitFilter.TryCompile(hcm.HttpFilters.Single(LocalRateLimitFilter.Is), hcm.RouteConfig, time, null, null, out var filter, out var errors), string.Join("; ", errors));

        bool Limited(string path)
        {
            using var message = new HttpRequestMessage(HttpMethod.Get, "http://productpage:9080" + path);
            return filter.Check(0, 0, new HttpRequestRouteRequest(message)).IsLimited;
        }

        Assert.Equal([false, false, true], new[] { "/productpage", "/productpage", "/productpage" }.Select(Limited));
        // The default bucket (10) gave 2 tokens to the /productpage requests that passed.
        Assert.Equal(8, Enumerable.Range(0, 10).Count(_ => !Limited("/api/v1/products")));
        time.Advance(TimeSpan.FromSeconds(60));
        Assert.False(Limited("/productpage"));
    }

    [Fact]
    public void TaskYaml_OtherWorkloads_HaveNoRateLimitFilter()
    {
        var listener = InboundFor(ListenerVariant, "ratings");
        var hcm = Hcm(listener);

        Assert.DoesNotContain(hcm.HttpFilters, LocalRateLimitFilter.Is);
        Assert.Equal([HttpFilterNames.Router], hcm.HttpFilters.Select(f => f.Name));
    }

    /// <summary>A clock that moves only when told.</summary>
    private sealed class ManualTime : TimeProvider
    {
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }
}

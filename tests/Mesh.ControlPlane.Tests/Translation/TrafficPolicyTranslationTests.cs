using Envoy.Config.Cluster.V3;
using Envoy.Config.Route.V3;
using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Registry;
using Mesh.ControlPlane.Translation;
using Microsoft.Extensions.Logging.Abstractions;
using UpstreamHttpProtocolOptions = Envoy.Extensions.Upstreams.Http.V3.HttpProtocolOptions;

namespace Mesh.ControlPlane.Tests.Translation;

/// <summary>DestinationRule traffic policies → Cluster fields (and route hash policies), as istiod maps them.</summary>
public class TrafficPolicyTranslationTests
{
    private const string Fqdn = "reviews.default.svc.cluster.local";

    // reviews with two ports (9080, 9090) and a v1 and a v2 workload.
    private const string TwoPortService = """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: reviews}
        spec:
          hosts: [reviews.default.svc.cluster.local]
          ports:
          - {number: 9080, name: http, protocol: HTTP}
          - {number: 9090, name: admin, protocol: HTTP}
          resolution: STATIC
          endpoints:
          - {address: 127.0.0.1, ports: {http: 19081, admin: 19091}, labels: {version: v1}}
          - {address: 127.0.0.2, ports: {http: 19082, admin: 19092}, labels: {version: v2}}
        ---
        """;

    internal static XdsSnapshot Translate(string yaml)
    {
        var store = new ConfigStore("default", NullLogger.Instance);
        store.Apply("/cfg/test.yaml", yaml);
        Assert.Empty(store.LastErrors);
        using var registry = new ServiceRegistry(TimeProvider.System, TimeSpan.FromSeconds(10), "cluster.local", NullLogger.Instance);
        registry.UpdateConfig(store.Current);
        return new XdsTranslator("cluster.local").Translate(store.Current, registry.Current, 1);
    }

    private static Cluster ClusterOf(XdsSnapshot snapshot, uint port, string subset = "") =>
        snapshot.All(ResourceTypes.Cluster)[$"outbound|{port}|{subset}|{Fqdn}"].Resource.Unpack<Cluster>();

    private static List<Route> RoutesOf(XdsSnapshot snapshot, uint port = 9080) =>
        snapshot.All(ResourceTypes.Route)[$"outbound|{port}||{Fqdn}"].Resource.Unpack<RouteConfiguration>().VirtualHosts[0].Routes.ToList();

    [Fact]
    public void PortLevelSettings_PrecedenceIsSubsetPortThenSubsetThenRulePortThenRule()
    {
        var snapshot = Translate(TwoPortService + "\n" + """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: reviews}
            spec:
              host: reviews
              trafficPolicy:
                loadBalancer: {simple: LEAST_REQUEST}
                outlierDetection: {consecutive5xxErrors: 7}
                portLevelSettings:
                - port: {number: 9080}
                  loadBalancer: {simple: RANDOM}
              subsets:
              - name: v1
                labels: {version: v1}
                trafficPolicy:
                  connectionPool: {tcp: {maxConnections: 11}}
              - name: v2
                labels: {version: v2}
                trafficPolicy:
                  connectionPool: {tcp: {maxConnections: 22}}
                  portLevelSettings:
                  - port: {number: 9080}
                    outlierDetection: {consecutiveGatewayErrors: 3}
            """);

        // Rule port-level replaces the whole rule policy on 9080: RANDOM, and no outlier detection.
        var base9080 = ClusterOf(snapshot, 9080);
        Assert.Equal((Cluster.Types.LbPolicy.Random, (Envoy.Config.Cluster.V3.OutlierDetection?)null), (base9080.LbPolicy, base9080.OutlierDetection));
        var base9090 = ClusterOf(snapshot, 9090);
        Assert.Equal((Cluster.Types.LbPolicy.LeastRequest, 7u), (base9090.LbPolicy, base9090.OutlierDetection.Consecutive5Xx ?? 0));

        // Subset v1 overrides only connectionPool on top of the rule's port-level policy.
        var v1 = ClusterOf(snapshot, 9080, "v1");
        Assert.Equal((Cluster.Types.LbPolicy.Random, 11u, (Envoy.Config.Cluster.V3.OutlierDetection?)null), (v1.LbPolicy, v1.CircuitBreakers.Thresholds[0].MaxConnections ?? 0, v1.OutlierDetection));
        var v1on9090 = ClusterOf(snapshot, 9090, "v1");
        Assert.Equal((Cluster.Types.LbPolicy.LeastRequest, 11u, 7u),
            (v1on9090.LbPolicy, v1on9090.CircuitBreakers.Thresholds[0].MaxConnections ?? 0, v1on9090.OutlierDetection.Consecutive5Xx ?? 0));

        // Subset v2's port-level entry replaces every section on 9080: default LB and limits, its own outlier detection.
        var v2 = ClusterOf(snapshot, 9080, "v2");
        Assert.Equal((Cluster.Types.LbPolicy.RoundRobin, uint.MaxValue), (v2.LbPolicy, v2.CircuitBreakers.Thresholds[0].MaxConnections ?? 0));
        Assert.Equal((3u, 100u, (uint?)null), (v2.OutlierDetection.ConsecutiveGatewayFailure ?? 0, v2.OutlierDetection.EnforcingConsecutiveGatewayFailure ?? 0, v2.OutlierDetection.Consecutive5Xx));
        var v2on9090 = ClusterOf(snapshot, 9090, "v2");
        Assert.Equal((Cluster.Types.LbPolicy.LeastRequest, 22u, 7u),
            (v2on9090.LbPolicy, v2on9090.CircuitBreakers.Thresholds[0].MaxConnections ?? 0, v2on9090.OutlierDetection.Consecutive5Xx ?? 0));
    }

    [Fact]
    public void ConnectionPool_MapsThresholdsAndUpstreamHttpProtocolOptions()
    {
        var snapshot = Translate(TwoPortService + "\n" + """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: reviews}
            spec:
              host: reviews
              trafficPolicy:
                connectionPool:
                  tcp: {maxConnections: 10, connectTimeout: 250ms, maxConnectionDuration: 30m, idleTimeout: 5m, tcpKeepalive: {time: 10s}}
                  http: {http1MaxPendingRequests: 20, http2MaxRequests: 30, maxRetries: 4, maxRequestsPerConnection: 50, idleTimeout: 90s, h2UpgradePolicy: UPGRADE}
              subsets:
              - name: v1
                labels: {version: v1}
                trafficPolicy:
                  connectionPool: {tcp: {idleTimeout: 5m}}
            """);

        var cluster = ClusterOf(snapshot, 9080);
        Assert.Equal(TimeSpan.FromMilliseconds(250), cluster.ConnectTimeout.ToTimeSpan());
        var t = Assert.Single(cluster.CircuitBreakers.Thresholds);
        Assert.Equal((10u, 20u, 30u, 4u, true), (t.MaxConnections ?? 0, t.MaxPendingRequests ?? 0, t.MaxRequests ?? 0, t.MaxRetries ?? 0, t.TrackRemaining));
        var any = Assert.Single(cluster.TypedExtensionProtocolOptions);
        Assert.Equal("envoy.extensions.upstreams.http.v3.HttpProtocolOptions", any.Key);
        Assert.Equal("type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions", any.Value.TypeUrl);
        var options = any.Value.Unpack<UpstreamHttpProtocolOptions>();
        // http.idleTimeout wins over tcp.idleTimeout.
        Assert.Equal((TimeSpan.FromSeconds(90), 50u, TimeSpan.FromMinutes(30)),
            (options.CommonHttpProtocolOptions.IdleTimeout.ToTimeSpan(), options.CommonHttpProtocolOptions.MaxRequestsPerConnection ?? 0,
             options.CommonHttpProtocolOptions.MaxConnectionDuration.ToTimeSpan()));
        Assert.Equal(UpstreamHttpProtocolOptions.UpstreamProtocolOptionsOneofCase.None, options.UpstreamProtocolOptionsCase);

        // tcp.idleTimeout alone becomes the idle timeout; unset limits are unlimited; connect timeout is istiod's 10 s.
        var v1 = ClusterOf(snapshot, 9080, "v1");
        var common = v1.TypedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].Unpack<UpstreamHttpProtocolOptions>().CommonHttpProtocolOptions;
        Assert.Equal((TimeSpan.FromMinutes(5), (uint?)null, (Google.Protobuf.WellKnownTypes.Duration?)null), (common.IdleTimeout.ToTimeSpan(), common.MaxRequestsPerConnection, common.MaxConnectionDuration));
        Assert.Equal(TimeSpan.FromSeconds(10), v1.ConnectTimeout.ToTimeSpan());
        var v1t = v1.CircuitBreakers.Thresholds[0];
        Assert.Equal([uint.MaxValue, uint.MaxValue, uint.MaxValue, uint.MaxValue], new[] { v1t.MaxConnections ?? 0, v1t.MaxPendingRequests ?? 0, v1t.MaxRequests ?? 0, v1t.MaxRetries ?? 0 });
    }

    [Fact]
    public void Cluster_WithoutPolicy_HasUnlimitedThresholdsAndNoProtocolOptions()
    {
        var cluster = ClusterOf(Translate(TwoPortService.TrimEnd('-', '\n', ' ')), 9080);

        var t = Assert.Single(cluster.CircuitBreakers.Thresholds);
        Assert.Equal((uint.MaxValue, uint.MaxValue, uint.MaxValue, uint.MaxValue, true),
            (t.MaxConnections ?? 0, t.MaxPendingRequests ?? 0, t.MaxRequests ?? 0, t.MaxRetries ?? 0, t.TrackRemaining));
        Assert.Empty(cluster.TypedExtensionProtocolOptions);
        Assert.Null(cluster.OutlierDetection);
        Assert.Null(cluster.CommonLbConfig);
        Assert.Equal(Cluster.Types.LbPolicy.RoundRobin, cluster.LbPolicy);
    }

    [Fact]
    public void OutlierDetection_MapsEnforcingPercentagesLocalOriginAndPanicThreshold()
    {
        var snapshot = Translate(TwoPortService + "\n" + """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: reviews}
            spec:
              host: reviews
              trafficPolicy:
                outlierDetection:
                  consecutive5xxErrors: 0
                  consecutiveGatewayErrors: 4
                  consecutiveLocalOriginFailures: 6
                  splitExternalLocalOriginErrors: true
                  interval: 2s
                  baseEjectionTime: 45s
                  maxEjectionPercent: 40
                  minHealthPercent: 25
              subsets:
              - name: v1
                labels: {version: v1}
                trafficPolicy:
                  outlierDetection: {consecutiveErrors: 9, consecutiveLocalOriginFailures: 2}
            """);

        var od = ClusterOf(snapshot, 9080).OutlierDetection;
        Assert.Equal((0u, 0u), (od.Consecutive5Xx ?? 99, od.EnforcingConsecutive5Xx ?? 99));
        Assert.Equal((4u, 100u), (od.ConsecutiveGatewayFailure ?? 0, od.EnforcingConsecutiveGatewayFailure ?? 0));
        Assert.Equal((true, 6u, 100u, 0u), (od.SplitExternalLocalOriginErrors, od.ConsecutiveLocalOriginFailure ?? 0, od.EnforcingConsecutiveLocalOriginFailure ?? 0, od.EnforcingLocalOriginSuccessRate ?? 99));
        Assert.Equal((0u, 40u), (od.EnforcingSuccessRate ?? 99, od.MaxEjectionPercent ?? 0));
        Assert.Equal((TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(45)), (od.Interval.ToTimeSpan(), od.BaseEjectionTime.ToTimeSpan()));
        Assert.Equal(25d, ClusterOf(snapshot, 9080).CommonLbConfig.HealthyPanicThreshold.Value);

        // The deprecated consecutiveErrors counts gateway errors only; local-origin failures need the split flag.
        var v1 = ClusterOf(snapshot, 9080, "v1");
        Assert.Equal((9u, 100u, 0u), (v1.OutlierDetection.ConsecutiveGatewayFailure ?? 0, v1.OutlierDetection.EnforcingConsecutiveGatewayFailure ?? 0, v1.OutlierDetection.EnforcingConsecutive5Xx ?? 99));
        Assert.Equal(((uint?)null, false), (v1.OutlierDetection.ConsecutiveLocalOriginFailure, v1.OutlierDetection.SplitExternalLocalOriginErrors));
        Assert.Equal(0d, v1.CommonLbConfig.HealthyPanicThreshold.Value);
    }

    [Fact]
    public void ConsistentHash_EachKeyBecomesTheRouteHashPolicy_AndRingSizeFollowsIstiod()
    {
        var snapshot = Translate(TwoPortService + "\n" + """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: reviews}
            spec:
              host: reviews
              trafficPolicy:
                loadBalancer:
                  consistentHash: {httpCookie: {name: session, path: /app, ttl: 30s}}
                portLevelSettings:
                - port: {number: 9090}
                  loadBalancer:
                    consistentHash: {useSourceIp: true, ringHash: {minimumRingSize: 2048}}
              subsets:
              - name: v1
                labels: {version: v1}
                trafficPolicy:
                  loadBalancer:
                    consistentHash: {httpQueryParameterName: user, ringHash: {}}
              - name: v2
                labels: {version: v2}
                trafficPolicy:
                  loadBalancer: {localityLbSetting: {enabled: true}, warmupDurationSecs: 10s, simple: ROUND_ROBIN}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: reviews}
            spec:
              hosts: [reviews]
              http:
              - match: [{uri: {prefix: /v1}, port: 9080}]
                route: [{destination: {host: reviews, subset: v1, port: {number: 9080}}}]
              - match: [{port: 9080}]
                route:
                - {destination: {host: reviews, port: {number: 9080}}, weight: 50}
                - {destination: {host: reviews, subset: v2, port: {number: 9080}}, weight: 50}
            """);

        Assert.Equal((Cluster.Types.LbPolicy.RingHash, 1024ul), (ClusterOf(snapshot, 9080).LbPolicy, ClusterOf(snapshot, 9080).RingHashLbConfig.MinimumRingSize ?? 0));
        Assert.Equal((Cluster.Types.LbPolicy.RingHash, 2048ul), (ClusterOf(snapshot, 9090).LbPolicy, ClusterOf(snapshot, 9090).RingHashLbConfig.MinimumRingSize ?? 0));
        // An explicit ringHash without a size leaves the ring size to the client's default.
        Assert.Equal((Cluster.Types.LbPolicy.RingHash, Cluster.LbConfigOneofCase.None), (ClusterOf(snapshot, 9080, "v1").LbPolicy, ClusterOf(snapshot, 9080, "v1").LbConfigCase));
        Assert.Equal(Cluster.Types.LbPolicy.RoundRobin, ClusterOf(snapshot, 9080, "v2").LbPolicy);

        var routes = RoutesOf(snapshot);
        var query = Assert.Single(routes[0].Route_.HashPolicy);
        Assert.Equal("user", query.QueryParameter.Name);
        // No previous-hosts predicate when the single destination hashes.
        Assert.Empty(routes[0].Route_.RetryPolicy.RetryHostPredicate);

        // Weighted: one hash policy per destination (v2 inherits the rule's cookie).
        Assert.Equal(2, routes[1].Route_.HashPolicy.Count);
        Assert.All(routes[1].Route_.HashPolicy, h => Assert.Equal(("session", "/app", TimeSpan.FromSeconds(30)), (h.Cookie.Name, h.Cookie.Path, h.Cookie.Ttl.ToTimeSpan())));

        // 9090 has no VirtualService route, so it gets the default route, which hashes by the port-level key.
        var fallback = Assert.Single(RoutesOf(snapshot, 9090));
        Assert.Equal("default", fallback.Name);
        Assert.True(Assert.Single(fallback.Route_.HashPolicy).ConnectionProperties.SourceIp);
        Assert.Equal(2, routes.Count);
    }
}

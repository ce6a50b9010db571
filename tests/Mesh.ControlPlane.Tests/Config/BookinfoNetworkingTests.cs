using Envoy.Config.Cluster.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Http.Fault.V3;
using Envoy.Type.V3;
using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Registry;
using Mesh.ControlPlane.Translation;
using Mesh.Xds;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Mesh.ControlPlane.Tests.Config;

/// <summary>
/// The shapes of Istio's bookinfo networking files (samples/bookinfo/networking): a Gateway with a VirtualService bound to it,
/// destination rules with subsets and ISTIO_MUTUAL, header routes, weights, delay and abort faults, an egress ServiceEntry.
/// The YAML here is written for these tests in the same shapes, not copied.
/// </summary>
public class BookinfoNetworkingTests
{
    private const string Domain = "cluster.local";

    private static string Fqdn(string service) => $"{service}.default.svc.{Domain}";

    private static string ClusterName(string service, string subset = "") => $"outbound|9080|{subset}|{Fqdn(service)}";

    private static string Services(params (string App, string[] Versions)[] services) => string.Join("\n---\n", services.SelectMany(s =>
        new[]
        {
            $"""
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {"{"}name: {s.App}{"}"}
            spec:
              hosts: [{s.App}.default.svc.cluster.local]
              ports: [{"{"}number: 9080, name: http, protocol: HTTP{"}"}]
              resolution: STATIC
              workloadSelector: {"{"}labels: {"{"}app: {s.App}{"}"}{"}"}
            """,
        }.Concat(s.Versions.Select((v, i) => $"""
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {"{"}name: {s.App}-{v}{"}"}
            spec:
              address: 127.0.0.{i + 1}
              ports: {"{"}http: 9080{"}"}
              labels: {"{"}app: {s.App}, version: {v}{"}"}
            """))));

    private static string BookinfoServices => Services(("productpage", ["v1"]), ("reviews", ["v1", "v2", "v3"]), ("ratings", ["v1"]), ("details", ["v1", "v2"]));

    /// <summary>A Gateway and a VirtualService for every host bound only to it, in one file (bookinfo-gateway.yaml's shape).</summary>
    private const string GatewayFile = """
        apiVersion: networking.istio.io/v1alpha3
        kind: Gateway
        metadata:
          name: shop-gateway
        spec:
          selector:
            istio: ingressgateway
          servers:
          - port:
              number: 80
              name: http
              protocol: HTTP
            hosts:
            - "*"
        ---
        apiVersion: networking.istio.io/v1alpha3
        kind: VirtualService
        metadata:
          name: shop
        spec:
          hosts:
          - "*"
          gateways:
          - shop-gateway
          http:
          - match:
            - uri:
                exact: /productpage
            - uri:
                prefix: /static
            - uri:
                prefix: /api/v1/products
            route:
            - destination:
                host: productpage
                port:
                  number: 9080
        """;

    private static XdsSnapshot Translate(MeshConfig config)
    {
        using var registry = new ServiceRegistry(TimeProvider.System, TimeSpan.FromSeconds(10), Domain, NullLogger.Instance);
        registry.UpdateConfig(config);
        return new XdsTranslator(Domain).Translate(config, registry.Current, 1);
    }

    private static List<Route> RoutesOf(XdsSnapshot snapshot, string service) =>
        snapshot.Find(ResourceTypes.Route, $"outbound|9080||{Fqdn(service)}", ClientScope.InNamespace("default"))!
            .Resource.Unpack<RouteConfiguration>().VirtualHosts[0].Routes.ToList();

    private static string Target(Route route) => route.Route_.Cluster;

    [Fact]
    public void VirtualServiceBoundOnlyToGateways_DoesNotChangeMeshRouting()
    {
        var store = new ConfigStore("default", NullLogger.Instance);
        store.Apply("/cfg/services.yaml", BookinfoServices);
        store.Apply("/cfg/reviews.yaml", """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: reviews}
            spec:
              hosts: [reviews]
              http:
              - route: [{destination: {host: reviews, subset: v1}}]
            """);
        var before = Translate(store.Current);

        // The wildcard VirtualService of the gateway file, and one naming reviews itself, both bound only to the gateway.
        store.Apply("/cfg/gateway.yaml", GatewayFile + "\n---\n" + """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: reviews-at-the-edge}
            spec:
              hosts: [reviews]
              gateways: [shop-gateway, istio-system/other-gateway]
              http:
              - route: [{destination: {host: reviews, subset: v3}}]
            """);
        Assert.Empty(store.LastErrors);
        Assert.Equal(3, store.Current.VirtualServices.Count);
        var after = Translate(store.Current);

        var reviews = RoutesOf(after, "reviews");
        Assert.Equal([ClusterName("reviews", "v1")], reviews.Select(Target));
        Assert.Equal(RoutesOf(before, "reviews"), reviews);

        // productpage has no mesh VirtualService, so it keeps the default route: the gateway's uri matches are not in it.
        var productpage = Assert.Single(RoutesOf(after, "productpage"));
        Assert.Equal(("default", "/", ClusterName("productpage")), (productpage.Name, productpage.Match.Prefix, Target(productpage)));
    }

    [Fact]
    public void VirtualServiceListingMesh_Applies_AndMatchGatewaysSelectRoutes()
    {
        var store = new ConfigStore("default", NullLogger.Instance);
        store.Apply("/cfg/services.yaml", BookinfoServices);
        store.Apply("/cfg/reviews.yaml", """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: reviews}
            spec:
              hosts: [reviews]
              gateways: [mesh, shop-gateway]
              http:
              - name: edge-only
                match: [{uri: {prefix: /edge}, gateways: [shop-gateway]}]
                route: [{destination: {host: reviews, subset: v3}}]
              - name: mixed
                match:
                - {uri: {prefix: /a}, gateways: [shop-gateway]}
                - {uri: {prefix: /b}, gateways: [shop-gateway, mesh]}
                - {uri: {prefix: /c}}
                route: [{destination: {host: reviews, subset: v2}}]
              - name: rest
                route: [{destination: {host: reviews, subset: v1}}]
            """);
        Assert.Empty(store.LastErrors);

        var routes = RoutesOf(Translate(store.Current), "reviews");

        // edge-only has no match for the mesh; /a is for the gateway only; /b lists mesh; /c inherits the VirtualService's gateways.
        Assert.Equal(["mixed", "mixed", "rest"], routes.Select(r => r.Name));
        Assert.Equal(["/b", "/c", "/"], routes.Select(r => r.Match.Prefix));
        Assert.Equal([ClusterName("reviews", "v2"), ClusterName("reviews", "v2"), ClusterName("reviews", "v1")], routes.Select(Target));
    }

    [Theory]
    [InlineData("")]
    [InlineData("\n  gateways: [mesh, shop-gateway]")]
    public void WildcardHostBoundToTheMesh_IsRejectedWithItsLine(string gateways)
    {
        var store = new ConfigStore("default", NullLogger.Instance);
        Assert.False(store.Apply("/cfg/all.yaml", $"""
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {"{"}name: everything{"}"}
            spec:
              hosts: ["*"]{gateways}
              http:
              - route: [{"{"}destination: {"{"}host: reviews{"}"}{"}"}]
            """));

        var error = Assert.Single(store.LastErrors);
        Assert.Equal((5, "/cfg/all.yaml"), (error.Line, error.File));
        Assert.Contains("wildcard host '*' is not allowed for a VirtualService bound to the mesh", error.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void UnsupportedKinds_AreReportedOnceByFileKindAndName_AndTheRestOfTheFileApplies()
    {
        var logger = new RecordingLogger();
        var store = new ConfigStore("default", logger);
        var content = GatewayFile + "\n---\n" + """
            apiVersion: security.istio.io/v1
            kind: RequestAuthentication
            metadata: {name: default, namespace: istio-system}
            spec:
              jwtRules: [{issuer: x}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: deny-ratings}
            spec:
              action: AUDIT
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: reviews}
            spec:
              hosts: [reviews]
              http:
              - route: [{destination: {host: reviews, subset: v2}}]
            """;

        Assert.True(store.Apply("/cfg/bookinfo-gateway.yaml", content, DateTimeOffset.UnixEpoch));

        Assert.Empty(store.LastErrors);
        Assert.Equal(["shop", "reviews"], store.Current.VirtualServices.Select(v => v.Name));
        var reports = logger.Lines.Where(l => l.Message.Contains("not applied by the embedded control plane", StringComparison.Ordinal)).ToList();
        Assert.Equal(
            [
                (LogLevel.Information, "/cfg/bookinfo-gateway.yaml:1:1: info: Gateway 'default/shop-gateway' (networking.istio.io/v1alpha3)"),
                (LogLevel.Information, "/cfg/bookinfo-gateway.yaml:16:1: info: VirtualService 'default/shop' (networking.istio.io/v1alpha3)"),
                (LogLevel.Warning, "/cfg/bookinfo-gateway.yaml:39:1: warning: RequestAuthentication 'istio-system/default' (security.istio.io/v1)"),
                (LogLevel.Warning, "/cfg/bookinfo-gateway.yaml:45:1: warning: AuthorizationPolicy 'default/deny-ratings' (security.istio.io/v1)"),
            ],
            reports.Select(r => (r.Level, r.Message[..r.Message.IndexOf(" accepted", StringComparison.Ordinal)])));
        Assert.Contains("bound to gateways [shop-gateway] only", reports[1].Message, StringComparison.Ordinal);
        Assert.Contains("action AUDIT is not supported by proxyless gRPC servers", reports[3].Message, StringComparison.Ordinal);

        // Applied again (touched), and edited so that every document moves down a line: nothing is reported again.
        Assert.True(store.Apply("/cfg/bookinfo-gateway.yaml", content, DateTimeOffset.UnixEpoch.AddSeconds(1)));
        Assert.True(store.Apply("/cfg/bookinfo-gateway.yaml", "# ingress\n" + content, DateTimeOffset.UnixEpoch.AddSeconds(2)));
        Assert.Equal(4, logger.Lines.Count(l => l.Message.Contains("not applied by the embedded control plane", StringComparison.Ordinal)));
        Assert.Equal(2, store.Current.VirtualServices.Count);

        // The same file without the Gateway, then with it again: reported again, at its new place.
        var withoutGateway = content[(content.IndexOf("---", StringComparison.Ordinal) + 4)..];
        store.Apply("/cfg/bookinfo-gateway.yaml", withoutGateway, DateTimeOffset.UnixEpoch.AddSeconds(3));
        store.Apply("/cfg/bookinfo-gateway.yaml", content, DateTimeOffset.UnixEpoch.AddSeconds(4));
        var gatewayReports = logger.Lines.Where(l => l.Message.Contains("Gateway 'default/shop-gateway'", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, gatewayReports.Count);
        Assert.StartsWith("/cfg/bookinfo-gateway.yaml:1:1: info: Gateway", gatewayReports[1].Message, StringComparison.Ordinal);
        Assert.Equal(5, logger.Lines.Count(l => l.Message.Contains("not applied by the embedded control plane", StringComparison.Ordinal)));
    }

    [Fact]
    public void BookinfoNetworkingShapes_LoadedAsAFolder_Translate()
    {
        using var dir = new TempDir();
        dir.Write("services.yaml", BookinfoServices);
        dir.Write("gateway.yaml", GatewayFile);

        // destination-rule-all-mtls.yaml's shape: subsets and ISTIO_MUTUAL; destination-rule-reviews.yaml's: RANDOM.
        dir.Write("destination-rules.yaml", """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata:
              name: productpage
            spec:
              host: productpage
              trafficPolicy:
                tls:
                  mode: ISTIO_MUTUAL
              subsets:
              - name: v1
                labels:
                  version: v1
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata:
              name: reviews
            spec:
              host: reviews
              trafficPolicy:
                loadBalancer:
                  simple: RANDOM
              subsets:
              - name: v1
                labels:
                  version: v1
              - name: v2
                labels:
                  version: v2
              - name: v3
                labels:
                  version: v3
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata:
              name: ratings
            spec:
              host: ratings
              trafficPolicy:
                tls:
                  mode: ISTIO_MUTUAL
              subsets:
              - name: v1
                labels:
                  version: v1
              - name: v2-mysql
                labels:
                  version: v2-mysql
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata:
              name: details
            spec:
              host: details
              subsets:
              - name: v1
                labels:
                  version: v1
              - name: v2
                labels:
                  version: v2
            """);

        // virtual-service-all-v1, reviews-test-v2 / jason-v2-v3 / 80-20, ratings-test-delay / -abort and fault-injection-details-v1 shapes.
        dir.Write("virtual-services.yaml", """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: productpage
            spec:
              hosts:
              - productpage
              http:
              - route:
                - destination:
                    host: productpage
                    subset: v1
            ---
            apiVersion: networking.istio.io/v1alpha3
            kind: VirtualService
            metadata:
              name: reviews
            spec:
              hosts:
                - reviews
              http:
              - match:
                - headers:
                    end-user:
                      exact: jason
                route:
                - destination:
                    host: reviews
                    subset: v2
              - route:
                - destination:
                    host: reviews
                    subset: v1
                  weight: 80
                - destination:
                    host: reviews
                    subset: v3
                  weight: 20
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: ratings
            spec:
              hosts:
              - ratings
              http:
              - match:
                - headers:
                    end-user:
                      exact: jason
                fault:
                  delay:
                    percentage:
                      value: 100.0
                    fixedDelay: 7s
                route:
                - destination:
                    host: ratings
                    subset: v1
              - match:
                - headers:
                    end-user:
                      exact: mike
                fault:
                  abort:
                    percentage:
                      value: 50.5
                    httpStatus: 500
                route:
                - destination:
                    host: ratings
                    subset: v1
              - route:
                - destination:
                    host: ratings
                    subset: v1
            ---
            apiVersion: networking.istio.io/v1alpha3
            kind: VirtualService
            metadata:
              name: details
            spec:
              hosts:
              - details
              http:
              - fault:
                  delay:
                    percent: 25
                    fixedDelay: 1.5s
                  abort:
                    httpStatus: 555
                    percentage:
                      value: 100.0
                route:
                - destination:
                    host: details
                    subset: v1
            """);

        // egress-rule-google-apis.yaml's shape: DNS resolution and a lower-case protocol.
        dir.Write("egress.yaml", """
            apiVersion: networking.istio.io/v1alpha3
            kind: ServiceEntry
            metadata:
              name: search-api
            spec:
              hosts:
                - api.search.example.com
              ports:
                - number: 443
                  name: https
                  protocol: http
              location: MESH_EXTERNAL
              resolution: DNS
            """);

        var logger = new RecordingLogger();
        var store = new ConfigStore("default", logger);
        using (var watcher = new ConfigDirectoryWatcher(dir.Path, store, new FakeTimeProvider(), TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(5), logger))
        {
            watcher.Start();
        }

        Assert.Empty(store.LastErrors);
        Assert.Equal((5, 7), (store.Current.ServiceEntries.Count, store.Current.WorkloadEntries.Count));
        Assert.Equal(4, store.Current.DestinationRules.Count);
        Assert.Equal(5, store.Current.VirtualServices.Count);
        var snapshot = Translate(store.Current);

        // productpage: all v1; the gateway's VirtualService adds nothing.
        Assert.Equal([ClusterName("productpage", "v1")], RoutesOf(snapshot, "productpage").Select(Target));

        // reviews: jason → v2 by an exact end-user header match; everyone else 80/20 over v1/v3.
        var reviews = RoutesOf(snapshot, "reviews");
        Assert.Equal(2, reviews.Count);
        var jason = Assert.Single(reviews[0].Match.Headers);
        Assert.Equal(("end-user", "jason", "/"), (jason.Name, jason.ExactMatch, reviews[0].Match.Prefix));
        Assert.Equal(ClusterName("reviews", "v2"), Target(reviews[0]));
        Assert.Equal([(ClusterName("reviews", "v1"), 80u), (ClusterName("reviews", "v3"), 20u)],
            reviews[1].Route_.WeightedClusters.Clusters.Select(c => (c.Name, c.Weight ?? 0)));
        Assert.Empty(reviews[1].Match.Headers);

        // ratings: 7 s delay for jason on every request, HTTP 500 for half of mike's, the rest plain.
        var ratings = RoutesOf(snapshot, "ratings");
        Assert.Equal(3, ratings.Count);
        var delay = ratings[0].TypedPerFilterConfig[HttpFilterNames.Fault].Unpack<HTTPFault>();
        Assert.Equal((TimeSpan.FromSeconds(7), 1_000_000u, FractionalPercent.Types.DenominatorType.Million, false),
            (delay.Delay.FixedDelay.ToTimeSpan(), delay.Delay.Percentage.Numerator, delay.Delay.Percentage.Denominator, delay.Abort is not null));
        Assert.Equal("jason", ratings[0].Match.Headers.Single(h => h.Name == "end-user").ExactMatch);
        var abort = ratings[1].TypedPerFilterConfig[HttpFilterNames.Fault].Unpack<HTTPFault>();
        Assert.Equal((500u, 505_000u, false), (abort.Abort.HttpStatus, abort.Abort.Percentage.Numerator, abort.Delay is not null));
        Assert.Equal("mike", ratings[1].Match.Headers.Single(h => h.Name == "end-user").ExactMatch);
        Assert.False(ratings[2].TypedPerFilterConfig.ContainsKey(HttpFilterNames.Fault));
        Assert.All(ratings, r => Assert.Equal(ClusterName("ratings", "v1"), Target(r)));

        // details: the deprecated integer delay percent and an abort with a non-standard status, on a route without match.
        var details = Assert.Single(RoutesOf(snapshot, "details"));
        var detailsFault = details.TypedPerFilterConfig[HttpFilterNames.Fault].Unpack<HTTPFault>();
        // The integer percent is written per hundred (25/100), as istiod does.
        Assert.Equal((TimeSpan.FromSeconds(1.5), 25u, FractionalPercent.Types.DenominatorType.Hundred, 555u, 1_000_000u),
            (detailsFault.Delay.FixedDelay.ToTimeSpan(), detailsFault.Delay.Percentage.Numerator, detailsFault.Delay.Percentage.Denominator,
                detailsFault.Abort.HttpStatus, detailsFault.Abort.Percentage.Numerator));

        // Subsets become clusters; RANDOM is applied; ISTIO_MUTUAL gives a TLS transport socket (istiod's grpcgen), others have none.
        // (Until the outbound TLS change this asserted no transport socket anywhere, which is not what istiod sends.)
        var clusters = snapshot.All(ResourceTypes.Cluster);
        foreach (var name in new[] { ClusterName("ratings"), ClusterName("ratings", "v1"), ClusterName("ratings", "v2-mysql"), ClusterName("productpage", "v1") })
        {
            var socket = clusters[name].Resource.Unpack<Cluster>().TransportSocket;
            Assert.Equal(("envoy.transport_sockets.tls", "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"), (socket.Name, socket.TypedConfig.TypeUrl));
        }

        Assert.Null(clusters[ClusterName("details", "v2")].Resource.Unpack<Cluster>().TransportSocket);
        Assert.Null(clusters[ClusterName("reviews", "v1")].Resource.Unpack<Cluster>().TransportSocket);

        Assert.All(new[] { "", "v1", "v2", "v3" }, s => Assert.Equal(Cluster.Types.LbPolicy.Random, clusters[ClusterName("reviews", s)].Resource.Unpack<Cluster>().LbPolicy));
        Assert.Empty(snapshot.All(ResourceTypes.Endpoint)[ClusterName("ratings", "v2-mysql")].Resource.Unpack<ClusterLoadAssignment>().Endpoints);
        Assert.Equal(2, snapshot.All(ResourceTypes.Endpoint)[ClusterName("details")].Resource.Unpack<ClusterLoadAssignment>().Endpoints.Sum(l => l.LbEndpoints.Count));

        // The egress entry is a service with no endpoints (hosts are not resolved).
        const string egress = "outbound|443||api.search.example.com";
        Assert.True(clusters.ContainsKey(egress));
        Assert.Empty(snapshot.All(ResourceTypes.Endpoint)[egress].Resource.Unpack<ClusterLoadAssignment>().Endpoints);

        // What is accepted without effect is said once, naming file, line and what is ignored.
        var info = logger.Lines.Where(l => l.Level == LogLevel.Information).Select(l => l.Message).ToList();
        Assert.Single(info, m => m.StartsWith(Path.Combine(dir.Path, "gateway.yaml") + ":1:1: info: Gateway 'default/shop-gateway'", StringComparison.Ordinal));
        Assert.Single(info, m => m.Contains("VirtualService 'default/shop'", StringComparison.Ordinal) && m.Contains("bound to gateways [shop-gateway] only", StringComparison.Ordinal));
        Assert.DoesNotContain(info, m => m.Contains("tls.mode", StringComparison.Ordinal));
        Assert.Single(info, m => m.StartsWith($"{Path.Combine(dir.Path, "egress.yaml")}:13:15: info: ServiceEntry 'default/search-api': 'spec.resolution: DNS' without endpoints", StringComparison.Ordinal));
        Assert.DoesNotContain(logger.Lines, l => l.Level >= LogLevel.Warning);
    }

    /// <summary>Records every log line with its level.</summary>
    private sealed class RecordingLogger : ILogger
    {
        private readonly List<(LogLevel Level, string Message)> _lines = [];

        public IReadOnlyList<(LogLevel Level, string Message)> Lines
        {
            get
            {
                lock (_lines)
                {
                    return [.. _lines];
                }
            }
        }

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (_lines)
            {
                _lines.Add((logLevel, formatter(state, exception)));
            }
        }
    }
}

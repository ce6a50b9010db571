using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Type.Matcher.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.Tests.Xds.Fakes;
using Mesh.Sdk.Xds.Internal;
using Mesh.Xds;
using static Mesh.Sdk.Tests.Xds.Fakes.TestResources;

namespace Mesh.Sdk.Tests.Xds;

public sealed class XdsResourceValidatorTests
{
    private static string Reject(Action validate) => Assert.Throws<XdsValidationException>(validate).Message;

    private static HttpFilter Filter(string name, string typeUrl, bool optional = false) =>
        new() { Name = name, TypedConfig = new Any { TypeUrl = typeUrl }, IsOptional = optional };

    [Fact]
    public void Listener_WithRdsAndRouter_IsAccepted()
    {
        var result = XdsResourceValidator.ValidateListener(Listener(ListenerName, RouteName, Filter("fault", XdsTypeUrls.Fault), Router()));
        Assert.Equal(RouteName, result.RouteConfigName);
        Assert.Null(result.InlineRouteConfiguration);
        Assert.Equal(2, result.HttpConnectionManager.HttpFilters.Count);
    }

    [Fact]
    public void Listener_WithInlineRouteConfig_IsAccepted()
    {
        var hcm = new HttpConnectionManager { RouteConfig = Routes("inline", ClusterV1), HttpFilters = { Router() } };
        var result = XdsResourceValidator.ValidateListener(ListenerWith(ListenerName, hcm));
        Assert.Null(result.RouteConfigName);
        Assert.Equal("inline", result.InlineRouteConfiguration!.Name);
    }

    [Fact]
    public void Listener_Rejections_NameTheReason()
    {
        Assert.Contains("has neither api_listener nor address", Reject(() => XdsResourceValidator.ValidateListener(new Listener { Name = "x" })));
        Assert.Contains("api_listener has type", Reject(() => XdsResourceValidator.ValidateListener(new Listener { Name = "x", ApiListener = new ApiListener { ApiListener_ = Any.Pack(new Cluster()) } })));
        Assert.Contains("cannot be decoded", Reject(() => XdsResourceValidator.ValidateListener(new Listener
        {
            Name = "x",
            ApiListener = new ApiListener { ApiListener_ = new Any { TypeUrl = XdsTypeUrls.HttpConnectionManager, Value = Google.Protobuf.ByteString.CopyFrom(0xff, 0xff) } },
        })));
        Assert.Contains("has no http_filters", Reject(() => XdsResourceValidator.ValidateListener(ListenerWith("x", new HttpConnectionManager { Rds = new Rds { RouteConfigName = "r", ConfigSource = new ConfigSource { Ads = new() } } }))));
        Assert.Contains("http_filters[0] 'fault' is the last filter but not the router", Reject(() => XdsResourceValidator.ValidateListener(Listener("x", "r", Filter("fault", XdsTypeUrls.Fault)))));
        Assert.Contains("http_filters[0] 'envoy.filters.http.router' is the router but not the last filter", Reject(() => XdsResourceValidator.ValidateListener(Listener("x", "r", Router(), Filter("r2", XdsTypeUrls.Router)))));
        Assert.Contains("unsupported config type 'type.googleapis.com/acme.Filter' and is not optional", Reject(() => XdsResourceValidator.ValidateListener(Listener("x", "r", Filter("acme", "type.googleapis.com/acme.Filter"), Router()))));
        Assert.Contains("duplicate filter name", Reject(() => XdsResourceValidator.ValidateListener(Listener("x", "r", Filter("f", XdsTypeUrls.Fault), Filter("f", XdsTypeUrls.Fault), Router()))));
        Assert.Contains("rds.config_source must be ads or self", Reject(() => XdsResourceValidator.ValidateListener(ListenerWith("x", new HttpConnectionManager { Rds = new Rds { RouteConfigName = "r" }, HttpFilters = { Router() } }))));
        Assert.Contains("neither rds nor route_config", Reject(() => XdsResourceValidator.ValidateListener(ListenerWith("x", new HttpConnectionManager { HttpFilters = { Router() } }))));
    }

    [Fact]
    public void Listener_UnknownOptionalFilter_IsAccepted()
    {
        var result = XdsResourceValidator.ValidateListener(Listener("x", "r", Filter("acme", "type.googleapis.com/acme.Filter", optional: true), Router()));
        Assert.Equal("r", result.RouteConfigName);
    }

    [Fact]
    public void RouteConfiguration_Rejections_NameTheRoute()
    {
        var noDomains = Routes("r", ClusterV1);
        noDomains.VirtualHosts[0].Domains.Clear();
        Assert.Contains("virtual_hosts[0] 'reviews' has no domains", Reject(() => XdsResourceValidator.ValidateRouteConfiguration(noDomains)));

        var badDomain = Routes("r", ClusterV1);
        badDomain.VirtualHosts[0].Domains.Add("a*b");
        Assert.Contains("domain 'a*b' is invalid", Reject(() => XdsResourceValidator.ValidateRouteConfiguration(badDomain)));

        var noMatch = Routes("r", ClusterV1);
        noMatch.VirtualHosts[0].Routes[0].Match = null;
        Assert.Contains("routes[0] has no match", Reject(() => XdsResourceValidator.ValidateRouteConfiguration(noMatch)));

        var noAction = Routes("r", ClusterV1);
        noAction.VirtualHosts[0].Routes[0].ClearAction();
        Assert.Contains("routes[0] has no action", Reject(() => XdsResourceValidator.ValidateRouteConfiguration(noAction)));

        var badRegex = Routes("r", ClusterV1);
        badRegex.VirtualHosts[0].Routes[0].Match = new RouteMatch { SafeRegex = new RegexMatcher { Regex = "/api/(v1" } };
        Assert.Contains("match.safe_regex regex '/api/(v1' does not compile", Reject(() => XdsResourceValidator.ValidateRouteConfiguration(badRegex)));

        var badHeaderRegex = Routes("r", ClusterV1);
        badHeaderRegex.VirtualHosts[0].Routes[0].Match.Headers.Add(new HeaderMatcher { Name = "end-user", StringMatch = new StringMatcher { SafeRegex = new RegexMatcher { Regex = "[" } } });
        Assert.Contains("match.headers[0] 'end-user' safe_regex regex '[' does not compile", Reject(() => XdsResourceValidator.ValidateRouteConfiguration(badHeaderRegex)));

        var zeroWeights = Routes("r", ClusterV1, ClusterV2);
        foreach (var c in zeroWeights.VirtualHosts[0].Routes[0].Route_.WeightedClusters.Clusters)
        {
            c.Weight = 0;
        }

        Assert.Contains("weighted_clusters total weight is 0", Reject(() => XdsResourceValidator.ValidateRouteConfiguration(zeroWeights)));

        var noCluster = Routes("r", ClusterV1);
        noCluster.VirtualHosts[0].Routes[0].Route_.ClearClusterSpecifier();
        Assert.Contains("route action names no cluster", Reject(() => XdsResourceValidator.ValidateRouteConfiguration(noCluster)));
    }

    [Fact]
    public void RouteConfiguration_ThatTheRouteCompilerRefuses_IsRejected()
    {
        // Valid RE2 syntax, but too large for the data plane's linear-time matcher: only the route compiler sees it.
        var large = Routes("r", ClusterV1);
        large.VirtualHosts[0].Routes[0].Match = new RouteMatch { SafeRegex = new RegexMatcher { Regex = "/api/.{1000}" } };

        var message = Reject(() => XdsResourceValidator.ValidateRouteConfiguration(large));

        Assert.Contains("route configuration 'r' virtual_hosts[0] 'reviews' routes[0]", message);
        Assert.Contains("cannot be compiled for linear-time matching", message);

        // Compiles as a .NET regex, but RE2 (and so the data plane) has no lookahead: refused by the RE2 syntax check.
        var lookahead = Routes("r", ClusterV1);
        lookahead.VirtualHosts[0].Routes[0].Match = new RouteMatch { SafeRegex = new RegexMatcher { Regex = "/api/(?=v1).*" } };
        Assert.Contains("match.safe_regex regex '/api/(?=v1).*' does not compile: it uses lookahead '(?=' at offset 5", Reject(() => XdsResourceValidator.ValidateRouteConfiguration(lookahead)));
    }

    [Fact]
    public void RouteConfiguration_WithRegexAndWeights_IsAccepted()
    {
        var routes = Routes("r", ClusterV1, ClusterV2);
        routes.VirtualHosts[0].Routes[0].Match = new RouteMatch { SafeRegex = new RegexMatcher { Regex = "^/reviews/[0-9]+$" } };
        Assert.Same(routes, XdsResourceValidator.ValidateRouteConfiguration(routes));
    }

    [Fact]
    public void RouteConfiguration_WithRe2OnlySyntax_IsAccepted()
    {
        // Valid RE2 that .NET's own regex parser refuses: named groups (?P<..>), scripts, \x{...}, \Q..\E, (?U).
        var routes = Routes("r", ClusterV1);
        routes.VirtualHosts[0].Routes[0].Match = new RouteMatch { SafeRegex = new RegexMatcher { Regex = @"/(?P<ver>v[12])/\p{Greek}+/\x{263a}\Q.*\E(?U)a+" } };
        routes.VirtualHosts[0].Routes[0].Match.Headers.Add(new HeaderMatcher { Name = "x-tag", StringMatch = new StringMatcher { SafeRegex = new RegexMatcher { Regex = @"[[:alpha:]]+" } } });
        Assert.Same(routes, XdsResourceValidator.ValidateRouteConfiguration(routes));
    }

    [Fact]
    public void Cluster_Rules()
    {
        Assert.Equal("svc", XdsResourceValidator.ValidateCluster(EdsCluster("c", "svc")).EdsServiceName);
        Assert.Equal("c", XdsResourceValidator.ValidateCluster(EdsCluster("c")).EdsServiceName);

        var maglev = EdsCluster("c");
        maglev.LbPolicy = Cluster.Types.LbPolicy.Maglev;
        Assert.Contains("lb_policy Maglev is not supported", Reject(() => XdsResourceValidator.ValidateCluster(maglev)));

        var ring = EdsCluster("c");
        ring.LbPolicy = Cluster.Types.LbPolicy.RingHash;
        ring.RingHashLbConfig = new Cluster.Types.RingHashLbConfig { MinimumRingSize = 4096, MaximumRingSize = 1024 };
        Assert.Contains("minimum_ring_size 4096 exceeds maximum_ring_size 1024", Reject(() => XdsResourceValidator.ValidateCluster(ring)));
        ring.RingHashLbConfig = new Cluster.Types.RingHashLbConfig { MinimumRingSize = 1024, MaximumRingSize = 9_000_000 };
        Assert.Contains("maximum_ring_size 9000000 must be in 1..8388608", Reject(() => XdsResourceValidator.ValidateCluster(ring)));
        ring.RingHashLbConfig = new Cluster.Types.RingHashLbConfig { HashFunction = Cluster.Types.RingHashLbConfig.Types.HashFunction.MurmurHash2 };
        Assert.Contains("XX_HASH only", Reject(() => XdsResourceValidator.ValidateCluster(ring)));

        var strictDns = new Cluster { Name = "c", Type = Cluster.Types.DiscoveryType.StrictDns };
        Assert.Contains("discovery type StrictDns is not supported", Reject(() => XdsResourceValidator.ValidateCluster(strictDns)));

        var staticNoAssignment = new Cluster { Name = "c", Type = Cluster.Types.DiscoveryType.Static };
        Assert.Contains("requires load_assignment", Reject(() => XdsResourceValidator.ValidateCluster(staticNoAssignment)));

        var staticOk = new Cluster { Name = "c", Type = Cluster.Types.DiscoveryType.Static, LoadAssignment = Endpoints("c", "10.0.0.1:80") };
        Assert.Null(XdsResourceValidator.ValidateCluster(staticOk).EdsServiceName);

        var edsFromFile = EdsCluster("c");
        edsFromFile.EdsClusterConfig.EdsConfig = new ConfigSource { PathConfigSource = new PathConfigSource { Path = "/x" } };
        Assert.Contains("eds_config must be ads or self", Reject(() => XdsResourceValidator.ValidateCluster(edsFromFile)));

        var noEdsConfig = new Cluster { Name = "c", Type = Cluster.Types.DiscoveryType.Eds };
        Assert.Equal("type EDS requires eds_cluster_config (with eds_config ads or self)", Reject(() => XdsResourceValidator.ValidateCluster(noEdsConfig)));
        var noSource = EdsCluster("c", "svc");
        noSource.EdsClusterConfig.EdsConfig = null;
        Assert.Equal("eds_cluster_config.eds_config is required (ads or self)", Reject(() => XdsResourceValidator.ValidateCluster(noSource)));
        var xdstp = EdsCluster("xdstp://a.example/envoy.config.cluster.v3.Cluster/c");
        Assert.Equal("eds_cluster_config.service_name must be set when the cluster has an xdstp: name",
            Reject(() => XdsResourceValidator.ValidateCluster(xdstp)));
        Assert.Equal("svc", XdsResourceValidator.ValidateCluster(EdsCluster("xdstp://a.example/envoy.config.cluster.v3.Cluster/c", "svc")).EdsServiceName);

        var typed = EdsCluster("c");
        typed.LoadBalancingPolicy = new LoadBalancingPolicy { Policies = { new LoadBalancingPolicy.Types.Policy { TypedExtensionConfig = new TypedExtensionConfig { Name = "x", TypedConfig = new Any { TypeUrl = "type.googleapis.com/acme.Lb" } } } } };
        Assert.Contains("load_balancing_policy has no supported policy (found 'type.googleapis.com/acme.Lb')", Reject(() => XdsResourceValidator.ValidateCluster(typed)));
    }

    [Fact]
    public void Endpoints_Rules()
    {
        Assert.NotNull(XdsResourceValidator.ValidateEndpoints(Endpoints("c", "10.0.0.1:80", "[::1]:80".Trim('[').Replace("]", string.Empty, StringComparison.Ordinal))));

        var noLocality = Endpoints("c", "10.0.0.1:80");
        noLocality.Endpoints[0].Locality = null;
        Assert.Contains("endpoints[0] has no locality", Reject(() => XdsResourceValidator.ValidateEndpoints(noLocality)));

        Assert.Contains("address 'reviews' is not an IP address", Reject(() => XdsResourceValidator.ValidateEndpoints(Endpoints("c", "reviews:80"))));
        Assert.Contains("port must be a port_value in 1..65535", Reject(() => XdsResourceValidator.ValidateEndpoints(Endpoints("c", "10.0.0.1:0"))));
        Assert.Contains("duplicates address 10.0.0.1:80", Reject(() => XdsResourceValidator.ValidateEndpoints(Endpoints("c", "10.0.0.1:80", "10.0.0.1:80"))));

        var gap = Endpoints("c", "10.0.0.1:80");
        var second = Endpoints("c", "10.0.0.2:80").Endpoints[0];
        second.Locality = new Locality { Region = "r2" };
        second.Priority = 2;
        gap.Endpoints.Add(second);
        Assert.Contains("priorities are not contiguous: missing priority 1", Reject(() => XdsResourceValidator.ValidateEndpoints(gap)));
        second.Priority = 1;
        Assert.Same(gap, XdsResourceValidator.ValidateEndpoints(gap));
    }

    private static Listener Inbound(params FilterChain[] chains)
    {
        var listener = new Listener
        {
            Name = "xds.istio.io/grpc/lds/inbound/0.0.0.0:9080",
            Address = new Address { SocketAddress = new SocketAddress { Address = "0.0.0.0", PortValue = 9080 } },
        };
        listener.FilterChains.AddRange(chains);
        return listener;
    }

    private static FilterChain Chain(string routeName, params HttpFilter[] filters)
    {
        var hcm = new HttpConnectionManager { Rds = new Rds { RouteConfigName = routeName, ConfigSource = new ConfigSource { Ads = new() } } };
        hcm.HttpFilters.AddRange(filters.Length == 0 ? [Router()] : filters);
        return new FilterChain { Filters = { new Filter { Name = XdsExtensionNames.HttpConnectionManager, TypedConfig = Any.Pack(hcm) } } };
    }

    [Fact]
    public void ServerListener_WithFilterChains_IsAccepted_PreferringDefaultChain()
    {
        var listener = Inbound(Chain("inbound-mtls"));
        listener.DefaultFilterChain = Chain("inbound-plain");
        var result = XdsResourceValidator.ValidateListener(listener);
        Assert.False(result.IsApiListener);
        Assert.Equal("inbound-plain", result.RouteConfigName);
        Assert.Equal(["inbound-mtls", "inbound-plain"], result.RouteConfigNames);
    }

    [Fact]
    public void ServerListener_IstiodsInlineNonForwardingRoute_IsAccepted_OnAClientListenerItIsNot()
    {
        var routes = new RouteConfiguration { Name = "inbound" };
        var vhost = new VirtualHost { Name = "inbound|http|0", Domains = { "*" } };
        vhost.Routes.Add(new Route { Match = new RouteMatch { Prefix = "/" }, NonForwardingAction = new NonForwardingAction() });
        routes.VirtualHosts.Add(vhost);
        var hcm = new HttpConnectionManager { RouteConfig = routes, HttpFilters = { Router() } };
        var server = Inbound(new FilterChain { Filters = { new Filter { Name = XdsExtensionNames.HttpConnectionManager, TypedConfig = Any.Pack(hcm) } } });

        var accepted = XdsResourceValidator.ValidateListener(server);

        Assert.Same(server, accepted.Listener);
        Assert.Equal("inbound", accepted.InlineRouteConfiguration!.Name);
        var client = new Listener { Name = "reviews:9080", ApiListener = new ApiListener { ApiListener_ = Any.Pack(hcm) } };
        Assert.Contains("action NonForwardingAction is not supported", Reject(() => XdsResourceValidator.ValidateListener(client)));
    }

    [Fact]
    public void ServerListener_Rejections_NameTheChain()
    {
        var hostname = Inbound(Chain("r"));
        hostname.Address.SocketAddress.Address = "localhost";
        Assert.Contains("address 'localhost' is not an IP address", Reject(() => XdsResourceValidator.ValidateListener(hostname)));
        Assert.Contains("has no filter_chains and no default_filter_chain", Reject(() => XdsResourceValidator.ValidateListener(Inbound())));

        var twoFilters = Chain("r");
        twoFilters.Filters.Add(new Filter { Name = "tcp", TypedConfig = new Any { TypeUrl = "type.googleapis.com/acme.Tcp" } });
        Assert.Contains("filter_chains[0] must hold exactly one filter, an HttpConnectionManager", Reject(() => XdsResourceValidator.ValidateListener(Inbound(twoFilters))));

        Assert.Contains("filter_chains[1] http_filters[0] 'fault' is the last filter but not the router", Reject(() => XdsResourceValidator.ValidateListener(Inbound(Chain("a"), Chain("b", Filter("fault", XdsTypeUrls.Fault))))));

        var badTls = Chain("r");
        badTls.TransportSocket = new TransportSocket { Name = "tls", TypedConfig = new Any { TypeUrl = XdsTypeUrls.UpstreamTlsContext } };
        Assert.Contains("transport_socket has unsupported config type", Reject(() => XdsResourceValidator.ValidateListener(Inbound(badTls))));
    }

    [Fact]
    public void Cluster_WithIstiodsUpstreamTlsContext_IsAccepted_AndKeepsItsTransportSocket()
    {
        // The shape the control plane (and istiod's grpcgen) sends for DestinationRule ISTIO_MUTUAL.
        var validation = new Envoy.Extensions.TransportSockets.Tls.V3.CertificateValidationContext
        {
            CaCertificateProviderInstance = new Envoy.Extensions.TransportSockets.Tls.V3.CertificateProviderPluginInstance { InstanceName = "default", CertificateName = "ROOTCA" },
        };
        validation.MatchSubjectAltNames.Add(new StringMatcher { Exact = "spiffe://cluster.local/ns/default/sa/reviews" });
        var tls = new Envoy.Extensions.TransportSockets.Tls.V3.UpstreamTlsContext
        {
            CommonTlsContext = new Envoy.Extensions.TransportSockets.Tls.V3.CommonTlsContext
            {
                TlsCertificateProviderInstance = new Envoy.Extensions.TransportSockets.Tls.V3.CertificateProviderPluginInstance { InstanceName = "default", CertificateName = "default" },
                TlsCertificateCertificateProviderInstance = new Envoy.Extensions.TransportSockets.Tls.V3.CommonTlsContext.Types.CertificateProviderInstance { InstanceName = "default", CertificateName = "default" },
                CombinedValidationContext = new Envoy.Extensions.TransportSockets.Tls.V3.CommonTlsContext.Types.CombinedCertificateValidationContext
                {
                    ValidationContextCertificateProviderInstance = new Envoy.Extensions.TransportSockets.Tls.V3.CommonTlsContext.Types.CertificateProviderInstance { InstanceName = "default", CertificateName = "ROOTCA" },
                    DefaultValidationContext = validation,
                },
            },
        };
        var cluster = EdsCluster("outbound|9080||reviews.default.svc.cluster.local");
        cluster.TransportSocket = new TransportSocket { Name = "envoy.transport_sockets.tls", TypedConfig = Any.Pack(tls) };

        var result = XdsResourceValidator.ValidateCluster(cluster);
        Assert.Equal(XdsTypeUrls.UpstreamTlsContext, result.Cluster.TransportSocket.TypedConfig.TypeUrl);
        Assert.Equal("spiffe://cluster.local/ns/default/sa/reviews", result.Cluster.TransportSocket.TypedConfig.Unpack<Envoy.Extensions.TransportSockets.Tls.V3.UpstreamTlsContext>()
            .CommonTlsContext.CombinedValidationContext.DefaultValidationContext.MatchSubjectAltNames[0].Exact);

        var downstream = EdsCluster("c");
        downstream.TransportSocket = new TransportSocket { Name = "tls", TypedConfig = new Any { TypeUrl = XdsTypeUrls.DownstreamTlsContext } };
        Assert.Contains("transport_socket has unsupported config type", Reject(() => XdsResourceValidator.ValidateCluster(downstream)));
    }
}

using Envoy.Config.Accesslog.V3;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Envoy.Type.Matcher.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.Xds.Internal;
using Mesh.Xds;
using static Mesh.Sdk.Tests.Xds.Fakes.TestResources;
using TypedLeastRequest = Envoy.Extensions.LoadBalancingPolicies.LeastRequest.V3.LeastRequest;
using TypedPickFirst = Envoy.Extensions.LoadBalancingPolicies.PickFirst.V3.PickFirst;

namespace Mesh.Sdk.Tests.Xds;

/// <summary>
/// gRPC's documented validation rules (gRFC A27, A42, A44, A48, A50, A52) as the client meets them: each resource is
/// serialized, decoded by the resource type the client uses for a response, validated, and the NACK text (as it is
/// sent in <c>error_detail</c>) asserted exactly.
/// </summary>
public sealed class XdsResourceValidatorGrpcRulesTests
{
    private static string? Nack(XdsResourceType type, IMessage resource)
    {
        var decoded = type.Decode(resource.ToByteString());
        try
        {
            type.Validate(decoded);
            return null;
        }
        catch (XdsValidationException ex)
        {
            return $"{type.ShortName} resource '{type.NameOf(decoded)}': {ex.Message}";
        }
    }

    private static Cluster WithOutlier(Action<OutlierDetection> edit)
    {
        var cluster = EdsCluster("c");
        cluster.OutlierDetection = new OutlierDetection();
        edit(cluster.OutlierDetection);
        return cluster;
    }

    [Fact]
    public void OutlierDetection_PercentagesAbove100_AreNacked_A50()
    {
        Assert.Equal("CDS resource 'c': outlier_detection.max_ejection_percent 150 must be in 0..100",
            Nack(XdsResourceType.Cluster, WithOutlier(o => o.MaxEjectionPercent = 150)));
        Assert.Equal("CDS resource 'c': outlier_detection.enforcing_success_rate 101 must be in 0..100",
            Nack(XdsResourceType.Cluster, WithOutlier(o => o.EnforcingSuccessRate = 101)));
        Assert.Equal("CDS resource 'c': outlier_detection.failure_percentage_threshold 101 must be in 0..100",
            Nack(XdsResourceType.Cluster, WithOutlier(o => o.FailurePercentageThreshold = 101)));
        Assert.Equal("CDS resource 'c': outlier_detection.enforcing_failure_percentage 200 must be in 0..100",
            Nack(XdsResourceType.Cluster, WithOutlier(o => o.EnforcingFailurePercentage = 200)));
    }

    [Fact]
    public void OutlierDetection_AtTheLimits_IsAccepted()
    {
        Assert.Null(Nack(XdsResourceType.Cluster, WithOutlier(o =>
        {
            o.MaxEjectionPercent = 100;
            o.EnforcingSuccessRate = 100;
            o.FailurePercentageThreshold = 100;
            o.EnforcingFailurePercentage = 0;
            o.Interval = Duration.FromTimeSpan(TimeSpan.FromSeconds(1));
        })));
    }

    [Fact]
    public void LeastRequest_ChoiceCountBelow2_IsNacked_A48()
    {
        var legacy = EdsCluster("c");
        legacy.LbPolicy = Cluster.Types.LbPolicy.LeastRequest;
        legacy.LeastRequestLbConfig = new Cluster.Types.LeastRequestLbConfig { ChoiceCount = 1 };
        Assert.Equal("CDS resource 'c': least_request_lb_config.choice_count 1 must be at least 2", Nack(XdsResourceType.Cluster, legacy));

        var typed = EdsCluster("c");
        typed.LoadBalancingPolicy = new LoadBalancingPolicy
        {
            Policies = { new LoadBalancingPolicy.Types.Policy { TypedExtensionConfig = new TypedExtensionConfig { Name = "lr", TypedConfig = Any.Pack(new TypedLeastRequest { ChoiceCount = 1 }) } } },
        };
        Assert.Equal("CDS resource 'c': LeastRequest.choice_count 1 must be at least 2", Nack(XdsResourceType.Cluster, typed));

        typed.LoadBalancingPolicy.Policies[0].TypedExtensionConfig.TypedConfig = Any.Pack(new TypedLeastRequest { ChoiceCount = 2 });
        Assert.Null(Nack(XdsResourceType.Cluster, typed));
    }

    [Fact]
    public void TypedPickFirst_IsAccepted_A52()
    {
        var cluster = EdsCluster("c");
        cluster.LoadBalancingPolicy = new LoadBalancingPolicy
        {
            Policies = { new LoadBalancingPolicy.Types.Policy { TypedExtensionConfig = new TypedExtensionConfig { Name = "pf", TypedConfig = Any.Pack(new TypedPickFirst()) } } },
        };
        Assert.Null(Nack(XdsResourceType.Cluster, cluster));
    }

    [Fact]
    public void EndpointWeightZero_IsNacked_A27()
    {
        var assignment = Endpoints("c", "10.0.0.1:80", "10.0.0.2:80");
        assignment.Endpoints[0].LbEndpoints[1].LoadBalancingWeight = 0;
        Assert.Equal("EDS resource 'c': endpoints[0].lb_endpoints[1] load_balancing_weight must be greater than 0", Nack(XdsResourceType.Endpoints, assignment));

        assignment.Endpoints[0].LbEndpoints[1].LoadBalancingWeight = 3;
        Assert.Null(Nack(XdsResourceType.Endpoints, assignment));
    }

    [Fact]
    public void LocalityWeightsOverflowingUint32_AreNacked_A27()
    {
        var assignment = Endpoints("c", "10.0.0.1:80");
        assignment.Endpoints[0].LoadBalancingWeight = uint.MaxValue;
        var second = Endpoints("c", "10.0.0.2:80").Endpoints[0];
        second.Locality = new Locality { Region = "r2" };
        second.LoadBalancingWeight = 1;
        assignment.Endpoints.Add(second);
        Assert.Equal("EDS resource 'c': sum of locality weights for priority 0 exceeds 4294967295", Nack(XdsResourceType.Endpoints, assignment));

        second.Priority = 1;
        Assert.Null(Nack(XdsResourceType.Endpoints, assignment));
    }

    [Fact]
    public void RetryBackOff_WithoutBaseInterval_IsNacked_A44()
    {
        var routes = Routes("r", ClusterV1);
        routes.VirtualHosts[0].Routes[0].Route_.RetryPolicy = new RetryPolicy { RetryOn = "unavailable", NumRetries = 2, RetryBackOff = new RetryPolicy.Types.RetryBackOff() };
        Assert.Equal("RDS resource 'r': route configuration 'r' virtual_hosts[0] 'reviews' routes[0]: route.retry_policy: retry_back_off.base_interval is required when retry_back_off is set",
            Nack(XdsResourceType.RouteConfiguration, routes));

        routes.VirtualHosts[0].Routes[0].Route_.RetryPolicy.RetryBackOff = new RetryPolicy.Types.RetryBackOff
        {
            BaseInterval = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
            MaxInterval = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(100)),
        };
        Assert.Equal("RDS resource 'r': route configuration 'r' virtual_hosts[0] 'reviews' routes[0]: route.retry_policy: retry_back_off.max_interval 00:00:00.1000000 is below base_interval 00:00:01",
            Nack(XdsResourceType.RouteConfiguration, routes));
    }

    [Fact]
    public void HttpConnectionManager_WithTracingAndAccessLog_IsAccepted()
    {
        // The control plane sends Mesh.Sdk nodes istiod's HCM tracing (field 7) and access_log (field 13).
        var hcm = new HttpConnectionManager
        {
            Rds = new Rds { RouteConfigName = RouteName, ConfigSource = new ConfigSource { Ads = new() } },
            HttpFilters = { Router() },
            Tracing = new HttpConnectionManager.Types.Tracing { RandomSampling = new Envoy.Type.V3.Percent { Value = 100 } },
            AccessLog =
            {
                new AccessLog
                {
                    Name = "envoy.access_loggers.file",
                    TypedConfig = new Any { TypeUrl = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog" },
                },
            },
        };
        Assert.Null(Nack(XdsResourceType.Listener, ListenerWith(ListenerName, hcm)));
    }
    private static Cluster WithUpstreamTls(Action<CommonTlsContext> edit)
    {
        var common = new CommonTlsContext
        {
            TlsCertificateProviderInstance = new CertificateProviderPluginInstance { InstanceName = "default", CertificateName = "default" },
            CombinedValidationContext = new CommonTlsContext.Types.CombinedCertificateValidationContext
            {
                DefaultValidationContext = new CertificateValidationContext
                {
                    CaCertificateProviderInstance = new CertificateProviderPluginInstance { InstanceName = "default", CertificateName = "ROOTCA" },
                    MatchSubjectAltNames = { new StringMatcher { Exact = "spiffe://cluster.local/ns/default/sa/reviews" } },
                },
                ValidationContextCertificateProviderInstance = new CommonTlsContext.Types.CertificateProviderInstance { InstanceName = "default", CertificateName = "ROOTCA" },
            },
        };
        edit(common);
        var cluster = EdsCluster("c");
        cluster.TransportSocket = new TransportSocket { Name = "envoy.transport_sockets.tls", TypedConfig = Any.Pack(new UpstreamTlsContext { CommonTlsContext = common }) };
        return cluster;
    }

    [Fact]
    public void UpstreamTls_FieldsGrpcDoesNotImplement_AreNacked_A29()
    {
        Assert.Null(Nack(XdsResourceType.Cluster, WithUpstreamTls(_ => { })));
        Same("CDS resource 'c': transport_socket UpstreamTlsContext common_tls_context.tls_certificates is not supported (use tls_certificate_provider_instance)",
            Nack(XdsResourceType.Cluster, WithUpstreamTls(c => c.TlsCertificates.Add(new TlsCertificate()))));
        Same("CDS resource 'c': transport_socket UpstreamTlsContext common_tls_context.tls_params is not supported",
            Nack(XdsResourceType.Cluster, WithUpstreamTls(c => c.TlsParams = new TlsParameters())));
        Same("CDS resource 'c': transport_socket UpstreamTlsContext common_tls_context.combined_validation_context.default_validation_context.verify_certificate_spki is not supported",
            Nack(XdsResourceType.Cluster, WithUpstreamTls(c => c.CombinedValidationContext.DefaultValidationContext.VerifyCertificateSpki.Add("abc"))));
        Same("CDS resource 'c': transport_socket UpstreamTlsContext common_tls_context.combined_validation_context.default_validation_context.crl is not supported",
            Nack(XdsResourceType.Cluster, WithUpstreamTls(c => c.CombinedValidationContext.DefaultValidationContext.Crl = new DataSource { InlineString = "x" })));
    }

    [Fact]
    public void UpstreamTls_SanMatcherThatDoesNotCompile_IsNacked_A29()
    {
        var cluster = WithUpstreamTls(c => c.CombinedValidationContext.DefaultValidationContext.MatchSubjectAltNames[0] = new StringMatcher { SafeRegex = new RegexMatcher { Regex = "spiffe://(" } });
        Same("CDS resource 'c': transport_socket UpstreamTlsContext common_tls_context.combined_validation_context.default_validation_context.match_subject_alt_names[0] does not compile: regex 'spiffe://(' has no ')' for the group opened at offset 9",
            Nack(XdsResourceType.Cluster, cluster));
    }

    [Fact]
    public void UpstreamTls_ThatDoesNotDecode_IsNacked_NotTakenForPlaintext()
    {
        var cluster = EdsCluster("c");
        cluster.TransportSocket = new TransportSocket { Name = "tls", TypedConfig = new Any { TypeUrl = XdsTypeUrls.UpstreamTlsContext, Value = ByteString.CopyFrom(0xff, 0xff) } };
        Same("CDS resource 'c': transport_socket UpstreamTlsContext cannot be decoded: While parsing a protocol message, the input ended unexpectedly in the middle of a field.  This could mean either that the input has been truncated or that an embedded message misreported its own length.",
            Nack(XdsResourceType.Cluster, cluster));
    }

    [Fact]
    public void DownstreamTls_RequireSniAndOcspStapling_AreNacked_A29()
    {
        static Envoy.Config.Listener.V3.Listener Server(DownstreamTlsContext tls)
        {
            var hcm = new HttpConnectionManager { Rds = new Rds { RouteConfigName = "inbound", ConfigSource = new ConfigSource { Ads = new() } }, HttpFilters = { Router() } };
            return new Envoy.Config.Listener.V3.Listener
            {
                Name = "xds.istio.io/grpc/lds/inbound/0.0.0.0:9080",
                Address = new Address { SocketAddress = new SocketAddress { Address = "0.0.0.0", PortValue = 9080 } },
                FilterChains =
                {
                    new Envoy.Config.Listener.V3.FilterChain
                    {
                        Filters = { new Envoy.Config.Listener.V3.Filter { Name = XdsExtensionNames.HttpConnectionManager, TypedConfig = Any.Pack(hcm) } },
                        TransportSocket = new TransportSocket { Name = "tls", TypedConfig = Any.Pack(tls) },
                    },
                },
            };
        }

        var mtls = new DownstreamTlsContext
        {
            RequireClientCertificate = true,
            CommonTlsContext = new CommonTlsContext { TlsCertificateProviderInstance = new CertificateProviderPluginInstance { InstanceName = "default", CertificateName = "default" } },
        };
        Assert.Null(Nack(XdsResourceType.Listener, Server(mtls)));

        var sni = mtls.Clone();
        sni.RequireSni = true;
        Same("LDS resource 'xds.istio.io/grpc/lds/inbound/0.0.0.0:9080': filter_chains[0] transport_socket DownstreamTlsContext require_sni is not supported", Nack(XdsResourceType.Listener, Server(sni)));

        var ocsp = mtls.Clone();
        ocsp.OcspStaplePolicy = DownstreamTlsContext.Types.OcspStaplePolicy.MustStaple;
        Same("LDS resource 'xds.istio.io/grpc/lds/inbound/0.0.0.0:9080': filter_chains[0] transport_socket DownstreamTlsContext ocsp_staple_policy MustStaple is not supported (LENIENT_STAPLING only)", Nack(XdsResourceType.Listener, Server(ocsp)));
    }

    [Fact]
    public void ListenerRules_NackTextIsExact_A27_A39()
    {
        var noName = new HttpConnectionManager { Rds = new Rds { ConfigSource = new ConfigSource { Ads = new() } }, HttpFilters = { Router() } };
        Same("LDS resource 'l': HttpConnectionManager rds.route_config_name is empty", Nack(XdsResourceType.Listener, ListenerWith("l", noName)));

        var duplicate = new HttpConnectionManager
        {
            Rds = new Rds { RouteConfigName = "r", ConfigSource = new ConfigSource { Self = new() } },
            HttpFilters = { new HttpFilter { Name = "f", TypedConfig = new Any { TypeUrl = XdsTypeUrls.Fault } }, new HttpFilter { Name = "f", TypedConfig = new Any { TypeUrl = XdsTypeUrls.Fault } }, Router() },
        };
        Same("LDS resource 'l': http_filters[1] 'f' is a duplicate filter name", Nack(XdsResourceType.Listener, ListenerWith("l", duplicate)));
    }

    [Fact]
    public void RouteRules_NackTextIsExact_A28()
    {
        var connect = Routes("r", ClusterV1);
        connect.VirtualHosts[0].Routes[0].Match = new RouteMatch { ConnectMatcher = new RouteMatch.Types.ConnectMatcher() };
        Same("RDS resource 'r': virtual_hosts[0] 'reviews' routes[0] match uses unsupported path specifier ConnectMatcher", Nack(XdsResourceType.RouteConfiguration, connect));

        var noSpecifier = Routes("r", ClusterV1);
        noSpecifier.VirtualHosts[0].Routes[0].Match.Headers.Add(new HeaderMatcher { Name = "x" });
        Same("RDS resource 'r': virtual_hosts[0] 'reviews' routes[0] match.headers[0] 'x' has no match specifier", Nack(XdsResourceType.RouteConfiguration, noSpecifier));

        var range = Routes("r", ClusterV1);
        range.VirtualHosts[0].Routes[0].Match.Headers.Add(new HeaderMatcher { Name = "x", RangeMatch = new Envoy.Type.V3.Int64Range { Start = 10, End = 5 } });
        Same("RDS resource 'r': virtual_hosts[0] 'reviews' routes[0] match.headers[0] 'x' range_match start 10 is after end 5", Nack(XdsResourceType.RouteConfiguration, range));

        var fraction = Routes("r", ClusterV1);
        fraction.VirtualHosts[0].Routes[0].Match.RuntimeFraction = new RuntimeFractionalPercent
        {
            DefaultValue = new Envoy.Type.V3.FractionalPercent { Numerator = 101, Denominator = Envoy.Type.V3.FractionalPercent.Types.DenominatorType.Hundred },
        };
        Same("RDS resource 'r': virtual_hosts[0] 'reviews' routes[0] match.runtime_fraction numerator 101 exceeds its denominator", Nack(XdsResourceType.RouteConfiguration, fraction));

        var empty = Routes("r", ClusterV1);
        empty.VirtualHosts[0].Routes[0].Route_.Cluster = string.Empty;
        Same("RDS resource 'r': virtual_hosts[0] 'reviews' routes[0] route.cluster is empty", Nack(XdsResourceType.RouteConfiguration, empty));

        var overflow = Routes("r", ClusterV1, ClusterV2);
        foreach (var c in overflow.VirtualHosts[0].Routes[0].Route_.WeightedClusters.Clusters)
        {
            c.Weight = uint.MaxValue;
        }

        Same("RDS resource 'r': virtual_hosts[0] 'reviews' routes[0] route.weighted_clusters total weight 8589934590 exceeds 4294967295", Nack(XdsResourceType.RouteConfiguration, overflow));
    }

    [Fact]
    public void ClusterAndEndpointRules_NackTextIsExact_A27()
    {
        var dns = new Cluster { Name = "c", Type = Cluster.Types.DiscoveryType.LogicalDns, LoadAssignment = Endpoints("c", "10.0.0.1:80", "10.0.0.2:80") };
        Same("CDS resource 'c': LOGICAL_DNS load_assignment must have exactly one locality with exactly one endpoint", Nack(XdsResourceType.Cluster, dns));

        var repeated = Endpoints("c", "10.0.0.1:80");
        var again = Endpoints("c", "10.0.0.2:80").Endpoints[0];
        again.Locality = repeated.Endpoints[0].Locality.Clone();
        repeated.Endpoints.Add(again);
        var locality = repeated.Endpoints[0].Locality;
        Same($"EDS resource 'c': endpoints[1] repeats locality {{region='{locality.Region}', zone='{locality.Zone}', sub_zone='{locality.SubZone}'}} at priority 0", Nack(XdsResourceType.Endpoints, repeated));

        var noAddress = Endpoints("c", "10.0.0.1:80");
        noAddress.Endpoints[0].LbEndpoints[0].Endpoint.Address = null;
        Same("EDS resource 'c': endpoints[0].lb_endpoints[0] has no endpoint.address.socket_address", Nack(XdsResourceType.Endpoints, noAddress));
    }

    private static void Same(string expected, string? actual) => Assert.True(expected == actual, $"expected: {expected}\nactual:   {actual}");
}

using Envoy.Config.Accesslog.V3;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.Xds.Internal;
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
}

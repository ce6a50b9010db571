using System.Collections.Frozen;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Endpoint.V3;
using Mesh.Sdk.LoadBalancing;
using Mesh.Sdk.Resources;
using Mesh.Sdk.Tests.Xds.Fakes;
using Envoy.Config.Core.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using static Mesh.Sdk.Tests.LoadBalancing.Lb;

namespace Mesh.Sdk.Tests.LoadBalancing;

public sealed class ClusterTableTests
{
    private readonly FakeTimeProvider _time = new();

    private static MeshSnapshot Snapshot(long version, Cluster cluster, ClusterLoadAssignment? endpoints)
        => new(
            version,
            FrozenDictionary<string, ListenerResource>.Empty,
            FrozenDictionary<string, Envoy.Config.Route.V3.RouteConfiguration>.Empty,
            new Dictionary<string, ClusterResource> { [cluster.Name] = new(cluster.Name, cluster, cluster.Name) },
            endpoints is null ? new Dictionary<string, ClusterLoadAssignment>() : new Dictionary<string, ClusterLoadAssignment> { [cluster.Name] = endpoints });

    [Fact]
    public void Update_CompilesClustersAndFollowsEds_KeepingEndpointState()
    {
        using var table = new ClusterTable(_time);
        var cluster = Cluster();
        table.Update(Snapshot(1, cluster, null));
        Assert.True(table.TryGetCluster(ClusterName, out var runtime));
        Assert.Null(runtime.Pick(default));

        table.Update(Snapshot(2, cluster, Flat(Ep("10.0.0.1"))));
        var first = runtime.Pick(default)!;
        first.State.RequestStarted();
        table.Update(Snapshot(3, cluster, Flat(Ep("10.0.0.1"), Ep("10.0.0.2"))));

        Assert.True(table.TryGetCluster(ClusterName, out var same));
        Assert.Same(runtime, same);
        Assert.Equal(2, runtime.LoadBalancer.Endpoints.All.Count);
        Assert.Equal(1, runtime.LoadBalancer.Endpoints.All[0].State.ActiveRequests);
    }

    [Fact]
    public void Update_RecompilesAChangedClusterAndCarriesEjections()
    {
        using var table = new ClusterTable(_time);
        var cluster = Cluster();
        cluster.OutlierDetection = new OutlierDetection { MaxEjectionPercent = 100 };
        table.Update(Snapshot(1, cluster, Flat(Ep("10.0.0.1"), Ep("10.0.0.2"))));
        table.TryGetCluster(ClusterName, out var before);
        var host = before!.LoadBalancer.Endpoints.All[0];
        for (var i = 0; i < 5; i++)
        {
            before.ReportResponse(host, 503);
        }

        var changed = cluster.Clone();
        changed.LbPolicy = Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.Random;
        table.Update(Snapshot(2, changed, Flat(Ep("10.0.0.1"), Ep("10.0.0.2"))));

        table.TryGetCluster(ClusterName, out var after);
        Assert.NotSame(before, after);
        Assert.Equal(LoadBalancerKind.Random, after!.LoadBalancer.Policy.Kind);
        Assert.False(Count(after.LoadBalancer, 50).ContainsKey(host.Key));
    }

    [Fact]
    public void Update_KeepsTheLastGoodClusterAndReportsTheError()
    {
        using var table = new ClusterTable(_time);
        table.Update(Snapshot(1, Cluster(), Flat(Ep("10.0.0.1"))));

        var errors = table.Update(Snapshot(2, Cluster(Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy.Maglev), Flat(Ep("10.0.0.1"))));

        Assert.StartsWith($"Cluster '{ClusterName}': lb_policy Maglev is not supported", errors[ClusterName]);
        Assert.True(table.TryGetCluster(ClusterName, out var runtime));
        Assert.Equal(LoadBalancerKind.RoundRobin, runtime.LoadBalancer.Policy.Kind);
        Assert.Equal("10.0.0.1:9080", runtime.Pick(default)!.Key);

        var badEndpoints = table.Update(Snapshot(3, Cluster(), Flat(Ep("10.0.0.9", weight: 0))));
        Assert.Contains("load_balancing_weight must be at least 1", badEndpoints[ClusterName]);
        Assert.Equal("10.0.0.1:9080", runtime.Pick(default)!.Key);
    }

    [Fact]
    public void Update_DropsRemovedClusters()
    {
        using var table = new ClusterTable(_time);
        table.Update(Snapshot(1, Cluster(), Flat(Ep("10.0.0.1"))));

        table.Update(MeshSnapshot.Empty);

        Assert.False(table.TryGetCluster(ClusterName, out _));
    }

    private static Cluster WithTls(Cluster cluster, UpstreamTlsContext tls)
    {
        var copy = cluster.Clone();
        copy.TransportSocket = new TransportSocket { Name = "envoy.transport_sockets.tls", TypedConfig = Any.Pack(tls) };
        return copy;
    }

    /// <summary>istiod's (and Mesh.ControlPlane's) ISTIO_MUTUAL shape: certificates from provider instance 'default'.</summary>
    private static UpstreamTlsContext IstioMutual() => new()
    {
        CommonTlsContext = new CommonTlsContext
        {
            TlsCertificateProviderInstance = new CertificateProviderPluginInstance { InstanceName = "default", CertificateName = "default" },
            CombinedValidationContext = new CommonTlsContext.Types.CombinedCertificateValidationContext
            {
                DefaultValidationContext = new CertificateValidationContext
                {
                    CaCertificateProviderInstance = new CertificateProviderPluginInstance { InstanceName = "default", CertificateName = "ROOTCA" },
                },
            },
        },
    };

    [Fact]
    public void Update_IstioMutualCluster_IsIstioMutualWithoutHttpsScheme_OtherTlsIsTls()
    {
        using var table = new ClusterTable(_time);

        table.Update(Snapshot(1, Cluster(), Flat(Ep("10.0.0.1"))));
        Assert.True(table.TryGetCluster(ClusterName, out var plain));
        Assert.Equal((UpstreamTransport.Plaintext, false), (plain.Transport, plain.SendsTls));

        var mutual = WithTls(Cluster(), IstioMutual());
        table.Update(Snapshot(2, mutual, Flat(Ep("10.0.0.1"))));
        Assert.True(table.TryGetCluster(ClusterName, out var runtime));
        // The pool originates mesh mTLS itself: the request URI stays http://.
        Assert.Equal((UpstreamTransport.IstioMutual, false), (runtime.Transport, runtime.SendsTls));
        Assert.Equal(UpstreamTransport.IstioMutual, Assert.Single(runtime.LoadBalancer.Endpoints.All).Transport.Kind);

        var simple = WithTls(Cluster(), new UpstreamTlsContext { Sni = "reviews.example.com" });
        table.Update(Snapshot(4, simple, Flat(Ep("10.0.0.1"))));
        Assert.True(table.TryGetCluster(ClusterName, out var tls));
        Assert.Equal((UpstreamTransport.Tls, true), (tls.Transport, tls.SendsTls));
    }
}

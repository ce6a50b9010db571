using Envoy.Config.Cluster.V3;
using Envoy.Service.Discovery.V3;
using Mesh.Sdk.Tests.Xds.Fakes;
using Mesh.Sdk.Xds;
using static Mesh.Sdk.Tests.Xds.Fakes.TestResources;

namespace Mesh.Sdk.Tests.Xds;

public sealed class XdsClientSotwTests
{
    /// <summary>Serves LDS → RDS → CDS → EDS for one listener and checks each request and ACK on the way.</summary>
    internal static async Task<FakeAdsCall<DiscoveryRequest, DiscoveryResponse>> ServeFullChainAsync(XdsClientHarness h)
    {
        var call = await h.Transport.NextSotwCallAsync();
        var lds = await call.NextRequestAsync();
        Assert.Equal(Lds, lds.TypeUrl);
        Assert.Equal([ListenerName], lds.ResourceNames);
        call.Respond(Sotw(Lds, "l1", "n1", Listener()));
        Assert.Equal(("l1", "n1"), Ack(await call.NextRequestAsync(), Lds));

        var rds = await call.NextRequestAsync();
        Assert.Equal(Rds, rds.TypeUrl);
        Assert.Equal([RouteName], rds.ResourceNames);
        call.Respond(Sotw(Rds, "r1", "n2", Routes(RouteName, ClusterV1, ClusterV2)));
        Assert.Equal(("r1", "n2"), Ack(await call.NextRequestAsync(), Rds));

        var cds = await call.NextRequestAsync();
        Assert.Equal(Cds, cds.TypeUrl);
        Assert.Equal([ClusterV1, ClusterV2], cds.ResourceNames);
        call.Respond(Sotw(Cds, "c1", "n3", EdsCluster(ClusterV1), EdsCluster(ClusterV2, "eds-v2")));
        Assert.Equal(("c1", "n3"), Ack(await call.NextRequestAsync(), Cds));

        var eds = await call.NextRequestAsync();
        Assert.Equal(Eds, eds.TypeUrl);
        Assert.Equal(["eds-v2", ClusterV1], eds.ResourceNames);
        call.Respond(Sotw(Eds, "e1", "n4", Endpoints(ClusterV1, "10.0.0.1:9080"), Endpoints("eds-v2", "10.0.0.2:9080", "10.0.0.3:9080")));
        Assert.Equal(("e1", "n4"), Ack(await call.NextRequestAsync(), Eds));
        await h.WaitAsync(s => s.IsComplete(ListenerName));
        return call;
    }

    private static (string Version, string Nonce) Ack(DiscoveryRequest request, string typeUrl)
    {
        Assert.Equal(typeUrl, request.TypeUrl);
        Assert.Null(request.ErrorDetail);
        return (request.VersionInfo, request.ResponseNonce);
    }

    [Fact]
    public async Task FirstRequest_CarriesNode_LaterRequestsDoNot()
    {
        await using var h = new XdsClientHarness();
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await h.Transport.NextSotwCallAsync();
        var first = await call.NextRequestAsync();
        Assert.Equal("sidecar~10.0.0.1~app.default~default.svc.cluster.local", first.Node.Id);
        Assert.Equal("r1", first.Node.Locality.Region);
        Assert.Equal("Mesh.Sdk", first.Node.UserAgentName);
        Assert.Equal(string.Empty, first.VersionInfo);
        Assert.Equal(string.Empty, first.ResponseNonce);
        call.Respond(Sotw(Lds, "1", "a", Listener()));
        var ack = await call.NextRequestAsync();
        Assert.Null(ack.Node);
    }

    [Fact]
    public async Task FullChain_PublishesCompleteSnapshot_WithAcksCarryingVersionAndNonce()
    {
        await using var h = new XdsClientHarness();
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        await ServeFullChainAsync(h);

        var snapshot = h.Current;
        Assert.Equal(RouteName, snapshot.Listeners[ListenerName].RouteConfigName);
        Assert.True(snapshot.TryGetRouteConfiguration(ListenerName, out var routes));
        Assert.Equal(RouteName, routes.Name);
        Assert.Equal("eds-v2", snapshot.Clusters[ClusterV2].EdsServiceName);
        Assert.Equal(ClusterV1, snapshot.Clusters[ClusterV1].EdsServiceName);
        Assert.True(snapshot.TryGetEndpoints(ClusterV2, out var endpoints));
        Assert.Equal(["10.0.0.2", "10.0.0.3"], endpoints.Endpoints[0].LbEndpoints.Select(e => e.Endpoint.Address.SocketAddress.Address));
        Assert.True(snapshot.Version >= 4);
    }

    [Fact]
    public async Task InvalidListener_IsNackedWithErrorDetail_NamingResourceAndReason_AndPreviousVersion()
    {
        await using var h = new XdsClientHarness();
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await h.Transport.NextSotwCallAsync();
        await call.NextRequestAsync();
        call.Respond(Sotw(Lds, "v1", "n1", Listener()));
        Assert.Equal("v1", (await call.NextRequestAsync()).VersionInfo);
        await call.NextRequestAsync(); // RDS subscription
        await h.WaitAsync(s => s.Listeners.ContainsKey(ListenerName));
        var versionBefore = h.Current.Version;

        // Router first and a second filter after it: the router must be last.
        var bad = Listener(ListenerName, "other-route", Router(), new Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpFilter
        {
            Name = "envoy.filters.http.fault",
            TypedConfig = new Google.Protobuf.WellKnownTypes.Any { TypeUrl = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault" },
        });
        call.Respond(Sotw(Lds, "v2", "n2", bad));
        var nack = await call.NextRequestAsync();
        Assert.Equal(Lds, nack.TypeUrl);
        Assert.Equal("v1", nack.VersionInfo);
        Assert.Equal("n2", nack.ResponseNonce);
        Assert.Equal(3, nack.ErrorDetail.Code);
        Assert.Contains($"'{ListenerName}'", nack.ErrorDetail.Message, StringComparison.Ordinal);
        Assert.Contains("router but not the last filter", nack.ErrorDetail.Message, StringComparison.Ordinal);

        // The last good listener stays in force and no RDS change follows.
        Assert.Empty(await call.DrainAsync());
        Assert.Equal(versionBefore, h.Current.Version);
        Assert.Equal(RouteName, h.Current.Listeners[ListenerName].RouteConfigName);
    }

    [Fact]
    public async Task EdsClusterWithoutEdsClusterConfig_IsNacked_AsGrpcDoes_AndNoEdsNameIsSubscribed()
    {
        await using var h = new XdsClientHarness();
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await h.Transport.NextSotwCallAsync();
        await call.NextRequestAsync();
        call.Respond(Sotw(Lds, "l1", "n1", Listener()));
        await call.NextRequestAsync(); // ACK
        await call.NextRequestAsync(); // RDS subscription
        call.Respond(Sotw(Rds, "r1", "n2", Routes(RouteName, ClusterV1)));
        await call.NextRequestAsync(); // ACK
        await call.NextRequestAsync(); // CDS subscription

        call.Respond(Sotw(Cds, "c1", "n3", new Cluster { Name = ClusterV1, Type = Cluster.Types.DiscoveryType.Eds }));
        var nack = await call.NextRequestAsync();

        Assert.Equal((Cds, "", "n3"), (nack.TypeUrl, nack.VersionInfo, nack.ResponseNonce));
        Assert.Contains($"CDS resource '{ClusterV1}': type EDS requires eds_cluster_config (with eds_config ads or self)", nack.ErrorDetail.Message, StringComparison.Ordinal);
        Assert.False(h.Current.Clusters.ContainsKey(ClusterV1));
        // Before, the cluster was ACKed and the client subscribed to an EDS name that never came.
        Assert.DoesNotContain(await call.DrainAsync(), r => r.TypeUrl == Eds);
    }

    [Fact]
    public async Task PartiallyInvalidResponse_AcceptsValidResources_KeepsLastGoodOfInvalidOne()
    {
        await using var h = new XdsClientHarness();
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await ServeFullChainAsync(h);

        var updatedV1 = EdsCluster(ClusterV1);
        updatedV1.LbPolicy = Cluster.Types.LbPolicy.RingHash;
        var badV2 = EdsCluster(ClusterV2, "eds-v2");
        badV2.LbPolicy = Cluster.Types.LbPolicy.Maglev;
        call.Respond(Sotw(Cds, "c2", "n9", updatedV1, badV2));
        var nack = await call.NextRequestAsync();
        Assert.Equal(Cds, nack.TypeUrl);
        Assert.Equal("c1", nack.VersionInfo);
        Assert.Equal("n9", nack.ResponseNonce);
        Assert.Contains($"CDS resource '{ClusterV2}': lb_policy Maglev is not supported", nack.ErrorDetail.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(ClusterV1, nack.ErrorDetail.Message, StringComparison.Ordinal);

        var snapshot = await h.WaitAsync(s => s.Clusters[ClusterV1].Cluster.LbPolicy == Cluster.Types.LbPolicy.RingHash);
        Assert.Equal(Cluster.Types.LbPolicy.RoundRobin, snapshot.Clusters[ClusterV2].Cluster.LbPolicy);
        Assert.True(snapshot.IsComplete(ListenerName));
    }

    [Fact]
    public async Task SotwResponseWithoutCluster_DeletesCluster_AndUnwatchesItsEndpoints()
    {
        await using var h = new XdsClientHarness();
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await ServeFullChainAsync(h);

        call.Respond(Sotw(Cds, "c2", "n10", EdsCluster(ClusterV1)));
        Assert.Null((await call.NextRequestAsync()).ErrorDetail);
        var eds = await call.NextRequestAsync();
        Assert.Equal(Eds, eds.TypeUrl);
        Assert.Equal([ClusterV1], eds.ResourceNames);
        Assert.Equal("e1", eds.VersionInfo);

        var snapshot = await h.WaitAsync(s => !s.Clusters.ContainsKey(ClusterV2));
        Assert.False(snapshot.Endpoints.ContainsKey("eds-v2"));
        Assert.True(snapshot.Clusters.ContainsKey(ClusterV1));
        // Settled, not incomplete: the server said ClusterV2 does not exist, so requests routed to it get 503 (NC)
        // at once, as Envoy answers a cluster it does not know, instead of waiting for it.
        Assert.Equal([ClusterV2], snapshot.MissingClusters);
        Assert.True(snapshot.IsComplete(ListenerName));
    }

    [Fact]
    public async Task SotwResponseWithoutListener_DeletesListener_AndUnwatchesEverythingBelow()
    {
        await using var h = new XdsClientHarness();
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await ServeFullChainAsync(h);

        call.Respond(Sotw(Lds, "l2", "n11"));
        Assert.Equal("l2", (await call.NextRequestAsync()).VersionInfo);
        var requests = await call.NextRequestsAsync(3);
        Assert.Equal([Rds, Cds, Eds], requests.Select(r => r.TypeUrl));
        Assert.All(requests, r => Assert.Empty(r.ResourceNames));

        var snapshot = await h.WaitAsync(s => s.Listeners.Count == 0);
        Assert.Equal([ListenerName], snapshot.MissingListeners);
        Assert.Empty(snapshot.Routes);
        Assert.Empty(snapshot.Clusters);
        Assert.Empty(snapshot.Endpoints);
    }

    [Fact]
    public async Task IgnoreResourceDeletion_KeepsListenerAndCluster_MissingFromResponse()
    {
        await using var h = new XdsClientHarness(serverFeatures: [XdsServerConfig.IgnoreResourceDeletionFeature]);
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await ServeFullChainAsync(h);
        var version = h.Current.Version;

        call.Respond(Sotw(Cds, "c2", "n12", EdsCluster(ClusterV1)));
        Assert.Equal("c2", (await call.NextRequestAsync()).VersionInfo);
        call.Respond(Sotw(Lds, "l2", "n13"));
        Assert.Equal("l2", (await call.NextRequestAsync()).VersionInfo);

        Assert.Empty(await call.DrainAsync());
        Assert.Equal(version, h.Current.Version);
        Assert.True(h.Current.IsComplete(ListenerName));
        Assert.True(h.Current.Clusters.ContainsKey(ClusterV2));
    }

    [Fact]
    public async Task IgnoreResourceDeletion_StillReportsAListenerNeverReceived_AsMissingAtOnce()
    {
        await using var h = new XdsClientHarness(serverFeatures: [XdsServerConfig.IgnoreResourceDeletionFeature]);
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await h.Transport.NextSotwCallAsync();
        Assert.Equal([ListenerName], (await call.NextRequestAsync()).ResourceNames);

        // gRFC A53: the feature protects what was received; a name the server leaves out of its
        // first answer does not exist, without waiting for the does-not-exist timer.
        call.Respond(Sotw(Lds, "l1", "n1"));
        Assert.Equal("l1", (await call.NextRequestAsync()).VersionInfo);

        var snapshot = await h.WaitAsync(s => s.MissingListeners.Count == 1);
        Assert.Equal([ListenerName], snapshot.MissingListeners);
        Assert.Empty(snapshot.Listeners);
    }

    [Fact]
    public async Task SotwResponseWithoutRouteOrEndpoints_DoesNotDeleteThem()
    {
        await using var h = new XdsClientHarness();
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await ServeFullChainAsync(h);
        var version = h.Current.Version;

        call.Respond(Sotw(Rds, "r2", "n14"));
        Assert.Equal("r2", (await call.NextRequestAsync()).VersionInfo);
        call.Respond(Sotw(Eds, "e2", "n15", Endpoints(ClusterV1, "10.0.0.1:9080")));
        Assert.Equal("e2", (await call.NextRequestAsync()).VersionInfo);

        Assert.Empty(await call.DrainAsync());
        Assert.Equal(version, h.Current.Version);
        Assert.True(h.Current.IsComplete(ListenerName));
    }

    [Fact]
    public async Task RouteChange_FollowsNewClusters_AndUnwatchesOldOnes()
    {
        await using var h = new XdsClientHarness();
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await ServeFullChainAsync(h);

        const string clusterV3 = "outbound|9080|v3|reviews.default.svc.cluster.local";
        call.Respond(Sotw(Rds, "r2", "n20", Routes(RouteName, clusterV3)));
        Assert.Equal("r2", (await call.NextRequestAsync()).VersionInfo);
        var cds = await call.NextRequestAsync();
        Assert.Equal(Cds, cds.TypeUrl);
        Assert.Equal([clusterV3], cds.ResourceNames);
        Assert.Equal("c1", cds.VersionInfo);
        Assert.Equal("n3", cds.ResponseNonce);
        var eds = await call.NextRequestAsync();
        Assert.Equal(Eds, eds.TypeUrl);
        Assert.Empty(eds.ResourceNames);

        call.Respond(Sotw(Cds, "c2", "n21", EdsCluster(clusterV3)));
        Assert.Equal("c2", (await call.NextRequestAsync()).VersionInfo);
        Assert.Equal([clusterV3], (await call.NextRequestAsync()).ResourceNames);
        call.Respond(Sotw(Eds, "e2", "n22", Endpoints(clusterV3, "10.0.0.9:9080")));
        Assert.Equal("e2", (await call.NextRequestAsync()).VersionInfo);

        var snapshot = await h.WaitAsync(s => s.IsComplete(ListenerName) && s.Clusters.ContainsKey(clusterV3));
        Assert.Equal([clusterV3], snapshot.Clusters.Keys);
        Assert.Equal([clusterV3], snapshot.Endpoints.Keys);
    }

    [Fact]
    public async Task RemovingListener_UnwatchesAllDependencies()
    {
        await using var h = new XdsClientHarness();
        var handle = h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await ServeFullChainAsync(h);

        handle.Dispose();
        var requests = await call.NextRequestsAsync(4);
        Assert.Equal([Lds, Rds, Cds, Eds], requests.Select(r => r.TypeUrl));
        Assert.All(requests, r => Assert.Empty(r.ResourceNames));
        Assert.Empty(h.Current.Listeners);
        Assert.Empty(h.Current.Endpoints);
    }

    [Fact]
    public async Task StreamFailure_KeepsLastGoodSnapshot_AndResubscribesEveryNameWithAcceptedVersions()
    {
        await using var h = new XdsClientHarness();
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await ServeFullChainAsync(h);
        var before = h.Current;
        var timers = h.Time.TimersCreated;

        call.Fail();
        await h.Time.WaitForTimersAsync(timers + 1);
        Assert.Same(before, h.Current);
        Assert.True(h.Current.IsComplete(ListenerName));
        Assert.Single(h.Transport.OpenTimes);

        // The stream had seen responses, so the backoff restarts at 1 s (jitter fixed at 0 here).
        h.Time.Advance(TimeSpan.FromMilliseconds(999));
        await Task.Delay(50);
        Assert.Single(h.Transport.OpenTimes);
        h.Time.Advance(TimeSpan.FromMilliseconds(1));
        var second = await h.Transport.NextSotwCallAsync();
        Assert.True(call.Disposed);

        var requests = new List<DiscoveryRequest>();
        for (var i = 0; i < 4; i++)
        {
            requests.Add(await second.NextRequestAsync());
        }

        Assert.Equal([Lds, Rds, Cds, Eds], requests.Select(r => r.TypeUrl));
        Assert.Equal(["l1", "r1", "c1", "e1"], requests.Select(r => r.VersionInfo));
        Assert.All(requests, r => Assert.Equal(string.Empty, r.ResponseNonce));
        Assert.NotNull(requests[0].Node);
        Assert.All(requests.Skip(1), r => Assert.Null(r.Node));
        Assert.Equal([ListenerName], requests[0].ResourceNames);
        Assert.Equal([RouteName], requests[1].ResourceNames);
        Assert.Equal([ClusterV1, ClusterV2], requests[2].ResourceNames);
        Assert.Equal(["eds-v2", ClusterV1], requests[3].ResourceNames);
        Assert.Same(before, h.Current);
    }

    [Fact]
    public async Task UnknownResourceType_IsNacked()
    {
        await using var h = new XdsClientHarness();
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await h.Transport.NextSotwCallAsync();
        await call.NextRequestAsync();
        call.Respond(new DiscoveryResponse { TypeUrl = "type.googleapis.com/example.Unknown", VersionInfo = "1", Nonce = "x" });
        var nack = await call.NextRequestAsync();
        Assert.Equal("x", nack.ResponseNonce);
        Assert.Contains("unsupported resource type 'type.googleapis.com/example.Unknown'", nack.ErrorDetail.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ResourceOfWrongTypeInResponse_IsNacked()
    {
        await using var h = new XdsClientHarness();
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await h.Transport.NextSotwCallAsync();
        await call.NextRequestAsync();
        var response = Sotw(Lds, "1", "x", Listener());
        response.Resources.Add(Google.Protobuf.WellKnownTypes.Any.Pack(EdsCluster("c")));
        call.Respond(response);
        var nack = await call.NextRequestAsync();
        Assert.Equal(string.Empty, nack.VersionInfo);
        Assert.Contains($"has type '{Cds}'", nack.ErrorDetail.Message, StringComparison.Ordinal);
        await h.WaitAsync(s => s.Listeners.ContainsKey(ListenerName));
    }

    [Fact]
    public async Task ListenersSwappingRoutesInOneResponse_KeepBothRoutes_WithoutResubscribing()
    {
        const string listenerB = "ratings.default.svc.cluster.local:9080";
        await using var h = new XdsClientHarness();
        h.Client.AddListener(ListenerName);
        h.Client.AddListener(listenerB);
        h.Client.Start();
        var call = await h.Transport.NextSotwCallAsync();
        Assert.Equal([listenerB, ListenerName], (await call.NextRequestAsync()).ResourceNames);
        call.Respond(Sotw(Lds, "l1", "n1", Listener(ListenerName, "route-r"), Listener(listenerB, "route-s")));
        Assert.Equal("l1", (await call.NextRequestAsync()).VersionInfo);
        Assert.Equal(["route-r", "route-s"], (await call.NextRequestAsync()).ResourceNames);
        call.Respond(Sotw(Rds, "r1", "n2", Routes("route-r", ClusterV1), Routes("route-s", ClusterV1)));
        Assert.Equal("r1", (await call.NextRequestAsync()).VersionInfo);
        Assert.Equal([ClusterV1], (await call.NextRequestAsync()).ResourceNames);
        await h.WaitAsync(s => s.Routes.Count == 2);

        // A now uses S and B uses R: for a moment in between, R is referenced by nobody.
        call.Respond(Sotw(Lds, "l2", "n3", Listener(ListenerName, "route-s"), Listener(listenerB, "route-r")));
        Assert.Equal("l2", (await call.NextRequestAsync()).VersionInfo);
        var snapshot = await h.WaitAsync(s => s.Listeners[ListenerName].RouteConfigName == "route-s");
        Assert.Equal("route-r", snapshot.Listeners[listenerB].RouteConfigName);
        Assert.Equal(["route-r", "route-s"], snapshot.Routes.Keys.Order(StringComparer.Ordinal));
        Assert.True(snapshot.TryGetRouteConfiguration(listenerB, out var routes));
        Assert.Equal("route-r", routes.Name);
        Assert.Empty(await call.DrainAsync());
    }

    [Fact]
    public async Task ListenerNotSentWithin15Seconds_IsReportedMissing_UntilItArrives()
    {
        await using var h = new XdsClientHarness();
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await h.Transport.NextSotwCallAsync();
        await call.NextRequestAsync();
        await Task.Delay(30);

        h.Time.Advance(TimeSpan.FromSeconds(14.9));
        await Task.Delay(50);
        Assert.Empty(h.Current.MissingListeners);
        h.Time.Advance(TimeSpan.FromSeconds(0.1));
        var missing = await h.WaitAsync(s => s.MissingListeners.Contains(ListenerName));
        Assert.Empty(missing.Listeners);

        call.Respond(Sotw(Lds, "l1", "n1", Listener()));
        var present = await h.WaitAsync(s => s.Listeners.ContainsKey(ListenerName));
        Assert.Empty(present.MissingListeners);
    }
}

using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Mesh.Sdk.Tests.Xds.Fakes;
using Mesh.Sdk.Xds;
using static Mesh.Sdk.Tests.Xds.Fakes.TestResources;

namespace Mesh.Sdk.Tests.Xds;

public sealed class XdsClientDeltaTests
{
    private static (string, string, IMessage)[] One(string name, string version, IMessage resource) => [(name, version, resource)];

    private static void AssertAck(DeltaDiscoveryRequest request, string typeUrl, string nonce)
    {
        Assert.Equal(typeUrl, request.TypeUrl);
        Assert.Equal(nonce, request.ResponseNonce);
        Assert.Null(request.ErrorDetail);
        Assert.Empty(request.ResourceNamesSubscribe);
        Assert.Empty(request.ResourceNamesUnsubscribe);
    }

    private static void AssertSubscribe(DeltaDiscoveryRequest request, string typeUrl, string[] subscribe, string[]? unsubscribe = null)
    {
        Assert.Equal(typeUrl, request.TypeUrl);
        Assert.Equal(subscribe, request.ResourceNamesSubscribe);
        Assert.Equal(unsubscribe ?? [], request.ResourceNamesUnsubscribe);
        Assert.Equal(string.Empty, request.ResponseNonce);
    }

    private static async Task<FakeAdsCall<DeltaDiscoveryRequest, DeltaDiscoveryResponse>> ServeFullChainAsync(XdsClientHarness h)
    {
        var call = await h.Transport.NextDeltaCallAsync();
        var first = await call.NextRequestAsync();
        AssertSubscribe(first, Lds, [ListenerName]);
        Assert.Equal("sidecar~10.0.0.1~app.default~default.svc.cluster.local", first.Node.Id);

        call.Respond(Delta(Lds, "d1", One(ListenerName, "1", Listener())));
        AssertAck(await call.NextRequestAsync(), Lds, "d1");
        AssertSubscribe(await call.NextRequestAsync(), Rds, [RouteName]);

        call.Respond(Delta(Rds, "d2", One(RouteName, "1", Routes(RouteName, ClusterV1))));
        AssertAck(await call.NextRequestAsync(), Rds, "d2");
        AssertSubscribe(await call.NextRequestAsync(), Cds, [ClusterV1]);

        call.Respond(Delta(Cds, "d3", One(ClusterV1, "1", EdsCluster(ClusterV1))));
        AssertAck(await call.NextRequestAsync(), Cds, "d3");
        AssertSubscribe(await call.NextRequestAsync(), Eds, [ClusterV1]);

        call.Respond(Delta(Eds, "d4", One(ClusterV1, "1", Endpoints(ClusterV1, "10.0.0.1:9080"))));
        AssertAck(await call.NextRequestAsync(), Eds, "d4");
        await h.WaitAsync(s => s.IsComplete(ListenerName));
        return call;
    }

    [Fact]
    public void DeltaServerFeature_SelectsDelta_AndOptionOverridesIt()
    {
        var server = new XdsServerConfig("127.0.0.1:1", "insecure", [XdsServerConfig.DeltaFeature]);
        Assert.Equal(XdsProtocol.Delta, new XdsClientOptions().ResolveProtocol(server));
        Assert.Equal(XdsProtocol.Sotw, new XdsClientOptions { Protocol = XdsProtocol.Sotw }.ResolveProtocol(server));
        Assert.Equal(XdsProtocol.Sotw, new XdsClientOptions().ResolveProtocol(server with { ServerFeatures = [] }));
    }

    [Fact]
    public async Task FullChain_SubscribesIncrementally_AndAcksEachNonce()
    {
        await using var h = new XdsClientHarness(XdsProtocol.Delta);
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        await ServeFullChainAsync(h);
        Assert.True(h.Current.TryGetEndpoints(ClusterV1, out var endpoints));
        Assert.Equal("10.0.0.1", endpoints.Endpoints[0].LbEndpoints[0].Endpoint.Address.SocketAddress.Address);
    }

    [Fact]
    public async Task RouteChange_SubscribesNewAndUnsubscribesOldInOneRequestPerType()
    {
        await using var h = new XdsClientHarness(XdsProtocol.Delta);
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await ServeFullChainAsync(h);

        call.Respond(Delta(Rds, "d5", One(RouteName, "2", Routes(RouteName, ClusterV2))));
        AssertAck(await call.NextRequestAsync(), Rds, "d5");
        AssertSubscribe(await call.NextRequestAsync(), Cds, [ClusterV2], [ClusterV1]);
        AssertSubscribe(await call.NextRequestAsync(), Eds, [], [ClusterV1]);

        call.Respond(Delta(Cds, "d6", One(ClusterV2, "1", EdsCluster(ClusterV2))));
        AssertAck(await call.NextRequestAsync(), Cds, "d6");
        AssertSubscribe(await call.NextRequestAsync(), Eds, [ClusterV2]);
        call.Respond(Delta(Eds, "d7", One(ClusterV2, "1", Endpoints(ClusterV2, "10.0.0.2:9080"))));
        AssertAck(await call.NextRequestAsync(), Eds, "d7");

        var snapshot = await h.WaitAsync(s => s.IsComplete(ListenerName) && s.Clusters.ContainsKey(ClusterV2));
        Assert.Equal([ClusterV2], snapshot.Clusters.Keys);
        Assert.Equal([ClusterV2], snapshot.Endpoints.Keys);
    }

    [Fact]
    public async Task RemovedResources_DeleteClusterAndUnsubscribeItsEndpoints()
    {
        await using var h = new XdsClientHarness(XdsProtocol.Delta);
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await ServeFullChainAsync(h);

        call.Respond(Delta(Cds, "d8", [], ClusterV1));
        AssertAck(await call.NextRequestAsync(), Cds, "d8");
        AssertSubscribe(await call.NextRequestAsync(), Eds, [], [ClusterV1]);
        var snapshot = await h.WaitAsync(s => !s.Clusters.ContainsKey(ClusterV1));
        Assert.Empty(snapshot.Endpoints);
        Assert.True(snapshot.Listeners.ContainsKey(ListenerName));
    }

    [Fact]
    public async Task RemovedEndpoints_AreDeletedInDelta()
    {
        await using var h = new XdsClientHarness(XdsProtocol.Delta);
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await ServeFullChainAsync(h);

        call.Respond(Delta(Eds, "d9", [], ClusterV1));
        AssertAck(await call.NextRequestAsync(), Eds, "d9");
        var snapshot = await h.WaitAsync(s => s.Endpoints.Count == 0);
        Assert.True(snapshot.Clusters.ContainsKey(ClusterV1));
        Assert.False(snapshot.IsComplete(ListenerName));
    }

    [Fact]
    public async Task IgnoreResourceDeletion_KeepsRemovedListener()
    {
        await using var h = new XdsClientHarness(XdsProtocol.Delta, [XdsServerConfig.IgnoreResourceDeletionFeature]);
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await ServeFullChainAsync(h);
        var version = h.Current.Version;

        call.Respond(Delta(Lds, "d10", [], ListenerName));
        AssertAck(await call.NextRequestAsync(), Lds, "d10");
        Assert.Empty(await call.DrainAsync());
        Assert.Equal(version, h.Current.Version);
        Assert.True(h.Current.IsComplete(ListenerName));
    }

    [Fact]
    public async Task IgnoreResourceDeletion_StillReportsAListenerNeverReceived_AsMissingAtOnce()
    {
        await using var h = new XdsClientHarness(XdsProtocol.Delta, [XdsServerConfig.IgnoreResourceDeletionFeature]);
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await h.Transport.NextDeltaCallAsync();
        AssertSubscribe(await call.NextRequestAsync(), Lds, [ListenerName]);

        call.Respond(Delta(Lds, "d1", [], ListenerName));
        AssertAck(await call.NextRequestAsync(), Lds, "d1");

        var snapshot = await h.WaitAsync(s => s.MissingListeners.Count == 1);
        Assert.Equal([ListenerName], snapshot.MissingListeners);
    }

    [Fact]
    public async Task InvalidResource_IsNackedByNonce_AndLastGoodStays()
    {
        await using var h = new XdsClientHarness(XdsProtocol.Delta);
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await ServeFullChainAsync(h);
        var version = h.Current.Version;

        var bad = Endpoints(ClusterV1, "not-an-ip:9080");
        call.Respond(Delta(Eds, "d11", One(ClusterV1, "2", bad)));
        var nack = await call.NextRequestAsync();
        Assert.Equal(Eds, nack.TypeUrl);
        Assert.Equal("d11", nack.ResponseNonce);
        Assert.Equal(3, nack.ErrorDetail.Code);
        Assert.Contains($"EDS resource '{ClusterV1}': endpoints[0].lb_endpoints[0] address 'not-an-ip' is not an IP address", nack.ErrorDetail.Message, StringComparison.Ordinal);
        Assert.Empty(await call.DrainAsync());
        Assert.Equal(version, h.Current.Version);
        Assert.True(h.Current.TryGetEndpoints(ClusterV1, out var endpoints));
        Assert.Equal("10.0.0.1", endpoints.Endpoints[0].LbEndpoints[0].Endpoint.Address.SocketAddress.Address);
    }

    [Fact]
    public async Task RemovingListener_UnsubscribesEverything()
    {
        await using var h = new XdsClientHarness(XdsProtocol.Delta);
        var handle = h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await ServeFullChainAsync(h);

        handle.Dispose();
        var requests = await call.NextRequestsAsync(4);
        Assert.Equal([Lds, Rds, Cds, Eds], requests.Select(r => r.TypeUrl));
        Assert.Equal([ListenerName, RouteName, ClusterV1, ClusterV1], requests.Select(r => Assert.Single(r.ResourceNamesUnsubscribe)));
        Assert.All(requests, r => Assert.Empty(r.ResourceNamesSubscribe));
        Assert.Empty(h.Current.Listeners);
    }

    [Fact]
    public async Task Reconnect_SendsInitialResourceVersions_ForEveryWatchedName()
    {
        await using var h = new XdsClientHarness(XdsProtocol.Delta);
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await ServeFullChainAsync(h);
        var before = h.Current;
        var timers = h.Time.TimersCreated;

        call.Fail();
        await h.Time.WaitForTimersAsync(timers + 1);
        h.Time.Advance(TimeSpan.FromSeconds(1));
        var second = await h.Transport.NextDeltaCallAsync();
        var requests = new List<DeltaDiscoveryRequest>();
        for (var i = 0; i < 4; i++)
        {
            requests.Add(await second.NextRequestAsync());
        }

        Assert.Equal([Lds, Rds, Cds, Eds], requests.Select(r => r.TypeUrl));
        Assert.NotNull(requests[0].Node);
        Assert.All(requests.Skip(1), r => Assert.Null(r.Node));
        Assert.Equal([ListenerName, RouteName, ClusterV1, ClusterV1], requests.Select(r => Assert.Single(r.ResourceNamesSubscribe)));
        Assert.All(requests, r => Assert.Equal("1", Assert.Single(r.InitialResourceVersions).Value));
        Assert.Same(before, h.Current);
    }
}

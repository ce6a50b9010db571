using Envoy.Config.Listener.V3;
using Envoy.Service.Discovery.V3;
using Google.Protobuf.WellKnownTypes;
using Grpc.Net.Client;
using Mesh.Xds;

namespace Mesh.ControlPlane.Tests.Xds;

/// <summary>
/// A gRPC server's inbound listener over real ADS streams (SotW and Delta): a self-registered workload asks for
/// <c>xds.istio.io/grpc/lds/inbound/&lt;its ip&gt;:&lt;its port&gt;</c>, gets a plaintext listener, and is pushed the
/// mTLS one when a PeerAuthentication selecting it is written, and the plaintext one again when it is removed.
/// </summary>
public sealed class AdsInboundListenerTests : IAsyncLifetime
{
    private const string InboundName = "xds.istio.io/grpc/lds/inbound/127.0.0.9:41299";
    private static readonly TimeSpan PushWait = TimeSpan.FromSeconds(15);

    private const string StrictForReviews = """
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {name: reviews, namespace: default}
        spec:
          selector: {matchLabels: {app: reviews}}
          mtls: {mode: STRICT}
        """;

    private readonly DirectoryInfo _config = Directory.CreateTempSubdirectory("mesh-ads-inbound-");
    private MeshControlPlane _controlPlane = null!;
    private GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        _controlPlane = new MeshControlPlane(new MeshControlPlaneOptions { XdsPort = 0, ConfigDirectory = _config.FullName });
        await _controlPlane.StartAsync();
        _channel = GrpcChannel.ForAddress(_controlPlane.XdsUri!);
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _controlPlane.DisposeAsync();
        _config.Delete(recursive: true);
    }

    // The workload registers itself at 127.0.0.9:41299 with app=reviews; the inbound name is resolved through that registration.
    private static Envoy.Config.Core.V3.Node Workload() => Ads.Node("reviews-1", metadata: m =>
    {
        m.Fields["MESH_SERVICE"] = Value.ForString("reviews");
        m.Fields["INSTANCE_IPS"] = Value.ForString("127.0.0.9");
        m.Fields["LABELS"] = Value.ForStruct(new Struct { Fields = { ["app"] = Value.ForString("reviews") } });
        m.Fields["MESH_PORTS"] = Value.ForStruct(new Struct { Fields = { ["9080"] = Value.ForNumber(41299) } });
    });

    private void Write(string content)
    {
        // Written beside and renamed over, so the watcher never reads half a file.
        var temp = Path.Combine(_config.FullName, ".pa.yaml.tmp");
        File.WriteAllText(temp, content);
        File.Move(temp, Path.Combine(_config.FullName, "pa.yaml"), overwrite: true);
    }

    private static string ChainName(Listener listener) => string.Join(",", listener.FilterChains.Select(c => c.Name));

    // PERMISSIVE (no policy) is one plaintext chain for a gRPC server, a tls chain and a raw_buffer chain for Mesh.Sdk.
    private const string Permissive = "inbound-plaintext";
    private const string SdkPermissive = "inbound-mtls,inbound-plaintext";

    [Fact]
    public async Task Sotw_InboundListener_FollowsPeerAuthentication()
    {
        await using var server = Ads.Sotw(_channel);
        await server.SendAsync(Ads.Request(XdsTypeUrls.Listener, [InboundName], Workload()));
        var first = await server.NextAsync();
        var listener = Assert.Single(first.Resources).Unpack<Listener>();
        Assert.Equal((InboundName, Permissive), (listener.Name, ChainName(listener)));
        await server.SendAsync(Ads.Ack(first, [InboundName]));

        Write(StrictForReviews);
        var strict = await server.NextAsync(PushWait);
        Assert.Equal("inbound-mtls", ChainName(Assert.Single(strict.Resources).Unpack<Listener>()));
        await server.SendAsync(Ads.Ack(strict, [InboundName]));

        File.Delete(Path.Combine(_config.FullName, "pa.yaml"));
        var plain = await server.NextAsync(PushWait);
        Assert.Equal(Permissive, ChainName(Assert.Single(plain.Resources).Unpack<Listener>()));
    }

    [Fact]
    public async Task Delta_InboundListener_FollowsPeerAuthentication()
    {
        await using var server = Ads.Delta(_channel);
        await server.SendAsync(new DeltaDiscoveryRequest { TypeUrl = XdsTypeUrls.Listener, ResourceNamesSubscribe = { InboundName }, Node = Workload() });
        var first = await server.NextAsync();
        Assert.Equal(Permissive, ChainName(Assert.Single(first.Resources).Resource_.Unpack<Listener>()));
        await server.SendAsync(new DeltaDiscoveryRequest { TypeUrl = XdsTypeUrls.Listener, ResponseNonce = first.Nonce });

        Write(StrictForReviews);
        var strict = await server.NextAsync(PushWait);
        var resource = Assert.Single(strict.Resources);
        Assert.Equal(InboundName, resource.Name);
        Assert.Equal("inbound-mtls", ChainName(resource.Resource_.Unpack<Listener>()));
        Assert.Empty(strict.RemovedResources);
    }

    [Fact]
    public async Task TlsModeLabel_MakesAGrpcNodeStrict_NotAMeshSdkNode()
    {
        Write("""
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: permissive, namespace: default}
            spec: {mtls: {mode: PERMISSIVE}}
            """);
        var name = "xds.istio.io/grpc/lds/inbound/0.0.0.0:41300";
        Envoy.Config.Core.V3.Node Labelled(string id, string? userAgent)
        {
            var node = Ads.Node(id, metadata: m => m.Fields["LABELS"] = Value.ForStruct(new Struct { Fields = { ["security.istio.io/tlsMode"] = Value.ForString("istio") } }));
            if (userAgent is not null)
            {
                node.UserAgentName = userAgent;
            }

            return node;
        }

        await using var grpc = Ads.Sotw(_channel);
        await grpc.SendAsync(Ads.Request(XdsTypeUrls.Listener, [name], Labelled("grpc-1", "gRPC Python")));
        Assert.Equal("inbound-mtls", ChainName(Assert.Single((await grpc.NextAsync(PushWait)).Resources).Unpack<Listener>()));

        await using var sdk = Ads.Sotw(_channel);
        await sdk.SendAsync(Ads.Request(XdsTypeUrls.Listener, [name], Labelled("sdk-1", "Mesh.Sdk")));
        Assert.Equal(SdkPermissive, ChainName(Assert.Single((await sdk.NextAsync(PushWait)).Resources).Unpack<Listener>()));
    }
}

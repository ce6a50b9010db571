using Envoy.Config.Listener.V3;
using Envoy.Config.Trace.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Service.Discovery.V3;
using Grpc.Net.Client;
using Mesh.ControlPlane.Tests.Translation;
using Mesh.Xds;

namespace Mesh.ControlPlane.Tests.Xds;

/// <summary>
/// Tracing configuration over real ADS streams from a real control plane watching its config folder: a Mesh.Sdk node's
/// listener carries the HCM tracing of the mesh config and Telemetry resources, and is pushed again when they change.
/// </summary>
public sealed class AdsTelemetryTests : IAsyncLifetime
{
    private const string Reviews = "reviews.default.svc.cluster.local:9080";
    private static readonly TimeSpan PushWait = TimeSpan.FromSeconds(15);

    private readonly DirectoryInfo _config = Directory.CreateTempSubdirectory("mesh-ads-telemetry-");
    private MeshControlPlane _controlPlane = null!;
    private GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        File.WriteAllText(Path.Combine(_config.FullName, "reviews.yaml"), TestYaml.All);
        File.WriteAllText(Path.Combine(_config.FullName, "mesh.yaml"), TelemetryTranslationTests.MeshConfig);
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

    private void Write(string name, string content)
    {
        var temp = Path.Combine(_config.FullName, "." + name + ".tmp");
        File.WriteAllText(temp, content);
        File.Move(temp, Path.Combine(_config.FullName, name), overwrite: true);
    }

    private static Envoy.Config.Core.V3.Node Node(string id, string userAgent)
    {
        var node = Ads.Node(id);
        node.UserAgentName = userAgent;
        node.Cluster = "productpage.default";
        return node;
    }

    private static HttpConnectionManager.Types.Tracing? Tracing(DiscoveryResponse response) =>
        Assert.Single(response.Resources).Unpack<Listener>().ApiListener.ApiListener_.Unpack<HttpConnectionManager>().Tracing;

    [Fact]
    public async Task SdkNode_TracingFollowsTelemetryResources_GrpcNodeGetsNone()
    {
        await using var sdk = Ads.Sotw(_channel);
        await sdk.SendAsync(Ads.Request(XdsTypeUrls.Listener, [Reviews], Node("sdk-1", "Mesh.Sdk")));
        var first = await sdk.NextAsync(PushWait);
        var legacy = Tracing(first)!;
        Assert.Null(legacy.Provider); // mesh config only: istiod's enableTracing path, defaultConfig.tracing.sampling
        Assert.Equal(10d, legacy.RandomSampling.Value);
        await sdk.SendAsync(Ads.Ack(first, [Reviews]));

        Write("telemetry.yaml", TelemetryTranslationTests.MeshDefault100);
        var pushed = await sdk.NextAsync(PushWait);
        var tracing = Tracing(pushed)!;
        Assert.Equal(XdsExtensionNames.ZipkinTracer, tracing.Provider.Name);
        Assert.Equal("outbound|9411||zipkin.istio-system.svc.cluster.local", tracing.Provider.TypedConfig.Unpack<ZipkinConfig>().CollectorCluster);
        Assert.Equal(100d, tracing.RandomSampling.Value);
        await sdk.SendAsync(Ads.Ack(pushed, [Reviews]));

        Write("telemetry.yaml", TelemetryTranslationTests.MeshDefault100 + "\n---\n" + TelemetryTranslationTests.Namespace1);
        var overridden = await sdk.NextAsync(PushWait);
        Assert.Equal(1d, Tracing(overridden)!.RandomSampling.Value);
        await sdk.SendAsync(Ads.Ack(overridden, [Reviews]));

        // A Telemetry naming an undefined provider is rejected: nothing is pushed, the 1 % stays.
        Write("bad.yaml", """
            apiVersion: telemetry.istio.io/v1
            kind: Telemetry
            metadata: {name: bad, namespace: default}
            spec:
              selector: {matchLabels: {app: x}}
              tracing:
              - providers: [{name: jaeger}]
            """);
        Assert.Null(await sdk.TryNextAsync(TimeSpan.FromSeconds(2)));
        Assert.Contains(_controlPlane.ConfigErrors, e => e.File.EndsWith("bad.yaml", StringComparison.Ordinal) && e.Line == 7);

        await using var grpc = Ads.Sotw(_channel);
        await grpc.SendAsync(Ads.Request(XdsTypeUrls.Listener, [Reviews], Node("grpc-1", "gRPC C-core")));
        Assert.Null(Tracing(await grpc.NextAsync(PushWait)));
    }
}

using Grpc.Core;
using Grpc.Net.Client.Balancer;
using Mesh.Sdk.Grpc.Internal;
using Mesh.Sdk.Resources;
using Mesh.Sdk.Xds;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Mesh.Sdk.Tests.Grpc;

public sealed class XdsResolverTests : IDisposable
{
    private readonly FakeTimeProvider _time = new();
    private readonly MeshSnapshotSource _snapshots;
    private readonly MeshRuntime _runtime;

    public XdsResolverTests()
    {
        _snapshots = new MeshSnapshotSource(_time);
        var bootstrap = new XdsBootstrap([new XdsServerConfig("127.0.0.1:15010", "insecure", [])], new XdsNodeConfig { Id = "test" }, "test");
        _runtime = new MeshRuntime(new MeshOptions { Namespace = "default", InstanceIp = "10.1.0.9" }, bootstrap, _time, loggerFactory: null, _snapshots);
    }

    public void Dispose() => _runtime.Dispose();

    [Fact]
    public async Task TargetFirstNotInMesh_IsResolvedWhenItsListenerArrives()
    {
        // The first answer came from a control-plane snapshot older than the service: the listener does not exist.
        _snapshots.Publish(GrpcTestSnapshots.ListenerMissing(1));
        var results = new ResultRecorder();
        using var resolver = new XdsResolver(_runtime, GrpcTestSnapshots.Target, hasHandler: false, NullLogger.Instance);
        resolver.Start(results.Add);

        var failure = await results.NextAsync();
        Assert.Equal(StatusCode.Unavailable, failure.Status.StatusCode);
        Assert.Contains("'xds:///recorder:9090' is not in the mesh", failure.Status.Detail, StringComparison.Ordinal);
        Assert.Null(failure.Addresses);

        // The service registers; the next snapshot has its listener, routes, cluster and endpoints.
        _snapshots.Publish(GrpcTestSnapshots.Listener(2, withCluster: true));

        // The channel never refreshes a resolver whose first result failed: the update alone must resolve the target.
        var resolved = await results.NextAsync();
        Assert.Equal(StatusCode.OK, resolved.Status.StatusCode);
        var address = Assert.Single(resolved.Addresses!);
        Assert.Equal($"{GrpcTestSnapshots.Endpoint}:9090", address.EndPoint.ToString());
        Assert.True(address.Attributes.TryGetValue(MeshGrpcTarget.AttributeKey, out var target));
        Assert.Equal(GrpcTestSnapshots.Target, target.ListenerName);
    }

    private sealed class ResultRecorder
    {
        private readonly System.Threading.Channels.Channel<ResolverResult> _results = System.Threading.Channels.Channel.CreateUnbounded<ResolverResult>();

        public void Add(ResolverResult result) => _results.Writer.TryWrite(result);

        public async Task<ResolverResult> NextAsync() => await _results.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
    }
}

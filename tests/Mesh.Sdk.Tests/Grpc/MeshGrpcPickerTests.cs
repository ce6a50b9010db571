using System.Collections.Frozen;
using Grpc.Core;
using Grpc.Net.Client.Balancer;
using Mesh.Sdk.Grpc.Internal;
using Mesh.Sdk.Resources;
using Mesh.Sdk.Xds;
using Microsoft.Extensions.Time.Testing;

namespace Mesh.Sdk.Tests.Grpc;

public sealed class MeshGrpcPickerTests : IDisposable
{
    private readonly FakeTimeProvider _time = new();
    private readonly MeshSnapshotSource _snapshots;
    private readonly MeshRuntime _runtime;
    private Action<MeshSnapshot>? _beforeApplied;

    public MeshGrpcPickerTests()
    {
        _snapshots = new MeshSnapshotSource(_time);

        // Subscribed before the runtime: runs after a snapshot is published and before the runtime applies it.
        _snapshots.SnapshotChanged += snapshot => _beforeApplied?.Invoke(snapshot);
        var bootstrap = new XdsBootstrap([new XdsServerConfig("127.0.0.1:15010", "insecure", [])], new XdsNodeConfig { Id = "test" }, "test");
        _runtime = new MeshRuntime(new MeshOptions { Namespace = "default", InstanceIp = "10.1.0.9" }, bootstrap, _time, loggerFactory: null, _snapshots);
    }

    public void Dispose() => _runtime.Dispose();

    [Fact]
    public void Pick_ClusterPublishedButNotYetApplied_IsQueuedNotUnknown()
    {
        // The route names a cluster the client has not received yet.
        _snapshots.Publish(GrpcTestSnapshots.Listener(1, withCluster: false));
        var picker = new MeshGrpcPicker(
            _runtime,
            new MeshGrpcTarget(GrpcTestSnapshots.Target, GrpcTestSnapshots.Target, HasMeshHandler: false),
            FrozenDictionary<string, Subchannel>.Empty,
            static _ => null,
            static () => FrozenDictionary<string, Subchannel>.Empty);
        Assert.Equal(PickResultType.Queue, Pick(picker).Type);

        // The cluster arrives: a call picked between its publication and its application to the tables waits for it.
        PickResult? during = null;
        _beforeApplied = _ => during = Pick(picker);
        _snapshots.Publish(GrpcTestSnapshots.Listener(2, withCluster: true));

        Assert.NotNull(during);
        Assert.True(during.Type == PickResultType.Queue, $"{during.Type}: {during.Status}");
        Assert.True(_runtime.Clusters.TryGetCluster(GrpcTestSnapshots.Cluster, out _));
    }

    private static PickResult Pick(MeshGrpcPicker picker)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "http://recorder:9090/recorder.Recorder/Record");
        return picker.Pick(new PickContext { Request = request });
    }
}

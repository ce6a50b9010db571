using Mesh.Sdk.Resources;
using Mesh.Sdk.Xds;
using Mesh.Sdk.Xds.Internal;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.Tests.Xds.Fakes;

/// <summary>An <see cref="XdsClient"/> wired to a <see cref="FakeAdsTransport"/> and a fake clock.</summary>
internal sealed class XdsClientHarness : IAsyncDisposable
{
    public XdsClientHarness(XdsProtocol protocol = XdsProtocol.Sotw, string[]? serverFeatures = null, Random? random = null, ILoggerFactory? loggerFactory = null, BackoffSettings? backoff = null)
    {
        Time = new CountingTimeProvider();
        Transport = new FakeAdsTransport(Time);
        var bootstrap = new XdsBootstrap(
            [new XdsServerConfig("127.0.0.1:15010", "insecure", serverFeatures ?? [])],
            new XdsNodeConfig { Id = "sidecar~10.0.0.1~app.default~default.svc.cluster.local", Cluster = "app", Locality = new XdsLocality("r1", "z1", string.Empty) },
            "test");
        Client = new XdsClient(bootstrap, new XdsClientOptions { Protocol = protocol }, Transport, Time, random ?? new FixedRandom(0.5), loggerFactory, backoff);
    }

    public CountingTimeProvider Time { get; }

    public FakeAdsTransport Transport { get; }

    public XdsClient Client { get; }

    public MeshSnapshot Current => Client.Snapshots.Current;

    /// <summary>Waits (in real time) for a snapshot satisfying <paramref name="predicate"/>.</summary>
    public async Task<MeshSnapshot> WaitAsync(Func<MeshSnapshot, bool> predicate)
    {
        var deadline = DateTime.UtcNow + FakeAdsTransport.Timeout;
        while (true)
        {
            var snapshot = Client.Snapshots.Current;
            if (predicate(snapshot))
            {
                return snapshot;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"No snapshot satisfied the condition; current version {snapshot.Version}.");
            }

            await Task.Delay(5);
        }
    }

    public ValueTask DisposeAsync() => Client.DisposeAsync();
}

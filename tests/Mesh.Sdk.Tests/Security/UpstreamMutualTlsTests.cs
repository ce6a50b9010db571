using Envoy.Config.Core.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.LoadBalancing;
using Mesh.Sdk.Security;
using Microsoft.Extensions.Time.Testing;

namespace Mesh.Sdk.Tests.Security;

public sealed class UpstreamMutualTlsTests
{
    private const string ClusterName = "outbound|9080||reviews.default.svc.cluster.local";

    [Fact]
    public async Task NoCertificateYet_WaitsFiveSeconds_ThenRefusesNamingTheSource_AndClosesTheConnection()
    {
        var time = new FakeTimeProvider();
        await using var source = new NeverSource();
        source.Start();
        var tls = new UpstreamMutualTls(source, time);
        var transport = new TrackingStream();
        var mutual = EndpointTransport.Of(ClusterName, new TransportSocket
        {
            Name = "envoy.transport_sockets.tls",
            TypedConfig = Any.Pack(new UpstreamTlsContext
            {
                CommonTlsContext = new CommonTlsContext { TlsCertificateProviderInstance = new CertificateProviderPluginInstance { InstanceName = "default", CertificateName = "default" } },
            }),
        });

        var handshake = tls.AuthenticateAsync(transport, ClusterName, "10.0.0.1:9080", mutual, http2: false, CancellationToken.None).AsTask();
        time.Advance(UpstreamMutualTls.FirstCertificateWait - TimeSpan.FromMilliseconds(1));
        Assert.False(handshake.IsCompleted);
        time.Advance(TimeSpan.FromMilliseconds(1));
        var error = await Assert.ThrowsAsync<UpstreamTlsException>(() => handshake);

        Assert.Equal(
            $"Cluster '{ClusterName}' requires Istio mutual TLS, but this workload has no certificate yet (waited 5 s for the first one from the test source); the connection to endpoint '10.0.0.1:9080' was not made.",
            error.Message);
        Assert.True(transport.Disposed);
    }

    private sealed class NeverSource : WorkloadCertificateSource
    {
        public override string Description => "the test source";

        protected override Task RunAsync(CancellationToken stopping) => Task.Delay(Timeout.Infinite, stopping);
    }

    private sealed class TrackingStream : MemoryStream
    {
        public bool Disposed { get; private set; }

        protected override void Dispose(bool disposing)
        {
            Disposed = true;
            base.Dispose(disposing);
        }
    }
}

using System.Collections.Frozen;
using System.Net;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Mesh.Sdk.Http;
using Mesh.Sdk.Resources;
using Mesh.Sdk.Xds;
using Microsoft.Extensions.Time.Testing;
using EnvoyCluster = Envoy.Config.Cluster.V3.Cluster;

namespace Mesh.Sdk.Tests.Http;

/// <summary>
/// Request bodies in the attempt loop, against an in-memory upstream that answers before it has read the body (as an
/// HTTP/2 server may): the body keeps streaming to that attempt while the handler waits out its back-off.
/// </summary>
public sealed class MeshHttpHandlerBodyTests : IDisposable
{
    private const string Fqdn = "reviews.default.svc.cluster.local";
    private const string ListenerName = Fqdn + ":9080";
    private const string V1 = "outbound|9080|v1|" + Fqdn;

    private readonly FakeTimeProvider _time = new();
    private readonly MeshSnapshotSource _snapshots;
    private readonly MeshRuntime _runtime;
    private readonly MeshTransports _transports;
    private readonly HttpMessageInvoker _invoker;
    private readonly EarlyAnsweringHandler _upstream = new();

    public MeshHttpHandlerBodyTests()
    {
        _snapshots = new MeshSnapshotSource(_time);
        var bootstrap = new XdsBootstrap([new XdsServerConfig("127.0.0.1:15010", "insecure", [])], new XdsNodeConfig { Id = "test" }, "test");
        _runtime = new MeshRuntime(new MeshOptions { Namespace = "default", InstanceIp = "10.1.0.9", RequestBufferLimitBytes = 64 * 1024 }, bootstrap, _time, loggerFactory: null, _snapshots);
        _transports = new MeshTransports(_runtime, (_, _) => _upstream);
        _invoker = new HttpMessageInvoker(new MeshHttpHandler(_runtime, _transports) { InnerHandler = new EarlyAnsweringHandler() });
        Publish();
    }

    public void Dispose()
    {
        _invoker.Dispose();
        _transports.Dispose();
        _runtime.Dispose();
    }

    [Fact]
    public async Task BodyPassingTheLimitDuringTheBackOff_Answers507AndIsNotSentAgain()
    {
        // Resolves the host; 503, back-off on the fake clock, 503 again.
        var warming = _invoker.SendAsync(new HttpRequestMessage(HttpMethod.Get, "http://reviews:9080/warm"), CancellationToken.None);
        for (var i = 0; i < 1000 && !warming.IsCompleted; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(100));
            await Task.Delay(1);
        }

        using (var warm = await warming.WaitAsync(TimeSpan.FromSeconds(10)))
        {
            Assert.Equal((HttpStatusCode.ServiceUnavailable, 2), (warm.StatusCode, _upstream.Attempts));
        }

        _upstream.Attempts = 0;
        var produce = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var body = new PausedContent(200 * 1024, produce.Task);
        var sending = _invoker.SendAsync(new HttpRequestMessage(HttpMethod.Post, "http://reviews:9080/upload") { Content = body }, CancellationToken.None);

        // The first attempt was answered 503 (retriable) before any body byte was read; the retry waits for its
        // back-off on the fake clock while the body now streams on to the first attempt, past the 64 KiB limit.
        Assert.False(sending.IsCompleted);
        produce.SetResult();
        await body.Done.WaitAsync(TimeSpan.FromSeconds(10));
        _time.Advance(TimeSpan.FromSeconds(1000));
        using var response = await sending.WaitAsync(TimeSpan.FromSeconds(10));

        // Envoy: "exceeded request buffer limit while retrying upstream".
        Assert.Equal((HttpStatusCode)507, response.StatusCode);
        Assert.Contains("exceeded the request buffer limit of 65536 bytes while retrying upstream", response.ReasonPhrase, StringComparison.Ordinal);
        Assert.Equal(1, _upstream.Attempts);
    }

    private void Publish()
    {
        var host = new VirtualHost { Name = ListenerName, Domains = { Fqdn, ListenerName, "reviews", "reviews:9080" } };
        host.Routes.Add(new Route
        {
            Name = "retried",
            Match = new RouteMatch { Prefix = "/" },
            Route_ = new RouteAction
            {
                Cluster = V1,
                Timeout = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.Zero),

                // A back-off below a millisecond is no wait at all (Task.Delay's granularity): a 1000 s base makes the
                // retry wait for the fake clock.
                RetryPolicy = new RetryPolicy
                {
                    RetryOn = "5xx",
                    NumRetries = 1,
                    RetryBackOff = new RetryPolicy.Types.RetryBackOff { BaseInterval = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(1000)) },
                },
            },
        });
        var routes = new RouteConfiguration { Name = "9080", VirtualHosts = { host } };
        var cluster = new EnvoyCluster
        {
            Name = V1,
            Type = EnvoyCluster.Types.DiscoveryType.Eds,
            EdsClusterConfig = new EnvoyCluster.Types.EdsClusterConfig { ServiceName = V1, EdsConfig = new ConfigSource { Ads = new AggregatedConfigSource() } },
        };
        var locality = new LocalityLbEndpoints { Locality = new Locality { Region = "r1" } };
        locality.LbEndpoints.Add(new LbEndpoint
        {
            HealthStatus = HealthStatus.Healthy,
            Endpoint = new Endpoint { Address = new Address { SocketAddress = new Envoy.Config.Core.V3.SocketAddress { Address = "10.0.0.1", PortValue = 9080 } } },
        });

        _snapshots.Publish(new MeshSnapshot(
            1,
            new Dictionary<string, ListenerResource> { [ListenerName] = new(ListenerName, new Listener { Name = ListenerName, ApiListener = new ApiListener() }, new HttpConnectionManager(), "9080", null) }.ToFrozenDictionary(),
            new Dictionary<string, RouteConfiguration> { ["9080"] = routes }.ToFrozenDictionary(),
            new Dictionary<string, ClusterResource> { [V1] = new(V1, cluster, V1) }.ToFrozenDictionary(),
            new Dictionary<string, ClusterLoadAssignment> { [V1] = new() { ClusterName = V1, Endpoints = { locality } } }.ToFrozenDictionary()));
    }

    /// <summary>Answers 503 at once and reads the request body in the background, to a sink, as an HTTP/2 stream may go on sending it.</summary>
    private sealed class EarlyAnsweringHandler : HttpMessageHandler
    {
        public int Attempts;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref Attempts);
            if (request.Content is { } content)
            {
                _ = content.CopyToAsync(Stream.Null, CancellationToken.None);
            }

            return Task.FromResult(new HttpResponseMessage(HttpStatusCode.ServiceUnavailable) { RequestMessage = request, Content = new ByteArrayContent([]) });
        }
    }

    /// <summary>A body that starts producing only when told, then writes its bytes in 8 KiB chunks.</summary>
    private sealed class PausedContent(int size, Task start) : HttpContent
    {
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Done => _done.Task;

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            await start;
            var chunk = new byte[8 * 1024];
            for (var written = 0; written < size; written += chunk.Length)
            {
                await stream.WriteAsync(chunk);
            }

            _done.TrySetResult();
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}

using System.Collections.Concurrent;
using Envoy.Service.Discovery.V3;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Mesh.Sdk.Tests.Xds.Fakes;
using Mesh.Sdk.Xds;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.Tests.Xds;

/// <summary>The real gRPC transport against a small ADS server on Kestrel, over a Unix domain socket.</summary>
public sealed class GrpcAdsTransportTests
{
    [Fact]
    public async Task UnixSocketServerUri_ReachesAdsServer_OverHttp2()
    {
        var socketPath = Path.Combine(Path.GetTempPath(), $"mesh-ads-{Guid.NewGuid():N}.sock");
        var server = new ListenerOnlyAds();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.ListenUnixSocket(socketPath, l => l.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(server);
        await using var app = builder.Build();
        app.MapGrpcService<ListenerOnlyAds>();
        await app.StartAsync();
        try
        {
            var bootstrap = XdsBootstrapLoader.Parse(
                $$"""{"xds_servers": [{"server_uri": "unix://{{socketPath}}", "channel_creds": [{"type": "insecure"}]}], "node": {"id": "uds-node"} }""",
                "test");
            await using var client = XdsClient.Create(bootstrap, new XdsClientOptions(), TimeProvider.System);
            client.AddListener(TestResources.ListenerName);
            client.Start();
            var snapshot = await client.Snapshots.WaitAsync(s => s.Listeners.ContainsKey(TestResources.ListenerName), TimeSpan.FromSeconds(20));
            Assert.Equal(TestResources.RouteName, snapshot.Listeners[TestResources.ListenerName].RouteConfigName);
            Assert.Equal("uds-node", server.NodeIds.Single());
        }
        finally
        {
            await app.StopAsync();
            File.Delete(socketPath);
        }
    }

    /// <summary>Answers the first LDS request with one listener and records who asked.</summary>
    private sealed class ListenerOnlyAds : AggregatedDiscoveryService.AggregatedDiscoveryServiceBase
    {
        public ConcurrentBag<string> NodeIds { get; } = [];

        public override async Task StreamAggregatedResources(IAsyncStreamReader<DiscoveryRequest> requestStream, IServerStreamWriter<DiscoveryResponse> responseStream, ServerCallContext context)
        {
            await foreach (var request in requestStream.ReadAllAsync(context.CancellationToken))
            {
                if (request.Node is { } node)
                {
                    NodeIds.Add(node.Id);
                }

                if (request.TypeUrl == TestResources.Lds && request.ResponseNonce.Length == 0)
                {
                    var response = new DiscoveryResponse { TypeUrl = TestResources.Lds, VersionInfo = "1", Nonce = "1" };
                    response.Resources.Add(Any.Pack(TestResources.Listener()));
                    await responseStream.WriteAsync(response, context.CancellationToken);
                }
            }
        }
    }
}

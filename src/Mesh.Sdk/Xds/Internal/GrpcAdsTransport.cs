using Envoy.Service.Discovery.V3;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.Xds.Internal;

/// <summary>ADS over grpc-dotnet: h2c to <c>host:port</c>, or HTTP/2 over a Unix domain socket.</summary>
internal sealed class GrpcAdsTransport : IAdsTransport
{
    private readonly GrpcChannel _channel;
    private readonly AggregatedDiscoveryService.AggregatedDiscoveryServiceClient _client;

    public GrpcAdsTransport(XdsServerConfig server, ILoggerFactory loggerFactory)
    {
        Target = server.ServerUri;
        _channel = ControlPlaneChannel.Create(server.ServerUri, loggerFactory, "xDS server_uri");
        _client = new AggregatedDiscoveryService.AggregatedDiscoveryServiceClient(_channel);
    }

    public string Target { get; }

    public IAdsCall<DiscoveryRequest, DiscoveryResponse> OpenSotw(CancellationToken cancellationToken) =>
        new GrpcAdsCall<DiscoveryRequest, DiscoveryResponse>(_client.StreamAggregatedResources(cancellationToken: cancellationToken));

    public IAdsCall<DeltaDiscoveryRequest, DeltaDiscoveryResponse> OpenDelta(CancellationToken cancellationToken) =>
        new GrpcAdsCall<DeltaDiscoveryRequest, DeltaDiscoveryResponse>(_client.DeltaAggregatedResources(cancellationToken: cancellationToken));

    public ValueTask DisposeAsync()
    {
        _channel.Dispose();
        return ValueTask.CompletedTask;
    }

    private sealed class GrpcAdsCall<TRequest, TResponse>(AsyncDuplexStreamingCall<TRequest, TResponse> call) : IAdsCall<TRequest, TResponse>
        where TRequest : class
        where TResponse : class
    {
        public Task SendAsync(TRequest request, CancellationToken cancellationToken) =>
            call.RequestStream.WriteAsync(request, cancellationToken);

        public async Task<TResponse?> ReceiveAsync(CancellationToken cancellationToken) =>
            await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false) ? call.ResponseStream.Current : null;

        public ValueTask DisposeAsync()
        {
            call.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}

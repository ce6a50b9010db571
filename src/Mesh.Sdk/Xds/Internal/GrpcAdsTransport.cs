using Envoy.Service.Discovery.V3;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.Xds.Internal;

/// <summary>
/// ADS over grpc-dotnet: h2c to <c>host:port</c>, or HTTP/2 over a Unix domain socket. Every stream gets a fresh
/// channel, owned by the call: a retry then makes a real connection attempt at once, so the client's ADS backoff is
/// the only one (a shared channel keeps its own reconnect backoff after a refused connection, and a call made while
/// it waits fails at once without trying, which stacked the two backoffs).
/// </summary>
internal sealed class GrpcAdsTransport : IAdsTransport
{
    private readonly string _serverUri;
    private readonly ILoggerFactory _loggerFactory;

    public GrpcAdsTransport(XdsServerConfig server, ILoggerFactory loggerFactory)
    {
        Target = server.ServerUri;
        _serverUri = server.ServerUri;
        _loggerFactory = new AdsChannelLoggerFactory(loggerFactory);

        // Fail at construction on an address that cannot be parsed, not on the first attempt.
        if (!XdsServerAddress.TryParse(server.ServerUri, out _, out var error))
        {
            throw new ArgumentException($"xDS server_uri {error}", nameof(server));
        }
    }

    public string Target { get; }

    public IAdsCall<DiscoveryRequest, DiscoveryResponse> OpenSotw(CancellationToken cancellationToken)
    {
        var channel = ControlPlaneChannel.Create(_serverUri, _loggerFactory, "xDS server_uri");
        var client = new AggregatedDiscoveryService.AggregatedDiscoveryServiceClient(channel);
        return new GrpcAdsCall<DiscoveryRequest, DiscoveryResponse>(channel, client.StreamAggregatedResources(cancellationToken: cancellationToken));
    }

    public IAdsCall<DeltaDiscoveryRequest, DeltaDiscoveryResponse> OpenDelta(CancellationToken cancellationToken)
    {
        var channel = ControlPlaneChannel.Create(_serverUri, _loggerFactory, "xDS server_uri");
        var client = new AggregatedDiscoveryService.AggregatedDiscoveryServiceClient(channel);
        return new GrpcAdsCall<DeltaDiscoveryRequest, DeltaDiscoveryResponse>(channel, client.DeltaAggregatedResources(cancellationToken: cancellationToken));
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private sealed class GrpcAdsCall<TRequest, TResponse>(GrpcChannel channel, AsyncDuplexStreamingCall<TRequest, TResponse> call) : IAdsCall<TRequest, TResponse>
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
            channel.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}

using Envoy.Service.Discovery.V3;

namespace Mesh.Sdk.Xds.Internal;

/// <summary>Opens ADS streams to one xDS server. Real: gRPC over HTTP/2; tests: an in-memory server.</summary>
internal interface IAdsTransport : IAsyncDisposable
{
    /// <summary>Where the streams go, for logs.</summary>
    string Target { get; }

    IAdsCall<DiscoveryRequest, DiscoveryResponse> OpenSotw(CancellationToken cancellationToken);

    IAdsCall<DeltaDiscoveryRequest, DeltaDiscoveryResponse> OpenDelta(CancellationToken cancellationToken);
}

/// <summary>One bidirectional ADS stream. Sends are not concurrent; receive runs on one reader.</summary>
internal interface IAdsCall<TRequest, TResponse> : IAsyncDisposable
    where TRequest : class
    where TResponse : class
{
    Task SendAsync(TRequest request, CancellationToken cancellationToken);

    /// <summary>The next response, or <see langword="null"/> when the server ended the stream.</summary>
    Task<TResponse?> ReceiveAsync(CancellationToken cancellationToken);
}

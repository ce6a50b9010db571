using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.Xds.Internal;

/// <summary>
/// A plaintext gRPC channel to a control-plane address in <c>server_uri</c> form (h2c to <c>host:port</c>, or HTTP/2
/// over a Unix domain socket): the ADS transport and the CA client talk to the control plane the same way.
/// </summary>
internal static class ControlPlaneChannel
{
    /// <summary>Creates the channel.</summary>
    /// <param name="serverUri">The address as written in the bootstrap: <c>host:port</c>, <c>dns:///host:port</c> or <c>unix:///path</c>.</param>
    /// <param name="loggerFactory">Where grpc-dotnet logs.</param>
    /// <param name="what">What the address is, for the error message (such as <c>xDS server_uri</c>).</param>
    /// <exception cref="ArgumentException">The address cannot be parsed.</exception>
    public static GrpcChannel Create(string serverUri, ILoggerFactory loggerFactory, string what)
    {
        if (!XdsServerAddress.TryParse(serverUri, out var address, out var error))
        {
            throw new ArgumentException($"{what} {error}", nameof(serverUri));
        }

        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = false,
            KeepAlivePingDelay = TimeSpan.FromSeconds(60),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(20),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.WithActiveRequests,
            ConnectTimeout = TimeSpan.FromSeconds(20),
        };
        if (address!.UnixEndPoint is { } endPoint)
        {
            handler.ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
                    return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            };
        }

        return GrpcChannel.ForAddress(address.HttpAddress, new GrpcChannelOptions
        {
            HttpHandler = handler,
            Credentials = ChannelCredentials.Insecure,
            LoggerFactory = loggerFactory,
            MaxReceiveMessageSize = null,
        });
    }
}

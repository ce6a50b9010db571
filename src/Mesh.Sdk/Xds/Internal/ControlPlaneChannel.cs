using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.Xds.Internal;

/// <summary>
/// A gRPC channel to a control-plane address in <c>server_uri</c> form (h2c to <c>host:port</c>, or HTTP/2 over a
/// Unix domain socket; TLS when roots to verify the server with are given): the ADS transport and the CA client
/// talk to the control plane the same way.
/// </summary>
internal static class ControlPlaneChannel
{
    /// <summary>Creates the channel.</summary>
    /// <param name="serverUri">The address as written in the bootstrap: <c>host:port</c>, <c>dns:///host:port</c> or <c>unix:///path</c>.</param>
    /// <param name="loggerFactory">Where grpc-dotnet logs.</param>
    /// <param name="what">What the address is, for the error message (such as <c>xDS server_uri</c>).</param>
    /// <param name="tlsRoots">
    /// When given, the channel speaks TLS and accepts only a server certificate that chains to these roots and names
    /// the address's host (as Istio's agent checks istiod's CA port).
    /// </param>
    /// <exception cref="ArgumentException">The address cannot be parsed.</exception>
    public static GrpcChannel Create(string serverUri, ILoggerFactory loggerFactory, string what, X509Certificate2Collection? tlsRoots = null)
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

        var target = address.HttpAddress;
        if (tlsRoots is not null)
        {
            target = new UriBuilder(target) { Scheme = Uri.UriSchemeHttps, Port = target.Port }.Uri;
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) => IsTrusted(certificate, errors, tlsRoots);
        }

        return GrpcChannel.ForAddress(target, new GrpcChannelOptions
        {
            HttpHandler = handler,
            Credentials = tlsRoots is null ? ChannelCredentials.Insecure : ChannelCredentials.SecureSsl,
            LoggerFactory = loggerFactory,
            MaxReceiveMessageSize = null,
        });
    }

    private static bool IsTrusted(X509Certificate? certificate, SslPolicyErrors errors, X509Certificate2Collection roots)
    {
        // The name check stays .NET's; only the trust anchor is ours.
        if (certificate is null || (errors & (SslPolicyErrors.RemoteCertificateNotAvailable | SslPolicyErrors.RemoteCertificateNameMismatch)) != 0)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
    }
}

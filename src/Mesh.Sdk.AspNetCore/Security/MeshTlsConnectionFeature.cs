using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Mesh.Sdk.Security.Authorization;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;

namespace Mesh.Sdk.AspNetCore.Security;

/// <summary>
/// What Kestrel and app code learn about a mesh mTLS connection, as Kestrel's own HTTPS middleware exposes it: the
/// client certificate, the negotiated ALPN protocol (Kestrel picks HTTP/1.1 or HTTP/2 by it) and the handshake.
/// </summary>
internal sealed class MeshTlsConnectionFeature(SslStream ssl) : ITlsConnectionFeature, ITlsApplicationProtocolFeature, ITlsHandshakeFeature
{
    private AuthenticatedPeer? _peer;

    public X509Certificate2? ClientCertificate { get; set; } = ssl.RemoteCertificate as X509Certificate2;

    /// <summary>The client certificate's identities as RBAC's <c>authenticated</c> principal reads them; read once per connection.</summary>
    public AuthenticatedPeer Peer => _peer ??= ClientCertificate is { } certificate
        ? AuthenticatedPeer.FromCertificate(certificate)
        : AuthenticatedPeer.WithoutCertificate;

    public Task<X509Certificate2?> GetClientCertificateAsync(CancellationToken cancellationToken) => Task.FromResult(ClientCertificate);

    public ReadOnlyMemory<byte> ApplicationProtocol { get; } = ssl.NegotiatedApplicationProtocol.Protocol;

    public SslProtocols Protocol { get; } = ssl.SslProtocol;

    public TlsCipherSuite? NegotiatedCipherSuite { get; } = ssl.NegotiatedCipherSuite;

    public string HostName { get; } = ssl.TargetHostName;

#pragma warning disable SYSLIB0058 // Kestrel's interface still has the pre-TLS 1.3 properties; they are filled as its HTTPS middleware fills them.
    public CipherAlgorithmType CipherAlgorithm { get; } = ssl.CipherAlgorithm;

    public int CipherStrength { get; } = ssl.CipherStrength;

    public HashAlgorithmType HashAlgorithm { get; } = ssl.HashAlgorithm;

    public int HashStrength { get; } = ssl.HashStrength;

    public ExchangeAlgorithmType KeyExchangeAlgorithm { get; } = ssl.KeyExchangeAlgorithm;

    public int KeyExchangeStrength { get; } = ssl.KeyExchangeStrength;
#pragma warning restore SYSLIB0058
}

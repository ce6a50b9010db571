using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Mesh.Sdk.Security;
using Mesh.Sdk.Security.Inbound;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.AspNetCore.Security;

/// <summary>
/// Makes a Kestrel endpoint a mesh endpoint (one instance per endpoint, first in its connection pipeline): it peeks at
/// the first byte of each connection and, by the port's <see cref="InboundPolicy"/> read at that moment,
/// <list type="bullet">
/// <item>a TLS ClientHello (0x16) under STRICT or PERMISSIVE: terminates TLS with the workload certificate in force
/// (rotation reaches new connections), requires a client certificate chained to the mesh roots only, offers ALPN
/// <c>h2</c> and <c>http/1.1</c>, and hands Kestrel the decrypted stream with the TLS features it picks the protocol
/// by, plus <see cref="IMeshPeerIdentityFeature"/>;</item>
/// <item>a TLS ClientHello under DISABLE, or plaintext under STRICT: closes the connection without a byte;</item>
/// <item>plaintext under PERMISSIVE or DISABLE: passes the connection on untouched (HTTP/1.1, h2c).</item>
/// </list>
/// </summary>
internal sealed partial class MeshInboundConnectionMiddleware(
    ConnectionDelegate next,
    InboundPolicies policies,
    WorkloadCertificateSource certificates,
    ILogger<MeshInboundConnectionMiddleware> logger)
{
    private const byte TlsHandshakeRecord = 0x16;

    /// <summary>How long a connection may take to send its first byte and to finish the TLS handshake (Kestrel's HTTPS default).</summary>
    internal static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);

    private static readonly List<SslApplicationProtocol> Alpn = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11];

    private ServerCertificate? _server;

    public async Task OnConnectionAsync(ConnectionContext context)
    {
        var port = (context.LocalEndPoint as IPEndPoint)?.Port ?? 0;
        bool tls;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.ConnectionClosed))
        {
            timeout.CancelAfter(HandshakeTimeout);
            var input = context.Transport.Input;
            ReadResult read;
            try
            {
                read = await input.ReadAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (read.Buffer.IsEmpty)
            {
                input.AdvanceTo(read.Buffer.End);
                return;
            }

            tls = read.Buffer.FirstSpan[0] == TlsHandshakeRecord;
            // Nothing consumed or examined: Kestrel (or the TLS handshake) reads the same bytes again.
            input.AdvanceTo(read.Buffer.Start, read.Buffer.Start);
        }

        var policy = policies.Get(port);
        if (!tls)
        {
            if (policy.Mode == InboundMtlsMode.Strict)
            {
                Log.PlaintextRefused(logger, context.RemoteEndPoint?.ToString() ?? "?", port);
                return;
            }

            await next(context).ConfigureAwait(false);
            return;
        }

        if (policy.Mode == InboundMtlsMode.Disable)
        {
            Log.TlsRefused(logger, context.RemoteEndPoint?.ToString() ?? "?", port);
            return;
        }

        if (certificates.Current is not { } workload)
        {
            Log.NoCertificate(logger, context.RemoteEndPoint?.ToString() ?? "?", port);
            return;
        }

        await ServeTlsAsync(context, port, workload).ConfigureAwait(false);
    }

    private async Task ServeTlsAsync(ConnectionContext context, int port, WorkloadCertificate workload)
    {
        var server = ServerFor(workload);
        var original = context.Transport;
        string? refusal = null;
        var ssl = new SslStream(new DuplexPipeStream(original), leaveInnerStreamOpen: false);
        await using (ssl.ConfigureAwait(false))
        {
            var options = new SslServerAuthenticationOptions
            {
                ServerCertificateContext = server.Context,
                ClientCertificateRequired = true,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                ApplicationProtocols = Alpn,
                CertificateChainPolicy = server.ChainPolicy(),
                RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
                {
                    refusal = Refusal(certificate, chain, errors);
                    return refusal is null;
                },
            };

            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.ConnectionClosed);
                timeout.CancelAfter(HandshakeTimeout);
                await ssl.AuthenticateAsServerAsync(options, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is AuthenticationException or IOException or OperationCanceledException)
            {
                Log.HandshakeFailed(logger, context.RemoteEndPoint?.ToString() ?? "?", port, refusal ?? ex.Message);
                return;
            }

            var tlsFeature = new MeshTlsConnectionFeature(ssl);
            context.Features.Set<ITlsConnectionFeature>(tlsFeature);
            context.Features.Set<ITlsApplicationProtocolFeature>(tlsFeature);
            context.Features.Set<ITlsHandshakeFeature>(tlsFeature);
            if (tlsFeature.ClientCertificate is { } peer && MeshPeerIdentity.From(peer) is { } identity)
            {
                context.Features.Set<IMeshPeerIdentityFeature>(identity);
            }

            var decrypted = new DuplexPipe(
                PipeReader.Create(ssl, new StreamPipeReaderOptions(leaveOpen: true)),
                PipeWriter.Create(ssl, new StreamPipeWriterOptions(leaveOpen: true)));
            context.Transport = decrypted;
            try
            {
                await next(context).ConfigureAwait(false);
            }
            finally
            {
                await decrypted.Input.CompleteAsync().ConfigureAwait(false);
                await decrypted.Output.CompleteAsync().ConfigureAwait(false);
                context.Transport = original;
            }
        }
    }

    /// <summary>Why a client certificate is refused, or <see langword="null"/> when it chains to the mesh roots.</summary>
    private static string? Refusal(X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
        {
            return "the client sent no certificate (mesh mTLS requires one)";
        }

        if ((errors & SslPolicyErrors.RemoteCertificateChainErrors) != 0)
        {
            var status = chain is null ? "unknown" : string.Join("; ", chain.ChainStatus.Select(static s => s.StatusInformation.Trim()));
            return $"the client certificate '{certificate.Subject}' does not chain to the mesh roots ({status})";
        }

        return null;
    }

    /// <summary>The TLS server state of a workload certificate, built once per certificate (rotation builds the next one).</summary>
    private ServerCertificate ServerFor(WorkloadCertificate workload)
    {
        var current = Volatile.Read(ref _server);
        if (current is not null && ReferenceEquals(current.Workload, workload))
        {
            return current;
        }

        var built = new ServerCertificate(workload, SslStreamCertificateContext.Create(workload.Certificate, workload.Intermediates, offline: true));
        Volatile.Write(ref _server, built);
        return built;
    }

    private sealed record ServerCertificate(WorkloadCertificate Workload, SslStreamCertificateContext Context)
    {
        /// <summary>Peers are checked against the mesh roots only, never the system's.</summary>
        public X509ChainPolicy ChainPolicy()
        {
            var policy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                RevocationMode = X509RevocationMode.NoCheck,
            };
            policy.CustomTrustStore.AddRange(Workload.Roots);
            policy.ExtraStore.AddRange(Workload.Intermediates);
            return policy;
        }
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }

    private static partial class Log
    {
        [LoggerMessage(8210, LogLevel.Debug, "Closed a plaintext connection from {Remote} to port {Port}: the port is STRICT (mTLS only).")]
        public static partial void PlaintextRefused(ILogger logger, string remote, int port);

        [LoggerMessage(8211, LogLevel.Debug, "Closed a TLS connection from {Remote} to port {Port}: the port is DISABLE (plaintext only).")]
        public static partial void TlsRefused(ILogger logger, string remote, int port);

        [LoggerMessage(8212, LogLevel.Information, "mTLS handshake from {Remote} on port {Port} failed: {Reason}.")]
        public static partial void HandshakeFailed(ILogger logger, string remote, int port, string reason);

        [LoggerMessage(8213, LogLevel.Warning, "Closed a TLS connection from {Remote} to port {Port}: the workload has no certificate yet.")]
        public static partial void NoCertificate(ILogger logger, string remote, int port);
    }
}

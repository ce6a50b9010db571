using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Mesh.Sdk.LoadBalancing;
using Mesh.Xds.Security;

namespace Mesh.Sdk.Security;

/// <summary>
/// Originates Istio mutual TLS on a connection the pool has just opened: the client side of the handshake with the
/// workload certificate in force at that moment (read once per connection, so a rotation applies to every new
/// connection), ALPN <c>h2</c> or <c>http/1.1</c> as the request needs, the server's chain checked against the mesh
/// roots only, and the server's identity against the cluster's SAN matchers. A refusal is an
/// <see cref="UpstreamTlsException"/> naming the cluster, the endpoint, the expected and the presented identity, thrown
/// before any request byte is sent; the HTTP handler sees it as a connect failure.
/// </summary>
/// <remarks>
/// Connections outlive the certificate they were made with, as Envoy's do: TLS checks certificates at the handshake
/// only, and the pool's <c>max_connection_duration</c> (DestinationRule <c>connectionPool.http.maxConnectionDuration</c>)
/// bounds a connection's age when that matters.
/// </remarks>
internal sealed class UpstreamMutualTls
{
    /// <summary>How long a connection waits for the workload's first certificate before it is refused.</summary>
    public static readonly TimeSpan FirstCertificateWait = TimeSpan.FromSeconds(5);

    private static readonly List<SslApplicationProtocol> Http2 = [SslApplicationProtocol.Http2];
    private static readonly List<SslApplicationProtocol> Http11 = [SslApplicationProtocol.Http11];

    private readonly WorkloadCertificateSource _certificates;
    private readonly TimeProvider _time;
    private CachedContext? _context;

    public UpstreamMutualTls(WorkloadCertificateSource certificates, TimeProvider time)
    {
        _certificates = certificates;
        _time = time;
    }

    /// <summary>Runs the handshake over <paramref name="transport"/>; disposes it when the handshake fails.</summary>
    /// <param name="transport">The connected stream.</param>
    /// <param name="clusterName">The cluster, for messages.</param>
    /// <param name="endpointKey">The endpoint (<c>10.0.0.1:9080</c>), for messages.</param>
    /// <param name="tls">The endpoint's transport (Istio mutual TLS).</param>
    /// <param name="http2">Whether to offer <c>h2</c> (else <c>http/1.1</c>).</param>
    /// <param name="cancellationToken">Stops the handshake.</param>
    /// <returns>The TLS stream.</returns>
    /// <exception cref="UpstreamTlsException">The server was refused, or the workload has no certificate.</exception>
    public async ValueTask<Stream> AuthenticateAsync(Stream transport, string clusterName, string endpointKey, EndpointTransport tls, bool http2, CancellationToken cancellationToken)
    {
        SslStream? ssl = null;
        try
        {
            var certificate = _certificates.Current ?? await WaitForFirstAsync(clusterName, endpointKey, cancellationToken).ConfigureAwait(false);
            var check = new ServerCheck(this, clusterName, endpointKey, tls, certificate.Roots);
            ssl = new SslStream(transport, leaveInnerStreamOpen: false);
            var options = new SslClientAuthenticationOptions
            {
                TargetHost = tls.Sni,
                ClientCertificateContext = ContextOf(certificate),
                ApplicationProtocols = http2 ? Http2 : Http11,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                RemoteCertificateValidationCallback = check.Validate,
            };
            try
            {
                await ssl.AuthenticateAsClientAsync(options, cancellationToken).ConfigureAwait(false);
            }
            catch (AuthenticationException ex)
            {
                throw check.Refusal is { } refusal
                    ? new UpstreamTlsException(refusal, ex)
                    : new UpstreamTlsException($"Mesh mTLS handshake with endpoint '{endpointKey}' of cluster '{clusterName}' failed: {ex.Message}", ex);
            }

            if (http2 && ssl.NegotiatedApplicationProtocol != SslApplicationProtocol.Http2)
            {
                throw new UpstreamTlsException(
                    $"Endpoint '{endpointKey}' of cluster '{clusterName}' did not agree to HTTP/2 over mesh mTLS (ALPN '{ssl.NegotiatedApplicationProtocol}').");
            }

            return ssl;
        }
        catch
        {
            if (ssl is not null)
            {
                await ssl.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                await transport.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }
    }

    private async Task<WorkloadCertificate> WaitForFirstAsync(string clusterName, string endpointKey, CancellationToken cancellationToken)
    {
        try
        {
            return await _certificates.WaitForCertificateAsync(cancellationToken).WaitAsync(FirstCertificateWait, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new UpstreamTlsException(
                $"Cluster '{clusterName}' requires Istio mutual TLS, but this workload has no certificate yet (waited {FirstCertificateWait.TotalSeconds:0} s for the first one from {_certificates.Description}); the connection to endpoint '{endpointKey}' was not made.");
        }
    }

    private SslStreamCertificateContext ContextOf(WorkloadCertificate certificate)
    {
        var cached = Volatile.Read(ref _context);
        if (cached is not null && ReferenceEquals(cached.Certificate, certificate))
        {
            return cached.Context;
        }

        var context = SslStreamCertificateContext.Create(certificate.Certificate, certificate.Intermediates, offline: true);
        Volatile.Write(ref _context, new CachedContext(certificate, context));
        return context;
    }

    private sealed record CachedContext(WorkloadCertificate Certificate, SslStreamCertificateContext Context);

    /// <summary>The identity a certificate presents, for messages: its URI SANs, else its subject.</summary>
    internal static string DescribePresented(X509Certificate2 certificate, IReadOnlyList<string> uris)
        => uris.Count switch
        {
            0 => $"no URI SAN (subject '{certificate.Subject}')",
            1 => $"'{uris[0]}'",
            _ => "'" + string.Join("', '", uris) + "'",
        };

    /// <summary>One handshake's server check; keeps the reason of a refusal for the exception.</summary>
    private sealed class ServerCheck(UpstreamMutualTls owner, string clusterName, string endpointKey, EndpointTransport tls, X509Certificate2Collection roots)
    {
        public string? Refusal { get; private set; }

        public bool Validate(object sender, X509Certificate? certificate, X509Chain? offered, SslPolicyErrors errors)
        {
            if (certificate is null)
            {
                Refusal = Prefix("presented no certificate");
                return false;
            }

            var server = certificate as X509Certificate2 ?? new X509Certificate2(certificate);
            IReadOnlyList<string> uris;
            try
            {
                uris = UriSubjectAlternativeNames.Read(server);
            }
            catch (System.Security.Cryptography.CryptographicException ex)
            {
                Refusal = Prefix($"presented a certificate whose subjectAltName cannot be read ({ex.Message})");
                return false;
            }

            var presented = DescribePresented(server, uris);
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(roots);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            chain.ChainPolicy.VerificationTime = owner._time.GetUtcNow().UtcDateTime;
            chain.ChainPolicy.VerificationTimeIgnored = false;
            if (offered is not null)
            {
                // The intermediates the server sent with its certificate.
                chain.ChainPolicy.ExtraStore.AddRange(offered.ChainPolicy.ExtraStore);
                foreach (var element in offered.ChainElements)
                {
                    if (!ReferenceEquals(element.Certificate, server))
                    {
                        chain.ChainPolicy.ExtraStore.Add(element.Certificate);
                    }
                }
            }

            if (!chain.Build(server))
            {
                Refusal = Prefix($"presented {presented}, {ChainProblem(chain, server)}");
                return false;
            }

            var dnsNames = DnsNames(server);
            if (!tls.AcceptsIdentity(uris, dnsNames))
            {
                Refusal = Prefix($"presented {presented}, expected {tls.DescribeExpected()}");
                return false;
            }

            return true;
        }

        private string Prefix(string problem)
            => $"Refused the mesh mTLS connection to endpoint '{endpointKey}' of cluster '{clusterName}': the server {problem}.";

        private static string ChainProblem(X509Chain chain, X509Certificate2 server)
        {
            var flags = X509ChainStatusFlags.NoError;
            foreach (var status in chain.ChainStatus)
            {
                flags |= status.Status;
            }

            if ((flags & X509ChainStatusFlags.NotTimeValid) != 0)
            {
                return $"whose certificate is not valid now (valid from {server.NotBefore.ToUniversalTime():u} to {server.NotAfter.ToUniversalTime():u}; expired or not yet valid)";
            }

            if ((flags & (X509ChainStatusFlags.UntrustedRoot | X509ChainStatusFlags.PartialChain)) != 0)
            {
                return $"whose certificate does not chain to the mesh roots (issuer '{server.Issuer}': a foreign root)";
            }

            var details = new List<string>();
            foreach (var status in chain.ChainStatus)
            {
                details.Add(status.StatusInformation.Trim());
            }

            return $"whose certificate chain is not valid ({string.Join("; ", details)})";
        }

        private static IReadOnlyList<string> DnsNames(X509Certificate2 certificate)
        {
            foreach (var extension in certificate.Extensions)
            {
                if (extension is X509SubjectAlternativeNameExtension san)
                {
                    return [.. san.EnumerateDnsNames()];
                }
            }

            return [];
        }
    }
}

/// <summary>
/// A mesh mTLS connection was not made: the server was refused (foreign root, wrong identity, expired certificate) or
/// the workload has no certificate. The message names the cluster, the endpoint and the identities.
/// </summary>
public sealed class UpstreamTlsException : IOException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What was refused and why.</param>
    public UpstreamTlsException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What was refused and why.</param>
    /// <param name="innerException">The TLS failure.</param>
    public UpstreamTlsException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

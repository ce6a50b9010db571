using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Istio.V1.Auth;
using Mesh.Xds.Security;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Mesh.ControlPlane.Security;

/// <summary>What the certificate service needs: the CA, the token key and the trust rules.</summary>
internal sealed record CertificateServiceContext(
    CertificateAuthority Authority,
    JoinTokens Tokens,
    string TrustDomain,
    bool TrustLoopbackCallers,
    TimeSpan DefaultTtl,
    TimeSpan MaxTtl,
    ILoggerFactory LoggerFactory);

/// <summary>
/// Istio's certificate API on the xDS port (<c>istio.v1.auth.IstioCertificateService/CreateCertificate</c>): works
/// out who the caller is (a join token, else a loopback caller's own word when that is trusted), checks the CSR and
/// answers the signed chain, leaf first and root last.
/// </summary>
internal sealed partial class CertificateService(CertificateServiceContext context) : IstioCertificateService.IstioCertificateServiceBase
{
    private readonly ILogger _logger = context.LoggerFactory.CreateLogger<CertificateService>();

    public override Task<IstioCertificateResponse> CreateCertificate(IstioCertificateRequest request, ServerCallContext callContext)
    {
        var peer = callContext.GetHttpContext().Connection.RemoteIpAddress;
        var peerText = peer?.ToString() ?? callContext.Peer;
        try
        {
            var tokenIdentity = Authenticate(callContext, peer);
            var csr = ParseCsr(request.Csr);
            var (identity, how) = tokenIdentity is not null
                ? (Check(tokenIdentity, csr), "join token")
                : (Claimed(csr), "loopback caller (development trust)");
            if (request.ValidityDuration > context.MaxTtl.TotalSeconds)
            {
                // istiod refuses (TTL_ERROR) rather than shortening: the caller learns its setting is wrong.
                throw new CertificateRequestException(StatusCode.InvalidArgument,
                    $"validity_duration {request.ValidityDuration} s is longer than this CA's maximum certificate lifetime {(long)context.MaxTtl.TotalSeconds} s (MaxCertificateTtl, --max-cert-ttl).");
            }

            var ttl = request.ValidityDuration > 0 ? TimeSpan.FromSeconds(request.ValidityDuration) : context.DefaultTtl;
            var chain = context.Authority.Sign(csr, identity, ttl);
            Log.Issued(_logger, identity.ToString(), peerText, how, ttl);
            var response = new IstioCertificateResponse();
            response.CertChain.AddRange(chain);
            return Task.FromResult(response);
        }
        catch (CertificateRequestException ex)
        {
            Log.Refused(_logger, peerText, ex.Code, ex.Message);
            throw new RpcException(new Status(ex.Code, ex.Message));
        }
        catch (CryptographicException ex)
        {
            Log.SigningFailed(_logger, peerText, ex);
            throw new RpcException(new Status(StatusCode.Internal, "the CA could not sign the certificate: " + ex.Message));
        }
    }

    /// <summary>The identity a join token stands for; <see langword="null"/> for a trusted loopback caller without one.</summary>
    private SpiffeId? Authenticate(ServerCallContext callContext, IPAddress? peer)
    {
        var authorization = callContext.RequestHeaders.GetValue("authorization");
        if (authorization is not null)
        {
            const string Bearer = "Bearer ";
            if (!authorization.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase))
            {
                throw new CertificateRequestException(StatusCode.Unauthenticated, "the authorization metadata must be 'Bearer <join token>'.");
            }

            if (!context.Tokens.TryValidate(authorization[Bearer.Length..].Trim(), out var ns, out var sa))
            {
                throw new CertificateRequestException(StatusCode.Unauthenticated,
                    "the bearer token is not a join token of this control plane (issue one with 'mesh-controlplane --issue-token SA.NS'; tokens from before the key was replaced are void).");
            }

            return new SpiffeId(context.TrustDomain, ns, sa);
        }

        if (context.TrustLoopbackCallers && peer is not null && IsLoopback(peer))
        {
            return null;
        }

        throw new CertificateRequestException(StatusCode.Unauthenticated, context.TrustLoopbackCallers
            ? $"caller {peer} is not on this host and presented no join token: send 'authorization: Bearer <token>' (mesh-controlplane --issue-token SA.NS)."
            : "no join token presented (authorization: Bearer <token>; mesh-controlplane --issue-token SA.NS), and loopback callers are not trusted here.");
    }

    /// <summary>A token's identity, when the CSR asks for none or for the same one.</summary>
    private static SpiffeId Check(SpiffeId identity, CertificateRequest csr)
    {
        var asked = AskedIdentity(csr, required: false);
        if (asked is not null && asked != identity.ToString())
        {
            throw new CertificateRequestException(StatusCode.PermissionDenied,
                $"the join token is for '{identity}', but the CSR asks for '{asked}': a token gets its own service account only.");
        }

        return identity;
    }

    /// <summary>The identity a trusted loopback caller names in its CSR.</summary>
    private SpiffeId Claimed(CertificateRequest csr)
    {
        var asked = AskedIdentity(csr, required: true)!;
        if (!SpiffeId.TryParse(asked, out var identity))
        {
            throw new CertificateRequestException(StatusCode.InvalidArgument,
                $"the CSR's URI SAN '{asked}' is not an identity of the form spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>.");
        }

        if (identity.TrustDomain != context.TrustDomain)
        {
            throw new CertificateRequestException(StatusCode.PermissionDenied,
                $"the CSR asks for '{asked}' in trust domain '{identity.TrustDomain}', but this CA signs for trust domain '{context.TrustDomain}'.");
        }

        return identity;
    }

    /// <summary>The one URI SAN a CSR asks for, or <see langword="null"/> when it asks for none (allowed when not required).</summary>
    private static string? AskedIdentity(CertificateRequest csr, bool required)
    {
        IReadOnlyList<string> uris;
        try
        {
            uris = UriSubjectAlternativeNames.Read(csr.CertificateExtensions);
        }
        catch (CryptographicException ex)
        {
            throw new CertificateRequestException(StatusCode.InvalidArgument, "the CSR's subjectAltName cannot be read: " + ex.Message);
        }

        return uris.Count switch
        {
            0 when !required => null,
            0 => throw new CertificateRequestException(StatusCode.InvalidArgument,
                "the CSR names no identity: without a join token, a loopback caller must put its SPIFFE id (spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>) in the CSR as a URI SAN."),
            1 => uris[0],
            _ => throw new CertificateRequestException(StatusCode.InvalidArgument,
                $"the CSR asks for {uris.Count} URI SANs ({string.Join(", ", uris)}): a workload certificate carries exactly one identity."),
        };
    }

    private static CertificateRequest ParseCsr(string pem)
    {
        if (string.IsNullOrWhiteSpace(pem))
        {
            throw new CertificateRequestException(StatusCode.InvalidArgument, "csr is empty: send a PEM certificate signing request (-----BEGIN CERTIFICATE REQUEST-----).");
        }

        try
        {
            // The signature is checked: it proves the caller holds the key the certificate will name.
            return CertificateRequest.LoadSigningRequestPem(pem, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.UnsafeLoadCertificateExtensions);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            throw new CertificateRequestException(StatusCode.InvalidArgument, "csr is not a valid PEM certificate signing request: " + ex.Message);
        }
    }

    internal static bool IsLoopback(IPAddress address)
        => IPAddress.IsLoopback(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address);

    private static partial class Log
    {
        [LoggerMessage(8110, LogLevel.Information, "Issued a certificate for '{Identity}' to {Peer} ({How}), valid {Lifetime}.")]
        public static partial void Issued(ILogger logger, string identity, string peer, string how, TimeSpan lifetime);

        [LoggerMessage(8111, LogLevel.Warning, "Refused a certificate to {Peer}: {Code}: {Reason}")]
        public static partial void Refused(ILogger logger, string peer, StatusCode code, string reason);

        [LoggerMessage(8112, LogLevel.Error, "Signing a certificate for {Peer} failed.")]
        public static partial void SigningFailed(ILogger logger, string peer, Exception exception);
    }
}

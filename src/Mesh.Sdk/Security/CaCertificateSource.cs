using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Mesh.Sdk.Xds.Internal;
using Mesh.Xds.Security;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.Security;

/// <summary>
/// Gets the workload certificate from a CA: a new ECDSA P-256 key and a CSR naming the workload's SPIFFE id, made
/// in-process for every certificate (the key never leaves the process); renewed at <see cref="MeshSecurityOptions.RotationPoint"/>
/// of its lifetime; on failure retried with gRPC's back-off while the current certificate stays in force.
/// </summary>
internal sealed partial class CaCertificateSource : WorkloadCertificateSource
{
    private readonly ICertificateAuthorityClient _client;
    private readonly SpiffeId _identity;
    private readonly TimeSpan _lifetime;
    private readonly double _rotationPoint;
    private readonly TimeProvider _time;
    private readonly ExponentialBackoff _backoff;
    private readonly ILogger _logger;

    public CaCertificateSource(ICertificateAuthorityClient client, SpiffeId identity, TimeSpan lifetime, double rotationPoint, TimeProvider time,
        ILogger<CaCertificateSource> logger, Random? random = null, BackoffSettings? backoff = null)
    {
        _client = client;
        _identity = identity;
        _lifetime = lifetime;
        _rotationPoint = rotationPoint;
        _time = time;
        _logger = logger;
        _backoff = new ExponentialBackoff(random ?? Random.Shared, backoff ?? BackoffSettings.Grpc);
    }

    public override string Description => $"CA '{_client.Target}'";

    /// <summary>The identity asked for.</summary>
    public SpiffeId Identity => _identity;

    protected override async Task RunAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            TimeSpan wait;
            var current = Current;
            try
            {
                var fresh = await RequestAsync(stopping).ConfigureAwait(false);
                _backoff.Reset();
                var due = fresh.RotationDue(_rotationPoint);
                if (current is null)
                {
                    Log.Issued(_logger, fresh.Identity?.ToString() ?? "(none)", _client.Target, fresh.NotAfter, due);
                }
                else
                {
                    Log.Rotated(_logger, fresh.Identity?.ToString() ?? "(none)", current.NotAfter, fresh.NotAfter, due);
                }

                if (fresh.Identity is null || fresh.Identity != _identity)
                {
                    Log.OtherIdentity(_logger, _identity.ToString(), fresh.Identity?.ToString() ?? "(none)");
                }

                // Published after its log lines, so whoever the new certificate wakes finds them written.
                Publish(fresh);
                wait = due - _time.GetUtcNow();
            }
            catch (Exception ex) when (!stopping.IsCancellationRequested && ex is not OperationCanceledException)
            {
                wait = _backoff.NextDelay();
                var reason = ex is RpcException rpc ? $"{rpc.StatusCode}: {rpc.Status.Detail}" : ex.Message;
                if (current is null)
                {
                    Log.FirstFailed(_logger, _identity.ToString(), _client.Target, reason, wait);
                }
                else if (current.NotAfter <= _time.GetUtcNow())
                {
                    Log.RenewalFailedExpired(_logger, _identity.ToString(), _client.Target, reason, current.NotAfter, wait);
                }
                else
                {
                    Log.RenewalFailed(_logger, _identity.ToString(), _client.Target, reason, current.NotAfter, wait);
                }
            }

            if (wait > TimeSpan.Zero)
            {
                await Wait(wait, _time, stopping).ConfigureAwait(false);
            }
        }
    }

    private async Task<WorkloadCertificate> RequestAsync(CancellationToken cancellationToken)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        try
        {
            var csr = CreateCsr(key, _identity);
            var chain = await _client.CreateCertificateAsync(csr, _lifetime, cancellationToken).ConfigureAwait(false);
            try
            {
                return WorkloadCertificate.FromPem(chain, key, rootsPem: null, Description);
            }
            catch (Exception ex) when (ex is CryptographicException or ArgumentException)
            {
                throw new InvalidOperationException($"the CA's answer is not a usable chain for our key: {ex.Message}", ex);
            }
        }
        finally
        {
            // The certificate holds its own copy of the key.
            key.Dispose();
        }
    }

    /// <summary>A CSR for <paramref name="key"/> naming <paramref name="identity"/> as its one URI SAN.</summary>
    internal static string CreateCsr(ECDsa key, SpiffeId identity)
    {
        var request = new CertificateRequest(new X500DistinguishedName(string.Empty), key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri(identity.ToString()));
        request.CertificateExtensions.Add(san.Build(critical: true));
        return request.CreateSigningRequestPem();
    }

    protected override ValueTask DisposeCoreAsync() => _client.DisposeAsync();

    private static partial class Log
    {
        [LoggerMessage(8000, LogLevel.Information, "Workload certificate for '{Identity}' issued by CA '{Ca}': valid until {NotAfter:o}, renewal due {Due:o}.")]
        public static partial void Issued(ILogger logger, string identity, string ca, DateTimeOffset notAfter, DateTimeOffset due);

        [LoggerMessage(8001, LogLevel.Information, "Workload certificate for '{Identity}' rotated: the one valid until {OldNotAfter:o} is replaced by one valid until {NotAfter:o}; next renewal due {Due:o}.")]
        public static partial void Rotated(ILogger logger, string identity, DateTimeOffset oldNotAfter, DateTimeOffset notAfter, DateTimeOffset due);

        [LoggerMessage(8002, LogLevel.Warning, "No workload certificate for '{Identity}' yet: CA '{Ca}' failed: {Reason}. Retrying in {Delay}.")]
        public static partial void FirstFailed(ILogger logger, string identity, string ca, string reason, TimeSpan delay);

        [LoggerMessage(8003, LogLevel.Warning, "Renewing the workload certificate for '{Identity}' at CA '{Ca}' failed: {Reason}. The current one stays in force until {NotAfter:o}; retrying in {Delay}.")]
        public static partial void RenewalFailed(ILogger logger, string identity, string ca, string reason, DateTimeOffset notAfter, TimeSpan delay);

        [LoggerMessage(8004, LogLevel.Error, "The workload certificate for '{Identity}' expired at {NotAfter:o} and CA '{Ca}' still fails: {Reason}. Retrying in {Delay}.")]
        public static partial void RenewalFailedExpired(ILogger logger, string identity, string ca, string reason, DateTimeOffset notAfter, TimeSpan delay);

        [LoggerMessage(8005, LogLevel.Warning, "Asked the CA for '{Asked}' but the certificate names '{Got}' (the CA decides the identity: check Mesh:ServiceAccount, Mesh:Namespace and the token).")]
        public static partial void OtherIdentity(ILogger logger, string asked, string got);
    }
}

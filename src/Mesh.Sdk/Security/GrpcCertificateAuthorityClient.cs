using Grpc.Core;
using Grpc.Net.Client;
using Istio.V1.Auth;
using Mesh.Sdk.Xds.Internal;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.Security;

/// <summary>
/// Istio's certificate API over plaintext HTTP/2 or TLS (<c>istio.v1.auth.IstioCertificateService/CreateCertificate</c>),
/// with the token file's content as <c>authorization: Bearer</c> and the node's <c>CLUSTER_ID</c> as <c>ClusterID</c>,
/// as Istio's agent sends them.
/// </summary>
internal sealed class GrpcCertificateAuthorityClient : ICertificateAuthorityClient
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(30);
    private readonly GrpcChannel _channel;
    private readonly IstioCertificateService.IstioCertificateServiceClient _client;
    private readonly string? _tokenFile;
    private readonly string? _clusterId;
    private readonly TimeProvider _time;

    public GrpcCertificateAuthorityClient(string address, string? tokenFile, string? clusterId, System.Security.Cryptography.X509Certificates.X509Certificate2Collection? tlsRoots,
        TimeProvider time, ILoggerFactory loggerFactory)
    {
        _time = time;
        Target = tlsRoots is null ? address : address + " (TLS)";
        _tokenFile = tokenFile;
        _clusterId = clusterId;
        _channel = ControlPlaneChannel.Create(address, loggerFactory, "CA address (Mesh:Security:CaAddress)", tlsRoots);
        _client = new IstioCertificateService.IstioCertificateServiceClient(_channel);
    }

    public string Target { get; }

    public async Task<IReadOnlyList<string>> CreateCertificateAsync(string csrPem, TimeSpan validity, CancellationToken cancellationToken)
    {
        var headers = new Metadata();
        if (_tokenFile is not null)
        {
            string token;
            try
            {
                token = (await File.ReadAllTextAsync(_tokenFile, cancellationToken).ConfigureAwait(false)).Trim();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                throw new InvalidOperationException($"cannot read the token file '{_tokenFile}' (Mesh:Security:TokenFile): {ex.Message}", ex);
            }

            if (token.Length == 0)
            {
                throw new InvalidOperationException($"the token file '{_tokenFile}' (Mesh:Security:TokenFile) is empty.");
            }

            headers.Add("authorization", "Bearer " + token);
        }

        if (_clusterId is not null)
        {
            headers.Add("ClusterID", _clusterId);
        }

        var request = new IstioCertificateRequest { Csr = csrPem, ValidityDuration = (long)validity.TotalSeconds };
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var timer = _time.CreateTimer(static s => ((CancellationTokenSource)s!).Cancel(), timeout, CallTimeout, Timeout.InfiniteTimeSpan);
        var response = await _client.CreateCertificateAsync(request, headers, cancellationToken: timeout.Token).ConfigureAwait(false);
        return [.. response.CertChain];
    }

    public ValueTask DisposeAsync()
    {
        _channel.Dispose();
        return ValueTask.CompletedTask;
    }
}

namespace Mesh.Sdk.Security;

/// <summary>Asks a CA to sign a CSR (Istio's <c>CreateCertificate</c>); a seam for tests.</summary>
internal interface ICertificateAuthorityClient : IAsyncDisposable
{
    /// <summary>Where the CA is, for logs.</summary>
    string Target { get; }

    /// <summary>Sends the CSR; answers the PEM chain, leaf first and root last.</summary>
    /// <param name="csrPem">The CSR, PEM.</param>
    /// <param name="validity">The lifetime asked for.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The chain.</returns>
    Task<IReadOnlyList<string>> CreateCertificateAsync(string csrPem, TimeSpan validity, CancellationToken cancellationToken);
}

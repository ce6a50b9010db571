using Mesh.Sdk.Xds;
using Mesh.Xds.Security;
using Microsoft.Extensions.Options;

namespace Mesh.Sdk.Security;

/// <summary>Checks <see cref="MeshOptions.Security"/> at start; every failure names its configuration key.</summary>
internal sealed class MeshSecurityOptionsValidator : IValidateOptions<MeshOptions>
{
    public ValidateOptionsResult Validate(string? name, MeshOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var security = options.Security;
        var failures = new List<string>();
        const string P = MeshOptions.SectionName + ":Security:";
        if (!SpiffeId.IsTrustDomain(security.TrustDomain))
        {
            failures.Add($"{P}TrustDomain '{security.TrustDomain}' must be lower-case letters, digits, '.', '-' and '_' (such as 'cluster.local').");
        }

        if (security.CertificateLifetime < TimeSpan.FromMinutes(1) || security.CertificateLifetime > TimeSpan.FromDays(3650))
        {
            failures.Add($"{P}CertificateLifetime {security.CertificateLifetime} must be from 1 minute to 3650 days.");
        }

        if (!(security.RotationPoint is > 0 and < 1))
        {
            failures.Add($"{P}RotationPoint {security.RotationPoint} must be greater than 0 and less than 1 (0.5: renew half way through the lifetime).");
        }

        if (security.FileRefreshInterval <= TimeSpan.Zero)
        {
            failures.Add($"{P}FileRefreshInterval {security.FileRefreshInterval} must be greater than 0.");
        }

        if (security.CaAddress is not null && !XdsServerAddress.TryParse(security.CaAddress, out _, out var error))
        {
            failures.Add($"{P}CaAddress {error}.");
        }

        if (security.CertificateDirectory is not null && security.CertificateDirectory.Length == 0)
        {
            failures.Add($"{P}CertificateDirectory must not be empty when set.");
        }

        if (security.CaRootCertFile is not null && security.CaRootCertFile.Length == 0)
        {
            failures.Add($"{P}CaRootCertFile must not be empty when set.");
        }

        if (security.TokenFile is not null && security.TokenFile.Length == 0)
        {
            failures.Add($"{P}TokenFile must not be empty when set.");
        }

        if (security.Enabled && options.ServiceAccount is { Length: > 0 } && !SpiffeId.IsSegment(options.ServiceAccount))
        {
            failures.Add($"{MeshOptions.SectionName}:ServiceAccount '{options.ServiceAccount}' must be letters, digits, '.', '-' and '_' (it is part of the SPIFFE id).");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

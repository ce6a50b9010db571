using Mesh.Sdk.Security;

namespace Mesh.Sdk.Tests.Security;

public sealed class MeshSecurityOptionsValidatorTests
{
    [Fact]
    public void Defaults_AreValid()
        => Assert.True(new MeshSecurityOptionsValidator().Validate(null, new MeshOptions()).Succeeded);

    [Fact]
    public void BadValues_FailNamingTheirKeys()
    {
        var options = new MeshOptions { ServiceAccount = "a/b" };
        options.Security.Enabled = true;
        options.Security.TrustDomain = "Cluster.Local";
        options.Security.RotationPoint = 1;
        options.Security.CertificateLifetime = TimeSpan.FromSeconds(5);
        options.Security.CaAddress = "http://ca:15010";
        options.Security.FileRefreshInterval = TimeSpan.Zero;

        var result = new MeshSecurityOptionsValidator().Validate(null, options);

        Assert.Equal(
            [
                "Mesh:Security:TrustDomain 'Cluster.Local' must be lower-case letters, digits, '.', '-' and '_' (such as 'cluster.local').",
                "Mesh:Security:CertificateLifetime 00:00:05 must be from 1 minute to 3650 days.",
                "Mesh:Security:RotationPoint 1 must be greater than 0 and less than 1 (0.5: renew half way through the lifetime).",
                "Mesh:Security:FileRefreshInterval 00:00:00 must be greater than 0.",
                "Mesh:Security:CaAddress 'http://ca:15010' has an unsupported scheme (use host:port, dns:///host:port or unix:///path).",
                "Mesh:ServiceAccount 'a/b' must be letters, digits, '.', '-' and '_' (it is part of the SPIFFE id).",
            ],
            result.Failures);
    }

    [Fact]
    public void ServiceAccount_IsCheckedOnlyWhenCertificatesAreOn()
        => Assert.True(new MeshSecurityOptionsValidator().Validate(null, new MeshOptions { ServiceAccount = "a/b" }).Succeeded);
}

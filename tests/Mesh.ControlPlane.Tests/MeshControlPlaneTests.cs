namespace Mesh.ControlPlane.Tests;

public sealed class MeshControlPlaneTests
{
    [Fact]
    public void Constructor_RejectsANegativePushMaxDelay()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new MeshControlPlane(new MeshControlPlaneOptions { PushMaxDelay = TimeSpan.FromSeconds(-1) }));

        Assert.StartsWith("PushDebounce (00:00:00.1000000) and PushMaxDelay (-00:00:01) must not be negative.", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_RejectsABadTrustDomain()
    {
        var ex = Assert.Throws<ArgumentException>(() => new MeshControlPlane(new MeshControlPlaneOptions { TrustDomain = "Cluster Local" }));

        Assert.StartsWith("TrustDomain 'Cluster Local' must be lower-case letters, digits, '.', '-' and '_' (such as 'cluster.local').", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Constructor_RejectsAMaxCertificateTtlShorterThanTheDefault()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new MeshControlPlane(new MeshControlPlaneOptions
        {
            DefaultCertificateTtl = TimeSpan.FromHours(24),
            MaxCertificateTtl = TimeSpan.FromHours(1),
        }));

        Assert.StartsWith("DefaultCertificateTtl (1.00:00:00) must be positive and MaxCertificateTtl (01:00:00) at least as long.", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void IssueJoinToken_BeforeStart_SaysToStartFirst()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => new MeshControlPlane(new MeshControlPlaneOptions()).IssueJoinToken("reviews", "default"));

        Assert.Equal("Start the control plane first: the token key is opened by StartAsync.", ex.Message);
    }
}

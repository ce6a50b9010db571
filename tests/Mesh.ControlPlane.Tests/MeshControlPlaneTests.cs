namespace Mesh.ControlPlane.Tests;

public sealed class MeshControlPlaneTests
{
    [Fact]
    public void Constructor_RejectsANegativePushMaxDelay()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => new MeshControlPlane(new MeshControlPlaneOptions { PushMaxDelay = TimeSpan.FromSeconds(-1) }));

        Assert.StartsWith("PushDebounce (00:00:00.1000000) and PushMaxDelay (-00:00:01) must not be negative.", ex.Message, StringComparison.Ordinal);
    }
}

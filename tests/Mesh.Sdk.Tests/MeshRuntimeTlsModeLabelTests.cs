using Mesh.Sdk.Xds;

namespace Mesh.Sdk.Tests;

/// <summary>The node labels a workload registers with: <c>security.istio.io/tlsMode: istio</c> when it holds a mesh certificate.</summary>
public sealed class MeshRuntimeTlsModeLabelTests
{
    private static readonly XdsBootstrap Bootstrap = new([new XdsServerConfig("127.0.0.1:15010", "insecure", [])], new XdsNodeConfig { Id = "test" }, "test");

    private static Dictionary<string, string> LabelsOf(MeshOptions options)
    {
        var node = MeshRuntime.WithWorkloadMetadata(Bootstrap, options, "default", "10.0.0.1").Node;
        return node.Metadata.TryGetProperty("LABELS", out var labels)
            ? labels.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!)
            : [];
    }

    [Fact]
    public void SecurityEnabled_AdvertisesTlsModeIstio_NextToTheUsersLabels()
    {
        var options = new MeshOptions { Security = { Enabled = true } };
        options.Labels["version"] = "v1";

        Assert.Equal(new Dictionary<string, string> { ["version"] = "v1", ["security.istio.io/tlsMode"] = "istio" }, LabelsOf(options));
    }

    [Fact]
    public void SecurityDisabled_AddsNoLabel_AndAUserSetTlsModeWins()
    {
        Assert.Empty(LabelsOf(new MeshOptions()));

        var options = new MeshOptions { Security = { Enabled = true } };
        options.Labels["security.istio.io/tlsMode"] = "disabled";
        Assert.Equal(new Dictionary<string, string> { ["security.istio.io/tlsMode"] = "disabled" }, LabelsOf(options));
    }
}

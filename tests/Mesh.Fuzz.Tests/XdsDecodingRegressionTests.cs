using Google.Protobuf;
using Mesh.Sdk.Xds.Internal;

namespace Mesh.Fuzz.Tests;

/// <summary>Crashes the fuzzer found in xDS decoding, kept as regression tests.</summary>
public sealed class XdsDecodingRegressionTests
{
    [Fact]
    public void ACluster_TruncatedInsideAUInt32Wrapper_IsANackReason_NotAnInvalidOperationException()
    {
        // Found by the property test: Google.Protobuf throws InvalidOperationException ("SkipLastField cannot be called
        // at the end of a stream") for a Cluster cut off inside circuit_breakers.thresholds[].max_connections.
        var bytes = File.ReadAllBytes(Path.Combine(FuzzInputs.Root, "fuzz", "crashes", "xds", "cluster-truncated-in-uint32-wrapper.bin"));
        Assert.Equal(2, bytes[0]);
        var ex = Assert.Throws<XdsValidationException>(() => XdsResourceType.Cluster.Decode(ByteString.CopyFrom(bytes, 1, bytes.Length - 1)));
        Assert.Equal("cannot be decoded: SkipLastField cannot be called at the end of a stream", ex.Message);
    }

    [Fact]
    public void EveryTruncationOfEverySeed_IsAcceptedOrRefusedWithAReason()
    {
        var cases = 0;
        var refused = 0;
        foreach (var file in FuzzInputs.Corpus("xds"))
        {
            var bytes = File.ReadAllBytes(file);
            for (var n = 1; n <= bytes.Length; n++)
            {
                var outcome = FuzzTargets.Xds(bytes.AsSpan(0, n));
                cases++;
                if (!outcome.Accepted)
                {
                    Assert.False(string.IsNullOrEmpty(outcome.Error), $"{file} cut at {n}");
                    refused++;
                }
            }
        }

        Assert.True(cases > 2000, $"{cases} truncations");
        Assert.True(refused > cases / 2, $"{refused} of {cases} truncations refused");
    }
}

/// <summary>Crashes the fuzzer found in the YAML loader, kept as regression tests.</summary>
public sealed class YamlLoaderRegressionTests
{
    [Fact]
    public void ATagThatIsNotAValidUri_IsASyntaxErrorWithFileAndLine_NotAnArgumentException()
    {
        // Found by the property test: YamlDotNet throws ArgumentException ("Global tags must be valid URIs").
        var outcome = FuzzTargets.Yaml(File.ReadAllBytes(Path.Combine(FuzzInputs.Root, "fuzz", "crashes", "yaml", "tag-not-a-uri.yaml")));
        Assert.False(outcome.Accepted);
        Assert.StartsWith("/fuzz/config/input.yaml:6:10: error: YAML syntax error: Global tags must be valid URIs", outcome.Error);
    }

    [Fact]
    public void MeshConfigTextThatYamlDotNetCannotBuildANodeOf_IsASyntaxErrorInDataMesh_NotAnArgumentException()
    {
        // Found by the property test: the mesh config's embedded data.mesh text is loaded by a second YAML parse, which
        // let YamlDotNet's ArgumentException ("The current event is of an unsupported type") escape the loader.
        var outcome = FuzzTargets.Yaml(File.ReadAllBytes(Path.Combine(FuzzInputs.Root, "fuzz", "crashes", "yaml", "property-mesh-config-unbuildable-node.yaml")));
        Assert.False(outcome.Accepted);
        Assert.Matches("^/fuzz/config/input\\.yaml:[0-9]+:[0-9]+: error: YAML syntax error in 'data.mesh': ", outcome.Error);
    }

    [Theory]
    [InlineData("afl-complex-key-in-response-headers.yaml", 44)]
    [InlineData("afl-complex-key-in-filter-enabled.yaml", 36)]
    public void AComplexMappingKeyInAnEnvoyFilterTypedConfig_IsRefusedWithFileAndLine_NotAnInvalidCastException(string file, int line)
    {
        // Found by afl-fuzz (scripts/fuzz.sh yaml): a YAML complex key (`? - append: false`) inside the local rate
        // limit's typed_config threw InvalidCastException out of the config loader.
        var outcome = FuzzTargets.Yaml(File.ReadAllBytes(Path.Combine(FuzzInputs.Root, "fuzz", "crashes", "yaml", file)));
        Assert.False(outcome.Accepted);
        Assert.StartsWith($"/fuzz/config/input.yaml:{line}:", outcome.Error);
        Assert.Contains("a mapping key must be a field name, not a list or a map", outcome.Error);
    }
}

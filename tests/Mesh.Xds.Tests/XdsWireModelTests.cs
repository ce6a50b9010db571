namespace Mesh.Xds.Tests;

public sealed class XdsWireModelTests
{
    [Fact]
    public void Files_ListEveryGeneratedProtoFileOnce()
    {
        var names = XdsWireModel.Files.Select(f => f.Name).ToList();
        Assert.Contains("envoy/service/discovery/v3/ads.proto", names);
        Assert.Contains("envoy/config/route/v3/route_components.proto", names);
        Assert.Contains("google/rpc/status.proto", names);
        Assert.DoesNotContain(names, n => n.StartsWith("google/protobuf/", StringComparison.Ordinal));
        Assert.Equal(names.Count, names.Distinct().Count());
    }

    [Fact]
    public void TypeRegistry_ResolvesResourcesAndWellKnownDependencies()
    {
        Assert.NotNull(XdsWireModel.TypeRegistry.Find("envoy.config.endpoint.v3.ClusterLoadAssignment"));
        Assert.NotNull(XdsWireModel.TypeRegistry.Find("google.protobuf.Duration"));
        Assert.NotNull(XdsWireModel.TypeRegistry.Find("envoy.config.trace.v3.ZipkinConfig"));
        Assert.Null(XdsWireModel.TypeRegistry.Find("envoy.config.trace.v3.DatadogConfig"));
    }
}

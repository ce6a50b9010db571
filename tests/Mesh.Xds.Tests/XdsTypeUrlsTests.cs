using System.Reflection;
using Envoy.Config.Listener.V3;
using Envoy.Extensions.Filters.Http.Rbac.V3;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;

namespace Mesh.Xds.Tests;

public sealed class XdsTypeUrlsTests
{
    [Fact]
    public void For_BuildsUrlFromDescriptor()
    {
        Assert.Equal("type.googleapis.com/envoy.config.listener.v3.Listener", XdsTypeUrls.For<Listener>());
        Assert.Equal(XdsTypeUrls.RbacPerRoute, XdsTypeUrls.For<RBACPerRoute>());
        Assert.Equal(XdsTypeUrls.Listener, XdsTypeUrls.For(Listener.Descriptor));
    }

    [Fact]
    public void For_MatchesAnyPackTypeUrl()
    {
        var any = Any.Pack(new Envoy.Config.Cluster.V3.Cluster { Name = "c" });
        Assert.Equal(XdsTypeUrls.Cluster, any.TypeUrl);
        Assert.Equal("envoy.config.cluster.v3.Cluster", XdsTypeUrls.MessageName(any.TypeUrl));
    }

    [Fact]
    public void EveryConstant_NamesAMessageOfTheWireModel()
    {
        var registry = XdsWireModel.TypeRegistry;
        var constants = typeof(XdsTypeUrls)
            .GetFields(BindingFlags.Public | BindingFlags.Static)
            .Where(f => f.IsLiteral && f.Name != nameof(XdsTypeUrls.Prefix))
            .Select(f => (f.Name, Url: (string)f.GetRawConstantValue()!))
            .ToList();

        Assert.True(constants.Count >= 12, $"only {constants.Count} type URL constants found");
        var missing = constants.Where(c => registry.Find(XdsTypeUrls.MessageName(c.Url)) is null).ToList();
        Assert.True(missing.Count == 0, "No message for: " + string.Join(", ", missing.Select(m => $"{m.Name}={m.Url}")));
    }
}

using Mesh.Sdk.Propagation;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Mesh.Sdk.AspNetCore.Tests;

/// <summary>The options builder.AddMesh() adds, as bound from configuration.</summary>
public sealed class MeshOptionsBindingTests
{
    private static MeshOptions Bind(Dictionary<string, string?> settings, Action<MeshOptions>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Configuration.AddInMemoryCollection(settings);
        builder.AddMesh(configure);
        using var services = builder.Services.BuildServiceProvider();
        return services.GetRequiredService<IOptions<MeshOptions>>().Value;
    }

    [Fact]
    public void Defaults_PropagateIstiosBookinfoHeaders_AndGenerateRequestIds()
    {
        var options = Bind([]);

        Assert.Equal(MeshPropagation.DefaultHeaders.Order(), options.PropagatedHeaders.Order());
        Assert.Contains("END-USER", options.PropagatedHeaders);
        Assert.True(options.GenerateRequestId);
        Assert.Null(options.ServicePort);
    }

    [Fact]
    public void Configuration_AddsHeaders_AndSetsServicePort()
    {
        var options = Bind(new()
        {
            ["Mesh:PropagatedHeaders:0"] = "x-tenant",
            ["Mesh:PropagatedHeaders:1"] = "End-User",
            ["Mesh:ServicePort"] = "9080",
            ["Mesh:ServiceName"] = "reviews",
            ["Mesh:GenerateRequestId"] = "false",
        });

        Assert.Equal(MeshPropagation.DefaultHeaders.Count + 1, options.PropagatedHeaders.Count);
        Assert.Contains("x-tenant", options.PropagatedHeaders);
        Assert.Equal(9080, options.ServicePort);
        Assert.False(options.GenerateRequestId);
    }

    [Fact]
    public void InvalidHeaderName_FailsValidation_NamingTheKey()
    {
        var error = Assert.Throws<OptionsValidationException>(() => Bind(new() { ["Mesh:PropagatedHeaders:0"] = "x bad" }));

        Assert.Contains("Mesh:PropagatedHeaders entry 'x bad' must be an HTTP header name", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddMesh_Twice_AddsTheMiddlewareAndDiscoveryOnce()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.AddMesh();
        builder.AddMesh(o => o.GenerateRequestId = false);

        Assert.Single(builder.Services, d => d.ImplementationType == typeof(MeshPortDiscoveryService));
        Assert.Single(builder.Services, d => d.ImplementationType == typeof(MeshPropagationStartupFilter));
        using var services = builder.Services.BuildServiceProvider();
        Assert.False(services.GetRequiredService<IOptions<MeshOptions>>().Value.GenerateRequestId);
    }
}

using System.Net;
using Mesh.Sdk.FunctionalTests.Infrastructure;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Mesh.Sdk.FunctionalTests.Http;

/// <summary><c>AddMesh()</c>: registration, options binding and validation, self-registration.</summary>
public sealed class AddMeshTests(ReviewsFixture fixture) : IClassFixture<ReviewsFixture>
{
    [Fact]
    public void AddMesh_IsIdempotent()
    {
        var services = new ServiceCollection();
        services.AddMesh();
        services.AddMesh(o => o.Namespace = "prod");
        services.AddHttpClient("x").AddMesh();
        Assert.Single(services, d => d.ServiceType == typeof(MeshRuntime));
        Assert.Single(services, d => d.ServiceType == typeof(IHostedService) && d.ImplementationType == typeof(MeshHostedService));
        // Two validators, each registered once however often AddMesh runs: the options validator and the security one.
        Assert.Equal(2, services.Count(d => d.ServiceType == typeof(IValidateOptions<MeshOptions>)));
        Assert.Single(services, d => d.ServiceType == typeof(IValidateOptions<MeshOptions>) && d.ImplementationType?.Name == "MeshSecurityOptionsValidator");
    }

    [Fact]
    public void Options_AreBoundFromTheMeshSectionAndCodeWins()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Mesh:ServiceName"] = "ratings",
            ["Mesh:Namespace"] = "shop",
            ["Mesh:Labels:app"] = "ratings",
            ["Mesh:Labels:version"] = "v2",
            ["Mesh:Ports:9080"] = "8080",
            ["Mesh:ResolveTimeout"] = "00:00:03",
            ["Mesh:Xds:Protocol"] = "Delta",
            ["Mesh:ClusterDomain"] = "example.local",
            ["Mesh:RequestBufferLimitBytes"] = "65536",
        }).Build();
        var services = new ServiceCollection().AddSingleton<IConfiguration>(configuration);
        services.AddMesh(o => o.ClusterDomain = "code.local");
        using var provider = services.BuildServiceProvider();
        var options = provider.GetRequiredService<IOptions<MeshOptions>>().Value;
        Assert.Equal("ratings", options.ServiceName);
        Assert.Equal("shop", options.Namespace);
        Assert.Equal("v2", options.Labels["version"]);
        Assert.Equal(8080, options.Ports[9080]);
        Assert.Equal(TimeSpan.FromSeconds(3), options.ResolveTimeout);
        Assert.Equal(Mesh.Sdk.Xds.XdsProtocol.Delta, options.Xds.Protocol);
        Assert.Equal("code.local", options.ClusterDomain);
        Assert.Equal(65536, options.RequestBufferLimitBytes);
        Assert.Equal(1048576, new MeshOptions().RequestBufferLimitBytes);
    }

    [Theory]
    [InlineData("Mesh:ResolveTimeout", "-00:00:01", "Mesh:ResolveTimeout")]
    [InlineData("Mesh:ServiceName", "Reviews_Bad", "Mesh:ServiceName 'Reviews_Bad' must be a DNS label")]
    [InlineData("Mesh:ServiceName", "reviews", "Mesh:Ports must map at least one service port")]
    [InlineData("Mesh:InstanceIp", "not-an-ip", "Mesh:InstanceIp 'not-an-ip' must be an IP address")]
    [InlineData("Mesh:RequestBufferLimitBytes", "-1", "Mesh:RequestBufferLimitBytes -1 must be 0 or more")]
    public async Task InvalidOptions_FailStartWithTheKey(string key, string value, string expected)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { [key] = value });
        builder.Services.AddMesh(o => o.BootstrapConfig = MeshHarness.Bootstrap(1));
        using var host = builder.Build();
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SelfRegistration_MakesTheWorkloadReachableByItsServiceName()
    {
        var mesh = fixture.Mesh;
        await using var ratings = await Backend.StartAsync("ratings", "ratings-v1", "v1", CancellationToken.None);
        await using var workload = MeshHarness.CreateClient(mesh.ControlPlane.XdsPort, configure: o =>
        {
            o.ServiceName = "ratings";
            o.Ports[9080] = ratings.Port;
            o.InstanceIp = "127.0.0.1";
            o.Labels["app"] = "ratings";
            o.Labels["version"] = "v1";
            o.WorkloadName = "ratings-v1";
        });
        workload.GetRequiredService<MeshRuntime>().Start();

        // The caller resolves ratings:9080 through the control plane, which learned the endpoint from the node metadata.
        HttpResponseMessage? response = null;
        for (var i = 0; i < 100 && response?.StatusCode != HttpStatusCode.OK; i++)
        {
            try
            {
                response = await mesh.Http.GetAsync("http://ratings:9080/stars");
            }
            catch (HttpRequestException)
            {
                // Not registered yet: the host passed through to DNS.
                response = null;
            }

            if (response?.StatusCode != HttpStatusCode.OK)
            {
                await Task.Delay(50);
            }
        }

        Assert.True(response?.StatusCode == HttpStatusCode.OK, $"{(int?)response?.StatusCode} {response?.ReasonPhrase}\n{mesh.Dump()}");
        Assert.Equal(1, ratings.Count);
        Assert.Equal("ratings:9080", ratings.Seen[0].Host);
    }
}

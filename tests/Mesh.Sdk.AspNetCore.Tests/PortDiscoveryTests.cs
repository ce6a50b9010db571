using System.Globalization;
using System.Text.Json;
using Mesh.Sdk.AspNetCore.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Mesh.Testing;
using Microsoft.Extensions.Options;

namespace Mesh.Sdk.AspNetCore.Tests;

/// <summary>Workloads register the ports Kestrel bound (ephemeral ones) with the real control plane.</summary>
public sealed class PortDiscoveryTests(ControlPlaneFixture mesh) : IClassFixture<ControlPlaneFixture>
{
    private static void MapWhoAmI(WebApplication app, string name) =>
        app.MapGet("/", (HttpContext context) => Results.Json(new WhoAmI(name, context.Connection.LocalPort, context.Request.Host.Value ?? "")));

    [Fact]
    public async Task EphemeralPort_IsRegisteredUnderServicePort_AndReachableByServiceName()
    {
        await using var reviews = await MeshWebApp.StartAsync(mesh, new Dictionary<string, string?>
        {
            ["Mesh:ServiceName"] = "reviews",
            ["Mesh:ServicePort"] = "9080",
            ["Mesh:Labels:app"] = "reviews",
            ["Mesh:Labels:version"] = "v1",
        }, app => MapWhoAmI(app, "reviews-a"));
        Assert.NotEqual(9080, reviews.Port);

        await using var caller = MeshClient.Create(mesh);
        var body = await caller.Http().GetWhenReachableAsync("http://reviews:9080/", mesh.Dump);

        var reply = JsonSerializer.Deserialize<WhoAmI>(body, JsonSerializerOptions.Web)!;
        Assert.Equal("reviews-a", reply.Name);
        Assert.Equal(reviews.Port, reply.Port);
        Assert.Equal("reviews:9080", reply.Host);
    }

    [Fact]
    public async Task TwoInstancesOnEphemeralPorts_BothServeTheServicePort()
    {
        var settings = new Dictionary<string, string?> { ["Mesh:ServiceName"] = "details", ["Mesh:ServicePort"] = "9080" };
        await using var a = await MeshWebApp.StartAsync(mesh, settings, app => MapWhoAmI(app, "details-a"));
        await using var b = await MeshWebApp.StartAsync(mesh, settings, app => MapWhoAmI(app, "details-b"));
        await using var caller = MeshClient.Create(mesh);
        var http = caller.Http();
        await http.GetWhenReachableAsync("http://details:9080/", mesh.Dump);

        // Both registrations arrive independently; round robin then alternates over both ports.
        var seen = new Dictionary<int, int>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (DateTime.UtcNow < deadline)
        {
            seen.Clear();
            for (var i = 0; i < 20; i++)
            {
                var reply = JsonSerializer.Deserialize<WhoAmI>(await http.GetStringAsync("http://details:9080/"), JsonSerializerOptions.Web)!;
                seen[reply.Port] = seen.GetValueOrDefault(reply.Port) + 1;
            }

            if (seen.Count == 2)
            {
                break;
            }

            await Task.Delay(50);
        }

        Assert.Equal(new[] { a.Port, b.Port }.Order(), seen.Keys.Order());

        // Both in force: round robin alternates.
        seen.Clear();
        for (var i = 0; i < 20; i++)
        {
            var reply = JsonSerializer.Deserialize<WhoAmI>(await http.GetStringAsync("http://details:9080/"), JsonSerializerOptions.Web)!;
            seen[reply.Port] = seen.GetValueOrDefault(reply.Port) + 1;
        }

        Assert.Equal(10, seen.GetValueOrDefault(a.Port));
        Assert.Equal(10, seen.GetValueOrDefault(b.Port));
    }

    [Fact]
    public async Task WithoutServicePort_TheBoundPortIsItsOwnServicePort()
    {
        await using var ratings = await MeshWebApp.StartAsync(mesh, new Dictionary<string, string?> { ["Mesh:ServiceName"] = "ratings" }, app => MapWhoAmI(app, "ratings-a"));
        await using var caller = MeshClient.Create(mesh);
        var url = string.Create(CultureInfo.InvariantCulture, $"http://ratings:{ratings.Port}/");

        var reply = JsonSerializer.Deserialize<WhoAmI>(await caller.Http().GetWhenReachableAsync(url, mesh.Dump), JsonSerializerOptions.Web)!;

        Assert.Equal(ratings.Port, reply.Port);
        Assert.Equal("ratings-a", reply.Name);
    }

    [Fact]
    public async Task CallMadeWhileTheHostStarts_WaitsForDiscovery_AndIsMeshed()
    {
        await using var target = await MeshWebApp.StartAsync(
            mesh, new Dictionary<string, string?> { ["Mesh:ServiceName"] = "target", ["Mesh:ServicePort"] = "9080" }, app => MapWhoAmI(app, "target-a"));
        await using (var probe = MeshClient.Create(mesh))
        {
            await probe.Http().GetWhenReachableAsync("http://target:9080/", mesh.Dump);
        }

        // A hosted service of a self-registering app calls another service from StartAsync, before the ports are
        // discovered (StartedAsync): the runtime has sent nothing yet, so the call waits for discovery, then resolves.
        Task<string>? early = null;
        using var logs = new CapturingLoggerProvider();
        await using var app = await MeshWebApp.StartAsync(
            mesh,
            new Dictionary<string, string?> { ["Mesh:ServiceName"] = "early", ["Mesh:ServicePort"] = "9080" },
            app => MapWhoAmI(app, "early-a"),
            builder =>
            {
                builder.Logging.AddProvider(logs);
                builder.Services.AddHostedService(sp => new CallOnStart(sp.GetRequiredService<IHttpClientFactory>(), task => early = task));
            });

        Assert.NotNull(early);
        var reply = JsonSerializer.Deserialize<WhoAmI>(await early.WaitAsync(TimeSpan.FromSeconds(20)), JsonSerializerOptions.Web)!;
        Assert.Equal(target.Port, reply.Port);
        var lines = logs.Dump();
        Assert.Contains("Mesh runtime for service 'early' waits for the server to bind", lines, StringComparison.Ordinal);
        Assert.Contains($"Service 'early' ports discovered: 9080 -> {app.Port.ToString(CultureInfo.InvariantCulture)} on '127.0.0.1'", lines, StringComparison.Ordinal);
    }

    [Fact]
    public async Task HostWithoutServer_FailsStart_NamingPorts()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Mesh:BootstrapConfig"] = mesh.Bootstrap,
            ["Mesh:ServiceName"] = "worker",
        });
        builder.AddMesh();
        using var host = builder.Build();

        var error = await Assert.ThrowsAnyAsync<Exception>(() => host.StartAsync());

        Assert.Contains("Mesh:ServiceName 'worker' is set and Mesh:Ports is empty, but the host has no server", Flatten(error), StringComparison.Ordinal);
        await host.StopAsync();
    }

    [Theory]
    [InlineData("Mesh:Ports:9080", "8080", "Mesh:ServicePort applies only when the ports are discovered from the server, but Mesh:Ports is set")]
    [InlineData("Mesh:ServicePort", "70000", "Mesh:ServicePort 70000 must be a port from 1 to 65535")]
    public async Task InvalidServicePort_FailsStart_NamingTheKey(string key, string value, string expected)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Mesh:BootstrapConfig"] = mesh.Bootstrap,
            ["Mesh:ServiceName"] = "reviews",
            ["Mesh:ServicePort"] = "9080",
            [key] = value,
        });
        builder.AddMesh();
        await using var app = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ServiceNameWithoutPorts_IsValid_OnlyWhenPortsAreDiscovered()
    {
        using var plain = new ServiceCollection().AddMesh(o => o.ServiceName = "reviews").BuildServiceProvider();
        var discovering = WebApplication.CreateSlimBuilder();
        discovering.AddMesh(o => o.ServiceName = "reviews");
        using var discoveringProvider = discovering.Services.BuildServiceProvider();

        var failure = Assert.Throws<OptionsValidationException>(() => plain.GetRequiredService<IOptions<MeshOptions>>().Value);
        Assert.Contains("Mesh:Ports must map at least one service port", failure.Message, StringComparison.Ordinal);
        Assert.Equal("reviews", discoveringProvider.GetRequiredService<IOptions<MeshOptions>>().Value.ServiceName);
    }

    private static string Flatten(Exception error) => error is AggregateException aggregate
        ? string.Join(" | ", aggregate.InnerExceptions.Select(Flatten))
        : error.Message;

    private sealed record WhoAmI(string Name, int Port, string Host);

    private sealed class CallOnStart(IHttpClientFactory factory, Action<Task<string>> started) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            var http = factory.CreateClient("early");
            started(http.GetStringAsync("http://target:9080/", CancellationToken.None));
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

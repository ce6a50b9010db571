using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.AspNetCore.Tests.Infrastructure;

/// <summary>
/// A real ASP.NET Core application with <c>builder.AddMesh()</c>, Kestrel on <c>http://127.0.0.1:0</c> (an ephemeral
/// port), its mesh pointed at the fixture's control plane through configuration keys, as an app would be.
/// </summary>
internal sealed class MeshWebApp : IAsyncDisposable
{
    private MeshWebApp(WebApplication app, int port)
    {
        App = app;
        Port = port;
    }

    public WebApplication App { get; }

    /// <summary>The port Kestrel bound (the first, when it bound several).</summary>
    public int Port { get; }

    public Uri BaseAddress => new($"http://127.0.0.1:{Port}");

    public IServiceProvider Services => App.Services;

    /// <summary>
    /// Builds and starts the app; <paramref name="settings"/> are configuration keys (such as <c>Mesh:ServiceName</c>)
    /// added to the bootstrap and a 5 s resolve timeout; <paramref name="map"/> adds its endpoints.
    /// </summary>
    public static async Task<MeshWebApp> StartAsync(
        ControlPlaneFixture mesh,
        IReadOnlyDictionary<string, string?> settings,
        Action<WebApplication> map,
        Action<WebApplicationBuilder>? configure = null,
        CancellationToken cancellationToken = default)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders().SetMinimumLevel(LogLevel.Debug).AddProvider(mesh.Logs);
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var config = new Dictionary<string, string?>
        {
            ["Mesh:BootstrapConfig"] = mesh.Bootstrap,
            ["Mesh:ResolveTimeout"] = "00:00:05",
        };
        foreach (var (key, value) in settings)
        {
            config[key] = value;
        }

        builder.Configuration.AddInMemoryCollection(config);
        builder.AddMesh();
        configure?.Invoke(builder);
        var app = builder.Build();
        map(app);
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        return new MeshWebApp(app, new Uri(address).Port);
    }

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
    }
}

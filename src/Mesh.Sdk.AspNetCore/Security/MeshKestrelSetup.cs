using System.Reflection;
using Mesh.Sdk.Security;
using Mesh.Sdk.Security.Inbound;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Mesh.Sdk.AspNetCore.Security;

/// <summary>
/// When <c>Mesh:Security:Enabled</c>, puts <see cref="MeshInboundConnectionMiddleware"/> first on every endpoint
/// Kestrel binds: <c>ASPNETCORE_URLS</c> and <c>app.Urls</c> endpoints, Kestrel configuration and <c>Listen*</c> calls
/// alike (all take the endpoint defaults). Runs after the app's own <c>ConfigureKestrel</c> and keeps the endpoint
/// defaults the app set, running them first.
/// </summary>
internal sealed class MeshKestrelSetup(IServiceProvider services, IOptions<MeshOptions> options) : IPostConfigureOptions<KestrelServerOptions>
{
    // KestrelServerOptions keeps the app's endpoint defaults in an internal property; ConfigureEndpointDefaults replaces it.
    private static readonly PropertyInfo? EndpointDefaults =
        typeof(KestrelServerOptions).GetProperty("EndpointDefaults", BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public);

    public void PostConfigure(string? name, KestrelServerOptions kestrel)
    {
        var previous = EndpointDefaults?.GetValue(kestrel) as Action<ListenOptions>;
        kestrel.ConfigureEndpointDefaults(listen =>
        {
            previous?.Invoke(listen);
            // Decided when the endpoint binds, after the options were validated at start (the server is created earlier,
            // when the app is built, so reading them here would fail Build() rather than start-up on a bad setting).
            listen.Use(next => options.Value.Security.Enabled
                ? new MeshInboundConnectionMiddleware(
                    next,
                    services.GetRequiredService<InboundPolicies>(),
                    services.GetRequiredService<WorkloadCertificateSource>(),
                    services.GetRequiredService<ILogger<MeshInboundConnectionMiddleware>>()).OnConnectionAsync
                : next);
        });
    }
}

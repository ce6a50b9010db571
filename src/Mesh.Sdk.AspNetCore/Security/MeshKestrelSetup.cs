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
/// alike (all take the endpoint defaults), except endpoints the app serves over its own HTTPS. Runs after the app's own <c>ConfigureKestrel</c> and keeps the endpoint
/// defaults the app set, running them first.
/// </summary>
internal sealed class MeshKestrelSetup(IServiceProvider services, IOptions<MeshOptions> options) : IPostConfigureOptions<KestrelServerOptions>
{
    // KestrelServerOptions keeps the app's endpoint defaults in an internal property; ConfigureEndpointDefaults replaces it.
    private static readonly PropertyInfo? EndpointDefaults =
        typeof(KestrelServerOptions).GetProperty("EndpointDefaults", BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public);

    // Whether the app terminates TLS on the endpoint itself (UseHttps, an https:// URL): set by then, internal to Kestrel.
    private static readonly PropertyInfo? IsTls =
        typeof(ListenOptions).GetProperty("IsTls", BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public);

    public void PostConfigure(string? name, KestrelServerOptions kestrel)
    {
        var previous = EndpointDefaults?.GetValue(kestrel) as Action<ListenOptions>;
        kestrel.ConfigureEndpointDefaults(listen =>
        {
            previous?.Invoke(listen);
            // Decided when the endpoint binds, after the options were validated at start (the server is created earlier,
            // when the app is built, so reading them here would fail Build() rather than start-up on a bad setting).
            // An endpoint the app serves over its own HTTPS is not a mesh endpoint: its TLS is the app's.
            if (options.Value.Security.Enabled)
            {
                // Mesh callers keep :scheme http over mesh mTLS (the TLS is the mesh's, not the request's), as Envoy
                // sidecars forward it; Kestrel resets HTTP/2 streams whose :scheme differs from the transport otherwise.
                kestrel.AllowAlternateSchemes = true;
            }

            listen.Use(next => options.Value.Security.Enabled && IsTls?.GetValue(listen) is not true
                ? new MeshInboundConnectionMiddleware(
                    next,
                    services.GetRequiredService<InboundPolicies>(),
                    services.GetRequiredService<WorkloadCertificateSource>(),
                    services.GetRequiredService<ILogger<MeshInboundConnectionMiddleware>>()).OnConnectionAsync
                : next);
        });
    }
}

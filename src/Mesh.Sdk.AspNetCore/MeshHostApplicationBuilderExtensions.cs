using Mesh.Sdk;
using Mesh.Sdk.AspNetCore;
using Mesh.Sdk.AspNetCore.Security;
using Mesh.Sdk.AspNetCore.Telemetry;
using Mesh.Sdk.Security.Inbound;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.Hosting;

/// <summary>Adds the in-process mesh to an ASP.NET Core application, like Aspire's <c>AddServiceDefaults()</c>.</summary>
public static class MeshHostApplicationBuilderExtensions
{
    /// <summary>
    /// Adds the in-process mesh (<c>services.AddMesh()</c>: options bound from the <c>Mesh</c> configuration section,
    /// every <c>IHttpClientFactory</c> client routed by the mesh) and, for a web application:
    /// <list type="bullet">
    /// <item>port discovery: with <see cref="MeshOptions.ServiceName"/> set and <see cref="MeshOptions.Ports"/> empty,
    /// the workload registers the ports the server is bound to once it started (ephemeral ports included), under
    /// <see cref="MeshOptions.ServicePort"/>;</item>
    /// <item>header propagation: the headers of <see cref="MeshOptions.PropagatedHeaders"/> of each incoming request
    /// (and a generated <c>x-request-id</c> when it has none) travel on to the meshed calls made while handling it;</item>
    /// <item>inbound mTLS, with <c>Mesh:Security:Enabled</c>: every Kestrel endpoint becomes a mesh endpoint governed by
    /// PeerAuthentication (STRICT, PERMISSIVE, DISABLE, from the port's inbound listener), the caller's identity is
    /// <c>IMeshPeerIdentityFeature</c> and <c>HttpContext.User</c>;</item>
    /// <item>a plaintext health port on 127.0.0.1 (<see cref="MeshOptions.HealthPort"/>) that serves only
    /// <see cref="MeshOptions.HealthPaths"/>;</item>
    /// <item>Istio's standard metrics (<c>istio_requests_total</c>, ...) reported for every inbound request
    /// (<c>reporter="destination"</c>) and every meshed outbound one (<c>reporter="source"</c>), served in Prometheus text
    /// format at <c>/metrics</c> on the app's endpoints, or on the plaintext port <c>Mesh:Telemetry:MetricsPort</c>
    /// (see docs/telemetry.md).</item>
    /// </list>
    /// Calling it again adds nothing more.
    /// </summary>
    /// <typeparam name="TBuilder">The builder type.</typeparam>
    /// <param name="builder">The application builder.</param>
    /// <returns><paramref name="builder"/>.</returns>
    public static TBuilder AddMesh<TBuilder>(this TBuilder builder)
        where TBuilder : IHostApplicationBuilder
        => builder.AddMesh(configure: null);

    /// <summary>
    /// Adds the in-process mesh (see <see cref="AddMesh{TBuilder}(TBuilder)"/>) and configures its options after the
    /// configuration section is bound.
    /// </summary>
    /// <typeparam name="TBuilder">The builder type.</typeparam>
    /// <param name="builder">The application builder.</param>
    /// <param name="configure">Changes the options; applied after binding, so code wins over configuration.</param>
    /// <returns><paramref name="builder"/>.</returns>
    public static TBuilder AddMesh<TBuilder>(this TBuilder builder, Action<MeshOptions>? configure)
        where TBuilder : IHostApplicationBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.Services;

        // Registered before services.AddMesh() builds the runtime, which reads it.
        services.TryAddSingleton<MeshServiceCollectionExtensions.PortDiscoveryMarker>();
        services.AddMesh(configure);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, MeshPortDiscoveryService>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IStartupFilter, MeshPropagationStartupFilter>());

        // Traces: the server span starts once the propagated headers are captured (x-request-id generated).
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IStartupFilter, MeshTracingStartupFilter>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IStartupFilter, MeshAccessLogStartupFilter>());
        services.TryAddSingleton<Mesh.Sdk.Telemetry.AccessLog.MeshAccessLog>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, MeshTracingListenerService>());

        // Metrics: before the inbound policy filters, so that their denials are counted too.
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IStartupFilter, MeshMetricsStartupFilter>());

        // Inbound: after port discovery (registered later, so its StartedAsync runs after), the ports' listeners are watched.
        services.TryAddSingleton<InboundPolicies>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, MeshInboundService>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<KestrelServerOptions>, MeshKestrelSetup>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IStartupFilter, MeshInboundStartupFilter>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MeshOptions>, MeshInboundOptionsValidator>());
        AddHealthServer(services);
        return builder;
    }

    /// <summary>Wraps the registered server (Kestrel) in <see cref="MeshHealthServer"/>, once; a host without a server is left alone.</summary>
    private static void AddHealthServer(IServiceCollection services)
    {
        if (services.Any(static d => d.ServiceType == typeof(HealthServerMarker)))
        {
            return;
        }

        for (var i = services.Count - 1; i >= 0; i--)
        {
            var inner = services[i];
            if (inner.ServiceType != typeof(IServer) || inner.IsKeyedService)
            {
                continue;
            }

            services.AddSingleton<HealthServerMarker>();
            services[i] = ServiceDescriptor.Singleton<IServer>(sp => new MeshHealthServer(
                inner.ImplementationInstance as IServer
                    ?? inner.ImplementationFactory?.Invoke(sp) as IServer
                    ?? (IServer)ActivatorUtilities.CreateInstance(sp, inner.ImplementationType!),
                sp.GetRequiredService<IOptions<MeshOptions>>(),
                sp,
                sp.GetRequiredService<Microsoft.Extensions.Logging.ILoggerFactory>()));
            return;
        }
    }

    private sealed class HealthServerMarker;
}

using Grpc.Core.Interceptors;
using Grpc.Net.ClientFactory;
using Mesh.Sdk;
using Mesh.Sdk.Propagation;
using Mesh.Sdk.Security;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the in-process mesh.</summary>
public static class MeshServiceCollectionExtensions
{
    /// <summary>
    /// Adds the in-process mesh: <see cref="MeshOptions"/> bound from the <c>Mesh</c> configuration section and
    /// validated at start, the xDS client started with the host, and (unless
    /// <see cref="MeshOptions.MeshAllHttpClients"/> is <see langword="false"/>) every <c>IHttpClientFactory</c> client
    /// routed by the mesh. A <see cref="Mesh.Sdk.Routing.MeshRouteExplainer"/> explains how requests are routed.
    /// Calling it again adds nothing.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <returns><paramref name="services"/>.</returns>
    public static IServiceCollection AddMesh(this IServiceCollection services) => services.AddMesh(configure: null);

    /// <summary>
    /// Adds the in-process mesh (see <see cref="AddMesh(IServiceCollection)"/>) and configures its options after
    /// the configuration section is bound.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="configure">Changes the options; applied after binding, so code wins over configuration.</param>
    /// <returns><paramref name="services"/>.</returns>
    public static IServiceCollection AddMesh(this IServiceCollection services, Action<MeshOptions>? configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddMeshCore();
        if (configure is not null)
        {
            services.Configure(configure);
        }

        return services;
    }

    internal static IServiceCollection AddMeshCore(this IServiceCollection services)
    {
        if (services.Any(static d => d.ServiceType == typeof(MeshMarker)))
        {
            return services;
        }

        services.AddSingleton<MeshMarker>();
        services.AddOptions<MeshOptions>().ValidateOnStart();
        services.AddSingleton<IConfigureOptions<MeshOptions>>(static sp => new ConfigureNamedOptions<MeshOptions>(
            Options.Options.DefaultName,
            options => sp.GetService<IConfiguration>()?.GetSection(MeshOptions.SectionName).Bind(options)));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MeshOptions>, MeshOptionsValidator>(
            static sp => new MeshOptionsValidator(portsDiscovered: sp.GetService<PortDiscoveryMarker>() is not null)));
        services.TryAddSingleton(static sp => MeshRuntime.Create(
            sp.GetRequiredService<IOptions<MeshOptions>>().Value,
            sp.GetService<IConfiguration>(),
            sp.GetService<TimeProvider>() ?? TimeProvider.System,
            sp.GetService<ILoggerFactory>(),
            discoverPorts: sp.GetService<PortDiscoveryMarker>() is not null));
        services.TryAddSingleton(static sp => Mesh.Sdk.Telemetry.MeshMetrics.Create(
            sp.GetRequiredService<MeshRuntime>(), sp.GetService<System.Diagnostics.Metrics.IMeterFactory>())!);
        services.TryAddSingleton(static sp => new Mesh.Sdk.Routing.MeshRouteExplainer(sp.GetRequiredService<MeshRuntime>()));
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, MeshHostedService>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<MeshOptions>, MeshSecurityOptionsValidator>());
        services.TryAddSingleton(static sp =>
        {
            var runtime = sp.GetRequiredService<MeshRuntime>();
            return WorkloadCertificates.Create(runtime.Options, runtime.Bootstrap, runtime.Namespace, runtime.TimeProvider,
                sp.GetService<ILoggerFactory>() ?? Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        });
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, WorkloadCertificateHostedService>());
        MeshHttpClientBuilderExtensions.AddMeshHttp(services);
        Mesh.Sdk.Telemetry.Tracing.MeshTracingServices.Add(services);
        Mesh.Sdk.Grpc.MeshGrpcServiceCollectionExtensions.AddMeshGrpc(services);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<GrpcClientFactoryOptions>, PropagationGrpcClientSetup>());
        return services;
    }

    /// <summary>
    /// Adds <see cref="MeshPropagationInterceptor"/> to every <c>AddGrpcClient</c> client: metadata must be on the call
    /// before grpc-dotnet's picker routes it, which happens before any HTTP handler of the client runs.
    /// </summary>
    private sealed class PropagationGrpcClientSetup : IPostConfigureOptions<GrpcClientFactoryOptions>
    {
        private static readonly MeshPropagationInterceptor Interceptor = new();

        public void PostConfigure(string? name, GrpcClientFactoryOptions options)
        {
            foreach (var registration in options.InterceptorRegistrations)
            {
                if (registration.Creator == CreateInterceptor)
                {
                    return;
                }
            }

            options.InterceptorRegistrations.Add(new InterceptorRegistration(InterceptorScope.Channel, CreateInterceptor));
        }

        private static Interceptor CreateInterceptor(IServiceProvider services) => Interceptor;
    }

    /// <summary>Marks a collection that already has the mesh.</summary>
    internal sealed class MeshMarker;

    /// <summary>
    /// Marks a collection whose host discovers the workload ports from its server once bound (Mesh.Sdk.AspNetCore):
    /// with <see cref="MeshOptions.ServiceName"/> set and <see cref="MeshOptions.Ports"/> empty, the runtime waits for them.
    /// </summary>
    internal sealed class PortDiscoveryMarker;
}

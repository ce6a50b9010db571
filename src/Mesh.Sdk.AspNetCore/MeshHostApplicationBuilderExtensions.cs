using Mesh.Sdk;
using Mesh.Sdk.AspNetCore;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

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
    /// (and a generated <c>x-request-id</c> when it has none) travel on to the meshed calls made while handling it.</item>
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
        return builder;
    }
}

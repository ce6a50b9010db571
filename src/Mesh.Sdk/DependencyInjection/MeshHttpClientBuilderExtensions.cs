using Mesh.Sdk;
using Mesh.Sdk.Http;
using Mesh.Sdk.Propagation;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Meshes one <c>IHttpClientFactory</c> client.</summary>
public static class MeshHttpClientBuilderExtensions
{
    /// <summary>
    /// Routes this client's requests through the mesh (adding the mesh with <c>services.AddMesh()</c> when it is
    /// not yet added). Needed only when <see cref="MeshOptions.MeshAllHttpClients"/> is <see langword="false"/>;
    /// otherwise every client is meshed already and this adds nothing. The mesh handler is placed after the
    /// client's other handlers, so they see the logical request once and the mesh retries below them; just before it,
    /// a <see cref="MeshPropagationHandler"/> adds the headers of <see cref="MeshPropagation.Current"/> the request
    /// does not set itself.
    /// </summary>
    /// <param name="builder">The client builder.</param>
    /// <returns><paramref name="builder"/>.</returns>
    public static IHttpClientBuilder AddMesh(this IHttpClientBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddMeshCore();
        builder.Services.PostConfigure<HttpClientFactoryOptions>(builder.Name, static options => options.HttpMessageHandlerBuilderActions.Add(AddHandler));
        return builder;
    }

    internal static void AddMeshHttp(IServiceCollection services)
    {
        services.AddHttpClient();
        services.TryAddSingleton(static sp => new MeshTransports(
            sp.GetRequiredService<MeshRuntime>(),
            sp.GetRequiredService<IOptions<MeshOptions>>().Value.Security.Enabled ? sp.GetRequiredService<Mesh.Sdk.Security.WorkloadCertificateSource>() : null,
            sp.GetService<ILogger<MeshTransports>>()));
        services.PostConfigureAll<HttpClientFactoryOptions>(static options => options.HttpMessageHandlerBuilderActions.Add(static builder =>
        {
            if (builder.Services.GetRequiredService<IOptions<MeshOptions>>().Value.MeshAllHttpClients)
            {
                AddHandler(builder);
            }
        }));
    }

    private static void AddHandler(HttpMessageHandlerBuilder builder)
    {
        var handlers = builder.AdditionalHandlers;
        for (var i = 0; i < handlers.Count; i++)
        {
            if (handlers[i] is MeshHttpHandler)
            {
                return;
            }
        }

        // The span exporter's own calls are routed by the mesh but, like the traffic of Envoy's tracer cluster, neither
        // counted in the request metrics nor traced nor given the app's propagated headers.
        var telemetry = builder.Name != Mesh.Sdk.Telemetry.Tracing.MeshTracingServices.HttpClientName;

        // Propagated headers (end-user, tracing) are on the request before the mesh routes it, so routes can match them.
        if (telemetry)
        {
            handlers.Add(new MeshPropagationHandler());
        }

        var services = builder.Services;
        handlers.Add(new MeshHttpHandler(
            services.GetRequiredService<MeshRuntime>(),
            services.GetRequiredService<MeshTransports>(),
            services.GetService<ILogger<MeshHttpHandler>>(),
            telemetry ? services.GetService<Mesh.Sdk.Telemetry.MeshMetrics>() : null,
            telemetry ? services.GetService<Mesh.Sdk.Telemetry.Tracing.MeshTracer>() : null));
    }
}

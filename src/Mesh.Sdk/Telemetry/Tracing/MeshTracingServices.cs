using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Http;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.Telemetry.Tracing;

/// <summary>Registers the workload's <see cref="MeshTracer"/> and the meshed client its exporter sends spans with.</summary>
internal static class MeshTracingServices
{
    /// <summary>The <c>IHttpClientFactory</c> name of the exporter's client (always meshed).</summary>
    public const string HttpClientName = "Mesh.Sdk.Tracing";

    public static void Add(IServiceCollection services)
    {
        services.AddHttpClient(HttpClientName).AddMesh();
        services.TryAddSingleton(static sp =>
        {
            var runtime = sp.GetRequiredService<MeshRuntime>();
            var identity = TracerIdentity.Create(runtime);
            var handlers = sp.GetRequiredService<IHttpMessageHandlerFactory>();
            var tracer = new MeshTracer(
                identity,
                policy => new SpanExport(policy, identity.ServiceName, () => new HttpClient(new SynchronousSendHandler(handlers.CreateHandler(HttpClientName)), disposeHandler: true)),
                sp.GetService<ILogger<MeshTracer>>());

            // The outbound HttpConnectionManagers carry the client side's tracing: followed on every update.
            runtime.Updated += _ => tracer.OnOutbound(runtime.Routes.Current);
            tracer.OnOutbound(runtime.Routes.Current);
            MeshTracer.Register(runtime, tracer);
            return tracer;
        });
    }
}

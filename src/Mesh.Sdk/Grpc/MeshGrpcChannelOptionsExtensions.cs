using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Configuration;
using Mesh.Sdk.Grpc.Internal;
using Mesh.Sdk.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Sdk.Grpc;

/// <summary>
/// Makes a <see cref="GrpcChannel"/> for an <c>xds:///</c> address use the mesh: its resolver, its load balancer and
/// the HTTP handler that applies fault delays, route timeouts and retries.
/// </summary>
/// <example>
/// <code>
/// var channel = GrpcChannel.ForAddress("xds:///reviews:9080", new GrpcChannelOptions().UseMesh(app.Services));
/// </code>
/// Clients registered with <c>AddGrpcClient</c> and an <c>xds:///</c> address get the same configuration from
/// <c>AddMesh()</c> without this call.
/// </example>
public static class MeshGrpcChannelOptionsExtensions
{
    /// <summary>The URI scheme of mesh targets: <c>xds:///reviews:9080</c>.</summary>
    public const string Scheme = "xds";

    /// <summary>The grpc-dotnet load-balancing policy name of the mesh's balancer, selected by the <c>xds</c> resolver.</summary>
    public const string LoadBalancingPolicyName = "mesh_xds";

    /// <summary>
    /// Configures <paramref name="options"/> for an <c>xds:///</c> channel: sets <see cref="GrpcChannelOptions.ServiceProvider"/>
    /// (when unset), insecure credentials (when unset; mesh endpoints speak HTTP/2 without TLS), the mesh load
    /// balancer, and puts the mesh handler in front of <see cref="GrpcChannelOptions.HttpHandler"/> (a new
    /// <see cref="SocketsHttpHandler"/> when unset). Calling it again changes nothing.
    /// </summary>
    /// <param name="options">The channel options.</param>
    /// <param name="services">A service provider built from a collection that called <c>AddMesh()</c>.</param>
    /// <returns><paramref name="options"/>.</returns>
    /// <exception cref="InvalidOperationException"><paramref name="services"/> has no mesh, or the options carry an <see cref="GrpcChannelOptions.HttpClient"/> (which disables load balancing).</exception>
    public static GrpcChannelOptions UseMesh(this GrpcChannelOptions options, IServiceProvider services)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(services);
        var runtime = services.GetService<MeshRuntime>()
            ?? throw new InvalidOperationException("Mesh.Sdk: the service provider has no mesh; call services.AddMesh() before using xds:/// gRPC channels.");
        if (options.HttpClient is not null)
        {
            throw new InvalidOperationException(
                "Mesh.Sdk: GrpcChannelOptions.HttpClient disables grpc-dotnet load balancing, which xds:/// channels need; set HttpHandler (a SocketsHttpHandler, optionally wrapped) instead.");
        }

        options.ServiceProvider ??= services;
        options.Credentials ??= ChannelCredentials.Insecure;
        options.ServiceConfig ??= new ServiceConfig { LoadBalancingConfigs = { new LoadBalancingConfig(LoadBalancingPolicyName) } };
        if (!MeshGrpcHandler.IsInChain(options.HttpHandler))
        {
            var loggerFactory = services.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance;
            _ = services.GetService<Mesh.Sdk.Telemetry.Tracing.MeshTracer>(); // made now, so the channel's calls are traced
            options.HttpHandler = new MeshGrpcHandler(runtime, services.GetService<MeshTransports>(), loggerFactory.CreateLogger<MeshGrpcHandler>(), services.GetService<Mesh.Sdk.Telemetry.MeshMetrics>())
            {
                InnerHandler = options.HttpHandler ?? new SocketsHttpHandler
                {
                    EnableMultipleHttp2Connections = true,
                    PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
                    KeepAlivePingDelay = TimeSpan.FromSeconds(60),
                    KeepAlivePingTimeout = TimeSpan.FromSeconds(30),
                },
            };
        }

        return options;
    }
}

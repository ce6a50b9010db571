using Grpc.Net.Client.Balancer;
using Grpc.Net.ClientFactory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Mesh.Sdk.Grpc;

/// <summary>Registers the gRPC side of the mesh; called by <c>AddMesh()</c>.</summary>
internal static class MeshGrpcServiceCollectionExtensions
{
    /// <summary>
    /// Registers the <c>xds</c> resolver factory and the <c>mesh_xds</c> load balancer factory (grpc-dotnet finds
    /// both through <c>GrpcChannelOptions.ServiceProvider</c>), and configures every <c>AddGrpcClient</c> client whose
    /// address uses the <c>xds</c> scheme with <see cref="MeshGrpcChannelOptionsExtensions.UseMesh"/>. Idempotent.
    /// </summary>
    public static IServiceCollection AddMeshGrpc(IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<ResolverFactory, XdsResolverFactory>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<LoadBalancerFactory, MeshGrpcLoadBalancerFactory>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<GrpcClientFactoryOptions>, MeshGrpcClientFactoryOptionsSetup>());
        return services;
    }

    /// <summary>Adds <see cref="MeshGrpcChannelOptionsExtensions.UseMesh"/> to the channel of each <c>xds:///</c> gRPC client.</summary>
    private sealed class MeshGrpcClientFactoryOptionsSetup : IPostConfigureOptions<GrpcClientFactoryOptions>
    {
        public void PostConfigure(string? name, GrpcClientFactoryOptions options)
        {
            if (options.Address is { } address && string.Equals(address.Scheme, MeshGrpcChannelOptionsExtensions.Scheme, StringComparison.OrdinalIgnoreCase))
            {
                options.ChannelOptionsActions.Add(static channel => channel.UseMesh(
                    channel.ServiceProvider ?? throw new InvalidOperationException("Mesh.Sdk: the gRPC client factory gave the channel no service provider.")));
            }
        }
    }
}

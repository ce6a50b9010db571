using Grpc.Net.Client.Balancer;
using Mesh.Sdk.Grpc.Internal;

namespace Mesh.Sdk.Grpc;

/// <summary>
/// Creates the <c>mesh_xds</c> load balancer for channels whose resolver is <see cref="XdsResolverFactory"/>; the
/// resolver selects it through the service config it returns.
/// </summary>
internal sealed class MeshGrpcLoadBalancerFactory(MeshRuntime runtime, IServiceProvider services) : LoadBalancerFactory
{
    /// <inheritdoc />
    public override string Name => MeshGrpcChannelOptionsExtensions.LoadBalancingPolicyName;

    /// <inheritdoc />
    public override LoadBalancer Create(LoadBalancerOptions options)
        => new MeshGrpcLoadBalancer(options.Controller, options.LoggerFactory, runtime, services.GetService(typeof(Mesh.Sdk.Telemetry.MeshMetrics)) as Mesh.Sdk.Telemetry.MeshMetrics);
}

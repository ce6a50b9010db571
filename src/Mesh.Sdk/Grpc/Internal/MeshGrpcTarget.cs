using Grpc.Net.Client.Balancer;

namespace Mesh.Sdk.Grpc.Internal;

/// <summary>What the resolver found for a channel's target, handed to the load balancer with every resolver result.</summary>
/// <param name="Authority">The target as written after <c>xds:///</c> (<c>reviews:9080</c>): the authority routes match domains against.</param>
/// <param name="ListenerName">The listener the target resolved to.</param>
/// <param name="HasMeshHandler">Whether the channel's HTTP handler chain holds a <see cref="MeshGrpcHandler"/> (delays, retries, timeouts).</param>
internal sealed record MeshGrpcTarget(string Authority, string ListenerName, bool HasMeshHandler)
{
    /// <summary>The resolver result attribute carrying the target.</summary>
    public static readonly BalancerAttributesKey<MeshGrpcTarget> AttributeKey = new("Mesh.Sdk.Grpc.Target");
}

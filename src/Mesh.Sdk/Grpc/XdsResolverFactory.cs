using System.Globalization;
using Grpc.Net.Client.Balancer;
using Mesh.Sdk.Grpc.Internal;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.Grpc;

/// <summary>
/// The <c>xds</c> resolver scheme of grpc-dotnet: <c>GrpcChannel.ForAddress("xds:///reviews:9080")</c> resolves the
/// target through the listener named as gRFC A27 says: <c>reviews:9080</c> as written, through the bootstrap's
/// <c>client_default_listener_resource_name_template</c> (istiod and Mesh.ControlPlane answer that name).
/// </summary>
internal sealed class XdsResolverFactory(MeshRuntime runtime) : ResolverFactory
{
    /// <inheritdoc />
    public override string Name => MeshGrpcChannelOptionsExtensions.Scheme;

    /// <inheritdoc />
    public override Resolver Create(ResolverOptions options)
    {
        var (authority, _, _) = ParseTarget(options.Address, options.DefaultPort);
        var hasHandler = MeshGrpcHandler.IsInChain(options.ChannelOptions.HttpHandler);
        return new XdsResolver(runtime, authority, hasHandler, options.LoggerFactory.CreateLogger<XdsResolver>());
    }

    /// <summary>
    /// Splits <c>xds:///host[:port]</c> (or <c>xds://authority/host[:port]</c>; the xDS server authority is not
    /// supported and must be empty) into the target authority, host and port.
    /// </summary>
    internal static (string Authority, string Host, int Port) ParseTarget(Uri address, int defaultPort)
    {
        if (!string.IsNullOrEmpty(address.Authority))
        {
            throw new InvalidOperationException(
                $"Mesh.Sdk: '{address}' names xDS server authority '{address.Authority}'; only the bootstrap's server is supported, write 'xds:///{address.AbsolutePath.TrimStart('/')}'.");
        }

        var target = Uri.UnescapeDataString(address.AbsolutePath.TrimStart('/'));
        if (target.Length == 0)
        {
            throw new InvalidOperationException($"Mesh.Sdk: '{address}' names no service; write 'xds:///reviews:9080'.");
        }

        var colon = target.LastIndexOf(':');
        if (colon > 0 && !target.EndsWith(']') && int.TryParse(target.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and <= 65535)
        {
            return (target, target[..colon], port);
        }

        return (target, target, defaultPort);
    }
}

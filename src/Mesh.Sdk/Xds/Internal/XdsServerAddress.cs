using System.Net;
using System.Net.Sockets;

namespace Mesh.Sdk.Xds.Internal;

/// <summary>A parsed <c>server_uri</c>: a TCP host and port (spoken as h2c) or a Unix domain socket path.</summary>
internal sealed record XdsServerAddressInfo(string? Host, int Port, string? UnixPath)
{
    /// <summary>The HTTP address handed to the gRPC channel.</summary>
    public Uri HttpAddress => UnixPath is null
        ? new Uri($"http://{(Host!.Contains(':', StringComparison.Ordinal) ? "[" + Host + "]" : Host)}:{Port}")
        : new Uri("http://localhost");

    public EndPoint? UnixEndPoint => UnixPath is null ? null : new UnixDomainSocketEndPoint(UnixPath);
}

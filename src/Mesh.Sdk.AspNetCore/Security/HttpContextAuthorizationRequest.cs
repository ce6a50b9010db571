using System.Diagnostics.CodeAnalysis;
using System.Net;
using Mesh.Sdk.Security.Authorization;
using Microsoft.AspNetCore.Http;

namespace Mesh.Sdk.AspNetCore.Security;

/// <summary>
/// What RBAC reads from an inbound ASP.NET Core request. <c>:path</c> is Kestrel's path, which has its <c>.</c> and
/// <c>..</c> segments removed and its percent-encoding decoded before this point (so <c>/public/../admin</c> and
/// <c>/%61dmin</c> are both <c>/admin</c>, the path the app routes on), followed by the raw query string.
/// </summary>
internal readonly struct HttpContextAuthorizationRequest(HttpContext context, MeshTlsConnectionFeature? tls) : IAuthorizationRequest
{
    public string Authority => context.Request.Host.Value ?? string.Empty;

    // Read once per request: matchers may ask several times.
    private readonly string _pathAndQuery = PathAndQueryOf(context.Request);

    public string PathAndQuery => _pathAndQuery;

    public string Method => context.Request.Method;

    public string Scheme => tls is null ? "http" : "https";

    public IPAddress? SourceAddress => context.Connection.RemoteIpAddress;

    public IPAddress? DestinationAddress => context.Connection.LocalIpAddress;

    public int DestinationPort => context.Connection.LocalPort;

    public IPAddress? DirectRemoteAddress => context.Connection.RemoteIpAddress;

    public IPAddress? RemoteAddress => context.Connection.RemoteIpAddress;

    public AuthenticatedPeer? Peer => tls?.Peer;

    public string? RequestedServerName => tls?.HostName;

    private static string PathAndQueryOf(HttpRequest request)
    {
        var path = request.PathBase.HasValue ? request.PathBase.Value + request.Path.Value : request.Path.Value ?? "/";
        return request.QueryString.HasValue ? path + request.QueryString.Value : path;
    }

    public bool TryGetHeader(string name, [NotNullWhen(true)] out string? value)
    {
        if (context.Request.Headers.TryGetValue(name, out var values) && values.Count > 0)
        {
            value = values.Count == 1 ? values[0] ?? string.Empty : string.Join(',', values.ToArray());
            return true;
        }

        value = null;
        return false;
    }
}

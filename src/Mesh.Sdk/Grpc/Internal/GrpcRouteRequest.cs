using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Http.Headers;
using Mesh.Sdk.Routing;

namespace Mesh.Sdk.Grpc.Internal;

/// <summary>
/// Routing view of a gRPC call as the picker sees it: the <c>:authority</c> is the channel's target
/// (<c>reviews:9080</c> for <c>xds:///reviews:9080</c>), as gRPC's xDS clients match virtual hosts; the path is
/// <c>/package.Service/Method</c>; call metadata are the request headers.
/// </summary>
internal readonly struct GrpcRouteRequest : IRouteRequest
{
    private readonly HttpRequestMessage _request;

    public GrpcRouteRequest(HttpRequestMessage request, string authority)
    {
        _request = request;
        Authority = authority;
        var uri = request.RequestUri;
        PathAndQuery = uri is null ? "/" : uri.IsAbsoluteUri ? uri.PathAndQuery : uri.OriginalString;
    }

    /// <inheritdoc />
    public string Authority { get; }

    /// <inheritdoc />
    public string PathAndQuery { get; }

    /// <inheritdoc />
    public string Method => "POST";

    /// <inheritdoc />
    public string Scheme => "http";

    /// <inheritdoc />
    public IPAddress? SourceAddress => null;

    /// <inheritdoc />
    public bool TryGetHeader(string name, [NotNullWhen(true)] out string? value)
    {
        if (_request.Headers.NonValidated.TryGetValues(name, out var values)
            || (_request.Content is { } content && content.Headers.NonValidated.TryGetValues(name, out values)))
        {
            value = Join(values);
            return true;
        }

        value = null;
        return false;
    }

    private static string Join(HeaderStringValues values) => values.Count == 1 ? values.ToString() : string.Join(',', values);
}

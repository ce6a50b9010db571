using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Http.Headers;

namespace Mesh.Sdk.Routing;

/// <summary>
/// Routing view of an outbound <see cref="HttpRequestMessage"/> (also what a grpc-dotnet picker sees in
/// <c>PickContext.Request</c>). Authority and path are read once on creation; headers are read on demand from the
/// request and content header collections without validation or copying.
/// </summary>
internal readonly struct HttpRequestRouteRequest : IRouteRequest
{
    private readonly HttpRequestMessage _request;

    /// <summary>Creates the view.</summary>
    /// <param name="request">The request; its <see cref="HttpRequestMessage.RequestUri"/> must be absolute.</param>
    /// <param name="sourceAddress">The local address calls leave from, when hash policies need it.</param>
    /// <param name="authority">
    /// The authority to route by, when the URI does not carry it: a grpc-dotnet channel to <c>xds:///reviews:9080</c>
    /// sends calls to <c>xds:///pkg.Service/Method</c>, so its picker passes the channel's target
    /// (<c>reviews:9080</c>). Otherwise the <c>Host</c> header, else <see cref="Uri.Authority"/>.
    /// </param>
    public HttpRequestRouteRequest(HttpRequestMessage request, IPAddress? sourceAddress = null, string? authority = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        var uri = request.RequestUri;
        if (uri is null || !uri.IsAbsoluteUri)
        {
            throw new ArgumentException("The request has no absolute RequestUri to route.", nameof(request));
        }

        _request = request;
        Authority = authority ?? request.Headers.Host ?? uri.Authority;
        if (Authority.Length == 0)
        {
            throw new ArgumentException($"The request URI '{uri}' has no authority to route by; pass the channel target as 'authority'.", nameof(request));
        }

        PathAndQuery = uri.PathAndQuery;
        Scheme = uri.Scheme;
        SourceAddress = sourceAddress;
    }

    /// <inheritdoc />
    public string Authority { get; }

    /// <inheritdoc />
    public string PathAndQuery { get; }

    /// <inheritdoc />
    public string Method => _request.Method.Method;

    /// <inheritdoc />
    public string Scheme { get; }

    /// <inheritdoc />
    public IPAddress? SourceAddress { get; }

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

    private static string Join(HeaderStringValues values)
    {
        if (values.Count == 1)
        {
            // HeaderStringValues holds a single value as the original string: no copy.
            return values.ToString();
        }

        return string.Join(',', values);
    }
}

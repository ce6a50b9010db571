using System.Diagnostics.CodeAnalysis;
using System.Net;

namespace Mesh.Sdk.Security.Authorization;

/// <summary>
/// An <see cref="IAuthorizationRequest"/> described by plain values: for explaining a decision without a live
/// request (admin tools, tests). Header names are looked up without case.
/// </summary>
internal readonly record struct AuthorizationRequest : IAuthorizationRequest
{
    /// <summary>Creates a request for <paramref name="method"/> <paramref name="pathAndQuery"/>.</summary>
    public AuthorizationRequest(string method, string pathAndQuery, string authority)
    {
        Method = method;
        PathAndQuery = pathAndQuery;
        Authority = authority;
    }

    /// <inheritdoc />
    public string Authority { get; init; }

    /// <inheritdoc />
    public string PathAndQuery { get; init; }

    /// <inheritdoc />
    public string Method { get; init; }

    /// <inheritdoc />
    public string Scheme { get; init; } = "http";

    /// <summary>The request headers (without pseudo-headers); several values of one header are joined with <c>,</c>.</summary>
    public IReadOnlyDictionary<string, string>? Headers { get; init; }

    /// <inheritdoc />
    public IPAddress? SourceAddress => DirectRemoteAddress;

    /// <inheritdoc />
    public IPAddress? DestinationAddress { get; init; }

    /// <inheritdoc />
    public int DestinationPort { get; init; }

    /// <inheritdoc />
    public IPAddress? DirectRemoteAddress { get; init; }

    /// <summary>The original client's address; the peer address when not set.</summary>
    public IPAddress? RemoteAddress
    {
        get => _remoteAddress ?? DirectRemoteAddress;
        init => _remoteAddress = value;
    }

    /// <inheritdoc />
    public AuthenticatedPeer? Peer { get; init; }

    /// <inheritdoc />
    public string? RequestedServerName { get; init; }

    private readonly IPAddress? _remoteAddress;

    /// <inheritdoc />
    public bool TryGetHeader(string name, [NotNullWhen(true)] out string? value)
    {
        if (Headers is not null)
        {
            foreach (var (key, v) in Headers)
            {
                if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase))
                {
                    value = v;
                    return true;
                }
            }
        }

        value = null;
        return false;
    }
}

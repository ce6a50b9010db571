using System.Globalization;
using System.Net;

namespace Mesh.Sdk.Routing;

/// <summary>
/// Explains how the mesh routes a request, from the route tables in force in this process: which virtual host and
/// route match, why each earlier route does not (its first failing condition), the cluster (and weights), and the
/// retry, timeout, fault, mirror, hash and header policies that apply. The answer comes from the same match code the
/// request path runs, so it is what a real request with the same authority, path, method and headers gets.
/// Registered by <c>AddMesh()</c>; resolve it from the service provider.
/// </summary>
/// <remarks>
/// <see cref="Explain(HttpRequestMessage)"/> reads the tables as they are: a host this process has not yet sent a
/// request to has no routes here (outcome <see cref="RouteExplanationOutcome.NotInMesh"/>).
/// <see cref="ExplainAsync(HttpRequestMessage, CancellationToken)"/> first asks the control plane for the host, as the
/// first request would. Explaining draws from the same random source as requests for weighted picks and
/// <c>runtime_fraction</c>; it changes nothing else.
/// </remarks>
public sealed class MeshRouteExplainer
{
    private readonly MeshRuntime _runtime;

    internal MeshRouteExplainer(MeshRuntime runtime)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        _runtime = runtime;
    }

    /// <summary>Explains <paramref name="request"/> against the route tables in force.</summary>
    /// <param name="request">The request as it would be sent (absolute <c>http</c>/<c>https</c> URI; the <c>Host</c> header wins over the URI's authority).</param>
    /// <returns>The explanation.</returns>
    public RouteExplanation Explain(HttpRequestMessage request)
    {
        var uri = CheckUri(request);
        return Explain(request, _runtime.ListenerNameFor(uri.IdnHost, uri.Port));
    }

    /// <summary>
    /// Explains <paramref name="request"/>, first resolving its host with the control plane as the first request
    /// to a host does (waiting at most <see cref="MeshOptions.ResolveTimeout"/>).
    /// </summary>
    /// <param name="request">The request as it would be sent.</param>
    /// <param name="cancellationToken">Cancels the wait for the control plane.</param>
    /// <returns>The explanation.</returns>
    public async Task<RouteExplanation> ExplainAsync(HttpRequestMessage request, CancellationToken cancellationToken = default)
    {
        var uri = CheckUri(request);
        var listener = await _runtime.ResolveListenerAsync(uri.IdnHost, uri.Port, cancellationToken).ConfigureAwait(false);
        return Explain(request, listener ?? _runtime.ListenerNameFor(uri.IdnHost, uri.Port));
    }

    /// <summary>Explains a request given by its parts against the route tables in force.</summary>
    /// <param name="authority">The authority, <c>host[:port]</c> (port 80 when omitted), for example <c>reviews:9080</c>.</param>
    /// <param name="pathAndQuery">The path and query, for example <c>/reviews/0?x=1</c>.</param>
    /// <param name="method">The method. <value>Default <c>GET</c>.</value></param>
    /// <param name="headers">Request headers; a name given twice is sent twice.</param>
    /// <param name="sourceAddress">The address the request leaves from (for <c>source_ip</c> hash policies); the workload's by default.</param>
    /// <returns>The explanation.</returns>
    public RouteExplanation Explain(string authority, string pathAndQuery, string method = "GET", IEnumerable<KeyValuePair<string, string>>? headers = null, IPAddress? sourceAddress = null)
    {
        using var request = Build(authority, pathAndQuery, method, headers);
        var uri = request.RequestUri!;
        return Explain(request, _runtime.ListenerNameFor(uri.IdnHost, uri.Port), sourceAddress);
    }

    internal static HttpRequestMessage Build(string authority, string pathAndQuery, string method, IEnumerable<KeyValuePair<string, string>>? headers)
    {
        ArgumentException.ThrowIfNullOrEmpty(authority);
        ArgumentException.ThrowIfNullOrEmpty(pathAndQuery);
        ArgumentException.ThrowIfNullOrEmpty(method);
        if (pathAndQuery[0] != '/')
        {
            throw new ArgumentException($"The path '{pathAndQuery}' must start with '/'.", nameof(pathAndQuery));
        }

        if (!Uri.TryCreate("http://" + authority + pathAndQuery, UriKind.Absolute, out var uri))
        {
            throw new ArgumentException($"'{authority}{pathAndQuery}' is not a valid authority and path.", nameof(authority));
        }

        var request = new HttpRequestMessage(new HttpMethod(method.ToUpperInvariant()), uri);
        foreach (var (name, value) in headers ?? [])
        {
            if (string.Equals(name, "host", StringComparison.OrdinalIgnoreCase))
            {
                request.Headers.Host = value;
            }
            else if (!request.Headers.TryAddWithoutValidation(name, value))
            {
                request.Content ??= new ByteArrayContent([]);
                request.Content.Headers.TryAddWithoutValidation(name, value);
            }
        }

        return request;
    }

    private RouteExplanation Explain(HttpRequestMessage request, string? listener, IPAddress? sourceAddress = null)
    {
        var uri = request.RequestUri!;
        // The same authority the HTTP handler routes by: the Host header, else the URI's (default port omitted).
        var view = new HttpRequestRouteRequest(request, sourceAddress ?? _runtime.InstanceAddress, request.Headers.Host ?? RouteHost.AuthorityOf(uri));
        if (listener is null)
        {
            return new RouteExplanation
            {
                Method = view.Method,
                Authority = view.Authority,
                PathAndQuery = view.PathAndQuery,
                Outcome = RouteExplanationOutcome.NotInMesh,
                Detail = $"host '{uri.IdnHost}' is never routed by the mesh (IP literal or invalid name); the request passes through",
            };
        }

        if (!_runtime.Routes.TryGetTable(listener, out var table))
        {
            var inSnapshot = _runtime.Snapshots.Current.Listeners.ContainsKey(listener);
            return new RouteExplanation
            {
                Method = view.Method,
                Authority = view.Authority,
                PathAndQuery = view.PathAndQuery,
                Listener = listener,
                Outcome = inSnapshot ? RouteExplanationOutcome.NoRouteConfiguration : RouteExplanationOutcome.NotInMesh,
                Status = inSnapshot ? 503 : null,
                Detail = inSnapshot
                    ? $"listener '{listener}' has no route configuration in force (not received yet, or rejected; see the log)"
                    : $"no listener '{listener}' from the control plane (not asked for yet, or the host is not a mesh service); the request passes through",
            };
        }

        return RouteExplainer.Explain(table, listener, in view);
    }

    private static Uri CheckUri(HttpRequestMessage request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var uri = request.RequestUri;
        if (uri is null || !uri.IsAbsoluteUri || !(uri.Scheme is "http" or "https"))
        {
            throw new ArgumentException(string.Format(CultureInfo.InvariantCulture, "The request URI '{0}' is not an absolute http or https URI.", uri), nameof(request));
        }

        return uri;
    }
}

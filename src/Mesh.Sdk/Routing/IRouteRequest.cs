using System.Diagnostics.CodeAnalysis;
using System.Net;

namespace Mesh.Sdk.Routing;

/// <summary>
/// The parts of a request that routing reads. Implemented by small readonly structs (for example
/// <see cref="HttpRequestRouteRequest"/>) so the generic match path is specialised per adapter and nothing is boxed.
/// </summary>
internal interface IRouteRequest
{
    /// <summary>The <c>:authority</c>: host, with <c>:port</c> when the request names one.</summary>
    string Authority { get; }

    /// <summary>The <c>:path</c>: path and query string, for example <c>/reviews/0?x=1</c>.</summary>
    string PathAndQuery { get; }

    /// <summary>The <c>:method</c>, upper case.</summary>
    string Method { get; }

    /// <summary>The <c>:scheme</c>: <c>http</c> or <c>https</c>.</summary>
    string Scheme { get; }

    /// <summary>The address the request comes from (the local workload for outbound calls), when known.</summary>
    IPAddress? SourceAddress { get; }

    /// <summary>
    /// Looks up a regular header by lower-case name. A header sent several times yields its values joined with
    /// <c>,</c>, as Envoy's header matchers see them.
    /// </summary>
    bool TryGetHeader(string name, [NotNullWhen(true)] out string? value);
}

using System.Diagnostics;

namespace Mesh.Sdk.Propagation;

/// <summary>
/// Copies the headers of <see cref="MeshPropagation.Current"/> onto each outgoing request that does not set them
/// already (a header the calling code or the client's default headers set wins). <c>AddMesh()</c> adds it to every
/// meshed <c>IHttpClientFactory</c> client, before the mesh's own handler so routes can match the propagated
/// headers (<c>end-user</c>); add it yourself to an <see cref="HttpClient"/> built by hand.
/// </summary>
/// <remarks>
/// W3C trace context (<c>traceparent</c>, <c>tracestate</c>) is left to .NET when an <see cref="Activity"/> is
/// current: <see cref="HttpClient"/> then injects the context of that activity (ASP.NET Core's request activity is
/// the child of the incoming <c>traceparent</c>, so the trace id is the same and the parent span is this service's),
/// and a copied header would cut this service out of the trace. Without a current activity the values are copied
/// as captured, like every other header.
/// </remarks>
public sealed class MeshPropagationHandler : DelegatingHandler
{
    /// <summary>Creates the handler; set <see cref="DelegatingHandler.InnerHandler"/> before use.</summary>
    public MeshPropagationHandler()
    {
    }

    /// <summary>Creates the handler over <paramref name="innerHandler"/>.</summary>
    /// <param name="innerHandler">The handler requests go on to.</param>
    public MeshPropagationHandler(HttpMessageHandler innerHandler)
        : base(innerHandler)
    {
    }

    /// <inheritdoc/>
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        Apply(request);
        return base.SendAsync(request, cancellationToken);
    }

    /// <inheritdoc/>
    protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        Apply(request);
        return base.Send(request, cancellationToken);
    }

    internal static void Apply(HttpRequestMessage request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (MeshPropagation.Current is not { Count: > 0 } context)
        {
            return;
        }

        var headers = request.Headers;
        var activity = Activity.Current is { IdFormat: ActivityIdFormat.W3C };
        foreach (var (name, value) in context.AsSpan())
        {
            if (activity && IsTraceContext(name))
            {
                continue;
            }

            if (!headers.Contains(name))
            {
                headers.TryAddWithoutValidation(name, value);
            }
        }
    }

    private static bool IsTraceContext(string name) =>
        string.Equals(name, "traceparent", StringComparison.OrdinalIgnoreCase) || string.Equals(name, "tracestate", StringComparison.OrdinalIgnoreCase);
}

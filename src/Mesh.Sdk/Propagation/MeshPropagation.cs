namespace Mesh.Sdk.Propagation;

/// <summary>
/// The request headers that travel from the request being handled to the outgoing calls made while handling it:
/// tracing context (so the mesh's spans of one request join into one trace), <c>x-request-id</c> (one id in every
/// access log line of the request) and <c>end-user</c> (so routes matching the user, such as bookinfo's
/// <c>reviews</c> test route for <c>jason</c>, hold at every hop).
/// </summary>
/// <remarks>
/// In ASP.NET Core, <c>builder.AddMesh()</c> captures the values from each incoming request; every meshed
/// <c>IHttpClientFactory</c> client (and <c>AddGrpcClient</c> client) then copies them onto its requests through
/// <see cref="MeshPropagationHandler"/>. Code that runs outside a request (a background job, a message consumer)
/// sets <see cref="Current"/> or calls <see cref="BeginScope"/> to make its calls carry values of its own.
/// The values flow with the async control flow (<see cref="AsyncLocal{T}"/>), like <c>Activity.Current</c>.
/// </remarks>
public static class MeshPropagation
{
    private static readonly AsyncLocal<MeshPropagationContext?> CurrentContext = new();

    /// <summary>
    /// The headers propagated by default, as Istio's bookinfo services forward them: <c>x-request-id</c>; W3C trace
    /// context (<c>traceparent</c>, <c>tracestate</c>); Zipkin B3 in single (<c>b3</c>) and multi-header form
    /// (<c>x-b3-traceid</c>, <c>x-b3-spanid</c>, <c>x-b3-parentspanid</c>, <c>x-b3-sampled</c>, <c>x-b3-flags</c>);
    /// Lightstep <c>x-ot-span-context</c>; Datadog <c>x-datadog-trace-id</c>, <c>x-datadog-parent-id</c>,
    /// <c>x-datadog-sampling-priority</c>; Google <c>x-cloud-trace-context</c> and <c>grpc-trace-bin</c>;
    /// SkyWalking <c>sw8</c>; and the application headers <c>end-user</c> and <c>user-agent</c>.
    /// </summary>
    public static IReadOnlyList<string> DefaultHeaders { get; } =
    [
        "x-request-id",
        "traceparent",
        "tracestate",
        "b3",
        "x-b3-traceid",
        "x-b3-spanid",
        "x-b3-parentspanid",
        "x-b3-sampled",
        "x-b3-flags",
        "x-ot-span-context",
        "x-datadog-trace-id",
        "x-datadog-parent-id",
        "x-datadog-sampling-priority",
        "x-cloud-trace-context",
        "grpc-trace-bin",
        "sw8",
        "end-user",
        "user-agent",
    ];

    /// <summary>
    /// The values outgoing meshed requests carry in the current async flow, or <see langword="null"/> when there are
    /// none. Setting it affects the current flow and the flows it starts from then on, never the caller's.
    /// </summary>
    public static MeshPropagationContext? Current
    {
        get => CurrentContext.Value;
        set => CurrentContext.Value = value;
    }

    /// <summary>
    /// Makes <paramref name="context"/> current until the returned scope is disposed, which restores the values
    /// that were current before.
    /// </summary>
    /// <param name="context">The values; <see langword="null"/> propagates nothing inside the scope.</param>
    /// <returns>The scope; dispose it on the same async flow.</returns>
    public static IDisposable BeginScope(MeshPropagationContext? context)
    {
        var scope = new Scope(CurrentContext.Value);
        CurrentContext.Value = context;
        return scope;
    }

    private sealed class Scope(MeshPropagationContext? previous) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                CurrentContext.Value = previous;
            }
        }
    }
}

using Mesh.Sdk.Propagation;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace Mesh.Sdk.AspNetCore;

/// <summary>
/// Captures the propagated headers of each incoming request into <see cref="MeshPropagation.Current"/> for the
/// rest of the pipeline, generating <c>x-request-id</c> (a GUID, also set on the incoming request, as Envoy does on
/// inbound) when the request has none.
/// </summary>
internal sealed class MeshPropagationMiddleware
{
    private const string RequestIdHeader = "x-request-id";
    private readonly RequestDelegate _next;
    private readonly string[] _names;
    private readonly bool _generateRequestId;

    public MeshPropagationMiddleware(RequestDelegate next, IOptions<MeshOptions> options)
    {
        ArgumentNullException.ThrowIfNull(next);
        ArgumentNullException.ThrowIfNull(options);
        _next = next;
        var value = options.Value;
        _names = [.. value.PropagatedHeaders];
        _generateRequestId = value.GenerateRequestId && value.PropagatedHeaders.Contains(RequestIdHeader);
    }

    public async Task InvokeAsync(HttpContext context)
    {
        var previous = MeshPropagation.Current;
        MeshPropagation.Current = Capture(context.Request.Headers);
        try
        {
            await _next(context).ConfigureAwait(false);
        }
        finally
        {
            MeshPropagation.Current = previous;
        }
    }

    internal MeshPropagationContext Capture(IHeaderDictionary headers)
    {
        var names = _names;
        KeyValuePair<string, string>[]? values = null;
        var count = 0;
        var hasRequestId = false;
        for (var i = 0; i < names.Length; i++)
        {
            var name = names[i];
            if (headers.TryGetValue(name, out var value) && !StringValues.IsNullOrEmpty(value))
            {
                values ??= new KeyValuePair<string, string>[names.Length];
                values[count++] = new(name, value.ToString());
                hasRequestId |= string.Equals(name, RequestIdHeader, StringComparison.OrdinalIgnoreCase);
            }
        }

        if (_generateRequestId && !hasRequestId)
        {
            var id = Guid.NewGuid().ToString();
            headers[RequestIdHeader] = id;
            values ??= new KeyValuePair<string, string>[names.Length];
            values[count++] = new(RequestIdHeader, id);
        }

        if (values is null)
        {
            return MeshPropagationContext.Empty;
        }

        if (count != values.Length)
        {
            Array.Resize(ref values, count);
        }

        return MeshPropagationContext.CreateTrusted(values);
    }
}

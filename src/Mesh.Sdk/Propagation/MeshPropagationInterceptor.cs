using System.Diagnostics;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace Mesh.Sdk.Propagation;

/// <summary>
/// Adds the headers of <see cref="MeshPropagation.Current"/> to a gRPC call's metadata before the call starts, so
/// the mesh's gRPC picker routes on them (<c>end-user</c>) like the HTTP handler does. <c>AddMesh()</c> adds it to
/// every <c>AddGrpcClient</c> client. Metadata the call sets wins; <c>user-agent</c> stays grpc-dotnet's; W3C trace
/// context is left to .NET while an <see cref="Activity"/> is current (see <see cref="MeshPropagationHandler"/>);
/// <c>-bin</c> headers are sent as binary metadata (skipped when the captured value is not base64).
/// </summary>
internal sealed class MeshPropagationInterceptor : Interceptor
{
    public override TResponse BlockingUnaryCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context, BlockingUnaryCallContinuation<TRequest, TResponse> continuation)
        => continuation(request, WithHeaders(context));

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncUnaryCallContinuation<TRequest, TResponse> continuation)
        => continuation(request, WithHeaders(context));

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncServerStreamingCallContinuation<TRequest, TResponse> continuation)
        => continuation(request, WithHeaders(context));

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(ClientInterceptorContext<TRequest, TResponse> context, AsyncClientStreamingCallContinuation<TRequest, TResponse> continuation)
        => continuation(WithHeaders(context));

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(ClientInterceptorContext<TRequest, TResponse> context, AsyncDuplexStreamingCallContinuation<TRequest, TResponse> continuation)
        => continuation(WithHeaders(context));

    internal static ClientInterceptorContext<TRequest, TResponse> WithHeaders<TRequest, TResponse>(ClientInterceptorContext<TRequest, TResponse> context)
        where TRequest : class
        where TResponse : class
    {
        if (MeshPropagation.Current is not { Count: > 0 } propagated)
        {
            return context;
        }

        var existing = context.Options.Headers;
        Metadata? added = null;
        var activity = Activity.Current is { IdFormat: ActivityIdFormat.W3C };
        foreach (var (name, value) in propagated.AsSpan())
        {
            var key = name.ToLowerInvariant();
            if (key is "user-agent" || (activity && key is "traceparent" or "tracestate") || Contains(existing, key))
            {
                continue;
            }

            added ??= existing is null ? [] : Copy(existing);
            if (key.EndsWith(Metadata.BinaryHeaderSuffix, StringComparison.Ordinal))
            {
                if (TryDecodeBase64(value) is { } bytes)
                {
                    added.Add(key, bytes);
                }
            }
            else
            {
                added.Add(key, value);
            }
        }

        return added is null ? context : new ClientInterceptorContext<TRequest, TResponse>(context.Method, context.Host, context.Options.WithHeaders(added));
    }

    private static bool Contains(Metadata? metadata, string key)
    {
        if (metadata is null)
        {
            return false;
        }

        foreach (var entry in metadata)
        {
            if (string.Equals(entry.Key, key, StringComparison.Ordinal))
            {
                return true;
            }
        }

        return false;
    }

    private static Metadata Copy(Metadata metadata)
    {
        var copy = new Metadata();
        foreach (var entry in metadata)
        {
            copy.Add(entry);
        }

        return copy;
    }

    private static byte[]? TryDecodeBase64(string value)
    {
        // gRPC sends binary headers base64 encoded, padding optional.
        var padded = (value.Length % 4) switch
        {
            2 => value + "==",
            3 => value + "=",
            _ => value,
        };
        var buffer = new byte[padded.Length];
        return Convert.TryFromBase64String(padded, buffer, out var written) ? buffer[..written] : null;
    }
}

using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using Mesh.Sdk.LoadBalancing;
using Mesh.Sdk.Resilience;

namespace Mesh.Sdk.Http;

/// <summary>
/// The body of an upstream response, holding what the request occupies until the body is read to its end or the
/// response is disposed, whichever comes first: the cluster's <c>max_requests</c> slot, its <c>max_connections</c>
/// slot (HTTP/1.1 keeps the connection until the body is read) and the endpoint's active-request count that least
/// request balancing reads. Envoy releases the same at the end of the stream, not at response headers.
/// Released exactly once, also when reading fails or is cancelled.
/// </summary>
internal sealed class LeasedContent : HttpContent
{
    private static bool s_shareHeaders = true;

    // Four references and nothing more: this object is allocated per meshed response. Taking _endpoint (never
    // null while held) is what makes the release happen exactly once.
    private readonly HttpContent _inner;
    private readonly CircuitBreakerLease _request;
    private readonly CircuitBreakerLease _connection;
    private EndpointState? _endpoint;

    private LeasedContent(HttpContent inner, CircuitBreakerLease request, CircuitBreakerLease connection, EndpointState endpoint)
    {
        _inner = inner;
        _request = request;
        _connection = connection;
        _endpoint = endpoint;
        ShareOrCopyHeaders(inner, this);
    }

    /// <summary>Whether the leases are still held.</summary>
    public bool IsHeld => Volatile.Read(ref _endpoint) is not null;

    /// <summary>
    /// Makes <paramref name="response"/>'s body hold the leases and the endpoint's active request until it is
    /// finished or disposed. A response that has no body (HEAD, 204, 304, <c>Content-Length: 0</c>) releases them
    /// at once. Ownership of the leases passes to the response in every case.
    /// </summary>
    public static void Attach(HttpResponseMessage response, HttpMethod method, CircuitBreakerLease request, CircuitBreakerLease connection, EndpointState endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        if (!HasBody(response, method))
        {
            Release(request, connection, endpoint);
            return;
        }

        response.Content = new LeasedContent(response.Content, request, connection, endpoint);
    }

    /// <summary>Whether <paramref name="response"/> has a body to read: not for HEAD, 204, 304 or <c>Content-Length: 0</c>.</summary>
    public static bool HasBody(HttpResponseMessage response, HttpMethod method)
        => method != HttpMethod.Head
           && response.StatusCode is not (HttpStatusCode.NoContent or HttpStatusCode.NotModified)
           && response.Content.Headers.ContentLength != 0;

    /// <summary>Gives back leases and the endpoint's active request that no response holds.</summary>
    public static void Release(CircuitBreakerLease request, CircuitBreakerLease connection, EndpointState? endpoint)
    {
        connection.Dispose();
        request.Dispose();
        endpoint?.RequestCompleted();
    }

    /// <summary>The content's headers are the inner content's own object when the runtime allows it, else a copy.</summary>
    internal static void ShareOrCopyHeaders(HttpContent from, HttpContent to)
    {
        if (s_shareHeaders)
        {
            try
            {
                // One field write instead of a header store per response. HttpContent keeps its headers in a
                // private field; should a runtime rename it, the headers are copied through the public API.
                HeadersField(to) = HeadersField(from);
                return;
            }
            catch (MissingFieldException)
            {
                s_shareHeaders = false;
            }
        }

        CopyHeaders(from, to);
    }

    internal static void CopyHeaders(HttpContent from, HttpContent to)
    {
        foreach (var header in from.Headers.NonValidated)
        {
            var values = header.Value;
            if (values.Count == 1)
            {
                to.Headers.TryAddWithoutValidation(header.Key, values.ToString());
            }
            else
            {
                to.Headers.TryAddWithoutValidation(header.Key, values);
            }
        }
    }

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_headers")]
    private static extern ref HttpContentHeaders? HeadersField(HttpContent content);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
    {
        try
        {
            await _inner.CopyToAsync(stream).ConfigureAwait(false);
        }
        finally
        {
            ReleaseOnce();
        }
    }

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        try
        {
            await _inner.CopyToAsync(stream, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ReleaseOnce();
        }
    }

    protected override void SerializeToStream(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        try
        {
            _inner.CopyTo(stream, context, cancellationToken);
        }
        finally
        {
            ReleaseOnce();
        }
    }

    protected override Stream CreateContentReadStream(CancellationToken cancellationToken)
    {
        try
        {
            return new ReleasingStream(_inner.ReadAsStream(cancellationToken), this);
        }
        catch
        {
            ReleaseOnce();
            throw;
        }
    }

    protected override async Task<Stream> CreateContentReadStreamAsync()
    {
        try
        {
            return new ReleasingStream(await _inner.ReadAsStreamAsync().ConfigureAwait(false), this);
        }
        catch
        {
            ReleaseOnce();
            throw;
        }
    }

    protected override async Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken)
    {
        try
        {
            return new ReleasingStream(await _inner.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), this);
        }
        catch
        {
            ReleaseOnce();
            throw;
        }
    }

    protected override bool TryComputeLength(out long length) => WrappedContentLength.TryGet(_inner, out length);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            ReleaseOnce();
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }

    private void ReleaseOnce()
    {
        if (Interlocked.Exchange(ref _endpoint, null) is { } endpoint)
        {
            Release(_request, _connection, endpoint);
        }
    }

    /// <summary>The inner body stream; the leases go when a read returns 0 bytes (the end), fails, or the stream is disposed.</summary>
    private sealed class ReleasingStream(Stream inner, LeasedContent owner) : BodyEndStream(inner)
    {
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            try
            {
                return Ended(Inner.Read(buffer), buffer.Length);
            }
            catch
            {
                owner.ReleaseOnce();
                throw;
            }
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            try
            {
                return Ended(await Inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false), buffer.Length);
            }
            catch
            {
                owner.ReleaseOnce();
                throw;
            }
        }

        public override async Task CopyToAsync(Stream destination, int bufferSize, CancellationToken cancellationToken)
        {
            try
            {
                await Inner.CopyToAsync(destination, bufferSize, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                owner.ReleaseOnce();
            }
        }

        protected override void OnEnded() => owner.ReleaseOnce();
    }
}

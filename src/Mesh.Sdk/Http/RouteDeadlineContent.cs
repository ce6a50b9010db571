using System.Buffers;
using System.Net;
using Mesh.Sdk.LoadBalancing;
using Mesh.Sdk.Resilience;
using Mesh.Sdk.Routing;

namespace Mesh.Sdk.Http;

/// <summary>
/// The body of an upstream response on a route with a timeout. Envoy's route timeout is the time the upstream has
/// to answer fully, until the end of the response stream; the request's route-timeout source (still running since
/// the request started) goes with the body, and every read or copy that waits for the upstream is bounded by what
/// is left of it. Past the deadline such a read fails with <see cref="HttpIOException"/> (response ended, the
/// way a response cut short by Envoy at its route timeout fails) whose message names the route and its timeout,
/// with a <see cref="TimeoutException"/> inside; the endpoint gets a local-origin timeout in outlier detection.
/// Only responses of timed routes get this wrapper: a route without a timeout (istiod's default) allocates nothing.
/// </summary>
internal sealed class RouteDeadlineContent : HttpContent
{
    private readonly HttpContent _inner;
    private readonly CancellationToken _deadline;
    private readonly CompiledRoute _route;
    private readonly ClusterRuntime _cluster;
    private readonly MeshEndpoint _endpoint;
    private CancellationTokenSource? _source;
    private int _reported;

    private RouteDeadlineContent(HttpContent inner, CancellationTokenSource source, CompiledRoute route, ClusterRuntime cluster, MeshEndpoint endpoint)
    {
        _inner = inner;
        _source = source;
        _deadline = source.Token;
        _route = route;
        _cluster = cluster;
        _endpoint = endpoint;
        LeasedContent.ShareOrCopyHeaders(inner, this);
    }

    /// <summary>
    /// Makes the rest of the route timeout (<paramref name="source"/>, whose timer started with the request) bound
    /// the reads of <paramref name="response"/>'s body. Ownership of <paramref name="source"/> passes to the body.
    /// </summary>
    public static void Attach(HttpResponseMessage response, CancellationTokenSource source, CompiledRoute route, ClusterRuntime cluster, MeshEndpoint endpoint)
        => response.Content = new RouteDeadlineContent(response.Content, source, route, cluster, endpoint);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
    {
        try
        {
            await _inner.CopyToAsync(stream, _deadline).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsTimeout(ex, default))
        {
            throw TimedOut();
        }
        finally
        {
            Finish();
        }
    }

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        using var linked = Link(cancellationToken, out var token);
        try
        {
            await _inner.CopyToAsync(stream, token).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsTimeout(ex, cancellationToken))
        {
            throw TimedOut();
        }
        finally
        {
            Finish();
        }
    }

    protected override void SerializeToStream(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        using var linked = Link(cancellationToken, out var token);
        try
        {
            _inner.CopyTo(stream, context, token);
        }
        catch (Exception ex) when (IsTimeout(ex, cancellationToken))
        {
            throw TimedOut();
        }
        finally
        {
            Finish();
        }
    }

    protected override Stream CreateContentReadStream(CancellationToken cancellationToken)
    {
        using var linked = Link(cancellationToken, out var token);
        try
        {
            return new DeadlineStream(_inner.ReadAsStream(token), this);
        }
        catch (Exception ex) when (IsTimeout(ex, cancellationToken))
        {
            throw TimedOut();
        }
    }

    protected override Task<Stream> CreateContentReadStreamAsync() => CreateContentReadStreamAsync(CancellationToken.None);

    protected override async Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken)
    {
        using var linked = Link(cancellationToken, out var token);
        try
        {
            return new DeadlineStream(await _inner.ReadAsStreamAsync(token).ConfigureAwait(false), this);
        }
        catch (Exception ex) when (IsTimeout(ex, cancellationToken))
        {
            throw TimedOut();
        }
    }

    protected override bool TryComputeLength(out long length) => WrappedContentLength.TryGet(_inner, out length);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Finish();
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <summary>The deadline alone when the caller's token cannot be cancelled, else both linked.</summary>
    private CancellationTokenSource? Link(CancellationToken caller, out CancellationToken token)
    {
        if (!caller.CanBeCanceled)
        {
            token = _deadline;
            return null;
        }

        var linked = CancellationTokenSource.CreateLinkedTokenSource(caller, _deadline);
        token = linked.Token;
        return linked;
    }

    /// <summary>A failure caused by the deadline (cancellation, or the connection it aborted), not by the caller.</summary>
    private bool IsTimeout(Exception ex, CancellationToken caller)
        => ex is OperationCanceledException or IOException or ObjectDisposedException
           && _deadline.IsCancellationRequested
           && !caller.IsCancellationRequested;

    private HttpIOException TimedOut()
    {
        if (Interlocked.Exchange(ref _reported, 1) == 0)
        {
            _cluster.ReportLocalOrigin(_endpoint, LocalOriginOutcome.Timeout);
        }

        var message = $"Mesh.Sdk: upstream request timeout: route '{_route.Name}' timeout {_route.Timeout} elapsed before the response body from '{_endpoint.Key}' of cluster '{_cluster.Name}' ended (the route timeout covers the whole response)";
        return new HttpIOException(HttpRequestError.ResponseEnded, message, new TimeoutException(message));
    }

    /// <summary>The body ended, failed or was disposed: the timer is no longer needed.</summary>
    private void Finish() => Interlocked.Exchange(ref _source, null)?.Dispose();

    /// <summary>The upstream body stream; each read waits at most until the deadline.</summary>
    private sealed class DeadlineStream(Stream inner, RouteDeadlineContent owner) : BodyEndStream(inner)
    {
        public override int Read(byte[] buffer, int offset, int count) => ReadBlocking(buffer.AsMemory(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var rented = ArrayPool<byte>.Shared.Rent(buffer.Length);
            try
            {
                var read = ReadBlocking(rented.AsMemory(0, buffer.Length));
                rented.AsSpan(0, read).CopyTo(buffer);
                return read;
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            using var linked = owner.Link(cancellationToken, out var token);
            try
            {
                return Ended(await Inner.ReadAsync(buffer, token).ConfigureAwait(false), buffer.Length);
            }
            catch (Exception ex) when (owner.IsTimeout(ex, cancellationToken))
            {
                owner.Finish();
                throw owner.TimedOut();
            }
        }

        /// <summary>
        /// A synchronous read takes no token, and disposing an HTTP/1.1 body stream drains it for up to the
        /// handler's drain timeout instead of aborting the blocked read; so it waits on the asynchronous read, which
        /// the deadline cancels. The upstream stream completes on its own I/O, not on the waiting thread.
        /// </summary>
        private int ReadBlocking(Memory<byte> buffer)
        {
            var reading = ReadAsync(buffer, CancellationToken.None);
            return reading.IsCompletedSuccessfully ? reading.Result : reading.AsTask().GetAwaiter().GetResult();
        }

        public override async Task CopyToAsync(Stream destination, int bufferSize, CancellationToken cancellationToken)
        {
            using var linked = owner.Link(cancellationToken, out var token);
            try
            {
                await Inner.CopyToAsync(destination, bufferSize, token).ConfigureAwait(false);
            }
            catch (Exception ex) when (owner.IsTimeout(ex, cancellationToken))
            {
                throw owner.TimedOut();
            }
            finally
            {
                owner.Finish();
            }
        }

        protected override void OnEnded() => owner.Finish();
    }
}

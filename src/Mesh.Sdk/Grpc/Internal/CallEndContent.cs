using System.Net;

namespace Mesh.Sdk.Grpc.Internal;

/// <summary>
/// The response content of a gRPC call with messages, wrapped so the call ends when its stream does: the first read
/// that returns no more data, or the disposal of the stream or of the content, calls
/// <see cref="MeshGrpcCall.EndStream"/> (once). Reads go straight to the transport's stream, never buffered; with
/// metrics on, the messages read are counted on the way and the call is reported at the end.
/// </summary>
internal sealed class CallEndContent : HttpContent
{
    private readonly HttpContent _inner;
    private readonly MeshGrpcCall _call;
    private readonly GrpcCallMetrics? _metrics;

    public CallEndContent(HttpContent inner, MeshGrpcCall call, GrpcCallMetrics? metrics = null)
    {
        _inner = inner;
        _call = call;
        _metrics = metrics;
        foreach (var header in inner.Headers.NonValidated)
        {
            Headers.TryAddWithoutValidation(header.Key, header.Value);
        }
    }

    protected override async Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken)
        => new CallEndStream(await _inner.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), _call, _metrics);

    protected override Task<Stream> CreateContentReadStreamAsync() => CreateContentReadStreamAsync(CancellationToken.None);

    protected override Stream CreateContentReadStream(CancellationToken cancellationToken)
        => new CallEndStream(_inner.ReadAsStream(cancellationToken), _call, _metrics);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        try
        {
            await _inner.CopyToAsync(_metrics is null ? stream : new GrpcCallMetrics.CountingWriteStream(stream, _metrics.Responses), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _call.EndStream();
            _metrics?.End(complete: true);
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
            _call.EndStream();
            _metrics?.End(complete: false);
        }

        base.Dispose(disposing);
    }

    /// <summary>A read-only pass-through stream that reports its end (and counts the messages read, with metrics on).</summary>
    private sealed class CallEndStream(Stream inner, MeshGrpcCall call, GrpcCallMetrics? metrics) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override int Read(byte[] buffer, int offset, int count) => Ended(inner.Read(buffer, offset, count), buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer) => Ended(inner.Read(buffer), buffer);

        public override async Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => Ended(await inner.ReadAsync(buffer.AsMemory(offset, count), cancellationToken).ConfigureAwait(false), buffer.AsSpan(offset, count));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
            => Ended(await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false), buffer.Span);

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
                call.EndStream();
                metrics?.End(complete: false);
            }

            base.Dispose(disposing);
        }

        public override async ValueTask DisposeAsync()
        {
            await inner.DisposeAsync().ConfigureAwait(false);
            call.EndStream();
            metrics?.End(complete: false);
            await base.DisposeAsync().ConfigureAwait(false);
        }

        // A zero-byte read of an empty buffer only waits for data; a read of a non-empty buffer returning 0 is the end.
        private int Ended(int read, Span<byte> buffer)
        {
            if (read > 0)
            {
                metrics?.Responses.Add(buffer[..read]);
            }
            else if (buffer.Length > 0)
            {
                call.EndStream();
                metrics?.End(complete: true);
            }

            return read;
        }
    }
}

using System.Net;

namespace Mesh.Sdk.Grpc.Internal;

/// <summary>
/// The response content of a gRPC call with messages, wrapped so the call ends when its stream does: the first read
/// that returns no more data, or the disposal of the stream or of the content, calls
/// <see cref="MeshGrpcCall.EndStream"/> (once). Reads go straight to the transport's stream, never buffered.
/// </summary>
internal sealed class CallEndContent : HttpContent
{
    private readonly HttpContent _inner;
    private readonly MeshGrpcCall _call;

    public CallEndContent(HttpContent inner, MeshGrpcCall call)
    {
        _inner = inner;
        _call = call;
        foreach (var header in inner.Headers.NonValidated)
        {
            Headers.TryAddWithoutValidation(header.Key, header.Value);
        }
    }

    protected override async Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken)
        => new CallEndStream(await _inner.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), _call);

    protected override Task<Stream> CreateContentReadStreamAsync() => CreateContentReadStreamAsync(CancellationToken.None);

    protected override Stream CreateContentReadStream(CancellationToken cancellationToken)
        => new CallEndStream(_inner.ReadAsStream(cancellationToken), _call);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        try
        {
            await _inner.CopyToAsync(stream, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _call.EndStream();
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
        }

        base.Dispose(disposing);
    }

    /// <summary>A read-only pass-through stream that reports its end.</summary>
    private sealed class CallEndStream(Stream inner, MeshGrpcCall call) : Stream
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

        public override int Read(byte[] buffer, int offset, int count) => Ended(inner.Read(buffer, offset, count), count);

        public override int Read(Span<byte> buffer) => Ended(inner.Read(buffer), buffer.Length);

        public override async Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => Ended(await inner.ReadAsync(buffer.AsMemory(offset, count), cancellationToken).ConfigureAwait(false), count);

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
            => Ended(await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false), buffer.Length);

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
            }

            base.Dispose(disposing);
        }

        public override async ValueTask DisposeAsync()
        {
            await inner.DisposeAsync().ConfigureAwait(false);
            call.EndStream();
            await base.DisposeAsync().ConfigureAwait(false);
        }

        // A zero-byte read of an empty buffer only waits for data; a read of a non-empty buffer returning 0 is the end.
        private int Ended(int read, int requested)
        {
            if (read == 0 && requested > 0)
            {
                call.EndStream();
            }

            return read;
        }
    }
}

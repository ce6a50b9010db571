using System.Buffers;
using System.IO.Pipelines;
using Mesh.Sdk.Telemetry;
using Microsoft.AspNetCore.Http.Features;

namespace Mesh.Sdk.AspNetCore.Telemetry;

/// <summary>
/// The request body of an inbound gRPC call as the app reads it (ASP.NET Core gRPC reads <c>Request.BodyReader</c>),
/// its messages counted as the app consumes them: each <see cref="PipeReader.AdvanceTo(SequencePosition)"/> passes the
/// consumed bytes to the counter. Nothing is copied or buffered.
/// </summary>
internal sealed class CountingRequestBodyPipeFeature(IRequestBodyPipeFeature inner, GrpcMessageCounter counter) : IRequestBodyPipeFeature
{
    public PipeReader Reader { get; } = new CountingPipeReader(inner.Reader, counter);

    private sealed class CountingPipeReader(PipeReader inner, GrpcMessageCounter counter) : PipeReader
    {
        private ReadOnlySequence<byte> _last;

        public override void AdvanceTo(SequencePosition consumed) => AdvanceTo(consumed, consumed);

        public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
        {
            counter.Add(_last.Slice(_last.Start, consumed));
            _last = default;
            inner.AdvanceTo(consumed, examined);
        }

        public override void CancelPendingRead() => inner.CancelPendingRead();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

        public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
        {
            var pending = inner.ReadAsync(cancellationToken);
            if (pending.IsCompletedSuccessfully)
            {
                var result = pending.Result;
                _last = result.Buffer;
                return new ValueTask<ReadResult>(result);
            }

            return Awaited(pending);
        }

        public override bool TryRead(out ReadResult result)
        {
            if (inner.TryRead(out result))
            {
                _last = result.Buffer;
                return true;
            }

            return false;
        }

        private async ValueTask<ReadResult> Awaited(ValueTask<ReadResult> pending)
        {
            var result = await pending.ConfigureAwait(false);
            _last = result.Buffer;
            return result;
        }
    }
}

/// <summary>
/// The response body of an inbound gRPC call as the app writes it (ASP.NET Core gRPC writes <c>Response.BodyWriter</c>),
/// its messages counted as they pass: each <see cref="PipeWriter.Advance"/> passes the bytes just written to the
/// counter, straight from the server's own buffer. Everything else is the server's feature.
/// </summary>
internal sealed class CountingResponseBodyFeature(IHttpResponseBodyFeature inner, GrpcMessageCounter counter) : IHttpResponseBodyFeature
{
    public Stream Stream => inner.Stream;

    public PipeWriter Writer { get; } = new CountingPipeWriter(inner.Writer, counter);

    public Task CompleteAsync() => inner.CompleteAsync();

    public void DisableBuffering() => inner.DisableBuffering();

    public Task SendFileAsync(string path, long offset, long? count, CancellationToken cancellationToken = default)
        => inner.SendFileAsync(path, offset, count, cancellationToken);

    public Task StartAsync(CancellationToken cancellationToken = default) => inner.StartAsync(cancellationToken);

    private sealed class CountingPipeWriter(PipeWriter inner, GrpcMessageCounter counter) : PipeWriter
    {
        private Memory<byte> _last;

        public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

        public override long UnflushedBytes => inner.UnflushedBytes;

        public override void Advance(int bytes)
        {
            counter.Add(_last.Span[..bytes]);
            _last = default;
            inner.Advance(bytes);
        }

        public override void CancelPendingFlush() => inner.CancelPendingFlush();

        public override void Complete(Exception? exception = null) => inner.Complete(exception);

        public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

        public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default) => inner.FlushAsync(cancellationToken);

        public override Memory<byte> GetMemory(int sizeHint = 0) => _last = inner.GetMemory(sizeHint);

        public override Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;

        public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
        {
            counter.Add(source.Span);
            return inner.WriteAsync(source, cancellationToken);
        }
    }
}

/// <summary>
/// Envoy's response flags of a request the mesh answered itself before the app (<c>RL</c>: refused by the local rate
/// limit), set on the request's features by the inbound policies for the callee's metrics.
/// </summary>
internal sealed class MeshResponseFlagsFeature(string flags)
{
    /// <summary>Refused by a local rate limit filter.</summary>
    public static readonly MeshResponseFlagsFeature RateLimited = new("RL");

    public string Flags { get; } = flags;
}

using System.Net;
using Mesh.Sdk.Http;
using Mesh.Sdk.Telemetry;

namespace Mesh.Sdk.Grpc.Internal;

/// <summary>
/// The caller's report (<c>reporter="source"</c>) of one gRPC call through <see cref="MeshGrpcHandler"/>: the destination
/// from the endpoint the call went to, the messages and bytes of both directions counted as they stream
/// (<see cref="GrpcMessageCounter"/>), and the status from the trailers, or from the headers of a trailers-only
/// response. Recorded once, when the response stream ends (or is disposed before its end), so the duration is the
/// call's whole duration, as Envoy reports a gRPC stream.
/// </summary>
internal sealed class GrpcCallMetrics
{
    private readonly MeshMetrics _metrics;
    private readonly MeshGrpcCall _call;
    private readonly TimeProvider _time;
    private readonly long _start;
    private int _recorded;

    private GrpcCallMetrics(MeshMetrics metrics, MeshGrpcCall call, TimeProvider time)
    {
        _metrics = metrics;
        _call = call;
        _time = time;
        _start = time.GetTimestamp();
    }

    public GrpcMessageCounter Requests { get; } = new();

    public GrpcMessageCounter Responses { get; } = new();

    /// <summary>The response the call's status is read from, once it arrived.</summary>
    public HttpResponseMessage? Response { get; set; }

    /// <summary>
    /// Starts the report of a call: puts this workload's peer metadata on the request and counts its messages as they
    /// are sent (the content stays the caller's; the count passes through).
    /// </summary>
    public static GrpcCallMetrics Start(MeshMetrics metrics, MeshGrpcCall call, HttpRequestMessage request, TimeProvider time)
    {
        var report = new GrpcCallMetrics(metrics, call, time);
        metrics.AddPeerMetadata(request.Headers);
        if (request.Content is { } content)
        {
            request.Content = new CountedRequestContent(content, report.Requests);
        }

        return report;
    }

    /// <summary>The call failed without a response: code 0, <c>DC</c> when cancelled, else <c>UF</c> or <c>UR</c>. Never catches.</summary>
    public bool Failed(Exception error)
    {
        var flags = error switch
        {
            HttpRequestException http when MeshHttpHandler.ClassifyFailure(http) == MeshHttpHandler.AttemptFailure.ConnectFailure => "UF",
            HttpRequestException => "UR",
            _ => "DC",
        };
        Record(0, string.Empty, flags);
        return false;
    }

    /// <summary>
    /// The response stream ended (<paramref name="complete"/>: read to its end, so the trailers are in) or was
    /// disposed before; a trailers-only response ends here at once.
    /// </summary>
    public void End(bool complete)
    {
        var response = Response!;
        var status = string.Empty;
        if (response.Headers.NonValidated.TryGetValues("grpc-status", out var inHeaders))
        {
            status = inHeaders.ToString();
        }
        else if (complete && response.TrailingHeaders.NonValidated.TryGetValues("grpc-status", out var inTrailers))
        {
            status = inTrailers.ToString();
        }

        var flags = _call.ResponseFlags ?? (_call.Fault.Delay is not null ? "DI" : MeshMetrics.NoFlags);
        if (!complete && status.Length == 0)
        {
            // The caller gave up on the stream before its status came.
            flags = "DC";
        }

        Record((int)response.StatusCode, status, flags);
    }

    private void Record(int code, string grpcStatus, string flags)
    {
        if (Interlocked.Exchange(ref _recorded, 1) != 0)
        {
            return;
        }

        var series = _metrics.Outbound(_call.Cluster.Name, _call.CurrentEndpoint).Get(MeshMetrics.GrpcProtocol, code, grpcStatus, flags);
        _metrics.Record(series, _time.GetElapsedTime(_start).TotalMilliseconds, Requests.Bytes, Responses.Bytes, Requests.Messages, Responses.Messages);
    }

    /// <summary>The request messages of a call, counted as the transport writes them; nothing is buffered.</summary>
    private sealed class CountedRequestContent : HttpContent
    {
        private readonly HttpContent _inner;
        private readonly GrpcMessageCounter _counter;

        public CountedRequestContent(HttpContent inner, GrpcMessageCounter counter)
        {
            _inner = inner;
            _counter = counter;
            foreach (var header in inner.Headers.NonValidated)
            {
                Headers.TryAddWithoutValidation(header.Key, header.Value);
            }
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
            => _inner.CopyToAsync(new CountingWriteStream(stream, _counter), cancellationToken);

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
            }

            base.Dispose(disposing);
        }
    }

    /// <summary>A write-only pass-through stream that counts what passes.</summary>
    internal sealed class CountingWriteStream(Stream inner, GrpcMessageCounter counter) : Stream
    {
        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override void Write(byte[] buffer, int offset, int count)
        {
            counter.Add(buffer.AsSpan(offset, count));
            inner.Write(buffer, offset, count);
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            counter.Add(buffer);
            inner.Write(buffer);
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            counter.Add(buffer.Span);
            return inner.WriteAsync(buffer, cancellationToken);
        }

        public override void Flush() => inner.Flush();

        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}

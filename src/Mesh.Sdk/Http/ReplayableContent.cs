using System.Buffers;
using System.Net;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.Http;

/// <summary>
/// A request body that can be sent again, the way Envoy's router keeps one: the original content is read once, by a
/// pump that starts with the first attempt and streams every byte to the attempt in progress while keeping a copy in
/// pooled buffers, up to a bound (<see cref="MeshOptions.RequestBufferLimitBytes"/>, Envoy's
/// <c>per_connection_buffer_limit_bytes</c>, 1 MiB). A retry replays the copy and then takes over the rest of the
/// stream, so a body the application is still producing (a chunked upload, a gRPC client stream) keeps streaming
/// across attempts. Once more than the bound has been read the copy is dropped and the request can no longer be
/// retried (<see cref="CanReplay"/>), as Envoy abandons the retry when its buffer overflows; the attempt in progress
/// carries on with the stream. <see cref="Commit"/> ends retrying: the copy goes back to the pool and the body streams
/// straight through to the last attempt.
/// </summary>
/// <remarks>
/// One attempt at a time receives the body; an attempt that fails while sending (its connection reset, the response
/// arrived first and ended the stream) is detached and what the pump reads meanwhile is kept for the next one.
/// </remarks>
internal sealed partial class ReplayableContent : HttpContent
{
    private const int SegmentSize = 64 * 1024;

    private readonly HttpContent _inner;
    private readonly long _limit;
    private readonly CancellationToken _requestAborted;
    private readonly ILogger _logger;
    private readonly string _routeName;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Sink _sink;

    // Guarded by _gate (except the volatile flags read by CanReplay).
    private List<byte[]>? _segments;
    private long _kept;
    private long _read;
    private Attachment? _current;
    private bool _sourceEnded;
    private Exception? _sourceFailed;
    private Action<byte[]?, object?>? _whenComplete;
    private object? _whenCompleteState;
    private volatile bool _overflowed;
    private volatile bool _committed;
    private int _pumpStarted;

    /// <summary>Wraps <paramref name="inner"/>, presenting its headers (and so its <c>Content-Length</c>, or chunked without one).</summary>
    /// <param name="inner">The application's content; read once, never disposed here.</param>
    /// <param name="limit">How many bytes are kept for a replay.</param>
    /// <param name="requestAborted">Cancels the reading of the original content (the caller's token).</param>
    /// <param name="logger">Where an overflow is reported (Debug).</param>
    /// <param name="routeName">The route, for the log.</param>
    public ReplayableContent(HttpContent inner, long limit, CancellationToken requestAborted, ILogger logger, string routeName)
    {
        _inner = inner;
        _limit = limit;
        _requestAborted = requestAborted;
        _logger = logger;
        _routeName = routeName;
        _sink = new Sink(this);
        LeasedContent.ShareOrCopyHeaders(inner, this);
    }

    /// <summary>
    /// Whether another attempt can be sent the whole body: nothing beyond the bound has been read, reading the original
    /// has not failed and the request is not committed.
    /// </summary>
    public bool CanReplay => !_overflowed && !_committed && Volatile.Read(ref _sourceFailed) is null;

    /// <summary>Whether more than the bound was read, so the copy was dropped.</summary>
    public bool Overflowed => _overflowed;

    /// <summary>
    /// Whether <paramref name="content"/> can be sent any number of times as it is and fits the bound, so no copy is
    /// needed: byte-array contents (<see cref="ByteArrayContent"/>, <see cref="StringContent"/>,
    /// <see cref="FormUrlEncodedContent"/>) and <see cref="ReadOnlyMemoryContent"/> serialize from memory they hold.
    /// </summary>
    public static bool IsReplayableAsIs(HttpContent content, long limit)
        => content is ByteArrayContent or ReadOnlyMemoryContent && content.Headers.ContentLength is { } length && length <= limit;

    /// <summary>
    /// Calls <paramref name="callback"/> once, when the original body has been read to its end: with a copy of the whole
    /// body when it fit the bound, else (more than the bound, or reading failed) with <see langword="null"/>. Keeps the copy
    /// past <see cref="Commit"/> until then. Set before the first attempt.
    /// </summary>
    public void WhenComplete(Action<byte[]?, object?> callback, object? state)
    {
        _whenCompleteState = state;
        _whenComplete = callback;
    }

    /// <summary>No more attempts: the copy goes back to the pool (unless <see cref="WhenComplete"/> still needs it) and the body streams through.</summary>
    public void Commit()
    {
        _committed = true;
        if (_gate.Wait(0))
        {
            try
            {
                if (_whenComplete is null)
                {
                    ReleaseSegments();
                }
            }
            finally
            {
                _gate.Release();
            }
        }
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        var attachment = new Attachment(stream, cancellationToken);
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_sourceFailed is { } failed)
            {
                throw new IOException("Mesh.Sdk: the request body cannot be sent again: reading it failed.", failed);
            }

            if (_read > 0)
            {
                if (_segments is null || _kept != _read)
                {
                    throw new IOException(string.Create(
                        System.Globalization.CultureInfo.InvariantCulture,
                        $"Mesh.Sdk: the request body cannot be sent again: {_read} bytes were read and only the first {_limit} are kept for a retry (Mesh:RequestBufferLimitBytes)."));
                }

                var left = _kept;
                foreach (var segment in _segments)
                {
                    var count = (int)Math.Min(left, segment.Length);
                    await stream.WriteAsync(segment.AsMemory(0, count), cancellationToken).ConfigureAwait(false);
                    left -= count;
                }
            }

            if (_sourceEnded)
            {
                return;
            }

            if (_read > 0)
            {
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
            }

            _current?.Done.TrySetException(new IOException("Mesh.Sdk: the request body went to a newer attempt."));
            _current = attachment;
        }
        finally
        {
            _gate.Release();
        }

        if (Interlocked.Exchange(ref _pumpStarted, 1) == 0)
        {
            _ = PumpAsync();
        }

        try
        {
            await attachment.Done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            attachment.Detached = true;
            throw;
        }
    }

    protected override void SerializeToStream(Stream stream, TransportContext? context, CancellationToken cancellationToken)
        => SerializeToStreamAsync(stream, context, cancellationToken).GetAwaiter().GetResult();

    protected override bool TryComputeLength(out long length) => WrappedContentLength.TryGet(_inner, out length);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Commit();
        }

        base.Dispose(disposing);
    }

    private async Task PumpAsync()
    {
        Exception? error = null;
        try
        {
            await _inner.CopyToAsync(_sink, _requestAborted).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            error = ex;
        }

        Action<byte[]?, object?>? callback;
        object? state;
        byte[]? copy = null;
        await _gate.WaitAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            if (error is null)
            {
                _sourceEnded = true;
            }
            else
            {
                Volatile.Write(ref _sourceFailed, error);
            }

            var current = _current;
            _current = null;
            if (error is null)
            {
                current?.Done.TrySetResult();
            }
            else
            {
                current?.Done.TrySetException(error);
            }

            callback = _whenComplete;
            state = _whenCompleteState;
            _whenComplete = null;
            _whenCompleteState = null;
            if (callback is not null && error is null && !_overflowed)
            {
                copy = CopyOut();
            }

            if (_committed)
            {
                ReleaseSegments();
            }
        }
        finally
        {
            _gate.Release();
        }

        callback?.Invoke(copy, state);
    }

    // Under _gate: the data the source wrote goes to the copy (while kept) and to the attempt in progress.
    private async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (data.IsEmpty)
        {
            return;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _read += data.Length;
            if (!_overflowed && (!_committed || _whenComplete is not null))
            {
                if (_kept + data.Length > _limit)
                {
                    _overflowed = true;
                    ReleaseSegments();
                    Log.BufferOverflow(_logger, _routeName, _limit);
                }
                else
                {
                    Append(data.Span);
                }
            }
            else if (_segments is not null)
            {
                ReleaseSegments();
            }

            var current = _current;
            if (current is { Detached: true })
            {
                _current = current = null;
            }

            if (current is null)
            {
                if (!CanReplay)
                {
                    throw new IOException(_committed
                        ? "Mesh.Sdk: the request body has no attempt left to go to (the request was answered or failed)."
                        : string.Create(System.Globalization.CultureInfo.InvariantCulture, $"Mesh.Sdk: exceeded the request buffer limit of {_limit} bytes while retrying upstream (Mesh:RequestBufferLimitBytes)."));
                }

                // Kept for the next attempt, which replays it.
                return;
            }

            try
            {
                await current.Stream.WriteAsync(data, current.Token).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                _current = null;
                current.Done.TrySetException(ex);
                if (!CanReplay)
                {
                    throw;
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task FlushAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_current is { Detached: false } current)
            {
                try
                {
                    await current.Stream.FlushAsync(current.Token).ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    _current = null;
                    current.Done.TrySetException(ex);
                    if (!CanReplay)
                    {
                        throw;
                    }
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private void Append(ReadOnlySpan<byte> data)
    {
        _segments ??= [];
        while (!data.IsEmpty)
        {
            var offset = (int)(_kept % SegmentSize);
            if (offset == 0)
            {
                _segments.Add(ArrayPool<byte>.Shared.Rent(SegmentSize));
            }

            var target = _segments[^1].AsSpan(offset, SegmentSize - offset);
            var count = Math.Min(target.Length, data.Length);
            data[..count].CopyTo(target);
            data = data[count..];
            _kept += count;
        }
    }

    private byte[] CopyOut()
    {
        var copy = new byte[_kept];
        var offset = 0L;
        if (_segments is not null)
        {
            foreach (var segment in _segments)
            {
                var count = (int)Math.Min(_kept - offset, SegmentSize);
                segment.AsSpan(0, count).CopyTo(copy.AsSpan((int)offset));
                offset += count;
            }
        }

        return copy;
    }

    private void ReleaseSegments()
    {
        if (_segments is { } segments)
        {
            _segments = null;
            foreach (var segment in segments)
            {
                ArrayPool<byte>.Shared.Return(segment);
            }
        }

        _kept = 0;
    }

    /// <summary>One attempt's request stream, fed until the body ends, the attempt fails or a newer attempt takes over.</summary>
    private sealed class Attachment(Stream stream, CancellationToken token)
    {
        public Stream Stream { get; } = stream;

        public CancellationToken Token { get; } = token;

        public TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public volatile bool Detached;
    }

    /// <summary>The stream the original content is copied into, once.</summary>
    private sealed class Sink(ReplayableContent owner) : Stream
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

        public override void Flush() => owner.FlushAsync(CancellationToken.None).GetAwaiter().GetResult();

        public override Task FlushAsync(CancellationToken cancellationToken) => owner.FlushAsync(cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => owner.WriteAsync(buffer.AsMemory(offset, count), CancellationToken.None).AsTask().GetAwaiter().GetResult();

        public override void Write(ReadOnlySpan<byte> buffer) => owner.WriteAsync(buffer.ToArray(), CancellationToken.None).AsTask().GetAwaiter().GetResult();

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
            => owner.WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
            => owner.WriteAsync(buffer, cancellationToken);
    }

    private static partial class Log
    {
        [LoggerMessage(1104, LogLevel.Debug, "Route '{RouteName}': the request body passed the buffer limit of {Limit} bytes; it is no longer kept, so the request is not retried or mirrored.")]
        public static partial void BufferOverflow(ILogger logger, string routeName, long limit);
    }
}

using System.Net;
using System.Threading.Channels;
using Mesh.Sdk.Http;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Sdk.Tests.Http;

public sealed class ReplayableContentTests
{
    private static ReplayableContent Wrap(HttpContent inner, long limit) => new(inner, limit, CancellationToken.None, NullLogger.Instance, "r");

    private static byte[] Bytes(int count, int seed)
    {
        var bytes = new byte[count];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    private static async Task<byte[]> SendAsync(HttpContent content, CancellationToken cancellationToken = default)
    {
        using var target = new MemoryStream();
        await content.CopyToAsync(target, cancellationToken);
        return target.ToArray();
    }

    [Fact]
    public async Task BodyWithinTheLimit_IsReadOnceAndReplayedIdentically()
    {
        var body = Bytes(200_000, 1);
        var source = new ChunkedContent(body, 7_000);
        using var content = Wrap(source, 200_000);

        Assert.Equal(body, await SendAsync(content));
        Assert.True(content.CanReplay);
        Assert.Equal(body, await SendAsync(content));
        Assert.Equal(body, await SendAsync(content));
        Assert.Equal(1, source.Serializations);
    }

    [Fact]
    public async Task BodyOneBytePastTheLimit_GoesToTheFirstAttemptButCannotBeReplayed()
    {
        var body = Bytes(200_001, 2);
        using var content = Wrap(new ChunkedContent(body, 7_000), 200_000);

        Assert.Equal(body, await SendAsync(content));
        Assert.False(content.CanReplay);
        Assert.True(content.Overflowed);
        var error = await Assert.ThrowsAnyAsync<Exception>(() => SendAsync(content));
        Assert.Contains("200001 bytes were read and only the first 200000 are kept", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ZeroLimit_KeepsNothing()
    {
        using var content = Wrap(new ChunkedContent([1, 2, 3], 3), 0);
        Assert.Equal([1, 2, 3], await SendAsync(content));
        Assert.False(content.CanReplay);
    }

    [Fact]
    public async Task AttemptCancelledMidBody_NextAttemptGetsWhatWasReadThenTheRest()
    {
        // The source produces its second half only when told: the first attempt ends (cancelled) in between.
        var body = Bytes(100_000, 3);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var source = new ChunkedContent(body, 10_000, pauseAt: 50_000, resume: gate.Task);
        using var content = Wrap(source, 1_000_000);
        var first = new RecordingStream();
        using var cts = new CancellationTokenSource();
        var firstAttempt = content.CopyToAsync(first, cts.Token);
        await first.Received(50_000);
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => firstAttempt);
        Assert.True(content.CanReplay);

        var secondStream = new RecordingStream();
        var secondAttempt = content.CopyToAsync(secondStream, CancellationToken.None);
        gate.SetResult();
        await secondAttempt.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(body, secondStream.ToArray());
        Assert.Equal(1, source.Serializations);
    }

    [Fact]
    public async Task WriteFailureOfTheAttempt_DetachesIt_AndTheBodyIsKeptForTheNextOne()
    {
        var body = Bytes(30_000, 4);
        using var content = Wrap(new ChunkedContent(body, 1_000), 100_000);
        var error = await Assert.ThrowsAnyAsync<Exception>(() => content.CopyToAsync(new FailingStream(failAfter: 5_000)));
        Assert.Contains("connection reset", error.ToString(), StringComparison.Ordinal);
        Assert.True(content.CanReplay);
        Assert.Equal(body, await SendAsync(content));
    }

    [Fact]
    public async Task WhenComplete_GetsTheWholeBodyOnceRead_OrNullPastTheLimit()
    {
        var body = Bytes(5_000, 5);
        using var fits = Wrap(new ChunkedContent(body, 1_000), 5_000);
        byte[]? seen = null;
        var calls = 0;
        fits.WhenComplete((whole, state) => { seen = whole; calls++; Assert.Equal("s", state); }, "s");
        fits.Commit();
        await SendAsync(fits);
        Assert.Equal(1, calls);
        Assert.Equal(body, seen);

        using var over = Wrap(new ChunkedContent(body, 1_000), 4_999);
        var overCalls = 0;
        byte[]? overSeen = [0];
        over.WhenComplete((whole, _) => { overSeen = whole; overCalls++; }, null);
        await SendAsync(over);
        Assert.Equal((1, (byte[]?)null), (overCalls, overSeen));
    }

    [Fact]
    public async Task Commit_EndsRetrying_TheBodyStillStreamsToTheLastAttempt()
    {
        var body = Bytes(50_000, 6);
        using var content = Wrap(new ChunkedContent(body, 5_000), 1_000_000);
        content.Commit();
        Assert.False(content.CanReplay);
        Assert.Equal(body, await SendAsync(content));
    }

    [Fact]
    public void IsReplayableAsIs_ByteArrayBodiesWithinTheLimitOnly()
    {
        Assert.True(ReplayableContent.IsReplayableAsIs(new ByteArrayContent(new byte[10]), 10));
        Assert.True(ReplayableContent.IsReplayableAsIs(new StringContent("hello"), 10));
        Assert.True(ReplayableContent.IsReplayableAsIs(new ReadOnlyMemoryContent(new byte[10]), 10));
        Assert.False(ReplayableContent.IsReplayableAsIs(new ByteArrayContent(new byte[11]), 10));
        Assert.False(ReplayableContent.IsReplayableAsIs(new StreamContent(new MemoryStream(new byte[5])), 10));
        Assert.False(ReplayableContent.IsReplayableAsIs(new ChunkedContent([1], 1), 10));
    }

    [Fact]
    public void Headers_AreTheOriginals()
    {
        var inner = new StringContent("{}", System.Text.Encoding.UTF8, "application/json");
        using var content = Wrap(inner, 10);
        Assert.Equal("application/json", content.Headers.ContentType!.MediaType);
        Assert.Equal(2, content.Headers.ContentLength);
        Assert.Null(Wrap(new ChunkedContent([1, 2], 1), 10).Headers.ContentLength);
    }

    /// <summary>A body produced in chunks, without a length, optionally pausing at an offset until told to go on.</summary>
    private sealed class ChunkedContent(byte[] body, int chunk, int pauseAt = -1, Task? resume = null) : HttpContent
    {
        private int _serializations;

        public int Serializations => Volatile.Read(ref _serializations);

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            Interlocked.Increment(ref _serializations);
            for (var offset = 0; offset < body.Length; offset += chunk)
            {
                if (offset == pauseAt && resume is not null)
                {
                    await resume;
                }

                await stream.WriteAsync(body.AsMemory(offset, Math.Min(chunk, body.Length - offset)));
                await stream.FlushAsync();
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    /// <summary>A memory stream that says when it has received a number of bytes.</summary>
    private sealed class RecordingStream : MemoryStream
    {
        private readonly Channel<long> _lengths = Channel.CreateUnbounded<long>();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await base.WriteAsync(buffer, cancellationToken);
            _lengths.Writer.TryWrite(Length);
        }

        public async Task Received(long count)
        {
            while (await _lengths.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)) < count)
            {
            }
        }
    }

    /// <summary>A stream whose writes fail once a number of bytes went through, like a reset connection.</summary>
    private sealed class FailingStream(int failAfter) : MemoryStream
    {
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
            => Length + buffer.Length > failAfter ? ValueTask.FromException(new IOException("connection reset")) : base.WriteAsync(buffer, cancellationToken);
    }
}

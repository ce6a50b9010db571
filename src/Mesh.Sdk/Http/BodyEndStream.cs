namespace Mesh.Sdk.Http;

/// <summary>
/// A read-only wrapper over an upstream response body that runs <see cref="OnEnded"/> when the body ends: a read
/// returns 0 bytes for a non-empty buffer, or the stream is disposed. Subclasses add their own reads (and call
/// <see cref="OnEnded"/> when one fails); <see cref="OnEnded"/> may run more than once and must be idempotent.
/// </summary>
internal abstract class BodyEndStream(Stream inner) : Stream
{
    /// <summary>The upstream body stream.</summary>
    protected Stream Inner { get; } = inner;

    public override bool CanRead => Inner.CanRead;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    /// <summary>The body ended, failed or was disposed. Called possibly more than once.</summary>
    protected abstract void OnEnded();

    /// <summary>Returns <paramref name="read"/>, running <see cref="OnEnded"/> first when it marks the end of the body.</summary>
    protected int Ended(int read, int requested)
    {
        if (read == 0 && requested > 0)
        {
            OnEnded();
        }

        return read;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            OnEnded();
            Inner.Dispose();
        }

        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        OnEnded();
        await Inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}

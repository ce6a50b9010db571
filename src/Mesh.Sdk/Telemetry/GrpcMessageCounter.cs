namespace Mesh.Sdk.Telemetry;

/// <summary>
/// Counts the gRPC messages of one direction of a call as its bytes pass, without buffering them: it follows the
/// length-prefixed framing (1 byte compressed flag, 4 bytes big-endian length, then the message) across reads and
/// writes of any size, and counts a message when its 5-byte prefix is complete. Also counts the body bytes. One
/// writer at a time (a stream's reads, or its writes); read once the direction has ended.
/// </summary>
internal sealed class GrpcMessageCounter
{
    private const int PrefixLength = 5;

    private int _prefixRead;
    private uint _length;
    private long _bodyLeft;
    private long _messages;
    private long _bytes;

    /// <summary>Messages whose prefix has passed.</summary>
    public long Messages => Volatile.Read(ref _messages);

    /// <summary>Body bytes that have passed.</summary>
    public long Bytes => Volatile.Read(ref _bytes);

    public void Add(ReadOnlySpan<byte> data)
    {
        Volatile.Write(ref _bytes, _bytes + data.Length);
        while (!data.IsEmpty)
        {
            if (_bodyLeft > 0)
            {
                var skip = (int)Math.Min(_bodyLeft, data.Length);
                _bodyLeft -= skip;
                data = data[skip..];
                continue;
            }

            // Inside a prefix: byte 0 is the compressed flag, bytes 1-4 the message length.
            if (_prefixRead > 0)
            {
                _length = (_length << 8) | data[0];
            }

            _prefixRead++;
            data = data[1..];
            if (_prefixRead == PrefixLength)
            {
                Volatile.Write(ref _messages, _messages + 1);
                _bodyLeft = _length;
                _prefixRead = 0;
                _length = 0;
            }
        }
    }

    public void Add(System.Buffers.ReadOnlySequence<byte> data)
    {
        foreach (var segment in data)
        {
            Add(segment.Span);
        }
    }
}

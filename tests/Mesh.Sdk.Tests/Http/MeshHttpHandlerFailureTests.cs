using System.Net;
using System.Net.Sockets;
using Mesh.Sdk.Http;

namespace Mesh.Sdk.Tests.Http;

public sealed class MeshHttpHandlerFailureTests
{
    [Fact]
    public void ClassifyFailure_TellsConnectFailuresRefusedStreamsAndResetsApart()
    {
        var connect = new HttpRequestException(HttpRequestError.ConnectionError, "refused", new SocketException((int)SocketError.ConnectionRefused));
        Assert.Equal(MeshHttpHandler.AttemptFailure.ConnectFailure, MeshHttpHandler.ClassifyFailure(connect));

        // SocketsHttpHandler reports an HTTP/2 RST_STREAM as an HttpProtocolException with the stream's error code.
        var refused = new HttpRequestException(HttpRequestError.HttpProtocolError, "stream refused", new HttpProtocolException(0x7, "REFUSED_STREAM", null));
        Assert.Equal(MeshHttpHandler.AttemptFailure.RefusedStream, MeshHttpHandler.ClassifyFailure(refused));

        var cancelStream = new HttpRequestException(HttpRequestError.HttpProtocolError, "stream cancelled", new HttpProtocolException(0x8, "CANCEL", null));
        Assert.Equal(MeshHttpHandler.AttemptFailure.Reset, MeshHttpHandler.ClassifyFailure(cancelStream));

        var ended = new HttpRequestException(HttpRequestError.ResponseEnded, "ended", new IOException("connection reset"));
        Assert.Equal(MeshHttpHandler.AttemptFailure.Reset, MeshHttpHandler.ClassifyFailure(ended));
    }
}

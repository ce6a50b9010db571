using System.Net;
using System.Net.Http.Headers;
using Envoy.Config.Cluster.V3;
using Mesh.Sdk.Http;
using Mesh.Sdk.LoadBalancing;
using Mesh.Sdk.Resilience;

namespace Mesh.Sdk.Tests.Http;

public sealed class LeasedContentTests
{
    private const string Cluster = "outbound|9080|v1|reviews.default.svc.cluster.local";

    private readonly ClusterCircuitBreakers _breakers = new(Cluster, new CircuitBreakers { Thresholds = { new CircuitBreakers.Types.Thresholds { MaxRequests = 5, MaxConnections = 5 } } });
    private readonly EndpointState _endpoint = new();

    private HttpResponseMessage Respond(HttpContent content, HttpStatusCode status = HttpStatusCode.OK, HttpMethod? method = null)
    {
        Assert.True(_breakers.TryAcquireRequest(default, out var request));
        Assert.True(_breakers.TryAcquireConnection(default, out var connection));
        _endpoint.RequestStarted();
        var response = new HttpResponseMessage(status) { Content = content };
        LeasedContent.Attach(response, method ?? HttpMethod.Get, request, connection, _endpoint);
        return response;
    }

    private (long Requests, long Connections, int Active) Held()
        => (_breakers.Default.Requests.Count, _breakers.Default.Connections.Count, _endpoint.ActiveRequests);

    private static ByteArrayContent Body(string text)
    {
        var content = new ByteArrayContent(System.Text.Encoding.UTF8.GetBytes(text));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        content.Headers.ContentLength = text.Length;
        return content;
    }

    [Fact]
    public async Task StreamRead_HoldsUntilTheEnd_ThenReleasesOnce()
    {
        using var response = Respond(Body("0123456789"));
        Assert.Equal((1L, 1L, 1), Held());

        var stream = await response.Content.ReadAsStreamAsync();
        var buffer = new byte[4];
        Assert.Equal(4, await stream.ReadAsync(buffer));
        Assert.Equal((1L, 1L, 1), Held());
        while (await stream.ReadAsync(buffer) > 0)
        {
        }

        Assert.Equal((0L, 0L, 0), Held());
        await stream.DisposeAsync();
        response.Dispose();
        Assert.Equal((0L, 0L, 0), Held());
    }

    [Fact]
    public async Task Buffering_AsHttpClientDoes_ReleasesWhenTheBodyIsIn_AndKeepsBodyAndHeaders()
    {
        using var response = Respond(Body("{\"a\":1}"));

        await response.Content.LoadIntoBufferAsync();

        Assert.Equal((0L, 0L, 0), Held());
        Assert.Equal("{\"a\":1}", await response.Content.ReadAsStringAsync());
        Assert.Equal("application/json", response.Content.Headers.ContentType!.MediaType);
        Assert.Equal(7, response.Content.Headers.ContentLength);
    }

    [Fact]
    public void SynchronousRead_ReleasesAtTheEnd()
    {
        using var response = Respond(Body("sync"));

        using var stream = response.Content.ReadAsStream();
        Assert.Equal((1L, 1L, 1), Held());
        Assert.Equal("sync", new StreamReader(stream).ReadToEnd());

        Assert.Equal((0L, 0L, 0), Held());
    }

    [Fact]
    public void DisposeUnread_Releases_AndDisposingTwiceReleasesOnce()
    {
        var response = Respond(Body("unread"));
        response.Dispose();
        response.Dispose();

        Assert.Equal((0L, 0L, 0), Held());
    }

    [Fact]
    public async Task FailedRead_Releases()
    {
        using var response = Respond(new FailingContent());

        var error = await Assert.ThrowsAnyAsync<Exception>(() => response.Content.ReadAsStringAsync());

        Assert.Equal("reset", (error as IOException ?? error.InnerException as IOException)?.Message);
        Assert.Equal((0L, 0L, 0), Held());
    }

    [Theory]
    [InlineData("GET", 204)]
    [InlineData("GET", 304)]
    [InlineData("HEAD", 200)]
    public void NoBody_ReleasesAtOnce(string method, int status)
    {
        using var response = Respond(Body("ignored"), (HttpStatusCode)status, new HttpMethod(method));

        Assert.Equal((0L, 0L, 0), Held());
        Assert.IsNotType<LeasedContent>(response.Content);
    }

    [Fact]
    public void EmptyBody_ReleasesAtOnce()
    {
        using var response = Respond(Body(string.Empty));

        Assert.Equal((0L, 0L, 0), Held());
    }

    [Fact]
    public void Headers_AreTheInnerContentsOwn_AndTheCopyFallbackCopiesEveryHeader()
    {
        var inner = Body("0123");
        inner.Headers.TryAddWithoutValidation("x-custom", ["a", "b"]);
        using var response = Respond(inner);
        Assert.Same(inner.Headers, response.Content.Headers);

        var copy = new ByteArrayContent([]);
        LeasedContent.CopyHeaders(inner, copy);
        Assert.Equal("application/json", copy.Headers.ContentType!.MediaType);
        Assert.Equal(4, copy.Headers.ContentLength);
        Assert.Equal(["a", "b"], copy.Headers.GetValues("x-custom"));
    }

    private sealed class FailingContent : HttpContent
    {
        public FailingContent() => Headers.ContentLength = 100;

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => throw new IOException("reset");

        protected override Task<Stream> CreateContentReadStreamAsync() => throw new IOException("reset");

        protected override bool TryComputeLength(out long length)
        {
            length = 100;
            return true;
        }
    }
}

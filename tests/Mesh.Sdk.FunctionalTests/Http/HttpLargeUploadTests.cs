using System.Net;
using Mesh.Sdk.FunctionalTests.Infrastructure;
using Xunit.Abstractions;

namespace Mesh.Sdk.FunctionalTests.Http;

/// <summary>Runs alone (no test class in parallel), so the process-wide allocation count is the upload's.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialCollection
{
    public const string Name = "serial";
}

/// <summary>
/// A 100 MiB upload through istiod's default retry policy: it streams (the server sees bytes while the client is still
/// producing) and costs the client the buffer limit, not the body's size.
/// </summary>
[Collection(SerialCollection.Name)]
public sealed class HttpLargeUploadTests(ReviewsFixture fixture, ITestOutputHelper output) : IClassFixture<ReviewsFixture>
{
    private const int Limit = MeshOptions.DefaultRequestBufferLimitBytes;

    private MeshHarness Mesh => fixture.Mesh;

    private Backend V2 => Mesh.Backend("reviews-v2-a");

    [Fact]
    public async Task LargeUpload_StreamsBeforeTheClientFinishes_WithMemoryBoundedByTheLimit()
    {
        await Mesh.ApplyAsync($$"""
            - name: upload
              match:
              - uri:
                  prefix: /upload
            {{HttpRequestBodyTests.IstioDefaultRetries}}
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v2}
            """);
        const long size = 100L * 1024 * 1024;

        // The generator stops after 8 MiB (past the limit, and past any socket buffer) until the server has seen bytes:
        // a client that buffered the body before sending would never get there.
        using var content = new HttpRequestBodyTests.GeneratedContent(size, knownLength: true, pauseAfter: 8 * 1024 * 1024, resume: V2.UploadStarted);
        using var request = new HttpRequestMessage(HttpMethod.Post, MeshHarness.BaseUrl + "/upload/large") { Content = content };
        GC.Collect();
        var before = GC.GetTotalAllocatedBytes(precise: true);
        using var response = await Mesh.Http.SendAsync(request);
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - before;

        output.WriteLine($"allocated {allocated} bytes for {size} bytes sent; resumed by {content.ResumedBy}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(content.ResumedBy is { } resumed && resumed < size, $"the server saw no byte while the client was producing ({content.ResumedBy})");
        var upload = Assert.Single(V2.Uploads);
        Assert.Equal((size, content.Sha256), (upload.Bytes, upload.Sha256));

        // The whole process (client, in-process server, control plane) allocated far less than the 100 MiB sent: the
        // client kept at most the 1 MiB limit, in pooled buffers.
        Assert.True(allocated < Limit + (4L * 1024 * 1024), $"allocated {allocated / 1024} KiB for a {size / (1024 * 1024)} MiB upload");
    }
}

using System.Diagnostics;
using System.Net;
using Mesh.Sdk.FunctionalTests.Infrastructure;

namespace Mesh.Sdk.FunctionalTests.Reliability;

/// <summary>A VirtualService naming a subset no DestinationRule defines (bookinfo's classic <c>subset: v4</c> mistake).</summary>
public sealed class UndefinedSubsetTests(ReviewsFixture fixture) : IClassFixture<ReviewsFixture>
{
    private const string Routes = $$"""
        - name: to-v1
          match:
          - uri: {prefix: /v1}
          route:
          - destination: {host: {{MeshHarness.Fqdn}}, subset: v1}
        - name: to-v4
          route:
          - destination: {host: {{MeshHarness.Fqdn}}, subset: v4}
        """;

    /// <summary>
    /// As Envoy answers a route whose cluster does not exist: 503 with response flag NC, at once. Before, every call
    /// waited <c>Mesh:ResolveTimeout</c> (3 s here) for a cluster the control plane had said does not exist.
    /// </summary>
    [Fact]
    public async Task RouteToAnUndefinedSubset_IsAnswered503NcAtOnce_OtherRoutesStillWork()
    {
        var mesh = fixture.Mesh;
        await mesh.ApplyAsync(Routes);

        var timings = new List<TimeSpan>();
        for (var i = 0; i < 5; i++)
        {
            var clock = Stopwatch.StartNew();
            var (response, _) = await mesh.GetAsync("/reviews/" + i);
            timings.Add(clock.Elapsed);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            Assert.Equal("NC", response.Headers.GetValues("x-mesh-response-flags").Single());
            Assert.Contains("outbound|9080|v4|reviews.default.svc.cluster.local", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        Assert.True(timings.Max() < TimeSpan.FromSeconds(1), $"answers took {string.Join(", ", timings.Select(t => $"{t.TotalMilliseconds:F0} ms"))}\n{mesh.Dump()}");
        Assert.All(mesh.Backends, b => Assert.Equal(0, b.Count));

        var (v1, reply) = await mesh.GetAsync("/v1/reviews");
        Assert.Equal(HttpStatusCode.OK, v1.StatusCode);
        Assert.Equal("v1", reply!.Version);
    }
}

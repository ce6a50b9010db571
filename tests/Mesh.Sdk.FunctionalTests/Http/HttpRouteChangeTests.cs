using System.Diagnostics;
using System.Net;
using Mesh.Sdk.FunctionalTests.Infrastructure;
using Xunit.Abstractions;

namespace Mesh.Sdk.FunctionalTests.Http;

/// <summary>Live route changes under load.</summary>
public sealed class HttpRouteChangeTests(ReviewsFixture fixture, ITestOutputHelper output) : IClassFixture<ReviewsFixture>
{
    private const string ToV1 = """
        - name: live
          route:
          - destination: {host: reviews.default.svc.cluster.local, subset: v1}
        """;

    private const string ToV2 = """
        - name: live
          route:
          - destination: {host: reviews.default.svc.cluster.local, subset: v2}
        """;

    private MeshHarness Mesh => fixture.Mesh;

    [Fact]
    public async Task RouteChange_UnderASteadyStream_ShiftsWithinOneSecondWithZeroFailures()
    {
        await Mesh.ApplyAsync(ToV1);
        var failures = new List<string>();
        var versions = new List<(TimeSpan At, string Version)>();
        var clock = Stopwatch.StartNew();
        TimeSpan? writtenAt = null;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(15));

        // Two senders in a steady stream, until well after the change.
        async Task SendLoopAsync()
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    var (response, reply) = await Mesh.GetAsync("/live");
                    lock (versions)
                    {
                        if (response.StatusCode != HttpStatusCode.OK)
                        {
                            failures.Add($"{(int)response.StatusCode} {response.ReasonPhrase}");
                        }
                        else
                        {
                            versions.Add((clock.Elapsed, reply!.Version));
                        }
                    }
                }
                catch (HttpRequestException ex)
                {
                    lock (versions)
                    {
                        failures.Add(ex.Message);
                    }
                }

                var shiftedLongAgo = false;
                lock (versions)
                {
                    shiftedLongAgo = writtenAt is { } w && clock.Elapsed - w > TimeSpan.FromSeconds(2);
                }

                if (shiftedLongAgo)
                {
                    return;
                }
            }
        }

        var senders = new[] { Task.Run(SendLoopAsync), Task.Run(SendLoopAsync) };
        await Task.Delay(500);
        await Mesh.ApplyAsync(ToV2, waitForClient: false);
        lock (versions)
        {
            writtenAt = clock.Elapsed;
        }

        await Task.WhenAll(senders);
        Assert.True(failures.Count == 0, $"{failures.Count} failed requests: {string.Join(" | ", failures.Take(5))}");
        var written = writtenAt!.Value;
        var beforeChange = versions.Where(v => v.At < written).ToList();
        Assert.True(beforeChange.Count > 20, $"only {beforeChange.Count} requests before the change");
        Assert.All(beforeChange, v => Assert.Equal("v1", v.Version));
        var firstV2 = versions.First(v => v.Version == "v2").At;
        var shift = firstV2 - written;
        output.WriteLine($"{versions.Count} requests, {failures.Count} failures, shift {shift.TotalMilliseconds:F0} ms after the write");
        Assert.True(shift < TimeSpan.FromSeconds(1), $"traffic shifted {shift.TotalMilliseconds} ms after the file write");

        // After the shift (allowing requests already in flight), nothing goes to v1 any more.
        var afterShift = versions.Where(v => v.At > firstV2 + TimeSpan.FromMilliseconds(50)).ToList();
        Assert.True(afterShift.Count > 20, $"only {afterShift.Count} requests after the shift");
        Assert.All(afterShift, v => Assert.Equal("v2", v.Version));
    }
}

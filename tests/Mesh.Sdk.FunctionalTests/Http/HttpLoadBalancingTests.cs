using System.Net;
using Mesh.Sdk.FunctionalTests.Infrastructure;
using Xunit.Abstractions;

namespace Mesh.Sdk.FunctionalTests.Http;

/// <summary>A mesh whose v1 subset has five workloads, for consistent hashing.</summary>
public sealed class RingFixture : IAsyncLifetime
{
    internal MeshHarness Mesh { get; private set; } = null!;

    public async Task InitializeAsync() => Mesh = await MeshHarness.StartAsync(
        ("ring-1", "v1"), ("ring-2", "v1"), ("ring-3", "v1"), ("ring-4", "v1"), ("ring-5", "v1"));

    public async Task DisposeAsync()
    {
        if (Mesh is not null)
        {
            await Mesh.DisposeAsync();
        }
    }
}

/// <summary>
/// Consistent hashing (RING_HASH with a header hash policy) on HttpClient, and what a VirtualService whose routes all
/// match on something does with the requests none of them match.
/// </summary>
public sealed class HttpLoadBalancingTests(RingFixture fixture, ITestOutputHelper output) : IClassFixture<RingFixture>
{
    private const string Route = """
        - name: hashed
          route:
          - destination: {host: reviews.default.svc.cluster.local, subset: v1}
        """;

    private const string RingHash = """
        loadBalancer:
          consistentHash:
            httpHeaderName: x-user
            minimumRingSize: 1024
        """;

    private MeshHarness Mesh => fixture.Mesh;

    [Fact]
    public async Task RingHash_IsStickyPerKeyAndMovesAboutOneNthWhenAHostIsAddedOrRemoved()
    {
        var four = Mesh.Backends.Take(4).ToArray();
        var added = Mesh.Backends[4];
        await Mesh.ApplyAsync(Route, RingHash, endpoints: four);
        const int Keys = 400;
        var before = new Dictionary<string, string>();
        for (var k = 0; k < Keys; k++)
        {
            var key = "user-" + k;
            var first = await WorkloadFor(key);
            // Sticky: the same key lands on the same workload every time.
            Assert.Equal(first, await WorkloadFor(key));
            Assert.Equal(first, await WorkloadFor(key));
            before[key] = first;
        }

        // Every host owns part of the ring.
        Assert.Equal(4, before.Values.Distinct().Count());

        // Adding a fifth host: each host has 1024 ring points whatever the number of hosts, so only the keys that
        // fall on the new host's points move (about 1/5), all of them to the new host.
        await Mesh.ApplyAsync(Route, RingHash, endpoints: Mesh.Backends);
        var five = new Dictionary<string, string>();
        var moved = new List<string>();
        for (var k = 0; k < Keys; k++)
        {
            var key = "user-" + k;
            five[key] = await WorkloadFor(key);
            if (five[key] != before[key])
            {
                moved.Add($"{key}: {before[key]} -> {five[key]}");
            }
        }

        var diagnostics = $"moved {moved.Count}/{Keys}: {string.Join(", ", moved.Take(10))}";
        output.WriteLine(diagnostics);
        // About 1/5 (80 of 400): the new host's share of the ring varies with its address (an ephemeral port) and 400
        // keys sample it with a standard deviation of about 8, so 10-30 % bounds "about 1/5" without flaking; modulo
        // hashing would move about 4/5.
        Assert.InRange(moved.Count, Keys * 10 / 100, Keys * 30 / 100);
        Assert.All(moved, m => Assert.EndsWith("-> " + added.Workload, m));

        // Removing an old host: only its keys move, and they spread over the others.
        var removed = four[1];
        await Mesh.ApplyAsync(Route, RingHash, endpoints: Mesh.Backends.Where(b => b != removed));
        var removedKeys = 0;
        var spreadTo = new HashSet<string>();
        for (var k = 0; k < Keys; k++)
        {
            var key = "user-" + k;
            var now = await WorkloadFor(key);
            if (five[key] == removed.Workload)
            {
                removedKeys++;
                Assert.NotEqual(removed.Workload, now);
                spreadTo.Add(now);
            }
            else
            {
                Assert.Equal(five[key], now);
            }
        }

        output.WriteLine($"removing {removed.Workload}: its {removedKeys} keys moved to {spreadTo.Count} hosts, no other key moved");
        Assert.InRange(removedKeys, Keys * 10 / 100, Keys * 30 / 100);
        Assert.True(spreadTo.Count >= 2, $"the removed host's keys all went to {string.Join(", ", spreadTo)}");
    }

    [Fact]
    public async Task VirtualServiceWithOnlyAHeaderRoute_AnswersARequestWithoutTheHeader404()
    {
        // istiod appends no catch-all after a VirtualService's routes: a request matching none gets 404 (NR).
        await Mesh.ApplyAsync("""
            - name: jason-only
              match:
              - headers:
                  end-user: {exact: jason}
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v1}
            """);

        var (matched, reply) = await Mesh.GetAsync("/reviews/0", ("end-user", "jason"));
        Assert.Equal(HttpStatusCode.OK, matched.StatusCode);
        Assert.Equal("v1", reply!.Version);

        var (unmatched, none) = await Mesh.GetAsync("/reviews/0");
        Assert.Equal(HttpStatusCode.NotFound, unmatched.StatusCode);
        Assert.Null(none);
        Assert.Equal("NR", string.Join(",", unmatched.Headers.GetValues("x-mesh-response-flags")));
        // Only the matched request reached a workload.
        Assert.Equal(1, Mesh.Backends.Sum(b => b.Count));
    }

    private async Task<string> WorkloadFor(string key)
    {
        var (response, reply) = await Mesh.GetAsync("/hashed", ("x-user", key));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return reply!.Workload;
    }
}

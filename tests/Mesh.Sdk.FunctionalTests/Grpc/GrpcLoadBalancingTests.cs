using Grpc.Core;
using Mesh.Sdk.FunctionalTests.Grpc.Greeter;
using Mesh.Sdk.FunctionalTests.Grpc.Infrastructure;
using static Mesh.Sdk.FunctionalTests.Grpc.Infrastructure.GrpcTestServices;

namespace Mesh.Sdk.FunctionalTests.Grpc;

/// <summary>
/// Consistent hashing on gRPC calls: RING_HASH with a header hash policy, the key carried as call metadata, over the
/// real <c>ring</c> workloads while endpoints are added and removed through the control plane.
/// </summary>
public sealed partial class GrpcMeshTests
{
    // With 1024 ring points per host, the keys a change moves follow the new (or removed) host's share of the ring,
    // about 1/5, each key independently: over 1000 keys the moved fraction's standard deviation is 1.3 %, so the
    // 15–25 % bound is nearly four of them, whatever ring the run's ephemeral ports give (200 keys: 2.8 %, 1.8 σ).
    private const int RingKeys = 1000;

    [Fact]
    public async Task RingHash_IsStickyPerKeyAndMovesAboutOneNthWhenAHostIsAddedOrRemoved()
    {
        using var channel = fixture.CreateChannel(Ring);
        var client = new Greeter.Greeter.GreeterClient(channel);
        var cluster = GrpcMeshFixture.Cluster(Ring, "v1");
        var four = fixture.Ring.Take(4).ToArray();
        var added = fixture.Ring[4];
        await SetRingEndpointsAsync(client, cluster, four);

        // Sticky: every call with the same x-user metadata reaches the same workload, and every host owns keys.
        var before = await RingOwnersAsync(client, callsPerKey: 3);
        Assert.Equal(four.Select(w => w.Name).Order(), before.Values.Distinct().Order());

        // Adding a fifth host: only the keys that fall on its ring points move (about 1/5), all of them to it.
        await SetRingEndpointsAsync(client, cluster, fixture.Ring);
        var five = await RingOwnersAsync(client, callsPerKey: 1);
        var moved = before.Where(k => five[k.Key] != k.Value).Select(k => $"{k.Key}: {k.Value} -> {five[k.Key]}").ToList();
        output.WriteLine($"adding {added.Name}: moved {moved.Count}/{RingKeys} keys ({100.0 * moved.Count / RingKeys:F1} %)");
        Assert.InRange(moved.Count, RingKeys * 15 / 100, RingKeys * 25 / 100);
        Assert.All(moved, m => Assert.EndsWith("-> " + added.Name, m));

        // Removing an old host: only its keys move, spread over the others.
        var removed = four[1];
        await SetRingEndpointsAsync(client, cluster, fixture.Ring.Where(w => w != removed).ToArray());
        var afterRemoval = await RingOwnersAsync(client, callsPerKey: 1);
        var itsKeys = five.Where(k => k.Value == removed.Name).Select(k => k.Key).ToHashSet();
        var spreadTo = itsKeys.Select(k => afterRemoval[k]).ToHashSet();
        output.WriteLine($"removing {removed.Name}: its {itsKeys.Count}/{RingKeys} keys moved to {spreadTo.Count} hosts ({string.Join(", ", spreadTo.Order())})");
        Assert.Equal(five.Where(k => !itsKeys.Contains(k.Key)), afterRemoval.Where(k => !itsKeys.Contains(k.Key)));
        Assert.DoesNotContain(removed.Name, spreadTo);
        Assert.InRange(itsKeys.Count, RingKeys * 10 / 100, RingKeys * 30 / 100);
        Assert.True(spreadTo.Count >= 2, $"the removed host's keys all went to {string.Join(", ", spreadTo)}");
    }

    /// <summary>
    /// Makes <paramref name="endpoints"/> the ring's endpoints and waits until the client's cluster has them and each
    /// has answered a call: until a host's subchannel is READY its keys go to the next host on the ring.
    /// </summary>
    private async Task SetRingEndpointsAsync(Greeter.Greeter.GreeterClient client, string cluster, IReadOnlyCollection<GreeterWorkload> endpoints)
    {
        await client.SayHelloAsync(new HelloRequest(), deadline: Deadline()); // the client watches the cluster from here
        await fixture.SetEndpointsAsync("ring", cluster, endpoints);
        var answered = endpoints.ToDictionary(w => w, w => w.Calls);
        for (var probe = 0; answered.Any(w => w.Key.Calls == w.Value); probe++)
        {
            Assert.True(probe < 2000, $"not every ring endpoint answered within 2000 calls: {string.Join(", ", answered.Select(w => $"{w.Key.Name} {w.Key.Calls - w.Value}"))}");
            await client.SayHelloAsync(new HelloRequest(), new Metadata { { "x-user", "probe-" + probe } }, Deadline());
        }
    }

    /// <summary>The workload each of <see cref="RingKeys"/> keys reaches, asserting every call with a key reaches the same one.</summary>
    private static async Task<Dictionary<string, string>> RingOwnersAsync(Greeter.Greeter.GreeterClient client, int callsPerKey)
    {
        var owners = new Dictionary<string, string>(RingKeys, StringComparer.Ordinal);
        for (var k = 0; k < RingKeys; k++)
        {
            var key = "user-" + k;
            var metadata = new Metadata { { "x-user", key } };
            for (var call = 0; call < callsPerKey; call++)
            {
                var workload = (await client.SayHelloAsync(new HelloRequest(), metadata, Deadline())).Workload;
                if (!owners.TryAdd(key, workload))
                {
                    Assert.True(owners[key] == workload, $"key '{key}' reached '{owners[key]}', then '{workload}' on call {call + 1}");
                }
            }
        }

        return owners;
    }
}

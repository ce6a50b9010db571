using Grpc.Core;
using Mesh.Sdk.FunctionalTests.Grpc.Greeter;
using Mesh.Sdk.FunctionalTests.Grpc.Infrastructure;
using static Mesh.Sdk.FunctionalTests.Grpc.Infrastructure.GrpcTestServices;

namespace Mesh.Sdk.FunctionalTests.Grpc;

/// <summary>
/// Route actions on gRPC calls, observed at real Kestrel workloads: request and response header operations of the
/// route and weighted-cluster levels, authority and method-path rewrites, request mirroring, and redirect routes.
/// </summary>
public sealed partial class GrpcMeshTests
{
    [Fact]
    public async Task HeaderOperations_AreAppliedToRequestAndResponseHeaders_NotTrailers()
    {
        using var channel = fixture.CreateChannel(Headers);
        var client = new Greeter.Greeter.GreeterClient(channel);
        var name = "headers-" + Guid.NewGuid().ToString("N");
        var metadata = new Metadata { { "x-client-secret", "hide-me" }, { "x-client-kept", "1" } };
        var bySubset = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < 40; i++)
        {
            using var call = client.SayHelloAsync(new HelloRequest { Name = name }, metadata, Deadline());
            var reply = await call;
            var headers = await call.ResponseHeadersAsync;
            var trailers = call.GetTrailers();

            // Request: route-level set/add/remove, weighted-cluster-level set naming the subset the call went to.
            Assert.Equal("route", reply.Headers["x-route-set"]);
            Assert.Equal("added", reply.Headers["x-route-added"]);
            Assert.Equal("1", reply.Headers["x-client-kept"]);
            Assert.False(reply.Headers.ContainsKey("x-client-secret"), "x-client-secret reached the workload");
            Assert.Equal(reply.Version, reply.Headers["x-subset"]);

            // Without a rewrite the workload sees the channel's target as :authority, as from gRPC's xDS clients.
            Assert.Equal($"{Headers}:{GrpcMeshFixture.ServicePort}", reply.Authority);

            // Response headers: route-level set and remove, v2's own add; trailers stay as the workload sent them.
            Assert.Equal("yes", headers.GetValue("x-route-response"));
            Assert.Equal(reply.Workload, headers.GetValue("x-workload"));
            Assert.Null(headers.Get("x-backend-secret"));
            Assert.Equal(reply.Version == "v2" ? "v2" : null, headers.GetValue("x-served-by-subset"));
            Assert.Equal("kept", trailers.GetValue("x-trailer"));
            Assert.Equal("in-trailers", trailers.GetValue("x-backend-secret"));
            Count(bySubset, reply.Version);
        }

        // Both weighted clusters were used (50/50 over 40 calls; each at least 8 is over four standard deviations).
        Assert.InRange(bySubset.GetValueOrDefault("v1"), 8, 32);
        Assert.Equal(40, bySubset.GetValueOrDefault("v1") + bySubset.GetValueOrDefault("v2"));
        var seen = fixture.V1A.Seen(name).Count + fixture.V1B.Seen(name).Count + fixture.V2.Seen(name).Count;
        Assert.Equal(40, seen);
    }

    [Fact]
    public async Task PrefixRewrite_AndAuthorityRewrite_AreWhatTheWorkloadSees()
    {
        using var channel = fixture.CreateChannel(Rewrite);
        var legacy = new LegacyGreeter.LegacyGreeterClient(channel);
        for (var i = 0; i < 10; i++)
        {
            // No workload implements LegacyGreeter: the route rewrites its prefix to Greeter's and the authority.
            var reply = await legacy.SayHelloAsync(new HelloRequest { Name = "legacy" }, deadline: Deadline());
            Assert.Equal("/mesh.functional.Greeter/SayHello", reply.Path);
            Assert.Equal("SayHello", reply.Method);
            Assert.Equal(RewrittenAuthority, reply.Authority);
            Assert.Equal("v1", reply.Version);
        }
    }

    [Fact]
    public async Task RegexRewrite_ChangesTheMethodTheWorkloadRuns()
    {
        using var channel = fixture.CreateChannel(Rewrite);
        var client = new Greeter.Greeter.GreeterClient(channel);
        for (var i = 0; i < 10; i++)
        {
            var goodbye = await client.SayGoodbyeAsync(new HelloRequest(), deadline: Deadline());
            Assert.Equal(("SayHello", SayHelloPath, $"{Rewrite}:{GrpcMeshFixture.ServicePort}"), (goodbye.Method, goodbye.Path, goodbye.Authority));

            var hello = await client.SayHelloAsync(new HelloRequest(), deadline: Deadline());
            Assert.Equal(("SayHello", SayHelloPath), (hello.Method, hello.Path));
        }
    }

    [Fact]
    public async Task RedirectRoute_FailsTheCallWithUnavailableNamingTheRoute_OtherRoutesStillWork()
    {
        using var channel = fixture.CreateChannel(Redirect);
        var client = new Greeter.Greeter.GreeterClient(channel);
        var before = fixture.V1A.Calls + fixture.V1B.Calls;
        for (var i = 0; i < 5; i++)
        {
            var ex = await Assert.ThrowsAsync<RpcException>(async () => await client.SayGoodbyeAsync(new HelloRequest(), deadline: Deadline()));
            Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
            Assert.Equal(
                $"Mesh.Sdk: route 'moved' of listener '{Redirect}:{GrpcMeshFixture.ServicePort}' has a redirect action, which a gRPC call cannot follow (matching route has inappropriate action).",
                ex.Status.Detail);
        }

        Assert.Equal(before, fixture.V1A.Calls + fixture.V1B.Calls);
        Assert.Equal("v1", (await client.SayHelloAsync(new HelloRequest(), deadline: Deadline())).Version);
    }

    [Fact]
    public async Task Mirror_SendsShadowCopiesOfTheConfiguredShare_AndShadowFailuresNeverReachTheCaller()
    {
        using var channel = fixture.CreateChannel(Mirror);
        var client = new Greeter.Greeter.GreeterClient(channel);
        var name = "mirror-" + Guid.NewGuid().ToString("N");
        const int calls = 300;
        for (var i = 0; i < calls; i++)
        {
            // The shadow workload fails every call with INTERNAL; the caller only ever sees the primary's answer.
            var reply = await client.SayHelloAsync(new HelloRequest { Name = name }, new Metadata { { "x-call", i.ToString(System.Globalization.CultureInfo.InvariantCulture) } }, Deadline());
            Assert.Equal("v1", reply.Version);
        }

        // Shadows are fire-and-forget: wait (bounded) until their count stops moving.
        var shadows = await SettledAsync(() => fixture.Shadow.Seen(name).Count);

        // 50 % of 300: mean 150, standard deviation 8.7; ±30 is more than three of them.
        Assert.InRange(shadows, 120, 180);
        var seen = fixture.Shadow.Seen(name);
        Assert.All(seen, s => Assert.Equal($"{Mirror}-shadow:{GrpcMeshFixture.ServicePort}", s.Authority));
        Assert.All(seen, s => Assert.Equal(SayHelloPath, s.Path));

        // Each shadow is a copy of one real call: its metadata names a call, and no call was copied twice.
        Assert.Equal(seen.Count, seen.Select(s => s.Headers["x-call"]).Distinct().Count());
        Assert.Equal(calls, fixture.V1A.Seen(name).Count + fixture.V1B.Seen(name).Count);
    }

    private static async Task<int> SettledAsync(Func<int> count)
    {
        var last = -1;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (DateTime.UtcNow < deadline)
        {
            var now = count();
            if (now == last)
            {
                return now;
            }

            last = now;
            await Task.Delay(200);
        }

        return count();
    }
}

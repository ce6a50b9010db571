using Google.Protobuf;
using Grpc.Core;
using Mesh.Sdk.FunctionalTests.Grpc.Greeter;
using static Mesh.Sdk.FunctionalTests.Grpc.Infrastructure.GrpcTestServices;

namespace Mesh.Sdk.FunctionalTests.Grpc;

/// <summary>
/// Client streams under a retry policy (gRFC A6 semantics over Envoy's buffer limit): messages stream to the first
/// attempt, a copy is kept while the call fits the buffer limit (1 MiB), a retry replays it and takes over the stream;
/// past the limit the call is committed. Also Envoy's rule for <c>x-envoy-ratelimited</c> on gRPC.
/// </summary>
public sealed partial class GrpcMeshTests
{
    [Fact]
    public async Task ClientStream_StreamsToTheServer_AndIsReplayedWhenTheFirstAttemptFailsUnavailable()
    {
        using var channel = fixture.CreateChannel(ClientStream);
        var client = new Greeter.Greeter.GreeterClient(channel);
        var key = "stream-" + Guid.NewGuid().ToString("N");
        using var call = client.Collect(deadline: Deadline());

        // attempts: 2, retryOn: unavailable. The first attempt fails UNAVAILABLE right after its first message, while
        // the client is still streaming; the server seeing that message before the client goes on proves it streams.
        await call.RequestStream.WriteAsync(new Chunk { Key = key, Name = "c0", FailTimes = 1, FailCode = (int)StatusCode.Unavailable });
        await fixture.V2.FirstChunk(key).WaitAsync(TimeSpan.FromSeconds(10));
        for (var i = 1; i < 10; i++)
        {
            await call.RequestStream.WriteAsync(new Chunk { Key = key, Name = "c" + i });
        }

        await call.RequestStream.CompleteAsync();
        var collected = await call.ResponseAsync;

        // The retry got every message, the first replayed from the copy and the rest streamed on.
        const string all = "c0,c1,c2,c3,c4,c5,c6,c7,c8,c9";
        Assert.Equal(("greeter-v2", all), (collected.Workload, collected.Names));
        Assert.Equal(["c0", all], fixture.V2.Collected(key));
    }

    [Fact]
    public async Task ClientStream_PastTheBufferLimit_IsCommittedAndNotRetried()
    {
        using var channel = fixture.CreateChannel(ClientStream);
        var client = new Greeter.Greeter.GreeterClient(channel);
        var key = "big-" + Guid.NewGuid().ToString("N");
        var data = ByteString.CopyFrom(new byte[600 * 1024]);
        using var call = client.Collect(deadline: Deadline());

        // Two 600 KiB messages pass the 1 MiB limit; the server then fails the call UNAVAILABLE: one attempt only.
        await call.RequestStream.WriteAsync(new Chunk { Key = key, Name = "b0", Data = data, FailTimes = 1, FailCode = (int)StatusCode.Unavailable, FailAtEnd = true });
        await call.RequestStream.WriteAsync(new Chunk { Key = key, Name = "b1", Data = data });
        await call.RequestStream.CompleteAsync();
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await call.ResponseAsync);
        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Equal(["b0,b1"], fixture.V2.Collected(key));

        // The same call within the limit is retried.
        var small = "small-" + Guid.NewGuid().ToString("N");
        using var retried = client.Collect(deadline: Deadline());
        await retried.RequestStream.WriteAsync(new Chunk { Key = small, Name = "s0", Data = ByteString.CopyFrom(new byte[1024]), FailTimes = 1, FailCode = (int)StatusCode.Unavailable, FailAtEnd = true });
        await retried.RequestStream.WriteAsync(new Chunk { Key = small, Name = "s1" });
        await retried.RequestStream.CompleteAsync();
        Assert.Equal("s0,s1", (await retried.ResponseAsync).Names);
        Assert.Equal(["s0,s1", "s0,s1"], fixture.V2.Collected(small));
    }

    [Fact]
    public async Task RateLimitedUnavailable_IsNotRetriedUnderUnavailable()
    {
        using var channel = fixture.CreateChannel(Retry);
        var client = new Greeter.Greeter.GreeterClient(channel);

        // attempts: 3, retryOn: unavailable; the UNAVAILABLE answers carry x-envoy-ratelimited: one call only.
        var key = "limited-" + Guid.NewGuid().ToString("N");
        var ex = await Assert.ThrowsAsync<RpcException>(async () => await client.SayHelloAsync(
            new HelloRequest { FailKey = key, FailTimes = 5, FailCode = (int)StatusCode.Unavailable, RateLimited = true }, deadline: Deadline()));
        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Equal(1, fixture.V2.CallsWithKey(key));
    }

    [Fact]
    public async Task EnvoyRetryGrpcOnMetadata_AddsARetryCondition_AndIsNotForwarded()
    {
        using var channel = fixture.CreateChannel(Retry);
        var client = new Greeter.Greeter.GreeterClient(channel);

        // The route retries unavailable only; the call's x-envoy-retry-grpc-on adds internal (Envoy's router header).
        var key = "grpc-on-" + Guid.NewGuid().ToString("N");
        var metadata = new Metadata { { "x-envoy-retry-grpc-on", "internal" } };
        var reply = await client.SayHelloAsync(new HelloRequest { Name = key, FailKey = key, FailTimes = 2, FailCode = (int)StatusCode.Internal }, metadata, Deadline());
        Assert.Equal("v2", reply.Version);
        Assert.Equal(3, fixture.V2.CallsWithKey(key));
        Assert.All(fixture.V2.Seen(key), seen => Assert.DoesNotContain("x-envoy-retry-grpc-on", seen.Headers.Keys));
    }
}

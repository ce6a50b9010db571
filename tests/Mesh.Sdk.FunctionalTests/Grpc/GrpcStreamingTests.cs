using Grpc.Core;
using Mesh.Sdk.FunctionalTests.Grpc.Greeter;
using Mesh.Sdk.FunctionalTests.Grpc.Infrastructure;
using static Mesh.Sdk.FunctionalTests.Grpc.Infrastructure.GrpcTestServices;

namespace Mesh.Sdk.FunctionalTests.Grpc;

/// <summary>Streaming calls hold their circuit-breaker slot until the stream ends, not only until its response headers.</summary>
public sealed partial class GrpcMeshTests
{
    [Fact]
    public async Task ServerStream_HoldsItsMaxRequestsSlot_UntilTheStreamCompletes()
    {
        using var channel = fixture.CreateChannel(StreamBreaker);
        var client = new Greeter.Greeter.GreeterClient(channel);
        await client.SayHelloAsync(new HelloRequest(), deadline: Deadline()); // connect first
        var overflow = $"Cluster 'outbound|{GrpcMeshFixture.ServicePort}|v1|{GrpcMeshFixture.Host(StreamBreaker)}' is over its max_requests limit of 1.";

        for (var round = 0; round < 3; round++)
        {
            // http2MaxRequests: 1 → max_requests 1. The stream sends 3 replies 250 ms apart.
            using (var stream = client.StreamHello(new HelloRequest { Count = 3, DelayMs = 250 }, deadline: Deadline()))
            {
                await stream.ResponseHeadersAsync;
                Assert.True(await stream.ResponseStream.MoveNext(CancellationToken.None));
                Assert.Equal(1, fixture.V1A.ActiveStreams + fixture.V1B.ActiveStreams);

                // Past its response headers and first message the stream still holds the only slot.
                var rejected = await Assert.ThrowsAsync<RpcException>(async () => await client.SayHelloAsync(new HelloRequest(), deadline: Deadline()));
                Assert.Equal((StatusCode.Unavailable, overflow), (rejected.StatusCode, rejected.Status.Detail));

                var replies = 1;
                while (await stream.ResponseStream.MoveNext(CancellationToken.None))
                {
                    replies++;
                }

                Assert.Equal(3, replies);
                Assert.Equal(StatusCode.OK, stream.GetStatus().StatusCode);
            }

            // Read to its end: the slot is free again.
            Assert.Equal("v1", (await client.SayHelloAsync(new HelloRequest(), deadline: Deadline())).Version);
        }
    }

    [Fact]
    public async Task ServerStream_DisposedBeforeItsEnd_GivesItsSlotBack()
    {
        using var channel = fixture.CreateChannel(StreamBreaker);
        var client = new Greeter.Greeter.GreeterClient(channel);
        await client.SayHelloAsync(new HelloRequest(), deadline: Deadline());
        for (var round = 0; round < 3; round++)
        {
            using (var stream = client.StreamHello(new HelloRequest { Count = 20, DelayMs = 100 }, deadline: Deadline()))
            {
                Assert.True(await stream.ResponseStream.MoveNext(CancellationToken.None));
                var rejected = await Assert.ThrowsAsync<RpcException>(async () => await client.SayHelloAsync(new HelloRequest(), deadline: Deadline()));
                Assert.Equal(StatusCode.Unavailable, rejected.StatusCode);
            }

            // Disposing the call cancels the stream and ends the call: the next call gets the slot.
            Assert.Equal("v1", (await client.SayHelloAsync(new HelloRequest(), deadline: Deadline())).Version);
        }
    }

    [Fact]
    public async Task CallsWaitingForAConnection_AreBoundedByMaxPendingRequests()
    {
        using var channel = fixture.CreateChannel(Pending);
        var client = new Greeter.Greeter.GreeterClient(channel);
        Assert.Equal("v1", (await client.SayHelloAsync(new HelloRequest(), deadline: Deadline())).Version);
        var overflow = $"Cluster 'outbound|{GrpcMeshFixture.ServicePort}||{GrpcMeshFixture.Host(Blackhole)}' is over its max_pending_requests limit of 2.";

        // SayGoodbye goes to a cluster whose only endpoint never finishes connecting: calls queue as pending.
        var waiting = Enumerable.Range(0, 2)
            .Select(_ => client.SayGoodbyeAsync(new HelloRequest(), deadline: DateTime.UtcNow.AddMilliseconds(1500)).ResponseAsync)
            .ToArray();
        await Task.Delay(300);
        Assert.All(waiting, t => Assert.False(t.IsCompleted));

        // http1MaxPendingRequests: 2 → max_pending_requests 2: further calls fail at once, naming the limit.
        for (var i = 0; i < 3; i++)
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            var ex = await Assert.ThrowsAsync<RpcException>(async () => await client.SayGoodbyeAsync(new HelloRequest(), deadline: Deadline()));
            Assert.Equal((StatusCode.Unavailable, overflow), (ex.StatusCode, ex.Status.Detail));
            Assert.InRange(watch.ElapsedMilliseconds, 0, 1000);
        }

        // Other routes of the channel are unaffected.
        Assert.Equal("v1", (await client.SayHelloAsync(new HelloRequest(), deadline: Deadline())).Version);

        // The queued calls end at their deadline, and their pending slots go back with them.
        foreach (var call in waiting)
        {
            var ex = await Assert.ThrowsAsync<RpcException>(async () => await call);
            Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        }

        await Task.Delay(100);
        var later = Enumerable.Range(0, 2)
            .Select(_ => client.SayGoodbyeAsync(new HelloRequest(), deadline: DateTime.UtcNow.AddMilliseconds(500)).ResponseAsync)
            .ToArray();
        foreach (var call in later)
        {
            var ex = await Assert.ThrowsAsync<RpcException>(async () => await call);
            Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        }
    }
}

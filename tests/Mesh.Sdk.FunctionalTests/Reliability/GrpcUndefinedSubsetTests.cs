using System.Diagnostics;
using Grpc.Core;
using Mesh.Sdk.FunctionalTests.Grpc.Greeter;
using Mesh.Sdk.FunctionalTests.Grpc.Infrastructure;
using static Mesh.Sdk.FunctionalTests.Grpc.Infrastructure.GrpcTestServices;

namespace Mesh.Sdk.FunctionalTests.Reliability;

/// <summary>An <c>xds:///</c> call routed to a subset no DestinationRule defines.</summary>
public sealed class GrpcUndefinedSubsetTests(GrpcMeshFixture fixture) : IClassFixture<GrpcMeshFixture>
{
    /// <summary>
    /// Fails at once with UNAVAILABLE naming the cluster (gRPC's answer to Envoy's 503 NC). Before, the pick was queued
    /// as if the cluster were still on its way, and the call waited for its deadline.
    /// </summary>
    [Fact]
    public async Task CallRoutedToAnUndefinedSubset_FailsAtOnceWithUnavailable()
    {
        using var channel = fixture.CreateChannel(Split);
        var client = new Greeter.GreeterClient(channel);
        Assert.NotEmpty((await client.SayHelloAsync(new HelloRequest { Name = "warm" }, deadline: DateTime.UtcNow.AddSeconds(10))).Workload);

        fixture.WriteVirtualService(Split, $"""
          - name: to-v4
            route:
            - destination: {Destination(Split, "v4")}
        """);

        var waited = Stopwatch.StartNew();
        while (true)
        {
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(20), "the route to v4 did not reach the client within 20 s");
            var call = Stopwatch.StartNew();
            try
            {
                await client.SayHelloAsync(new HelloRequest { Name = "v4" }, deadline: DateTime.UtcNow.AddSeconds(10));
                await Task.Delay(20); // still the previous route
            }
            catch (RpcException ex)
            {
                Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
                Assert.Contains($"cluster '{GrpcMeshFixture.Cluster(Split, "v4")}' of route 'to-v4' is unknown", ex.Status.Detail, StringComparison.Ordinal);
                Assert.True(call.Elapsed < TimeSpan.FromSeconds(1), $"the failing call took {call.Elapsed.TotalMilliseconds:F0} ms");
                break;
            }
        }
    }
}

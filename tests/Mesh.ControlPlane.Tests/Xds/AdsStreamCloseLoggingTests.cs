using System.Threading.Channels;
using Envoy.Service.Discovery.V3;
using Grpc.Core;
using Grpc.Net.Client;
using Mesh.ControlPlane.Xds;
using Mesh.Xds;
using Microsoft.Extensions.Logging;

namespace Mesh.ControlPlane.Tests.Xds;

/// <summary>A client closing its ADS stream is normal: one line, no stack trace (grpc-dotnet logged one at Information).</summary>
public sealed class AdsStreamCloseLoggingTests
{
    [Theory]
    [InlineData("complete")] // the client ends its request stream
    [InlineData("reset")] // the client cancels the call (RST_STREAM)
    [InlineData("disconnect")] // the client's connection goes away
    public async Task ClientClosingItsStream_LogsOneLineWithoutException(string how)
    {
        var recorder = new RecordingLogger();
        using var factory = LoggerFactory.Create(b => b.AddProvider(recorder).SetMinimumLevel(LogLevel.Trace));
        using var dir = new TempDir();
        dir.Write("reviews.yaml", TestYaml.All);
        await using var controlPlane = new MeshControlPlane(new MeshControlPlaneOptions
        {
            ConfigDirectory = dir.Path,
            XdsPort = 0,
            LoggerFactory = factory,
            ConfigPollInterval = TimeSpan.FromHours(1),
        });
        await controlPlane.StartAsync();
        var channel = GrpcChannel.ForAddress(controlPlane.XdsUri!);
        var call = new AggregatedDiscoveryService.AggregatedDiscoveryServiceClient(channel).StreamAggregatedResources();
        await call.RequestStream.WriteAsync(Ads.Request(XdsTypeUrls.Listener, ["reviews:9080"], Ads.Node("closing-client")));
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));

        switch (how)
        {
            case "complete":
                await call.RequestStream.CompleteAsync();
                break;
            case "reset":
                call.Dispose();
                break;
            default:
                channel.Dispose();
                break;
        }

        // Wait for the stream's close line (bounded), then look at everything logged.
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (!recorder.Lines.Any(l => l.EventId == 4002))
        {
            await Task.Delay(20, deadline.Token);
        }

        var closed = Assert.Single(recorder.Lines, l => l.EventId == 4002);
        Assert.Equal(LogLevel.Information, closed.Level);
        Assert.Matches(@"^ADS stream \d+ of node 'closing-client' closed\.$", closed.Message);
        Assert.DoesNotContain(recorder.Lines, l => l.Level >= LogLevel.Information && l.Exception is not null);
        Assert.DoesNotContain(recorder.Lines, l => l.EventId == 4009);
        call.Dispose();
        channel.Dispose();
    }

    [Fact]
    public void Filter_DropsOnlyGrpcReadErrorsCausedByTheClientGoingAway()
    {
        var recorder = new RecordingLogger();
        using var factory = LoggerFactory.Create(b => b.AddProvider(recorder).SetMinimumLevel(LogLevel.Trace));
        var filter = new ClientCloseLogFilter(factory);
        var grpc = filter.CreateLogger(ClientCloseLogFilter.GrpcServerCallHandler);
        var other = filter.CreateLogger("Other");
        var readError = new EventId(14, "ErrorReadingMessage");

        grpc.Log(LogLevel.Information, readError, "reset", new IOException("The client reset the request stream."), (s, _) => s);
        grpc.Log(LogLevel.Information, readError, "wrapped", new ChannelClosedException(new OperationCanceledException()), (s, _) => s);
        grpc.Log(LogLevel.Information, readError, "cancelled", new RpcException(new Status(StatusCode.Cancelled, "gone")), (s, _) => s);
        grpc.Log(LogLevel.Information, readError, "bad message", new InvalidDataException("malformed"), (s, _) => s);
        grpc.Log(LogLevel.Error, new EventId(6, "ErrorExecutingServiceMethod"), "failure", new IOException("disk"), (s, _) => s);
        other.Log(LogLevel.Information, readError, "other category", new IOException("x"), (s, _) => s);

        Assert.Equal(["bad message", "failure", "other category"], recorder.Lines.Select(l => l.Message));
    }
}

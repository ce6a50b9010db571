using Grpc.Core;
using Mesh.Sdk.Tests.Xds.Fakes;
using Microsoft.Extensions.Logging;
using static Mesh.Sdk.Tests.Xds.Fakes.TestResources;

namespace Mesh.Sdk.Tests.Xds;

/// <summary>What the client logs when a send on the ADS stream ends: quiet on shutdown, a warning on a real failure.</summary>
public sealed class XdsClientShutdownLoggingTests
{
    private const int SendFailedEventId = 104;
    private const int SendStoppedEventId = 116;

    [Fact]
    public async Task DisposeDuringASend_GrpcCancelled_IsLoggedAtDebug_NotAsAWarning()
    {
        using var logs = new ListLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(logs));
        var h = new XdsClientHarness(loggerFactory: loggerFactory);
        var sendStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // A real gRPC write in flight when the call is cancelled fails with RpcException(Cancelled).
        h.Transport.BeforeSend = async cancellationToken =>
        {
            sendStarted.TrySetResult();
            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                throw new RpcException(new Status(StatusCode.Cancelled, "Call canceled by the client."));
            }
        };
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        await sendStarted.Task.WaitAsync(FakeAdsTransport.Timeout);

        await h.DisposeAsync();

        var entries = logs.Entries.Where(e => e.Category == "Mesh.Sdk.Xds.XdsClient").ToList();
        Assert.DoesNotContain(entries, e => e.Level >= LogLevel.Warning);
        var stopped = Assert.Single(entries, e => e.EventId == SendStoppedEventId);
        Assert.Equal(LogLevel.Debug, stopped.Level);
        Assert.Contains("'fake-ads'", stopped.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SendFailingWhileTheStreamIsUp_IsStillAWarning()
    {
        using var logs = new ListLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(logs));
        await using var h = new XdsClientHarness(loggerFactory: loggerFactory);
        h.Transport.BeforeSend = _ => throw new IOException("connection reset while writing");
        h.Client.AddListener(ListenerName);
        h.Client.Start();

        var deadline = DateTime.UtcNow + FakeAdsTransport.Timeout;
        while (!logs.Entries.Any(e => e.EventId == SendFailedEventId) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(5);
        }

        var failed = Assert.Single(logs.Entries, e => e.EventId == SendFailedEventId);
        Assert.Equal(LogLevel.Warning, failed.Level);
        Assert.Contains("connection reset while writing", failed.Message, StringComparison.Ordinal);
    }
}

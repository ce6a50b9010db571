using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Mesh.Sdk.Tests.Xds.Fakes;
using Mesh.Sdk.Xds.Internal;
using Microsoft.Extensions.Logging;
using static Mesh.Sdk.Tests.Xds.Fakes.TestResources;

namespace Mesh.Sdk.Tests.Xds;

/// <summary>Repeated faults (a server that keeps refusing, a server that re-sends a rejected version) are counted, not repeated, in the log.</summary>
public sealed class XdsClientLogHygieneTests
{
    private const string Category = "Mesh.Sdk.Xds.XdsClient";
    private const int StreamFailed = 102;
    private const int StreamFailedRepeatedly = 118;
    private const int StreamFailedAgain = 119;
    private const int StreamFailureDetail = 120;
    private const int StreamRestored = 121;
    private const int ResourceRejected = 107;
    private const int ResourceTimedOut = 115;
    private const int Nacked = 112;
    private const int NackedRepeatedly = 123;
    private const int NackedAgain = 124;
    private const int RejectionsEnded = 125;

    [Fact]
    public async Task RepeatedConnectionFailures_OneWarning_ThenOneSummaryAfterTheInterval_StackOnlyAtDebug()
    {
        using var logs = new ListLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(logs));
        // gRPC's uncapped schedule, so that attempts spread over more than one warning interval.
        await using var h = new XdsClientHarness(loggerFactory: loggerFactory, backoff: BackoffSettings.Grpc);
        h.Transport.Unreachable = true;
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        await h.Transport.WaitForOpenCountAsync(1);

        // gRPC's schedule with no jitter: attempts 2-8 come within 60 s of the first warning, the 9th at 69.9 s.
        double[] delays = [1, 1.6, 2.56, 4.096, 6.5536, 10.48576, 16.777216, 26.8435456];
        for (var i = 0; i < delays.Length; i++)
        {
            await h.Time.WaitForTimersAsync(i + 1);
            h.Time.Advance(TimeSpan.FromSeconds(delays[i]));
            await h.Transport.WaitForOpenCountAsync(i + 2);
        }

        await h.Time.WaitForTimersAsync(delays.Length + 1);
        var entries = logs.Entries.Where(e => e.Category == Category).ToList();
        var warnings = entries.Where(e => e.Level >= LogLevel.Warning).ToList();
        Assert.Equal(2, warnings.Count);
        Assert.Equal(StreamFailed, warnings[0].EventId);
        Assert.Equal("ADS stream to 'fake-ads' failed: connection reset by fake server; retrying in 1 s (attempt 1). The last accepted configuration stays in force.", warnings[0].Message);
        Assert.Equal(StreamFailedRepeatedly, warnings[1].EventId);
        Assert.Equal("ADS stream to 'fake-ads' failed: connection reset by fake server; retrying in 42.9 s (attempt 9). The same failure happened 7 more times in the last 70 s.", warnings[1].Message);
        Assert.Equal(7, entries.Count(e => e.EventId == StreamFailedAgain && e.Level == LogLevel.Debug));
        Assert.All(entries.Where(e => e.Exception is not null), e => Assert.Equal((StreamFailureDetail, LogLevel.Debug), (e.EventId, e.Level)));
        Assert.Equal(9, entries.Count(e => e.EventId == StreamFailureDetail));

        // Back: one line says so, and the next outage's first failure is a warning again.
        h.Transport.Unreachable = false;
        h.Time.Advance(TimeSpan.FromSeconds(42.94967296));
        var call = await h.Transport.NextSotwCallAsync();
        for (var i = 0; i <= delays.Length; i++)
        {
            call = await h.Transport.NextSotwCallAsync();
        }

        await call.NextRequestAsync();
        call.Respond(Sotw(Lds, "1", "a", Listener()));
        await h.WaitAsync(s => s.Listeners.ContainsKey(ListenerName));
        Assert.Contains(logs.Entries, e => e.EventId == StreamRestored && e.Message == "ADS stream to 'fake-ads' is back after 9 failed attempts.");
        call.Fail();
        await h.Time.WaitForTimersAsync(delays.Length + 2);
        var last = logs.Entries.Where(e => e.Category == Category && e.Level >= LogLevel.Warning).ToList();
        Assert.Equal(3, last.Count);
        Assert.Equal("ADS stream to 'fake-ads' failed: connection reset by fake server; retrying in 1 s (attempt 1). The last accepted configuration stays in force.", last[2].Message);
    }

    [Fact]
    public async Task NackStorm_SameRejection_OneWarningWithTheError_ThenCountedPerInterval_AndSummarisedWhenAccepted()
    {
        using var logs = new ListLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(logs));
        await using var h = new XdsClientHarness(loggerFactory: loggerFactory);
        h.Client.AddListener(ListenerName);
        h.Client.Start();
        var call = await h.Transport.NextSotwCallAsync();
        await call.NextRequestAsync();

        // A server that re-sends the same rejected listener with a new version and nonce each time, 1,200 times.
        const int storm = 1200;
        for (var i = 1; i <= storm; i++)
        {
            call.Respond(Sotw(Lds, $"v{i}", $"n{i}", BadListener()));
            var nack = await call.NextRequestAsync();
            Assert.Equal($"n{i}", nack.ResponseNonce);
            Assert.Contains("router but not the last filter", nack.ErrorDetail.Message, StringComparison.Ordinal);
        }

        var warnings = logs.Entries.Where(e => e.Category == Category && e.Level >= LogLevel.Warning).ToList();
        var first = Assert.Single(warnings);
        Assert.Equal(Nacked, first.EventId);
        Assert.Contains("NACK LDS version 'v1' nonce 'n1' (1 invalid resources); staying on version ''", first.Message, StringComparison.Ordinal);
        Assert.Contains($"LDS resource '{ListenerName}'", first.Message, StringComparison.Ordinal);
        Assert.Contains("router but not the last filter", first.Message, StringComparison.Ordinal);
        Assert.Equal(storm - 1, logs.Entries.Count(e => e.EventId == NackedAgain && e.Level == LogLevel.Debug));
        Assert.All(logs.Entries.Where(e => e.EventId == ResourceRejected), e => Assert.Equal(LogLevel.Debug, e.Level));

        // A minute later the same rejection: one warning with the count held back.
        // (The listener's 15 s does-not-exist timer fires meanwhile: that warning is another matter.)
        h.Time.Advance(TimeSpan.FromSeconds(60));
        call.Respond(Sotw(Lds, "v1201", "n1201", BadListener()));
        await call.NextRequestAsync();
        call.Respond(Sotw(Lds, "v1202", "n1202", BadListener()));
        await call.NextRequestAsync();
        warnings = logs.Entries.Where(e => e.Category == Category && e.Level >= LogLevel.Warning && e.EventId != ResourceTimedOut).ToList();
        Assert.Equal(2, warnings.Count);
        Assert.Equal(NackedRepeatedly, warnings[1].EventId);
        Assert.Contains("NACK LDS version 'v1201' nonce 'n1201'", warnings[1].Message, StringComparison.Ordinal);
        Assert.EndsWith("The same rejection was sent 1199 more times in the last 60 s.", warnings[1].Message, StringComparison.Ordinal);

        // A good version ends the run: the repeats since the last warning are reported once, and a later
        // rejection is a warning again.
        call.Respond(Sotw(Lds, "v1203", "n1203", Listener()));
        await call.NextRequestAsync();
        var ended = Assert.Single(logs.Entries, e => e.EventId == RejectionsEnded);
        Assert.Equal(LogLevel.Information, ended.Level);
        Assert.Equal("LDS version 'v1203' accepted; the earlier rejection was repeated 1 more times since it was last logged.", ended.Message);
        await call.NextRequestAsync(); // RDS subscription
        call.Respond(Sotw(Lds, "v1204", "n1204", BadListener()));
        await call.NextRequestAsync();
        Assert.Equal(3, logs.Entries.Count(e => e.Category == Category && e.Level >= LogLevel.Warning && e.EventId != ResourceTimedOut));
        Assert.Equal(Nacked, logs.Entries.Last(e => e.Level >= LogLevel.Warning && e.EventId != ResourceTimedOut).EventId);
    }

    private static Envoy.Config.Listener.V3.Listener BadListener() =>
        Listener(ListenerName, RouteName, Router(), new HttpFilter
        {
            Name = "envoy.filters.http.fault",
            TypedConfig = new Google.Protobuf.WellKnownTypes.Any { TypeUrl = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault" },
        });
}

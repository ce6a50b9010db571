using Envoy.Service.Discovery.V3;
using Grpc.Net.Client;
using Mesh.ControlPlane.Xds;
using Mesh.Xds;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Mesh.ControlPlane.Tests.Xds;

/// <summary>Repeated identical warnings are counted, not repeated: a NACK storm writes one warning per interval.</summary>
public sealed class AdsNackLoggingTests
{
    [Fact]
    public async Task ClientNackingTheSameVersion1000Times_OneWarning_TheRestAtDebug()
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
        using var channel = GrpcChannel.ForAddress(controlPlane.XdsUri!);
        await using var client = Ads.Sotw(channel);
        await client.SendAsync(Ads.Request(XdsTypeUrls.Cluster, [], Ads.Node("nacking-client")));
        var cds = await client.NextAsync();

        const int Nacks = 1000;
        for (var i = 0; i < Nacks; i++)
        {
            await client.SendAsync(new DiscoveryRequest
            {
                TypeUrl = XdsTypeUrls.Cluster,
                ResponseNonce = cds.Nonce,
                ErrorDetail = new Google.Rpc.Status { Code = 3, Message = "cluster 'x': bad lb_policy" },
            });
        }

        // Every NACK is seen (at Debug after the first), and exactly one reached Warning.
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (recorder.Lines.Count(l => l.EventId is 4004 or 4010 or 4011) < Nacks)
        {
            await Task.Delay(20, deadline.Token);
        }

        var warnings = recorder.Lines.Where(l => l.Level >= LogLevel.Warning && l.EventId is 4004 or 4010 or 4011).ToArray();
        var warning = Assert.Single(warnings);
        Assert.Equal($"Node 'nacking-client' rejected (NACK) '{XdsTypeUrls.Cluster}' nonce '{cds.Nonce}' version '{cds.VersionInfo}': 3: cluster 'x': bad lb_policy", warning.Message);
        Assert.Equal(Nacks - 1, recorder.Lines.Count(l => l.EventId == 4011 && l.Level == LogLevel.Debug));
    }

    [Fact]
    public void Limiter_FirstLogged_RepeatsCounted_ThenOneSummaryAfterTheInterval()
    {
        var time = new FakeTimeProvider();
        var limiter = new RepeatedLogLimiter(time, TimeSpan.FromSeconds(10));

        Assert.True(limiter.ShouldLog("k", out var repeats, out _));
        Assert.Equal(0, repeats);
        var held = 0;
        for (var i = 0; i < 1200; i++)
        {
            held += limiter.ShouldLog("k", out _, out _) ? 0 : 1;
        }

        Assert.True(limiter.ShouldLog("other", out _, out _));
        time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(limiter.ShouldLog("k", out repeats, out var window));

        Assert.Equal((1200, 1200, TimeSpan.FromSeconds(10)), (held, repeats, window));
        Assert.False(limiter.ShouldLog("k", out _, out _));
    }
}

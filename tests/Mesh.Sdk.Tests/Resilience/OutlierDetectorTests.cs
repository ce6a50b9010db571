using Envoy.Config.Cluster.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.LoadBalancing;
using Mesh.Sdk.Resilience;
using Microsoft.Extensions.Time.Testing;
using static Mesh.Sdk.Tests.LoadBalancing.Lb;

namespace Mesh.Sdk.Tests.Resilience;

public sealed class OutlierDetectorTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));

    private (ClusterLoadBalancer Lb, OutlierDetector Detector) Create(int hosts, OutlierDetection config)
    {
        var lb = Balancer(Hosts(hosts));
        var detector = new OutlierDetector(ClusterName, OutlierDetectionSettings.FromProto(ClusterName, config), _time, lb.Refresh, random: new Random(7));
        detector.SetHosts(lb.Endpoints.All);
        return (lb, detector);
    }

    private static OutlierDetection Config(uint maxEjectionPercent = 100) => new() { MaxEjectionPercent = maxEjectionPercent };

    [Fact]
    public void Consecutive5xx_EjectsAtTheFifthFailureNotBefore()
    {
        var (lb, detector) = Create(4, Config());
        var host = lb.Endpoints.All[0];

        for (var i = 0; i < 4; i++)
        {
            detector.ReportResponse(host, 500);
        }

        Assert.False(host.State.Outlier.IsEjected);
        detector.ReportResponse(host, 500);

        Assert.True(host.State.Outlier.IsEjected);
        Assert.False(Count(lb, 300).ContainsKey(host.Key));
    }

    [Fact]
    public void Consecutive5xx_IsResetBySuccess()
    {
        var (lb, detector) = Create(4, Config());
        var host = lb.Endpoints.All[0];

        for (var i = 0; i < 4; i++)
        {
            detector.ReportResponse(host, 503);
        }

        detector.ReportResponse(host, 200);
        for (var i = 0; i < 4; i++)
        {
            detector.ReportResponse(host, 500);
        }

        Assert.False(host.State.Outlier.IsEjected);
    }

    [Fact]
    public void EjectedHost_ReturnsAfterBaseEjectionTime_AndSecondEjectionLastsTwiceAsLong()
    {
        var (lb, detector) = Create(4, Config());
        var host = lb.Endpoints.All[1];
        Eject(detector, host);

        _time.Advance(TimeSpan.FromSeconds(20));
        Assert.True(host.State.Outlier.IsEjected);
        _time.Advance(TimeSpan.FromSeconds(10)); // t = 30 s: interval tick at the base ejection time
        Assert.False(host.State.Outlier.IsEjected);
        Assert.True(Count(lb, 400).ContainsKey(host.Key));

        Eject(detector, host);
        Assert.Equal(2, host.State.Outlier.EjectionCount);
        Assert.Equal(TimeSpan.FromSeconds(60), detector.EjectionDuration(host.State.Outlier));
        _time.Advance(TimeSpan.FromSeconds(50));
        Assert.True(host.State.Outlier.IsEjected);
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.False(host.State.Outlier.IsEjected);
    }

    [Fact]
    public void EjectionTime_IsCappedByMaxEjectionTime_AndDecaysWhileHealthy()
    {
        var config = Config();
        config.BaseEjectionTime = Duration.FromTimeSpan(TimeSpan.FromSeconds(30));
        config.MaxEjectionTime = Duration.FromTimeSpan(TimeSpan.FromSeconds(50));
        var (lb, detector) = Create(4, config);
        var host = lb.Endpoints.All[0];

        var durations = new List<int>();
        for (var round = 0; round < 3; round++)
        {
            Eject(detector, host);
            durations.Add(TicksUntil(() => !host.State.Outlier.IsEjected) * 10);
        }

        // 30 s × 1, then 30 s × 2 = 60 s capped at 50 s, and the multiplier stops growing at the cap.
        Assert.Equal([30, 50, 50], durations);
        Assert.Equal(2, host.State.Outlier.EjectionMultiplier);

        // Healthy for min(30 s × 2, 50 s) after returning: one step down; then min(30 s × 1, 50 s) is already met.
        Assert.Equal(5, TicksUntil(() => host.State.Outlier.EjectionMultiplier == 1));
        Assert.Equal(1, TicksUntil(() => host.State.Outlier.EjectionMultiplier == 0));
    }

    private int TicksUntil(Func<bool> condition)
    {
        for (var tick = 1; tick <= 100; tick++)
        {
            _time.Advance(TimeSpan.FromSeconds(10));
            if (condition())
            {
                return tick;
            }
        }

        throw new Xunit.Sdk.XunitException("condition not met within 100 intervals");
    }

    [Fact]
    public void MaxEjectionPercent_LimitsEjections_ButAllowsOneHost()
    {
        var (lb, detector) = Create(4, new OutlierDetection()); // default 10 %
        Eject(detector, lb.Endpoints.All[0]);
        Eject(detector, lb.Endpoints.All[1]);

        Assert.True(lb.Endpoints.All[0].State.Outlier.IsEjected);
        Assert.False(lb.Endpoints.All[1].State.Outlier.IsEjected);
        Assert.Equal(1, detector.EjectedCount);

        var (lb2, detector2) = Create(10, Config(maxEjectionPercent: 20));
        for (var i = 0; i < 4; i++)
        {
            Eject(detector2, lb2.Endpoints.All[i]);
        }

        Assert.Equal(2, detector2.EjectedCount);
    }

    [Fact]
    public void ConsecutiveGatewayFailure_IsDetectedButNotEnforcedByDefault()
    {
        var config = Config();
        config.Consecutive5Xx = 100;
        var (lb, detector) = Create(4, config);
        var host = lb.Endpoints.All[0];
        for (var i = 0; i < 10; i++)
        {
            detector.ReportResponse(host, 502);
        }

        Assert.False(host.State.Outlier.IsEjected);

        config.EnforcingConsecutiveGatewayFailure = 100;
        config.ConsecutiveGatewayFailure = 3;
        var (lb2, detector2) = Create(4, config);
        var host2 = lb2.Endpoints.All[0];
        detector2.ReportResponse(host2, 502);
        detector2.ReportResponse(host2, 500); // a non-gateway 5xx breaks the gateway run
        detector2.ReportResponse(host2, 503);
        detector2.ReportResponse(host2, 504);
        Assert.False(host2.State.Outlier.IsEjected);
        detector2.ReportResponse(host2, 502);
        Assert.True(host2.State.Outlier.IsEjected);
    }

    [Fact]
    public void LocalOriginFailures_CountAs503And504WithoutSplit()
    {
        var (lb, detector) = Create(4, Config());
        var host = lb.Endpoints.All[0];
        for (var i = 0; i < 3; i++)
        {
            detector.ReportLocalOrigin(host, LocalOriginOutcome.ConnectFailed);
            detector.ReportLocalOrigin(host, LocalOriginOutcome.ConnectSuccess); // not counted without the split
        }

        Assert.False(host.State.Outlier.IsEjected);
        detector.ReportLocalOrigin(host, LocalOriginOutcome.Timeout);
        detector.ReportLocalOrigin(host, LocalOriginOutcome.Timeout);
        Assert.True(host.State.Outlier.IsEjected);
    }

    [Fact]
    public void LocalOriginFailures_UseTheirOwnCounterWithSplit()
    {
        var config = Config();
        config.SplitExternalLocalOriginErrors = true;
        config.ConsecutiveLocalOriginFailure = 2;
        var (lb, detector) = Create(4, config);
        var host = lb.Endpoints.All[0];

        detector.ReportLocalOrigin(host, LocalOriginOutcome.ConnectFailed);
        detector.ReportResponse(host, 500); // external errors do not reset or feed the local counter
        Assert.False(host.State.Outlier.IsEjected);
        detector.ReportLocalOrigin(host, LocalOriginOutcome.ConnectFailed);
        Assert.True(host.State.Outlier.IsEjected);
    }

    [Fact]
    public void SuccessRate_EjectsHostsBelowMeanMinusStdevFactor()
    {
        var config = Config();
        config.Consecutive5Xx = 1000;
        var (lb, detector) = Create(6, config);

        // Five hosts at 99 % success, one at 50 %, each with 200 requests in the interval.
        for (var h = 0; h < 6; h++)
        {
            var failures = h == 5 ? 100 : 2;
            for (var i = 0; i < 200; i++)
            {
                detector.ReportResponse(lb.Endpoints.All[h], i < failures ? 500 : 200);
            }
        }

        _time.Advance(TimeSpan.FromSeconds(10));

        Assert.True(lb.Endpoints.All[5].State.Outlier.IsEjected);
        Assert.Equal(1, detector.EjectedCount);
    }

    [Fact]
    public void SuccessRate_NeedsMinimumHostsAndRequestVolume()
    {
        var config = Config();
        config.Consecutive5Xx = 1000;
        var (lb, detector) = Create(6, config);
        for (var h = 0; h < 6; h++)
        {
            var requests = h == 0 ? 200 : 99; // only one host reaches success_rate_request_volume (100)
            for (var i = 0; i < requests; i++)
            {
                detector.ReportResponse(lb.Endpoints.All[h], h == 0 && i < 150 ? 500 : 200);
            }
        }

        _time.Advance(TimeSpan.FromSeconds(10));

        Assert.Equal(0, detector.EjectedCount);
    }

    [Fact]
    public void FailurePercentage_EjectsOnlyWhenEnforced()
    {
        var config = Config();
        config.Consecutive5Xx = 1000;
        config.EnforcingSuccessRate = 0;
        var (lb, detector) = Create(5, config);
        Feed(detector, lb, failingHost: 2, failures: 45, requests: 50);
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(0, detector.EjectedCount); // enforcing_failure_percentage defaults to 0

        config.EnforcingFailurePercentage = 100;
        var (lb2, detector2) = Create(5, config);
        Feed(detector2, lb2, failingHost: 2, failures: 45, requests: 50); // 90 % ≥ threshold 85 %
        Feed(detector2, lb2, failingHost: 3, failures: 40, requests: 50, onlyFailing: true); // 80 % < 85 %
        _time.Advance(TimeSpan.FromSeconds(10));
        Assert.True(lb2.Endpoints.All[2].State.Outlier.IsEjected);
        Assert.False(lb2.Endpoints.All[3].State.Outlier.IsEjected);
    }

    [Fact]
    public void SetHosts_KeepsEjectionAcrossEdsUpdates()
    {
        var (lb, detector) = Create(4, Config());
        var host = lb.Endpoints.All[0];
        Eject(detector, host);

        var next = EndpointSet.Create(ClusterName, Hosts(5), lb.Endpoints);
        detector.SetHosts(next.All);
        lb.Update(next);

        Assert.True(next.All[0].State.Outlier.IsEjected);
        Assert.False(Count(lb, 100).ContainsKey(host.Key));
    }

    [Fact]
    public void FromProto_RejectsOutOfRangePercentWithTheField()
    {
        var ex = Assert.Throws<NotSupportedException>(() => OutlierDetectionSettings.FromProto(ClusterName, new OutlierDetection { MaxEjectionPercent = 150 }));

        Assert.Equal($"Cluster '{ClusterName}': outlier_detection.max_ejection_percent 150 must be in 0..100.", ex.Message);
    }

    [Fact]
    public void FromProto_FillsEnvoyDefaults()
    {
        var s = OutlierDetectionSettings.FromProto(ClusterName, new OutlierDetection());

        Assert.Equal(
            (TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(300), 10u, 5u, 100u, 5u, 0u, 1.9, 85u, 0u),
            (s.Interval, s.BaseEjectionTime, s.MaxEjectionTime, s.MaxEjectionPercent, s.Consecutive5xx, s.EnforcingConsecutive5xx,
             s.ConsecutiveGatewayFailure, s.EnforcingConsecutiveGatewayFailure, s.SuccessRateStdevFactor, s.FailurePercentageThreshold, s.EnforcingFailurePercentage));
    }

    private static void Eject(OutlierDetector detector, MeshEndpoint host)
    {
        for (var i = 0; i < 5; i++)
        {
            detector.ReportResponse(host, 500);
        }
    }

    private static void Feed(OutlierDetector detector, ClusterLoadBalancer lb, int failingHost, int failures, int requests, bool onlyFailing = false)
    {
        for (var h = 0; h < lb.Endpoints.All.Count; h++)
        {
            if (onlyFailing && h != failingHost)
            {
                continue;
            }

            for (var i = 0; i < requests; i++)
            {
                detector.ReportResponse(lb.Endpoints.All[h], h == failingHost && i < failures ? 500 : 200);
            }
        }
    }
}

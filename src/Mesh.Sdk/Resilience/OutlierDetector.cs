using Mesh.Sdk.LoadBalancing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Sdk.Resilience;

/// <summary>Local-origin outcomes of a request (no HTTP status reached the client).</summary>
internal enum LocalOriginOutcome
{
    /// <summary>The connection was established.</summary>
    ConnectSuccess,

    /// <summary>Connecting failed or the connection was reset before a response (counts as 503 unless split).</summary>
    ConnectFailed,

    /// <summary>The request timed out (counts as 504 unless split).</summary>
    Timeout,
}

/// <summary>Why a host was ejected, as Envoy names it.</summary>
internal enum EjectionReason
{
    /// <summary>consecutive_5xx.</summary>
    Consecutive5xx,

    /// <summary>consecutive_gateway_failure.</summary>
    ConsecutiveGatewayFailure,

    /// <summary>consecutive_local_origin_failure.</summary>
    ConsecutiveLocalOriginFailure,

    /// <summary>success_rate.</summary>
    SuccessRate,

    /// <summary>success_rate on local-origin errors.</summary>
    SuccessRateLocalOrigin,

    /// <summary>failure_percentage.</summary>
    FailurePercentage,

    /// <summary>failure_percentage on local-origin errors.</summary>
    FailurePercentageLocalOrigin,
}

/// <summary>
/// Envoy-style outlier detection for one cluster. Fed per request outcome on the request path
/// (<see cref="ReportResponse"/>, <see cref="ReportLocalOrigin"/>; lock-free counters), ejects on
/// consecutive failures at once, and every <see cref="OutlierDetectionSettings.Interval"/> (a timer on the
/// injected <see cref="TimeProvider"/>) returns hosts whose ejection time has passed and evaluates the
/// success-rate and failure-percentage ejections over the interval's requests. Ejection changes call the
/// callback given at construction (the cluster's <see cref="ClusterLoadBalancer.Refresh"/>).
/// </summary>
internal sealed partial class OutlierDetector : IDisposable
{
    private readonly Lock _gate = new();
    private readonly string _clusterName;
    private readonly TimeProvider _time;
    private readonly Random _random;
    private readonly Action? _onEjectionsChanged;
    private readonly ILogger _logger;
    private readonly ITimer _timer;
    private IReadOnlyList<MeshEndpoint> _hosts = [];
    private HashSet<OutlierHostState> _members = [];

    public OutlierDetector(
        string clusterName,
        OutlierDetectionSettings settings,
        TimeProvider timeProvider,
        Action? onEjectionsChanged = null,
        ILogger? logger = null,
        Random? random = null)
    {
        _clusterName = clusterName;
        Settings = settings;
        _time = timeProvider;
        _onEjectionsChanged = onEjectionsChanged;
        _logger = logger ?? NullLogger.Instance;
        _random = random ?? Random.Shared;
        _timer = timeProvider.CreateTimer(static s => ((OutlierDetector)s!).RunInterval(), this, settings.Interval, settings.Interval);
    }

    /// <summary>The settings in force.</summary>
    public OutlierDetectionSettings Settings { get; }

    /// <summary>Number of hosts of the current set that are ejected.</summary>
    public int EjectedCount
    {
        get
        {
            lock (_gate)
            {
                return CountEjected();
            }
        }
    }

    /// <summary>Replaces the host list after an EDS update; hosts keep their state through <see cref="EndpointState"/>.</summary>
    public void SetHosts(IReadOnlyList<MeshEndpoint> hosts)
    {
        lock (_gate)
        {
            _hosts = hosts;
            _members = hosts.Select(static h => h.State.Outlier).ToHashSet();
        }
    }

    /// <summary>Records an HTTP response (or a gRPC status mapped to HTTP) from <paramref name="endpoint"/>.</summary>
    public void ReportResponse(MeshEndpoint endpoint, int statusCode)
    {
        var state = endpoint.State.Outlier;
        Interlocked.Increment(ref state.ExternalTotal);
        if (statusCode is >= 500 and < 600)
        {
            if (statusCode is 502 or 503 or 504)
            {
                if (Interlocked.Increment(ref state.ConsecutiveGatewayFailure) == Settings.ConsecutiveGatewayFailure)
                {
                    OnConsecutive(endpoint, EjectionReason.ConsecutiveGatewayFailure);
                }
            }
            else
            {
                Volatile.Write(ref state.ConsecutiveGatewayFailure, 0);
            }

            if (Interlocked.Increment(ref state.Consecutive5xx) == Settings.Consecutive5xx)
            {
                OnConsecutive(endpoint, EjectionReason.Consecutive5xx);
            }
        }
        else
        {
            Interlocked.Increment(ref state.ExternalSuccess);
            Volatile.Write(ref state.Consecutive5xx, 0);
            Volatile.Write(ref state.ConsecutiveGatewayFailure, 0);
        }
    }

    /// <summary>
    /// Records a local-origin outcome. Without <c>split_external_local_origin_errors</c> a connect failure counts
    /// as 503 and a timeout as 504 (a connect success is not counted); with it they feed the separate
    /// local-origin counters.
    /// </summary>
    public void ReportLocalOrigin(MeshEndpoint endpoint, LocalOriginOutcome outcome)
    {
        if (!Settings.SplitExternalLocalOriginErrors)
        {
            switch (outcome)
            {
                case LocalOriginOutcome.ConnectFailed:
                    ReportResponse(endpoint, 503);
                    break;
                case LocalOriginOutcome.Timeout:
                    ReportResponse(endpoint, 504);
                    break;
            }

            return;
        }

        var state = endpoint.State.Outlier;
        Interlocked.Increment(ref state.LocalTotal);
        if (outcome == LocalOriginOutcome.ConnectSuccess)
        {
            Interlocked.Increment(ref state.LocalSuccess);
            Volatile.Write(ref state.ConsecutiveLocalOriginFailure, 0);
        }
        else if (Interlocked.Increment(ref state.ConsecutiveLocalOriginFailure) == Settings.ConsecutiveLocalOriginFailure)
        {
            OnConsecutive(endpoint, EjectionReason.ConsecutiveLocalOriginFailure);
        }
    }

    /// <summary>One evaluation interval: returns hosts, decays multipliers, evaluates success rate and failure percentage.</summary>
    internal void RunInterval()
    {
        bool changed;
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            changed = false;
            var count = _hosts.Count;
            var external = new (long Success, long Total)[count];
            var local = new (long Success, long Total)[count];
            for (var i = 0; i < count; i++)
            {
                var state = _hosts[i].State.Outlier;
                changed |= CheckForReturn(_hosts[i], state, now);
                external[i] = (Interlocked.Exchange(ref state.ExternalSuccess, 0), Interlocked.Exchange(ref state.ExternalTotal, 0));
                local[i] = (Interlocked.Exchange(ref state.LocalSuccess, 0), Interlocked.Exchange(ref state.LocalTotal, 0));
            }

            changed |= EvaluateSuccessRate(external, EjectionReason.SuccessRate, Settings.EnforcingSuccessRate, EjectionReason.FailurePercentage, Settings.EnforcingFailurePercentage, now);
            if (Settings.SplitExternalLocalOriginErrors)
            {
                changed |= EvaluateSuccessRate(local, EjectionReason.SuccessRateLocalOrigin, Settings.EnforcingLocalOriginSuccessRate, EjectionReason.FailurePercentageLocalOrigin, Settings.EnforcingFailurePercentageLocalOrigin, now);
            }
        }

        if (changed)
        {
            _onEjectionsChanged?.Invoke();
        }
    }

    public void Dispose() => _timer.Dispose();

    /// <summary>How long the current ejection of a host lasts: base × multiplier, capped by max(max, base), plus jitter.</summary>
    public TimeSpan EjectionDuration(OutlierHostState state)
    {
        var cap = Settings.MaxEjectionTime > Settings.BaseEjectionTime ? Settings.MaxEjectionTime : Settings.BaseEjectionTime;
        var duration = Settings.BaseEjectionTime * Math.Max(1, state.EjectionMultiplier);
        return (duration < cap ? duration : cap) + state.Jitter;
    }

    private bool CheckForReturn(MeshEndpoint host, OutlierHostState state, DateTimeOffset now)
    {
        if (!state.IsEjected)
        {
            // Decay: once a returned host has stayed healthy for its last ejection time, the multiplier drops one step per interval.
            if (state.EjectionMultiplier > 0 && state.LastUnejection is { } back)
            {
                var quiet = Settings.BaseEjectionTime * state.EjectionMultiplier;
                if (quiet > Settings.MaxEjectionTime)
                {
                    quiet = Settings.MaxEjectionTime;
                }

                if (now - back >= quiet)
                {
                    state.EjectionMultiplier--;
                }
            }

            return false;
        }

        if (state.LastEjection is { } since && now - since >= EjectionDuration(state))
        {
            state.SetEjected(false);
            state.ResetConsecutive();
            state.LastUnejection = now;
            Log.Returned(_logger, host.Key, _clusterName, (now - since).TotalSeconds);
            return true;
        }

        return false;
    }

    private bool EvaluateSuccessRate(
        (long Success, long Total)[] buckets,
        EjectionReason successRateReason,
        uint successRateEnforcing,
        EjectionReason failurePercentageReason,
        uint failurePercentageEnforcing,
        DateTimeOffset now)
    {
        var s = Settings;
        if (_hosts.Count < s.SuccessRateMinimumHosts && _hosts.Count < s.FailurePercentageMinimumHosts)
        {
            return false;
        }

        var successRateHosts = new List<(int Index, double Rate)>();
        var failureHosts = new List<(int Index, double Rate)>();
        var sum = 0.0;
        for (var i = 0; i < _hosts.Count; i++)
        {
            var (success, total) = buckets[i];
            if (_hosts[i].State.Outlier.IsEjected || total == 0)
            {
                continue;
            }

            var rate = 100.0 * success / total;
            if (total >= s.SuccessRateRequestVolume)
            {
                successRateHosts.Add((i, rate));
                sum += rate;
            }

            if (total >= s.FailurePercentageRequestVolume)
            {
                failureHosts.Add((i, rate));
            }
        }

        var changed = false;
        if (successRateHosts.Count > 0 && successRateHosts.Count >= s.SuccessRateMinimumHosts)
        {
            var mean = sum / successRateHosts.Count;
            var variance = 0.0;
            foreach (var (_, rate) in successRateHosts)
            {
                variance += (rate - mean) * (rate - mean);
            }

            var stdev = Math.Sqrt(variance / successRateHosts.Count);
            var threshold = mean - (s.SuccessRateStdevFactor * stdev);
            foreach (var (index, rate) in successRateHosts)
            {
                if (rate < threshold)
                {
                    changed |= TryEject(_hosts[index], successRateReason, successRateEnforcing, now);
                }
            }
        }

        if (failureHosts.Count > 0 && failureHosts.Count >= s.FailurePercentageMinimumHosts)
        {
            foreach (var (index, rate) in failureHosts)
            {
                if (100.0 - rate >= s.FailurePercentageThreshold)
                {
                    changed |= TryEject(_hosts[index], failurePercentageReason, failurePercentageEnforcing, now);
                }
            }
        }

        return changed;
    }

    private void OnConsecutive(MeshEndpoint endpoint, EjectionReason reason)
    {
        bool ejected;
        lock (_gate)
        {
            var state = endpoint.State.Outlier;
            var enforcing = reason switch
            {
                EjectionReason.Consecutive5xx => Settings.EnforcingConsecutive5xx,
                EjectionReason.ConsecutiveGatewayFailure => Settings.EnforcingConsecutiveGatewayFailure,
                _ => Settings.EnforcingConsecutiveLocalOriginFailure,
            };

            ejected = !state.IsEjected && TryEject(endpoint, reason, enforcing, _time.GetUtcNow());

            // Reset the counter that fired so a new bout is needed, whether or not the ejection was enforced.
            switch (reason)
            {
                case EjectionReason.Consecutive5xx:
                    Volatile.Write(ref state.Consecutive5xx, 0);
                    break;
                case EjectionReason.ConsecutiveGatewayFailure:
                    Volatile.Write(ref state.ConsecutiveGatewayFailure, 0);
                    break;
                default:
                    Volatile.Write(ref state.ConsecutiveLocalOriginFailure, 0);
                    break;
            }
        }

        if (ejected)
        {
            _onEjectionsChanged?.Invoke();
        }
    }

    private bool TryEject(MeshEndpoint endpoint, EjectionReason reason, uint enforcing, DateTimeOffset now)
    {
        var state = endpoint.State.Outlier;
        if (state.IsEjected || !_members.Contains(state))
        {
            return false;
        }

        // gRPC's rule (and Envoy's with always_eject_one_host): eject while the ejected share is below the
        // maximum, so at least one host can be ejected even when one host is more than max_ejection_percent.
        var ejected = CountEjected();
        var allowed = ejected * 100L < (long)Settings.MaxEjectionPercent * _hosts.Count
            || (Settings.AlwaysEjectOneHost && ejected == 0);
        if (!allowed)
        {
            Log.EjectionOverflow(_logger, endpoint.Key, _clusterName, reason, Settings.MaxEjectionPercent);
            return false;
        }

        if (enforcing < 100 && _random.Next(100) >= enforcing)
        {
            Log.NotEnforced(_logger, endpoint.Key, _clusterName, reason);
            return false;
        }

        state.SetEjected(true);
        state.EjectionCount++;
        if (state.EjectionMultiplier == 0 || Settings.BaseEjectionTime * state.EjectionMultiplier < Settings.MaxEjectionTime)
        {
            state.EjectionMultiplier++;
        }

        state.LastEjection = now;
        state.Jitter = Settings.MaxEjectionTimeJitter > TimeSpan.Zero
            ? TimeSpan.FromTicks(_random.NextInt64(Settings.MaxEjectionTimeJitter.Ticks + 1))
            : TimeSpan.Zero;
        Log.Ejected(_logger, endpoint.Key, _clusterName, reason, EjectionDuration(state).TotalSeconds, state.EjectionCount);
        return true;
    }

    private int CountEjected()
    {
        var count = 0;
        for (var i = 0; i < _hosts.Count; i++)
        {
            if (_hosts[i].State.Outlier.IsEjected)
            {
                count++;
            }
        }

        return count;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 610, Level = LogLevel.Warning, Message = "Ejected endpoint '{Endpoint}' of cluster '{ClusterName}' ({Reason}) for {Seconds} s; ejection number {Count}.")]
        public static partial void Ejected(ILogger logger, string endpoint, string clusterName, EjectionReason reason, double seconds, int count);

        [LoggerMessage(EventId = 611, Level = LogLevel.Information, Message = "Endpoint '{Endpoint}' of cluster '{ClusterName}' returned after {Seconds} s of ejection.")]
        public static partial void Returned(ILogger logger, string endpoint, string clusterName, double seconds);

        [LoggerMessage(EventId = 612, Level = LogLevel.Warning, Message = "Endpoint '{Endpoint}' of cluster '{ClusterName}' is an outlier ({Reason}) but not ejected: max_ejection_percent {MaxPercent} reached.")]
        public static partial void EjectionOverflow(ILogger logger, string endpoint, string clusterName, EjectionReason reason, uint maxPercent);

        [LoggerMessage(EventId = 613, Level = LogLevel.Debug, Message = "Endpoint '{Endpoint}' of cluster '{ClusterName}' is an outlier ({Reason}); ejection not enforced this time.")]
        public static partial void NotEnforced(ILogger logger, string endpoint, string clusterName, EjectionReason reason);
    }
}

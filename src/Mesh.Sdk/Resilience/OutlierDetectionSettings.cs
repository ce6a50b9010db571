using Envoy.Config.Cluster.V3;

namespace Mesh.Sdk.Resilience;

/// <summary>
/// A cluster's <c>outlier_detection</c> with Envoy's defaults filled in. Percent fields are 0..100.
/// </summary>
internal sealed record OutlierDetectionSettings
{
    /// <summary><c>interval</c>: how often ejections are evaluated and ejected hosts checked for return; default 10 s.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary><c>base_ejection_time</c>: default 30 s; an ejection lasts base × times ejected.</summary>
    public TimeSpan BaseEjectionTime { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary><c>max_ejection_time</c>: cap on one ejection; default 300 s.</summary>
    public TimeSpan MaxEjectionTime { get; init; } = TimeSpan.FromSeconds(300);

    /// <summary><c>max_ejection_time_jitter</c>: random extra ejection time up to this; default 0.</summary>
    public TimeSpan MaxEjectionTimeJitter { get; init; } = TimeSpan.Zero;

    /// <summary><c>max_ejection_percent</c>: default 10.</summary>
    public uint MaxEjectionPercent { get; init; } = 10;

    /// <summary><c>always_eject_one_host</c>: default false.</summary>
    public bool AlwaysEjectOneHost { get; init; }

    /// <summary><c>consecutive_5xx</c>: default 5.</summary>
    public uint Consecutive5xx { get; init; } = 5;

    /// <summary><c>enforcing_consecutive_5xx</c>: default 100.</summary>
    public uint EnforcingConsecutive5xx { get; init; } = 100;

    /// <summary><c>consecutive_gateway_failure</c> (502, 503, 504): default 5.</summary>
    public uint ConsecutiveGatewayFailure { get; init; } = 5;

    /// <summary><c>enforcing_consecutive_gateway_failure</c>: default 0 (detected, not enforced).</summary>
    public uint EnforcingConsecutiveGatewayFailure { get; init; }

    /// <summary><c>split_external_local_origin_errors</c>: default false (local-origin failures count as 503/504).</summary>
    public bool SplitExternalLocalOriginErrors { get; init; }

    /// <summary><c>consecutive_local_origin_failure</c>: default 5 (only with the split on).</summary>
    public uint ConsecutiveLocalOriginFailure { get; init; } = 5;

    /// <summary><c>enforcing_consecutive_local_origin_failure</c>: default 100.</summary>
    public uint EnforcingConsecutiveLocalOriginFailure { get; init; } = 100;

    /// <summary><c>success_rate_minimum_hosts</c>: default 5.</summary>
    public uint SuccessRateMinimumHosts { get; init; } = 5;

    /// <summary><c>success_rate_request_volume</c>: default 100 requests per interval.</summary>
    public uint SuccessRateRequestVolume { get; init; } = 100;

    /// <summary><c>success_rate_stdev_factor</c> / 1000: default 1.9.</summary>
    public double SuccessRateStdevFactor { get; init; } = 1.9;

    /// <summary><c>enforcing_success_rate</c>: default 100.</summary>
    public uint EnforcingSuccessRate { get; init; } = 100;

    /// <summary><c>enforcing_local_origin_success_rate</c>: default 100.</summary>
    public uint EnforcingLocalOriginSuccessRate { get; init; } = 100;

    /// <summary><c>failure_percentage_threshold</c>: default 85.</summary>
    public uint FailurePercentageThreshold { get; init; } = 85;

    /// <summary><c>failure_percentage_minimum_hosts</c>: default 5.</summary>
    public uint FailurePercentageMinimumHosts { get; init; } = 5;

    /// <summary><c>failure_percentage_request_volume</c>: default 50.</summary>
    public uint FailurePercentageRequestVolume { get; init; } = 50;

    /// <summary><c>enforcing_failure_percentage</c>: default 0.</summary>
    public uint EnforcingFailurePercentage { get; init; }

    /// <summary><c>enforcing_failure_percentage_local_origin</c>: default 0.</summary>
    public uint EnforcingFailurePercentageLocalOrigin { get; init; }

    /// <summary>
    /// Compiles <paramref name="config"/>.
    /// </summary>
    /// <exception cref="NotSupportedException">A field is out of range or unsupported; the message names the cluster and the field.</exception>
    public static OutlierDetectionSettings FromProto(string clusterName, OutlierDetection config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Monitors.Count > 0)
        {
            throw Invalid(clusterName, "monitors are not supported");
        }

        var settings = new OutlierDetectionSettings();
        settings = settings with
        {
            Interval = Positive(clusterName, "interval", config.Interval?.ToTimeSpan() ?? settings.Interval),
            BaseEjectionTime = Positive(clusterName, "base_ejection_time", config.BaseEjectionTime?.ToTimeSpan() ?? settings.BaseEjectionTime),
            MaxEjectionTime = Positive(clusterName, "max_ejection_time", config.MaxEjectionTime?.ToTimeSpan() ?? settings.MaxEjectionTime),
            MaxEjectionTimeJitter = NonNegative(clusterName, "max_ejection_time_jitter", config.MaxEjectionTimeJitter?.ToTimeSpan() ?? TimeSpan.Zero),
            MaxEjectionPercent = Percent(clusterName, "max_ejection_percent", config.MaxEjectionPercent ?? settings.MaxEjectionPercent),
            AlwaysEjectOneHost = config.AlwaysEjectOneHost ?? false,
            Consecutive5xx = config.Consecutive5Xx ?? settings.Consecutive5xx,
            EnforcingConsecutive5xx = Percent(clusterName, "enforcing_consecutive_5xx", config.EnforcingConsecutive5Xx ?? settings.EnforcingConsecutive5xx),
            ConsecutiveGatewayFailure = config.ConsecutiveGatewayFailure ?? settings.ConsecutiveGatewayFailure,
            EnforcingConsecutiveGatewayFailure = Percent(clusterName, "enforcing_consecutive_gateway_failure", config.EnforcingConsecutiveGatewayFailure ?? 0),
            SplitExternalLocalOriginErrors = config.SplitExternalLocalOriginErrors,
            ConsecutiveLocalOriginFailure = config.ConsecutiveLocalOriginFailure ?? settings.ConsecutiveLocalOriginFailure,
            EnforcingConsecutiveLocalOriginFailure = Percent(clusterName, "enforcing_consecutive_local_origin_failure", config.EnforcingConsecutiveLocalOriginFailure ?? 100),
            SuccessRateMinimumHosts = config.SuccessRateMinimumHosts ?? settings.SuccessRateMinimumHosts,
            SuccessRateRequestVolume = config.SuccessRateRequestVolume ?? settings.SuccessRateRequestVolume,
            SuccessRateStdevFactor = (config.SuccessRateStdevFactor ?? 1900) / 1000.0,
            EnforcingSuccessRate = Percent(clusterName, "enforcing_success_rate", config.EnforcingSuccessRate ?? 100),
            EnforcingLocalOriginSuccessRate = Percent(clusterName, "enforcing_local_origin_success_rate", config.EnforcingLocalOriginSuccessRate ?? 100),
            FailurePercentageThreshold = Percent(clusterName, "failure_percentage_threshold", config.FailurePercentageThreshold ?? 85),
            FailurePercentageMinimumHosts = config.FailurePercentageMinimumHosts ?? settings.FailurePercentageMinimumHosts,
            FailurePercentageRequestVolume = config.FailurePercentageRequestVolume ?? settings.FailurePercentageRequestVolume,
            EnforcingFailurePercentage = Percent(clusterName, "enforcing_failure_percentage", config.EnforcingFailurePercentage ?? 0),
            EnforcingFailurePercentageLocalOrigin = Percent(clusterName, "enforcing_failure_percentage_local_origin", config.EnforcingFailurePercentageLocalOrigin ?? 0),
        };

        return settings;
    }

    private static TimeSpan Positive(string cluster, string field, TimeSpan value)
        => value > TimeSpan.Zero ? value : throw Invalid(cluster, $"{field} {value} must be greater than 0");

    private static TimeSpan NonNegative(string cluster, string field, TimeSpan value)
        => value >= TimeSpan.Zero ? value : throw Invalid(cluster, $"{field} {value} must not be negative");

    private static uint Percent(string cluster, string field, uint value)
        => value <= 100 ? value : throw Invalid(cluster, $"{field} {value} must be in 0..100");

    private static NotSupportedException Invalid(string cluster, string reason)
        => new($"Cluster '{cluster}': outlier_detection.{reason}.");
}

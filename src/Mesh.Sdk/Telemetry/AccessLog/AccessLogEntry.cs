namespace Mesh.Sdk.Telemetry.AccessLog;

/// <summary>What an access log line can say about one request (Envoy's stream info), filled in by the side that logs it.</summary>
internal sealed class AccessLogEntry
{
    public DateTimeOffset StartTime { get; set; }

    public string Method { get; set; } = "-";

    public string Path { get; set; } = "-";

    public string Authority { get; set; } = "-";

    public string Protocol { get; set; } = "-";

    public int ResponseCode { get; set; }

    public string ResponseFlags { get; set; } = "-";

    public long BytesReceived { get; set; }

    public long BytesSent { get; set; }

    public long DurationMilliseconds { get; set; }

    public string? UpstreamHost { get; set; }

    public string? UpstreamCluster { get; set; }

    public string? UpstreamLocalAddress { get; set; }

    public string? DownstreamRemoteAddress { get; set; }

    public string? DownstreamLocalAddress { get; set; }

    public string? RequestedServerName { get; set; }

    public string? RouteName { get; set; }

    /// <summary>A request header's value (any case), or <see langword="null"/>.</summary>
    public Func<string, string?> RequestHeader { get; set; } = static _ => null;

    /// <summary>A response header's value (any case), or <see langword="null"/>.</summary>
    public Func<string, string?> ResponseHeader { get; set; } = static _ => null;
}

namespace Mesh.ControlPlane.Config;

// The subset of Istio's networking.istio.io API the control plane understands, as immutable records.
// Field names follow Istio's YAML (camelCase there, PascalCase here).

/// <summary>Where a resource came from, for error messages and conflict reports.</summary>
internal sealed record SourceLocation(string File, int Line)
{
    public override string ToString() => $"{File}:{Line}";
}

/// <summary>Common header of every Istio resource.</summary>
internal abstract record IstioResource
{
    public required string Kind { get; init; }
    public required string ApiVersion { get; init; }
    public required string Name { get; init; }
    public required string Namespace { get; init; }
    public required SourceLocation Source { get; init; }

    public string Key => $"{Kind}/{Namespace}/{Name}";
}

internal enum StringMatchKind { Exact, Prefix, Regex }

internal sealed record StringMatch(StringMatchKind Kind, string Value);

internal sealed record ServicePort(uint Number, string Name, string? Protocol, uint? TargetPort);

internal sealed record WorkloadEntrySpec
{
    public required string Address { get; init; }
    public IReadOnlyDictionary<string, uint> Ports { get; init; } = Empty.Ports;
    public IReadOnlyDictionary<string, string> Labels { get; init; } = Empty.Labels;
    public string? Locality { get; init; }
    public uint? Weight { get; init; }
    public string? ServiceAccount { get; init; }
    public string? Network { get; init; }
}

internal sealed record ServiceEntry : IstioResource
{
    public required IReadOnlyList<string> Hosts { get; init; }
    public IReadOnlyList<string> Addresses { get; init; } = [];
    public IReadOnlyList<ServicePort> Ports { get; init; } = [];
    public string? Location { get; init; }
    public string? Resolution { get; init; }
    public IReadOnlyList<WorkloadEntrySpec> Endpoints { get; init; } = [];
    public IReadOnlyDictionary<string, string>? WorkloadSelector { get; init; }
}

internal sealed record WorkloadEntry : IstioResource
{
    public required WorkloadEntrySpec Spec { get; init; }
}

internal enum SimpleLb { Unspecified, RoundRobin, LeastRequest, Random, Passthrough }

internal sealed record HttpCookie(string Name, string? Path, TimeSpan? Ttl);

internal sealed record ConsistentHash
{
    public string? HttpHeaderName { get; init; }
    public HttpCookie? HttpCookie { get; init; }
    public bool UseSourceIp { get; init; }
    public string? HttpQueryParameterName { get; init; }
    public ulong? MinimumRingSize { get; init; }
}

internal sealed record LoadBalancerSettings(SimpleLb Simple, ConsistentHash? ConsistentHash);

internal sealed record ConnectionPoolSettings
{
    public int? MaxConnections { get; init; }
    public TimeSpan? ConnectTimeout { get; init; }
    public int? Http1MaxPendingRequests { get; init; }
    public int? Http2MaxRequests { get; init; }
    public int? MaxRequestsPerConnection { get; init; }
    public int? MaxRetries { get; init; }
    public TimeSpan? IdleTimeout { get; init; }
}

internal sealed record OutlierDetection
{
    public int? Consecutive5xxErrors { get; init; }
    public int? ConsecutiveGatewayErrors { get; init; }
    public TimeSpan? Interval { get; init; }
    public TimeSpan? BaseEjectionTime { get; init; }
    public int? MaxEjectionPercent { get; init; }
}

internal sealed record TrafficPolicy
{
    public LoadBalancerSettings? LoadBalancer { get; init; }
    public ConnectionPoolSettings? ConnectionPool { get; init; }
    public OutlierDetection? OutlierDetection { get; init; }
    public string? TlsMode { get; init; }
}

internal sealed record Subset(string Name, IReadOnlyDictionary<string, string> Labels, TrafficPolicy? TrafficPolicy);

internal sealed record DestinationRule : IstioResource
{
    public required string Host { get; init; }
    public TrafficPolicy? TrafficPolicy { get; init; }
    public IReadOnlyList<Subset> Subsets { get; init; } = [];
}

internal sealed record HttpMatchRequest
{
    public string? Name { get; init; }
    public StringMatch? Uri { get; init; }
    public StringMatch? Method { get; init; }
    public StringMatch? Authority { get; init; }
    public IReadOnlyDictionary<string, StringMatch> Headers { get; init; } = Empty.Matches;
    public IReadOnlyDictionary<string, StringMatch> QueryParams { get; init; } = Empty.Matches;
    public IReadOnlyDictionary<string, StringMatch> WithoutHeaders { get; init; } = Empty.Matches;
    public bool IgnoreUriCase { get; init; }
    public uint? Port { get; init; }
}

internal sealed record Destination(string Host, string? Subset, uint? Port);

internal sealed record HeaderOperations
{
    public IReadOnlyDictionary<string, string> Set { get; init; } = Empty.Labels;
    public IReadOnlyDictionary<string, string> Add { get; init; } = Empty.Labels;
    public IReadOnlyList<string> Remove { get; init; } = [];
}

internal sealed record Headers(HeaderOperations? Request, HeaderOperations? Response);

internal sealed record HttpRouteDestination(Destination Destination, uint Weight, Headers? Headers);

internal sealed record HttpRetry(int Attempts, TimeSpan? PerTryTimeout, string? RetryOn);

internal sealed record FaultDelay(double Percentage, TimeSpan FixedDelay);

internal sealed record FaultAbort(double Percentage, uint? HttpStatus, int? GrpcStatus);

internal sealed record HttpFault(FaultDelay? Delay, FaultAbort? Abort);

internal sealed record HttpRedirect(string? Uri, string? Authority, uint RedirectCode);

internal sealed record HttpRewrite(string? Uri, string? Authority);

internal sealed record HttpRoute
{
    public string? Name { get; init; }
    public IReadOnlyList<HttpMatchRequest> Match { get; init; } = [];
    public IReadOnlyList<HttpRouteDestination> Route { get; init; } = [];
    public TimeSpan? Timeout { get; init; }
    public HttpRetry? Retries { get; init; }
    public HttpFault? Fault { get; init; }
    public HttpRedirect? Redirect { get; init; }
    public HttpRewrite? Rewrite { get; init; }
    public Headers? Headers { get; init; }
    public Destination? Mirror { get; init; }
    public double? MirrorPercentage { get; init; }
    public required SourceLocation Source { get; init; }
}

internal sealed record VirtualService : IstioResource
{
    public required IReadOnlyList<string> Hosts { get; init; }
    public IReadOnlyList<string> Gateways { get; init; } = [];
    public IReadOnlyList<HttpRoute> Http { get; init; } = [];
}

internal static class Empty
{
    public static readonly IReadOnlyDictionary<string, uint> Ports = new Dictionary<string, uint>();
    public static readonly IReadOnlyDictionary<string, string> Labels = new Dictionary<string, string>();
    public static readonly IReadOnlyDictionary<string, StringMatch> Matches = new Dictionary<string, StringMatch>();
}

namespace Mesh.ControlPlane.Config;

// The subset of Istio's networking.istio.io API the control plane understands, as immutable records.
// Field names follow Istio's YAML (camelCase there, PascalCase here).

/// <summary>Where a resource came from, for error messages and conflict reports.</summary>
internal sealed record SourceLocation(string File, int Line, int Column = 1)
{
    public override string ToString() => $"{File}:{Line}:{Column}";
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

/// <summary>
/// How a StringMatch matches. <see cref="Present"/> is Istio's presence match: an empty StringMatch (<c>{}</c>), a
/// <c>null</c> withoutHeaders entry or a withoutHeaders regex <c>"*"</c>, which istiod writes as <c>present_match</c>.
/// </summary>
internal enum StringMatchKind { Exact, Prefix, Regex, Present }

internal sealed record StringMatch(StringMatchKind Kind, string Value)
{
    public static readonly StringMatch Presence = new(StringMatchKind.Present, string.Empty);
}

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

    /// <summary>Identities the service's workloads may present, verbatim (<c>spec.subjectAltNames</c>).</summary>
    public IReadOnlyList<string> SubjectAltNames { get; init; } = [];
}

internal sealed record WorkloadEntry : IstioResource
{
    public required WorkloadEntrySpec Spec { get; init; }
}

internal enum SimpleLb { Unspecified, RoundRobin, LeastRequest, Random, Passthrough }

internal sealed record HttpCookie(string Name, string? Path, TimeSpan? Ttl)
{
    /// <summary><c>attributes[]{name, value}</c>, written to the hash policy's cookie as istiod does.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Attributes { get; init; } = [];
}

internal sealed record ConsistentHash
{
    public string? HttpHeaderName { get; init; }
    public HttpCookie? HttpCookie { get; init; }
    public bool UseSourceIp { get; init; }
    public string? HttpQueryParameterName { get; init; }

    /// <summary><c>ringHash.minimumRingSize</c> or the deprecated top-level <c>minimumRingSize</c>; 0 when neither is set.</summary>
    public ulong MinimumRingSize { get; init; }

    /// <summary>Whether <c>ringHash</c> was written (istiod then leaves the ring size to Envoy's default when it is 0).</summary>
    public bool ExplicitRingHash { get; init; }
}

/// <summary>DestinationRule <c>localityLbSetting</c>: parsed and validated, not translated (see docs/control-plane.md).</summary>
internal sealed record LocalityLbSetting(bool? Enabled, int DistributeCount, int FailoverCount, IReadOnlyList<string> FailoverPriority);

internal sealed record LoadBalancerSettings(SimpleLb Simple, ConsistentHash? ConsistentHash)
{
    public LocalityLbSetting? LocalityLbSetting { get; init; }

    /// <summary><c>warmupDurationSecs</c>: parsed, not translated.</summary>
    public TimeSpan? WarmupDuration { get; init; }
}

internal sealed record ConnectionPoolSettings
{
    public int? MaxConnections { get; init; }
    public TimeSpan? ConnectTimeout { get; init; }
    public int? Http1MaxPendingRequests { get; init; }
    public int? Http2MaxRequests { get; init; }
    public int? MaxRequestsPerConnection { get; init; }
    public int? MaxRetries { get; init; }
    public TimeSpan? IdleTimeout { get; init; }

    /// <summary><c>tcp.maxConnectionDuration</c>.</summary>
    public TimeSpan? MaxConnectionDuration { get; init; }

    /// <summary><c>tcp.idleTimeout</c>: used when <c>http.idleTimeout</c> is not set (as istiod does).</summary>
    public TimeSpan? TcpIdleTimeout { get; init; }

    /// <summary><c>http.h2UpgradePolicy</c>: parsed, not translated.</summary>
    public string? H2UpgradePolicy { get; init; }

    /// <summary><c>tcp.tcpKeepalive</c> was set: parsed, not translated.</summary>
    public bool HasTcpKeepalive { get; init; }
}

internal sealed record OutlierDetection
{
    public int? Consecutive5xxErrors { get; init; }
    public int? ConsecutiveGatewayErrors { get; init; }
    public TimeSpan? Interval { get; init; }
    public TimeSpan? BaseEjectionTime { get; init; }
    public int? MaxEjectionPercent { get; init; }

    /// <summary>Deprecated <c>consecutiveErrors</c>: istiod maps it to gateway failures.</summary>
    public int? ConsecutiveErrors { get; init; }
    public int? ConsecutiveLocalOriginFailures { get; init; }
    public bool SplitExternalLocalOriginErrors { get; init; }

    /// <summary><c>minHealthPercent</c>; 0 when unset (istiod then disables Envoy's panic threshold).</summary>
    public int MinHealthPercent { get; init; }
}

/// <summary>The four sections of a traffic policy that port-level settings and subsets override.</summary>
internal abstract record PolicySections
{
    public LoadBalancerSettings? LoadBalancer { get; init; }
    public ConnectionPoolSettings? ConnectionPool { get; init; }
    public OutlierDetection? OutlierDetection { get; init; }
    public string? TlsMode { get; init; }
}

/// <summary><c>trafficPolicy.portLevelSettings[]</c>: replaces the whole policy for one port.</summary>
internal sealed record PortTrafficPolicy(uint Port) : PolicySections;

internal sealed record TrafficPolicy : PolicySections
{
    public IReadOnlyList<PortTrafficPolicy> PortLevelSettings { get; init; } = [];
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
    public StringMatch? Scheme { get; init; }
    public bool IgnoreUriCase { get; init; }
    public uint? Port { get; init; }

    /// <summary><c>statPrefix</c>: written to the route's <c>stat_prefix</c>.</summary>
    public string? StatPrefix { get; init; }

    /// <summary><c>sourceLabels</c>: the route applies only to clients whose node LABELS contain all of these.</summary>
    public IReadOnlyDictionary<string, string> SourceLabels { get; init; } = Empty.Labels;

    /// <summary><c>sourceNamespace</c>: the route applies only to clients in this namespace.</summary>
    public string? SourceNamespace { get; init; }

    /// <summary><c>gateways</c> of the match: when set, the match applies to sidecars only if it lists <c>mesh</c>.</summary>
    public IReadOnlyList<string> Gateways { get; init; } = [];
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

internal sealed record HttpRetry(int Attempts, TimeSpan? PerTryTimeout, string? RetryOn)
{
    public bool? RetryIgnorePreviousHosts { get; init; }

    /// <summary><c>retryRemoteLocalities</c>: parsed, not translated.</summary>
    public bool? RetryRemoteLocalities { get; init; }

    public TimeSpan? Backoff { get; init; }
}

/// <summary>
/// <c>fault.delay</c>: <see cref="Percentage"/> when <c>percentage.value</c> is written, else the deprecated integer
/// <see cref="Percent"/> (0 when absent: no request is delayed), as istiod translates them.
/// </summary>
internal sealed record FaultDelay(double? Percentage, uint Percent, TimeSpan FixedDelay);

/// <summary><c>fault.abort</c>: no <see cref="Percentage"/> means no request is aborted (Envoy's default of 0).</summary>
internal sealed record FaultAbort(double? Percentage, uint? HttpStatus, int? GrpcStatus);

internal sealed record HttpFault(FaultDelay? Delay, FaultAbort? Abort);

internal enum RedirectPortKind { None, Port, FromProtocolDefault, FromRequestPort }

internal sealed record HttpRedirect(string? Uri, string? Authority, uint RedirectCode)
{
    public string? Scheme { get; init; }
    public RedirectPortKind PortKind { get; init; }
    public uint Port { get; init; }

    /// <summary><c>prefixRewrite</c>: the matched prefix is replaced in the redirect's path.</summary>
    public string? PrefixRewrite { get; init; }

    /// <summary>Whether Envoy knows <see cref="RedirectCode"/> (301, 302, 303, 307, 308; 0 is 301).</summary>
    public bool IsSupportedCode => RedirectCode is 301 or 302 or 303 or 307 or 308;
}

internal sealed record RegexRewrite(string Match, string Rewrite);

internal sealed record HttpRewrite(string? Uri, string? Authority)
{
    public RegexRewrite? UriRegexRewrite { get; init; }
}

internal sealed record HttpDirectResponse(uint Status, string? Body);

internal sealed record HttpMirror(Destination Destination, double? Percentage);

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
    public HttpDirectResponse? DirectResponse { get; init; }
    public Headers? Headers { get; init; }
    public Destination? Mirror { get; init; }
    public double? MirrorPercentage { get; init; }

    /// <summary>The deprecated integer <c>mirrorPercent</c>; <see cref="MirrorPercentage"/> wins when both are set.</summary>
    public uint? MirrorPercent { get; init; }
    public IReadOnlyList<HttpMirror> Mirrors { get; init; } = [];
    public required SourceLocation Source { get; init; }
}

internal sealed record VirtualService : IstioResource
{
    /// <summary>The reserved gateway name that stands for all sidecars (here: every client of the mesh).</summary>
    public const string MeshGateway = "mesh";

    public required IReadOnlyList<string> Hosts { get; init; }

    /// <summary><c>spec.gateways</c>: empty means the mesh only; otherwise the VirtualService applies to the mesh only if it lists <c>mesh</c>.</summary>
    public IReadOnlyList<string> Gateways { get; init; } = [];

    /// <summary>Whether istiod would apply this VirtualService to sidecars: no gateways, or <c>mesh</c> among them.</summary>
    public bool AppliesToMesh => Gateways.Count == 0 || Gateways.Contains(MeshGateway, StringComparer.Ordinal);
    public IReadOnlyList<HttpRoute> Http { get; init; } = [];
}

internal static class Empty
{
    public static readonly IReadOnlyDictionary<string, uint> Ports = new Dictionary<string, uint>();
    public static readonly IReadOnlyDictionary<string, string> Labels = new Dictionary<string, string>();
    public static readonly IReadOnlyDictionary<string, StringMatch> Matches = new Dictionary<string, StringMatch>();
}

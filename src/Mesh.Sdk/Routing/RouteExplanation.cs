using System.Globalization;
using System.Text;

namespace Mesh.Sdk.Routing;

/// <summary>What the mesh does with an explained request.</summary>
public enum RouteExplanationOutcome
{
    /// <summary>The host is not in the mesh (an IP literal, or the control plane has no listener for it): the request passes through untouched.</summary>
    NotInMesh,

    /// <summary>The host's listener has no route configuration in force yet (or it was rejected): answered 503.</summary>
    NoRouteConfiguration,

    /// <summary>No virtual host's domains match the authority: answered 404 (Envoy's <c>NR</c>).</summary>
    NoVirtualHost,

    /// <summary>A virtual host matched but none of its routes did: answered 404 (<c>NR</c>).</summary>
    NoRoute,

    /// <summary>A route matched and forwards to a cluster.</summary>
    Forward,

    /// <summary>A route matched and answers with a redirect.</summary>
    Redirect,

    /// <summary>A route matched and answers locally (<c>direct_response</c>).</summary>
    DirectResponse,
}

/// <summary>One route tried, in order, and why it did or did not match.</summary>
/// <param name="Index">The route's position in its virtual host.</param>
/// <param name="Name">The route's name, or <c>routes[i]</c> when it has none.</param>
/// <param name="Matched">Whether this route matched (only the last route listed can).</param>
/// <param name="Reason">
/// For a route that did not match, the first condition that failed and what the request had instead, for example
/// <c>header 'x-tier' exact "gold": header missing</c>; <see langword="null"/> for the matched route.
/// </param>
public sealed record RouteCheck(int Index, string Name, bool Matched, string? Reason)
{
    /// <inheritdoc />
    public override string ToString()
        => Matched ? $"routes[{Index}] '{Name}': matched" : $"routes[{Index}] '{Name}': no match: {Reason}";
}

/// <summary>One of a route's weighted clusters.</summary>
/// <param name="Cluster">The cluster name.</param>
/// <param name="Weight">Its weight as configured.</param>
/// <param name="Percent">Its share of requests: weight over the total, in percent.</param>
public sealed record WeightedClusterShare(string Cluster, uint Weight, double Percent);

/// <summary>The retry policy in force for a route.</summary>
/// <param name="RetryOn">The <c>retry_on</c> conditions, as Envoy spells them (<c>5xx</c>, <c>connect-failure</c>, …).</param>
/// <param name="NumRetries">Retries after the first attempt.</param>
/// <param name="PerTryTimeout">The timeout of each attempt; <see langword="null"/> when unset.</param>
/// <param name="BaseInterval">The back-off base interval.</param>
/// <param name="MaxInterval">The back-off upper bound.</param>
/// <param name="RetriableStatusCodes">The statuses retried under <c>retriable-status-codes</c>.</param>
/// <param name="RetryOnDifferentHost">Whether a retry avoids the hosts already tried (<c>previous_hosts</c>).</param>
/// <param name="HostSelectionRetryMaxAttempts">Host selection attempts per retry.</param>
public sealed record RetryExplanation(
    IReadOnlyList<string> RetryOn,
    uint NumRetries,
    TimeSpan? PerTryTimeout,
    TimeSpan BaseInterval,
    TimeSpan MaxInterval,
    IReadOnlyList<int> RetriableStatusCodes,
    bool RetryOnDifferentHost,
    long HostSelectionRetryMaxAttempts)
{
    /// <inheritdoc />
    public override string ToString()
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{NumRetries} retries on {string.Join(",", RetryOn)}");
        if (RetriableStatusCodes.Count > 0)
        {
            text.Append(CultureInfo.InvariantCulture, $" (statuses {string.Join(",", RetriableStatusCodes)})");
        }

        text.Append(", per-try timeout ").Append(PerTryTimeout is { } perTry ? RouteExplanation.Format(perTry) : "none");
        text.Append(CultureInfo.InvariantCulture, $", back-off {RouteExplanation.Format(BaseInterval)}..{RouteExplanation.Format(MaxInterval)}");
        if (RetryOnDifferentHost)
        {
            text.Append(", other hosts first");
        }

        return text.ToString();
    }
}

/// <summary>The fault injection configured for the chosen target.</summary>
/// <param name="Delay">The fixed delay; <see langword="null"/> when none (or when it comes from a request header).</param>
/// <param name="DelayFromHeader">Whether the delay is taken from <c>x-envoy-fault-delay-request</c>.</param>
/// <param name="DelayPercent">The share of requests delayed, in percent.</param>
/// <param name="AbortHttpStatus">The HTTP status aborted requests get; <see langword="null"/> when none.</param>
/// <param name="AbortGrpcStatus">The gRPC status aborted requests get; <see langword="null"/> when none.</param>
/// <param name="AbortFromHeader">Whether the abort status is taken from <c>x-envoy-fault-abort-request</c>.</param>
/// <param name="AbortPercent">The share of requests aborted, in percent.</param>
/// <param name="UpstreamCluster">When set, faults apply only to requests to this cluster.</param>
/// <param name="Headers">Conditions on request headers that must all hold for a fault to apply.</param>
/// <param name="MaxActiveFaults">The most faults active at once; <see langword="null"/> for no limit.</param>
public sealed record FaultExplanation(
    TimeSpan? Delay,
    bool DelayFromHeader,
    double DelayPercent,
    int? AbortHttpStatus,
    int? AbortGrpcStatus,
    bool AbortFromHeader,
    double AbortPercent,
    string? UpstreamCluster,
    IReadOnlyList<string> Headers,
    uint? MaxActiveFaults)
{
    /// <inheritdoc />
    public override string ToString()
    {
        var parts = new List<string>(2);
        if (Delay is { } delay)
        {
            parts.Add($"delay {RouteExplanation.Format(delay)} for {RouteExplanation.Format(DelayPercent)} of requests");
        }
        else if (DelayFromHeader)
        {
            parts.Add($"delay from header x-envoy-fault-delay-request for up to {RouteExplanation.Format(DelayPercent)}");
        }

        if (AbortHttpStatus is { } http)
        {
            parts.Add($"abort with HTTP {http.ToString(CultureInfo.InvariantCulture)} for {RouteExplanation.Format(AbortPercent)} of requests");
        }
        else if (AbortGrpcStatus is { } grpc)
        {
            parts.Add($"abort with gRPC status {grpc.ToString(CultureInfo.InvariantCulture)} for {RouteExplanation.Format(AbortPercent)} of requests");
        }
        else if (AbortFromHeader)
        {
            parts.Add($"abort from header x-envoy-fault-abort-request for up to {RouteExplanation.Format(AbortPercent)}");
        }

        var text = parts.Count == 0 ? "none configured" : string.Join("; ", parts);
        if (UpstreamCluster is not null)
        {
            text += $" (only to cluster '{UpstreamCluster}')";
        }

        if (Headers.Count > 0)
        {
            text += $" (when {string.Join(" and ", Headers)})";
        }

        return text;
    }
}

/// <summary>A request mirror in force.</summary>
/// <param name="Cluster">The shadow cluster.</param>
/// <param name="Percent">The share of requests mirrored, in percent.</param>
public sealed record MirrorExplanation(string Cluster, double Percent)
{
    /// <inheritdoc />
    public override string ToString() => $"{Cluster} ({RouteExplanation.Format(Percent)})";
}

/// <summary>A header operation applied to the request sent upstream or to the response.</summary>
/// <param name="Operation">
/// <c>append</c> (<c>APPEND_IF_EXISTS_OR_ADD</c>), <c>add-if-absent</c>, <c>set</c> (<c>OVERWRITE_IF_EXISTS_OR_ADD</c>),
/// <c>set-if-exists</c> or <c>remove</c>.
/// </param>
/// <param name="Name">The lower-case header name.</param>
/// <param name="Value">The value; empty for <c>remove</c>.</param>
public sealed record HeaderOperation(string Operation, string Name, string Value)
{
    /// <inheritdoc />
    public override string ToString() => Operation == "remove" ? $"remove {Name}" : $"{Operation} {Name}: {Value}";
}

/// <summary>
/// What the mesh does with one request, as an operator reads it: the listener and virtual host, every route tried
/// with the first condition that failed, the route that matched, the cluster (and weights), and the policies in
/// force. Built by <see cref="MeshRouteExplainer"/> with the same match code the request path runs.
/// </summary>
public sealed record RouteExplanation
{
    /// <summary>The request's method.</summary>
    public required string Method { get; init; }

    /// <summary>The authority routed by (<c>host[:port]</c>).</summary>
    public required string Authority { get; init; }

    /// <summary>The <c>:path</c> routed by.</summary>
    public required string PathAndQuery { get; init; }

    /// <summary>What the mesh does.</summary>
    public required RouteExplanationOutcome Outcome { get; init; }

    /// <summary>The listener the host maps to; <see langword="null"/> when the host is not in the mesh.</summary>
    public string? Listener { get; init; }

    /// <summary>The route configuration in force for the listener.</summary>
    public string? RouteConfiguration { get; init; }

    /// <summary>Why the request is not routed, for <see cref="RouteExplanationOutcome.NotInMesh"/> and <see cref="RouteExplanationOutcome.NoRouteConfiguration"/>.</summary>
    public string? Detail { get; init; }

    /// <summary>The virtual host chosen by authority.</summary>
    public string? VirtualHost { get; init; }

    /// <summary>The domains of <see cref="VirtualHost"/>, or, when none matched, of every virtual host of the configuration.</summary>
    public IReadOnlyList<string> Domains { get; init; } = [];

    /// <summary>The routes tried in order, up to and including the one that matched.</summary>
    public IReadOnlyList<RouteCheck> Routes { get; init; } = [];

    /// <summary>The matched route's name.</summary>
    public string? Route { get; init; }

    /// <summary>The matched route's position in its virtual host.</summary>
    public int? RouteIndex { get; init; }

    /// <summary>
    /// The cluster the request goes to. For weighted clusters, the one picked for this explanation: by the
    /// route's weight header when the request carries it, else by a random draw as a request would (see
    /// <see cref="ClusterPickedAtRandom"/>).
    /// </summary>
    public string? Cluster { get; init; }

    /// <summary>Whether <see cref="Cluster"/> was drawn at random among <see cref="WeightedClusters"/> (another request may go elsewhere).</summary>
    public bool ClusterPickedAtRandom { get; init; }

    /// <summary>The route's weighted clusters with their shares; empty for a single cluster.</summary>
    public IReadOnlyList<WeightedClusterShare> WeightedClusters { get; init; } = [];

    /// <summary>The status answered locally: 404 without a route, the redirect or direct-response status, 503 without a route configuration.</summary>
    public int? Status { get; init; }

    /// <summary>The <c>location</c> of a redirect.</summary>
    public string? RedirectLocation { get; init; }

    /// <summary>The body of a direct response, as UTF-8 text.</summary>
    public string? DirectResponseBody { get; init; }

    /// <summary>The <c>:path</c> sent upstream (after <c>prefix_rewrite</c> / <c>regex_rewrite</c>).</summary>
    public string? UpstreamPathAndQuery { get; init; }

    /// <summary>The authority sent upstream when rewritten: a literal, or <c>(endpoint address)</c> for <c>auto_host_rewrite</c>; <see langword="null"/> when kept.</summary>
    public string? UpstreamAuthority { get; init; }

    /// <summary>The route timeout; <see langword="null"/> when disabled (<c>0s</c>, istiod's default).</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>The stream idle timeout; <see langword="null"/> when unset.</summary>
    public TimeSpan? IdleTimeout { get; init; }

    /// <summary><c>max_stream_duration</c> (what gRPC clients use as the deadline); <see langword="null"/> when unset.</summary>
    public TimeSpan? MaxStreamDuration { get; init; }

    /// <summary>The retry policy; <see langword="null"/> for no retries.</summary>
    public RetryExplanation? Retry { get; init; }

    /// <summary>The fault injection (a delay or an abort) configured for the chosen cluster; <see langword="null"/> for none.</summary>
    public FaultExplanation? Fault { get; init; }

    /// <summary>Request mirrors.</summary>
    public IReadOnlyList<MirrorExplanation> Mirrors { get; init; } = [];

    /// <summary>Consistent-hash key policies in order, for example <c>header 'x-user'</c>.</summary>
    public IReadOnlyList<string> HashPolicies { get; init; } = [];

    /// <summary>Header operations on the request sent upstream, in the order applied.</summary>
    public IReadOnlyList<HeaderOperation> RequestHeaderOperations { get; init; } = [];

    /// <summary>Header operations on the response, in the order applied.</summary>
    public IReadOnlyList<HeaderOperation> ResponseHeaderOperations { get; init; } = [];

    /// <summary>Whether a route matched.</summary>
    public bool IsMatch => Outcome is RouteExplanationOutcome.Forward or RouteExplanationOutcome.Redirect or RouteExplanationOutcome.DirectResponse;

    /// <summary>The explanation as an operator reads it, one fact a line.</summary>
    public override string ToString()
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{Method} {Authority}{PathAndQuery}\n");
        if (Listener is not null)
        {
            text.Append(CultureInfo.InvariantCulture, $"  listener: {Listener}\n");
        }

        if (RouteConfiguration is not null)
        {
            text.Append(CultureInfo.InvariantCulture, $"  route configuration: {RouteConfiguration}\n");
        }

        switch (Outcome)
        {
            case RouteExplanationOutcome.NotInMesh:
                text.Append(CultureInfo.InvariantCulture, $"  not in the mesh: {Detail}\n");
                return text.ToString();
            case RouteExplanationOutcome.NoRouteConfiguration:
                text.Append(CultureInfo.InvariantCulture, $"  => 503: {Detail}\n");
                return text.ToString();
            case RouteExplanationOutcome.NoVirtualHost:
                text.Append(CultureInfo.InvariantCulture, $"  no virtual host matches authority '{Authority}' (domains: {string.Join(", ", Domains)})\n");
                text.Append("  => 404 (no route, NR)\n");
                return text.ToString();
        }

        text.Append(CultureInfo.InvariantCulture, $"  virtual host: {VirtualHost} (domains: {string.Join(", ", Domains)})\n");
        foreach (var route in Routes)
        {
            text.Append("  ").Append(route.ToString()).Append('\n');
        }

        switch (Outcome)
        {
            case RouteExplanationOutcome.NoRoute:
                text.Append("  => 404 (no route, NR)\n");
                return text.ToString();
            case RouteExplanationOutcome.Redirect:
                text.Append(CultureInfo.InvariantCulture, $"  => redirect {Status}: {RedirectLocation}\n");
                break;
            case RouteExplanationOutcome.DirectResponse:
                text.Append(CultureInfo.InvariantCulture, $"  => direct response {Status}");
                text.Append(string.IsNullOrEmpty(DirectResponseBody) ? "\n" : $": \"{DirectResponseBody}\"\n");
                break;
            default:
                text.Append(CultureInfo.InvariantCulture, $"  => cluster: {Cluster}{(ClusterPickedAtRandom ? " (picked at random by weight for this explanation)" : string.Empty)}\n");
                if (WeightedClusters.Count > 0)
                {
                    text.Append("  weights: ");
                    for (var i = 0; i < WeightedClusters.Count; i++)
                    {
                        var share = WeightedClusters[i];
                        text.Append(i == 0 ? string.Empty : ", ")
                            .Append(CultureInfo.InvariantCulture, $"{share.Cluster} {share.Weight} ({Format(share.Percent)})");
                    }

                    text.Append('\n');
                }

                if (UpstreamPathAndQuery is not null && UpstreamPathAndQuery != PathAndQuery)
                {
                    text.Append(CultureInfo.InvariantCulture, $"  path sent: {UpstreamPathAndQuery}\n");
                }

                if (UpstreamAuthority is not null)
                {
                    text.Append(CultureInfo.InvariantCulture, $"  authority sent: {UpstreamAuthority}\n");
                }

                text.Append("  timeout: ").Append(Timeout is { } timeout ? Format(timeout) : "none").Append('\n');
                if (IdleTimeout is { } idle)
                {
                    text.Append(CultureInfo.InvariantCulture, $"  idle timeout: {Format(idle)}\n");
                }

                if (MaxStreamDuration is { } max)
                {
                    text.Append(CultureInfo.InvariantCulture, $"  max stream duration: {Format(max)}\n");
                }

                text.Append("  retries: ").Append(Retry?.ToString() ?? "none").Append('\n');
                if (Fault is not null)
                {
                    text.Append(CultureInfo.InvariantCulture, $"  fault: {Fault}\n");
                }

                if (Mirrors.Count > 0)
                {
                    text.Append(CultureInfo.InvariantCulture, $"  mirror: {string.Join(", ", Mirrors)}\n");
                }

                if (HashPolicies.Count > 0)
                {
                    text.Append(CultureInfo.InvariantCulture, $"  hash: {string.Join(", ", HashPolicies)}\n");
                }

                break;
        }

        if (RequestHeaderOperations.Count > 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"  request headers: {string.Join("; ", RequestHeaderOperations)}\n");
        }

        if (ResponseHeaderOperations.Count > 0)
        {
            text.Append(CultureInfo.InvariantCulture, $"  response headers: {string.Join("; ", ResponseHeaderOperations)}\n");
        }

        return text.ToString();
    }

    internal static string Format(TimeSpan value)
    {
        if (value == System.Threading.Timeout.InfiniteTimeSpan)
        {
            return "infinite";
        }

        if (value.Ticks % TimeSpan.TicksPerSecond == 0)
        {
            return ((long)value.TotalSeconds).ToString(CultureInfo.InvariantCulture) + "s";
        }

        return value.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture) + "ms";
    }

    internal static string Format(double percent) => percent.ToString("0.####", CultureInfo.InvariantCulture) + " %";
}

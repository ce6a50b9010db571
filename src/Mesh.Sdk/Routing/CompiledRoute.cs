using System.Text.RegularExpressions;
using Mesh.Xds.Re2;

namespace Mesh.Sdk.Routing;

/// <summary>What a matched route does.</summary>
internal enum RouteActionKind
{
    /// <summary>Forward to a cluster (single or weighted).</summary>
    Forward,

    /// <summary>Answer with a redirect.</summary>
    Redirect,

    /// <summary>Answer locally with a fixed status and body.</summary>
    DirectResponse,
}

/// <summary>A condition of a route's match, in the order they are tested.</summary>
internal enum RouteCondition
{
    /// <summary>No condition failed: the route matches.</summary>
    None,

    /// <summary>The path specifier (<c>prefix</c>, <c>path</c>, <c>safe_regex</c>, <c>path_separated_prefix</c>).</summary>
    Path,

    /// <summary><c>grpc</c>: the request is not gRPC.</summary>
    Grpc,

    /// <summary>One of <c>headers</c>.</summary>
    Header,

    /// <summary>One of <c>query_parameters</c>.</summary>
    QueryParameter,

    /// <summary><c>runtime_fraction</c>: this request was not sampled.</summary>
    RuntimeFraction,
}

/// <summary>
/// One route of a virtual host, compiled: its matcher and everything its action needs, with every level's
/// defaults already resolved (retry policy, mirror policies, header mutations, fault policy).
/// </summary>
internal sealed class CompiledRoute
{
    /// <summary>Envoy's route timeout when <c>timeout</c> is unset.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(15);

    /// <summary>The route's <c>name</c>, or <c>routes[i]</c> when it has none.</summary>
    public required string Name { get; init; }

    /// <summary>The position of the route in its virtual host.</summary>
    public required int Index { get; init; }

    /// <summary>The name of the virtual host the route belongs to.</summary>
    public required string VirtualHostName { get; init; }

    /// <summary>The route's <c>decorator.operation</c> (istiod's span name, <c>web.default.svc.cluster.local:9080/*</c>), or <see langword="null"/>.</summary>
    public string? Operation { get; init; }

    /// <summary>The path matcher.</summary>
    public required PathMatch Path { get; init; }

    /// <summary>Header matchers; all must match.</summary>
    public HeaderMatch[] Headers { get; init; } = [];

    /// <summary>Query parameter matchers; all must match.</summary>
    public QueryParameterMatch[] QueryParameters { get; init; } = [];

    /// <summary>The sampled share of requests the route matches (<c>runtime_fraction</c>), when set.</summary>
    public Fraction? RuntimeFraction { get; init; }

    /// <summary>Whether only gRPC requests (<c>content-type: application/grpc*</c>) match.</summary>
    public bool GrpcOnly { get; init; }

    /// <summary>What the route does.</summary>
    public required RouteActionKind Action { get; init; }

    /// <summary>Where requests go: one target for a single cluster, or the weighted clusters in order.</summary>
    public required RouteTarget[] Targets { get; init; }

    /// <summary>The sum of all weights.</summary>
    public ulong TotalWeight { get; init; } = 1;

    /// <summary>A header whose unsigned integer value picks the weighted cluster instead of a random draw.</summary>
    public string? WeightHeader { get; init; }

    /// <summary>Replacement for the matched prefix when forwarding (<c>prefix_rewrite</c>).</summary>
    public string? PrefixRewrite { get; init; }

    /// <summary>Regex applied to the path when forwarding (<c>regex_rewrite</c>).</summary>
    public Regex? RegexRewrite { get; init; }

    /// <summary>The .NET replacement string for <see cref="RegexRewrite"/>.</summary>
    public string? RegexSubstitution { get; init; }

    /// <summary>Whether the upstream authority becomes the chosen endpoint's address (<c>auto_host_rewrite</c>).</summary>
    public bool AutoHostRewrite { get; init; }

    /// <summary>Whether <c>x-forwarded-host</c> carries the original authority when it is rewritten.</summary>
    public bool AppendXForwardedHost { get; init; }

    /// <summary>The whole-request timeout; <see cref="System.Threading.Timeout.InfiniteTimeSpan"/> when disabled (<c>0s</c>). <value>Default 15 s.</value></summary>
    public TimeSpan Timeout { get; init; } = DefaultTimeout;

    /// <summary>The stream idle timeout; <see langword="null"/> when unset, infinite when <c>0s</c>.</summary>
    public TimeSpan? IdleTimeout { get; init; }

    /// <summary><c>max_stream_duration.max_stream_duration</c>; <see langword="null"/> when unset, infinite when <c>0s</c>.</summary>
    public TimeSpan? MaxStreamDuration { get; init; }

    /// <summary><c>max_stream_duration.grpc_timeout_header_max</c>: cap on the client's <c>grpc-timeout</c>; infinite when <c>0s</c>.</summary>
    public TimeSpan? GrpcTimeoutHeaderMax { get; init; }

    /// <summary><c>max_stream_duration.grpc_timeout_header_offset</c>: subtracted from the client's <c>grpc-timeout</c>.</summary>
    public TimeSpan? GrpcTimeoutHeaderOffset { get; init; }

    /// <summary>The retry policy (route's, else the virtual host's), or <see langword="null"/> for no retries.</summary>
    public RetryPolicy? RetryPolicy { get; init; }

    /// <summary>Consistent-hash key policies, in order.</summary>
    public HashPolicy[] HashPolicies { get; init; } = [];

    /// <summary>Mirror policies (route's, else the virtual host's, else the route configuration's).</summary>
    public MirrorPolicy[] MirrorPolicies { get; init; } = [];

    /// <summary>The status to answer when the chosen cluster is unknown: 503 (default), 404 or 500.</summary>
    public int ClusterNotFoundStatus { get; init; } = 503;

    /// <summary>Whether requests carry <c>x-envoy-attempt-count</c>.</summary>
    public bool IncludeRequestAttemptCount { get; init; }

    /// <summary>Whether responses carry <c>x-envoy-attempt-count</c>.</summary>
    public bool IncludeAttemptCountInResponse { get; init; }

    /// <summary>The redirect, for <see cref="RouteActionKind.Redirect"/>.</summary>
    public RedirectPolicy? Redirect { get; init; }

    /// <summary>The local response, for <see cref="RouteActionKind.DirectResponse"/>.</summary>
    public DirectResponse? DirectResponse { get; init; }

    /// <summary>Whether the route matches; <paramref name="random"/> is drawn only for <c>runtime_fraction</c>.</summary>
    public bool Matches<TRequest>(in TRequest request, ReadOnlySpan<char> pathAndQuery, ReadOnlySpan<char> path, ReadOnlySpan<char> query, Random random)
        where TRequest : IRouteRequest
        => FirstFailedCondition(in request, pathAndQuery, path, query, random, out _) == RouteCondition.None;

    /// <summary>
    /// Tests the route's conditions in Envoy's order and returns the first that fails, or
    /// <see cref="RouteCondition.None"/> when the route matches. The request path (<see cref="Matches{TRequest}"/>)
    /// and the route explainer both call this, so they cannot disagree. Allocates nothing.
    /// </summary>
    /// <param name="request">The request.</param>
    /// <param name="pathAndQuery">The <c>:path</c>.</param>
    /// <param name="path">The <c>:path</c> without query and fragment.</param>
    /// <param name="query">The query string without <c>?</c>.</param>
    /// <param name="random">Drawn only for <c>runtime_fraction</c>.</param>
    /// <param name="index">For <see cref="RouteCondition.Header"/> and <see cref="RouteCondition.QueryParameter"/>, the failing matcher's index.</param>
    public RouteCondition FirstFailedCondition<TRequest>(in TRequest request, ReadOnlySpan<char> pathAndQuery, ReadOnlySpan<char> path, ReadOnlySpan<char> query, Random random, out int index)
        where TRequest : IRouteRequest
    {
        index = 0;
        if (!Path.Matches(pathAndQuery, path))
        {
            return RouteCondition.Path;
        }

        if (GrpcOnly && !IsGrpcRequest(in request, out _))
        {
            return RouteCondition.Grpc;
        }

        for (var i = 0; i < Headers.Length; i++)
        {
            if (!Headers[i].Matches(in request))
            {
                index = i;
                return RouteCondition.Header;
            }
        }

        for (var i = 0; i < QueryParameters.Length; i++)
        {
            if (!QueryParameters[i].Matches(query))
            {
                index = i;
                return RouteCondition.QueryParameter;
            }
        }

        return RuntimeFraction is not { } fraction || fraction.Sample(random) ? RouteCondition.None : RouteCondition.RuntimeFraction;
    }

    /// <summary>Whether the request is gRPC (<c>content-type</c> starting with <c>application/grpc</c>), as <c>grpc: {}</c> tests.</summary>
    public static bool IsGrpcRequest<TRequest>(in TRequest request, out string? contentType)
        where TRequest : IRouteRequest
        => request.TryGetHeader("content-type", out contentType) && contentType.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase);

    /// <summary>Picks the target: the only one, or a weighted choice.</summary>
    public RouteTarget PickTarget<TRequest>(in TRequest request, Random random)
        where TRequest : IRouteRequest
    {
        var targets = Targets;
        if (targets.Length == 1)
        {
            return targets[0];
        }

        ulong value;
        if (WeightHeader is not null && request.TryGetHeader(WeightHeader, out var header)
            && ulong.TryParse(header, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var fromHeader))
        {
            value = fromHeader % TotalWeight;
        }
        else
        {
            value = (ulong)random.NextInt64((long)TotalWeight);
        }

        return PickByValue(value);
    }

    /// <summary>The target whose weight slice contains <paramref name="value"/> (0 ≤ value &lt; total weight).</summary>
    public RouteTarget PickByValue(ulong value)
    {
        var targets = Targets;
        for (var i = 0; i < targets.Length; i++)
        {
            if (value < targets[i].CumulativeWeight)
            {
                return targets[i];
            }
        }

        return targets[^1];
    }

    /// <summary>
    /// The <c>:path</c> to send upstream after <c>prefix_rewrite</c> or <c>regex_rewrite</c>; the same string when
    /// the route rewrites nothing.
    /// </summary>
    public string RewritePath(string pathAndQuery)
    {
        if (PrefixRewrite is null && RegexRewrite is null)
        {
            return pathAndQuery;
        }

        var q = QueryStart(pathAndQuery);
        var path = pathAndQuery.AsSpan(0, q);
        var query = pathAndQuery.AsSpan(q);
        if (RegexRewrite is not null)
        {
            return string.Concat(Re2Regex.GlobalReplace(RegexRewrite, path.ToString(), RegexSubstitution!), query);
        }

        return ReplaceMatched(pathAndQuery, PrefixRewrite!);
    }

    /// <summary>The <c>location</c> of a redirect route's answer.</summary>
    public string BuildRedirectLocation<TRequest>(in TRequest request)
        where TRequest : IRouteRequest
    {
        var redirect = Redirect ?? throw new InvalidOperationException($"Route '{Name}' is not a redirect.");
        var pathAndQuery = request.PathAndQuery;
        var q = QueryStart(pathAndQuery);
        string path = pathAndQuery[..q];
        var query = pathAndQuery[q..];
        if (redirect.Path is not null)
        {
            var pq = redirect.Path.IndexOf('?', StringComparison.Ordinal);
            if (pq >= 0)
            {
                path = redirect.Path[..pq];
                query = redirect.Path[pq..];
            }
            else
            {
                path = redirect.Path;
            }
        }
        else if (redirect.PrefixRewrite is not null)
        {
            var rewritten = ReplaceMatched(pathAndQuery, redirect.PrefixRewrite);
            var rq = QueryStart(rewritten);
            path = rewritten[..rq];
            query = rewritten[rq..];
        }
        else if (redirect.RegexRewrite is not null)
        {
            path = Re2Regex.GlobalReplace(redirect.RegexRewrite, path, redirect.RegexSubstitution!);
        }

        if (redirect.StripQuery && !(redirect.Path?.Contains('?', StringComparison.Ordinal) ?? false))
        {
            query = string.Empty;
        }

        var scheme = redirect.Scheme ?? request.Scheme;
        string host;
        if (redirect.Host is not null)
        {
            host = redirect.Port != 0 ? RouteHost.WithoutPort(redirect.Host).ToString() : redirect.Host;
        }
        else
        {
            var authority = request.Authority;
            var portIndex = RouteHost.PortIndex(authority);
            var removePort = redirect.Port != 0;
            if (portIndex >= 0 && !string.Equals(scheme, request.Scheme, StringComparison.OrdinalIgnoreCase))
            {
                // Changing scheme drops the old scheme's default port, as Envoy does.
                var port = authority.AsSpan(portIndex + 1);
                removePort |= (request.Scheme.Equals("http", StringComparison.OrdinalIgnoreCase) && port.SequenceEqual("80"))
                    || (request.Scheme.Equals("https", StringComparison.OrdinalIgnoreCase) && port.SequenceEqual("443"));
            }

            host = removePort && portIndex >= 0 ? authority[..portIndex] : authority;
        }

        var portSuffix = redirect.Port != 0 ? ":" + redirect.Port.ToString(System.Globalization.CultureInfo.InvariantCulture) : string.Empty;

        // Envoy puts a '/' before a final path that lacks one (a path_redirect "example.org", a prefix_rewrite to ""),
        // so the Location is never "http://hostexample.org".
        var slash = path.StartsWith('/') ? string.Empty : "/";
        return string.Concat(scheme, "://", host, portSuffix, slash, path, query);
    }

    private string ReplaceMatched(string pathAndQuery, string replacement)
    {
        var q = QueryStart(pathAndQuery);
        switch (Path.Kind)
        {
            case PathMatchKind.Prefix:
                // Envoy matches (and so rewrites) the prefix against the full :path.
                return string.Concat(replacement, pathAndQuery.AsSpan(Math.Min(Path.Value.Length, pathAndQuery.Length)));
            case PathMatchKind.SeparatedPrefix:
                return string.Concat(replacement, pathAndQuery.AsSpan(Math.Min(Path.Value.Length, q)));
            default:
                // Exact and regex routes rewrite the whole path and keep the query.
                return string.Concat(replacement, pathAndQuery.AsSpan(q));
        }
    }

    private static int QueryStart(string pathAndQuery)
    {
        var q = pathAndQuery.AsSpan().IndexOfAny('?', '#');
        return q < 0 ? pathAndQuery.Length : q;
    }
}

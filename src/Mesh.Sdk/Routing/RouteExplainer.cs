using System.Globalization;
using System.Text;

namespace Mesh.Sdk.Routing;

/// <summary>
/// Explains how a <see cref="CompiledRouteTable"/> routes a request, with the very predicates the request path runs
/// (<see cref="CompiledRouteTable.FindVirtualHost"/>, <see cref="CompiledRoute.FirstFailedCondition{TRequest}"/>,
/// <see cref="CompiledRoute.PickTarget{TRequest}"/>): only the wording of a failed condition is written here, never
/// a second matcher. Diagnostics only: it allocates freely.
/// </summary>
internal static class RouteExplainer
{
    /// <summary>Explains <paramref name="request"/> against <paramref name="table"/>, the table of <paramref name="listener"/>.</summary>
    public static RouteExplanation Explain<TRequest>(CompiledRouteTable table, string? listener, in TRequest request)
        where TRequest : IRouteRequest
    {
        ArgumentNullException.ThrowIfNull(table);
        var explanation = new RouteExplanation
        {
            Method = request.Method,
            Authority = request.Authority,
            PathAndQuery = request.PathAndQuery,
            Outcome = RouteExplanationOutcome.NoVirtualHost,
            Listener = listener,
            RouteConfiguration = table.Name,
        };

        var virtualHost = table.FindVirtualHost(request.Authority);
        if (virtualHost is null)
        {
            var domains = new List<string>();
            foreach (var host in table.VirtualHosts)
            {
                domains.AddRange(host.Domains);
            }

            return explanation with { Domains = domains, Status = RouteMatchResult.NoRouteStatus };
        }

        var pathAndQuery = request.PathAndQuery.AsSpan();
        CompiledRouteTable.SplitPath(pathAndQuery, out var path, out var query);
        var checks = new List<RouteCheck>();
        explanation = explanation with { VirtualHost = virtualHost.Name, Domains = virtualHost.Domains, Routes = checks };
        foreach (var route in virtualHost.Routes)
        {
            var failed = route.FirstFailedCondition(in request, pathAndQuery, path, query, table.Random, out var index);
            if (failed != RouteCondition.None)
            {
                checks.Add(new RouteCheck(route.Index, route.Name, false, Describe(route, failed, index, in request, path, query)));
                continue;
            }

            checks.Add(new RouteCheck(route.Index, route.Name, true, null));
            return Matched(explanation, table, route, in request);
        }

        return explanation with { Outcome = RouteExplanationOutcome.NoRoute, Status = RouteMatchResult.NoRouteStatus };
    }

    private static RouteExplanation Matched<TRequest>(RouteExplanation explanation, CompiledRouteTable table, CompiledRoute route, in TRequest request)
        where TRequest : IRouteRequest
    {
        var target = route.PickTarget(in request, table.Random);
        explanation = explanation with
        {
            Route = route.Name,
            RouteIndex = route.Index,
            RequestHeaderOperations = Operations(target.RequestHeaders),
            ResponseHeaderOperations = Operations(target.ResponseHeaders),
        };
        switch (route.Action)
        {
            case RouteActionKind.Redirect:
                return explanation with
                {
                    Outcome = RouteExplanationOutcome.Redirect,
                    Status = route.Redirect!.StatusCode,
                    RedirectLocation = route.BuildRedirectLocation(in request),
                };
            case RouteActionKind.DirectResponse:
                return explanation with
                {
                    Outcome = RouteExplanationOutcome.DirectResponse,
                    Status = route.DirectResponse!.Status,
                    DirectResponseBody = Encoding.UTF8.GetString(route.DirectResponse.Body.Span),
                };
        }

        var shares = new List<WeightedClusterShare>();
        if (route.Targets.Length > 1)
        {
            foreach (var weighted in route.Targets)
            {
                shares.Add(new WeightedClusterShare(weighted.Cluster, weighted.Weight, 100.0 * weighted.Weight / route.TotalWeight));
            }
        }

        var byHeader = route.WeightHeader is not null && request.TryGetHeader(route.WeightHeader, out var weightValue)
            && ulong.TryParse(weightValue, NumberStyles.None, CultureInfo.InvariantCulture, out _);
        var mirrors = new List<MirrorExplanation>(route.MirrorPolicies.Length);
        foreach (var mirror in route.MirrorPolicies)
        {
            mirrors.Add(new MirrorExplanation(mirror.Cluster, mirror.Fraction.Percent));
        }

        var hashes = new List<string>(route.HashPolicies.Length);
        foreach (var hash in route.HashPolicies)
        {
            hashes.Add(Describe(hash));
        }

        return explanation with
        {
            Outcome = RouteExplanationOutcome.Forward,
            Cluster = target.Cluster,
            ClusterPickedAtRandom = route.Targets.Length > 1 && !byHeader,
            WeightedClusters = shares,
            UpstreamPathAndQuery = route.RewritePath(request.PathAndQuery),
            UpstreamAuthority = target.HostRewriteLiteral ?? (route.AutoHostRewrite ? "(endpoint address)" : null),
            Timeout = route.Timeout == System.Threading.Timeout.InfiniteTimeSpan ? null : route.Timeout,
            IdleTimeout = route.IdleTimeout,
            MaxStreamDuration = route.MaxStreamDuration,
            Retry = route.RetryPolicy is { } retry ? Describe(retry) : null,
            // istiod puts an empty fault filter config on every listener: only a delay or an abort is worth showing.
            Fault = target.Fault is { } fault && (fault.DelayKind != FaultDelayKind.None || fault.AbortKind != FaultAbortKind.None) ? Describe(fault) : null,
            Mirrors = mirrors,
            HashPolicies = hashes,
        };
    }

    private static string Describe<TRequest>(CompiledRoute route, RouteCondition failed, int index, in TRequest request, ReadOnlySpan<char> path, ReadOnlySpan<char> query)
        where TRequest : IRouteRequest
    {
        switch (failed)
        {
            case RouteCondition.Path:
                var match = route.Path;
                var kind = match.Kind switch
                {
                    PathMatchKind.Prefix => "prefix",
                    PathMatchKind.Exact => "exact",
                    PathMatchKind.SeparatedPrefix => "separated prefix",
                    _ => "regex",
                };
                var seen = match.Kind == PathMatchKind.Prefix ? request.PathAndQuery : path.ToString();
                var caseNote = match.Kind != PathMatchKind.Regex && !match.CaseSensitive ? " (ignore case)" : string.Empty;
                return $"path {kind} '{match.Value}'{caseNote}: path is '{seen}'";
            case RouteCondition.Grpc:
                return CompiledRoute.IsGrpcRequest(in request, out var contentType) || contentType is null
                    ? "grpc: request has no content-type"
                    : $"grpc: content-type is \"{contentType}\"";
            case RouteCondition.Header:
                var header = route.Headers[index];
                var value = header.ValueOf(in request);
                return $"header '{header.Name}' {Describe(header)}: {(value is null ? "header missing" : $"value is \"{value}\"")}";
            case RouteCondition.QueryParameter:
                var parameter = route.QueryParameters[index];
                var condition = parameter.StringMatch is { } stringMatch ? Describe(stringMatch) : parameter.PresentMatch ? "present" : "absent";
                return parameter.TryGetValue(query, out var parameterValue)
                    ? $"query parameter '{parameter.Name}' {condition}: value is \"{parameterValue}\""
                    : $"query parameter '{parameter.Name}' {condition}: parameter missing";
            default:
                return $"runtime_fraction {RouteExplanation.Format(route.RuntimeFraction!.Value.Percent)}: this request was not sampled";
        }
    }

    /// <summary>A header matcher's condition, for example <c>exact "gold"</c> or <c>not present</c>.</summary>
    public static string Describe(HeaderMatch header)
    {
        var condition = header.Kind switch
        {
            HeaderMatchKind.Present => header.PresentMatch ? "present" : "absent",
            HeaderMatchKind.Range => $"in range [{header.RangeStart.ToString(CultureInfo.InvariantCulture)}, {header.RangeEnd.ToString(CultureInfo.InvariantCulture)})",
            _ => Describe(header.StringMatch!),
        };
        if (header.Invert)
        {
            condition = "not " + condition;
        }

        return header.TreatMissingAsEmpty ? condition + " (missing as empty)" : condition;
    }

    private static string Describe(StringMatch match)
    {
        var kind = match.Kind switch
        {
            StringMatchKind.Exact => "exact",
            StringMatchKind.Prefix => "prefix",
            StringMatchKind.Suffix => "suffix",
            StringMatchKind.Contains => "contains",
            _ => "regex",
        };
        return $"{kind} \"{match.Pattern}\"{(match.IgnoreCase ? " (ignore case)" : string.Empty)}";
    }

    private static string Describe(HashPolicy hash)
    {
        var text = hash.Kind switch
        {
            HashPolicyKind.Header => $"header '{hash.Name}'",
            HashPolicyKind.Cookie => $"cookie '{hash.Name}'{(hash.CookieTtl is { } ttl ? $" (ttl {RouteExplanation.Format(ttl)})" : string.Empty)}",
            HashPolicyKind.SourceIp => "source ip",
            HashPolicyKind.QueryParameter => $"query parameter '{hash.Name}'",
            _ => $"filter state '{hash.Name}'",
        };
        return hash.Terminal ? text + " (terminal)" : text;
    }

    private static RetryExplanation Describe(RetryPolicy retry)
        => new(
            RetryPolicy.TokensOf(retry.RetryOn),
            retry.NumRetries,
            retry.PerTryTimeout,
            retry.BaseInterval,
            retry.MaxInterval,
            retry.RetriableStatusCodes,
            retry.RetryOnDifferentHost,
            retry.HostSelectionRetryMaxAttempts);

    private static FaultExplanation Describe(FaultPolicy fault)
    {
        var headers = new List<string>(fault.Headers.Length);
        foreach (var header in fault.Headers)
        {
            headers.Add($"header '{header.Name}' {Describe(header)}");
        }

        return new FaultExplanation(
            fault.DelayKind == FaultDelayKind.Fixed ? fault.FixedDelay : null,
            fault.DelayKind == FaultDelayKind.Header,
            fault.DelayKind == FaultDelayKind.None ? 0 : fault.DelayPercentage.Percent,
            fault.AbortKind == FaultAbortKind.Http ? fault.AbortHttpStatus : null,
            fault.AbortKind == FaultAbortKind.Grpc ? fault.AbortGrpcStatus : null,
            fault.AbortKind == FaultAbortKind.Header,
            fault.AbortKind == FaultAbortKind.None ? 0 : fault.AbortPercentage.Percent,
            fault.UpstreamCluster,
            headers,
            fault.MaxActiveFaults);
    }

    private static List<HeaderOperation> Operations(HeaderMutations mutations)
    {
        var operations = new List<HeaderOperation>(mutations.Operations.Length);
        foreach (var mutation in mutations.Operations)
        {
            var operation = mutation.Kind switch
            {
                HeaderMutationKind.Remove => "remove",
                HeaderMutationKind.Append => "append",
                HeaderMutationKind.AddIfAbsent => "add-if-absent",
                HeaderMutationKind.OverwriteOrAdd => "set",
                _ => "set-if-exists",
            };
            operations.Add(new HeaderOperation(operation, mutation.Name, mutation.Value));
        }

        return operations;
    }
}

using System.Collections.Frozen;
using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;
using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Http.Fault.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.Collections;
using Google.Protobuf.WellKnownTypes;
using Mesh.Xds.Re2;
using Mesh.Xds;

namespace Mesh.Sdk.Routing;

/// <summary>
/// Compiles a <c>RouteConfiguration</c> (and, optionally, the listener's HTTP filter chain, for the fault filter's
/// defaults) into a <see cref="CompiledRouteTable"/>. Every unsupported or invalid field is reported with its
/// location; nothing is silently dropped that would change routing.
/// </summary>
internal static class RouteTableCompiler
{
    /// <summary>Envoy's default limit on a direct response body.</summary>
    public const uint DefaultMaxDirectResponseBodyBytes = 4096;

    private static readonly FrozenSet<string> OtherFilterConfigTypeUrls = new[]
    {
        XdsTypeUrls.Rbac,
        XdsTypeUrls.RbacPerRoute,
        XdsTypeUrls.LocalRateLimit,
        XdsTypeUrls.Router,
    }.ToFrozenSet(StringComparer.Ordinal);

    /// <summary>Compiles, throwing <see cref="RouteCompilationException"/> with every error found.</summary>
    /// <param name="configuration">The route configuration.</param>
    /// <param name="httpFilters">The listener's HTTP filters; <see langword="null"/> assumes a fault filter without defaults.</param>
    /// <param name="random">The random source for fractions and weighted picks; <see cref="Random.Shared"/> by default.</param>
    public static CompiledRouteTable Compile(RouteConfiguration configuration, IReadOnlyList<HttpFilter>? httpFilters = null, Random? random = null)
        => TryCompile(configuration, httpFilters, random, out var table, out var errors) ? table : throw new RouteCompilationException(errors);

    /// <summary>Checks a route configuration without keeping the result; an empty list means it would compile.</summary>
    public static IReadOnlyList<RouteCompileError> Validate(RouteConfiguration configuration, IReadOnlyList<HttpFilter>? httpFilters = null)
    {
        TryCompile(configuration, httpFilters, null, out _, out var errors);
        return errors;
    }

    /// <summary>Compiles; on failure <paramref name="errors"/> lists every problem and <paramref name="table"/> is null.</summary>
    public static bool TryCompile(
        RouteConfiguration configuration,
        IReadOnlyList<HttpFilter>? httpFilters,
        Random? random,
        [NotNullWhen(true)] out CompiledRouteTable? table,
        out IReadOnlyList<RouteCompileError> errors)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var context = new Context(configuration.Name);
        table = context.CompileTable(configuration, httpFilters, random ?? Random.Shared);
        errors = context.Errors;
        if (errors.Count > 0)
        {
            table = null;
            return false;
        }

        return table is not null;
    }

    private sealed class FaultOverride(FaultPolicy? policy)
    {
        public FaultPolicy? Policy { get; } = policy;
    }

    private sealed class Context(string configurationName)
    {
        private readonly List<RouteCompileError> _errors = [];
        private int? _virtualHostIndex;
        private string? _virtualHostName;
        private int? _routeIndex;
        private string? _routeName;
        private bool _faultFilterPresent;
        private FaultPolicy? _faultDefault;
        private bool _mostSpecificWins;

        public IReadOnlyList<RouteCompileError> Errors => _errors;

        private void Error(string reason)
            => _errors.Add(new RouteCompileError(configurationName, _virtualHostIndex, _virtualHostName, _routeIndex, _routeName, reason));

        public CompiledRouteTable? CompileTable(RouteConfiguration config, IReadOnlyList<HttpFilter>? httpFilters, Random random)
        {
            ReadFaultFilter(httpFilters);
            _mostSpecificWins = config.MostSpecificHeaderMutationsWins;

            if (config.ClusterSpecifierPlugins.Count > 0)
            {
                Error("cluster_specifier_plugins are not supported");
            }

            if (config.IgnorePathParametersInPathMatching)
            {
                Error("ignore_path_parameters_in_path_matching is not supported");
            }

            var maxBody = config.MaxDirectResponseBodySizeBytes ?? DefaultMaxDirectResponseBodyBytes;
            var configFault = ResolveFaultOverride(config.TypedPerFilterConfig, "typed_per_filter_config");
            var configMirrors = CompileMirrors(config.RequestMirrorPolicies, "request_mirror_policies");
            var configRequest = CompileHeaderLevel(config.RequestHeadersToRemove, config.RequestHeadersToAdd, request: true);
            var configResponse = CompileHeaderLevel(config.ResponseHeadersToRemove, config.ResponseHeadersToAdd, request: false);

            var hosts = new List<CompiledVirtualHost>(config.VirtualHosts.Count);
            var exact = new Dictionary<string, CompiledVirtualHost>(StringComparer.OrdinalIgnoreCase);
            var suffixes = new Dictionary<int, Dictionary<string, CompiledVirtualHost>>();
            var prefixes = new Dictionary<int, Dictionary<string, CompiledVirtualHost>>();
            var seenDomains = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
            CompiledVirtualHost? any = null;

            for (var v = 0; v < config.VirtualHosts.Count; v++)
            {
                var vh = config.VirtualHosts[v];
                _virtualHostIndex = v;
                _virtualHostName = vh.Name;
                _routeIndex = null;
                _routeName = null;

                var compiled = CompileVirtualHost(vh, configFault, configMirrors, configRequest, configResponse, maxBody);
                hosts.Add(compiled);
                if (vh.Domains.Count == 0)
                {
                    Error("virtual host has no domains");
                }

                foreach (var domain in vh.Domains)
                {
                    if (!seenDomains.Add(domain))
                    {
                        Error($"domain '{domain}' is listed more than once (domains must be unique across virtual hosts)");
                        continue;
                    }

                    var stars = domain.AsSpan().Count('*');
                    if (domain.Length == 0 || stars > 1 || (stars == 1 && domain.Length > 1 && domain[0] != '*' && domain[^1] != '*'))
                    {
                        Error($"domain '{domain}' is invalid: a wildcard '*' may only stand alone, start or end the domain");
                    }
                    else if (domain == "*")
                    {
                        any = compiled;
                    }
                    else if (domain[0] == '*')
                    {
                        Group(suffixes, domain[1..]).Add(domain[1..], compiled);
                    }
                    else if (domain[^1] == '*')
                    {
                        Group(prefixes, domain[..^1]).Add(domain[..^1], compiled);
                    }
                    else
                    {
                        exact.Add(domain, compiled);
                    }
                }
            }

            _virtualHostIndex = null;
            _virtualHostName = null;
            if (_errors.Count > 0)
            {
                return null;
            }

            return new CompiledRouteTable(
                config.Name,
                hosts,
                exact.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase),
                Groups(suffixes),
                Groups(prefixes),
                any,
                config.IgnorePortInHostMatching,
                random);
        }

        private static Dictionary<string, CompiledVirtualHost> Group(Dictionary<int, Dictionary<string, CompiledVirtualHost>> groups, string literal)
        {
            if (!groups.TryGetValue(literal.Length, out var group))
            {
                group = new Dictionary<string, CompiledVirtualHost>(StringComparer.OrdinalIgnoreCase);
                groups.Add(literal.Length, group);
            }

            return group;
        }

        private static CompiledRouteTable.WildcardGroup[] Groups(Dictionary<int, Dictionary<string, CompiledVirtualHost>> groups)
        {
            var result = new CompiledRouteTable.WildcardGroup[groups.Count];
            var i = 0;
            foreach (var (length, hosts) in groups.OrderByDescending(static g => g.Key))
            {
                result[i++] = new CompiledRouteTable.WildcardGroup(length, hosts.ToFrozenDictionary(StringComparer.OrdinalIgnoreCase));
            }

            return result;
        }

        private void ReadFaultFilter(IReadOnlyList<HttpFilter>? httpFilters)
        {
            if (httpFilters is null)
            {
                // Without the listener's chain, per-route fault configs apply and there is no listener-wide default.
                _faultFilterPresent = true;
                return;
            }

            foreach (var filter in httpFilters)
            {
                var isFault = filter.TypedConfig?.TypeUrl == XdsTypeUrls.Fault || (filter.TypedConfig is null && filter.Name == HttpFilterNames.Fault);
                if (!isFault)
                {
                    continue;
                }

                _faultFilterPresent = true;
                if (filter.Disabled || filter.TypedConfig is null)
                {
                    continue;
                }

                if (!FaultPolicy.TryCompile(filter.TypedConfig.Unpack<HTTPFault>(), out var policy, out var error))
                {
                    Error($"listener HTTP filter '{filter.Name}': {error}");
                    continue;
                }

                _faultDefault = policy;
            }
        }

        private FaultOverride? ResolveFaultOverride(MapField<string, Any> perFilter, string field)
        {
            FaultOverride? result = null;
            foreach (var (key, value) in perFilter)
            {
                var inner = value;
                var optional = false;
                if (value.TypeUrl == XdsTypeUrls.FilterConfig)
                {
                    var wrapper = value.Unpack<FilterConfig>();
                    optional = wrapper.IsOptional;
                    if (wrapper.Disabled)
                    {
                        if (key == HttpFilterNames.Fault)
                        {
                            result = new FaultOverride(null);
                        }

                        continue;
                    }

                    if (wrapper.Config is null)
                    {
                        Error($"{field} '{key}' is a FilterConfig without config");
                        continue;
                    }

                    inner = wrapper.Config;
                }

                if (inner.TypeUrl == XdsTypeUrls.Fault)
                {
                    if (FaultPolicy.TryCompile(inner.Unpack<HTTPFault>(), out var policy, out var error))
                    {
                        result = new FaultOverride(policy);
                    }
                    else
                    {
                        Error($"{field} '{key}': {error}");
                    }
                }
                else if (!OtherFilterConfigTypeUrls.Contains(inner.TypeUrl) && !optional)
                {
                    Error($"{field} '{key}' has type '{inner.TypeUrl}', which is not supported (mark it optional with a FilterConfig to have it ignored)");
                }
            }

            return result;
        }

        private HeaderMutation[] CompileHeaderLevel(IEnumerable<string> remove, IEnumerable<HeaderValueOption> add, bool request)
        {
            var list = new List<HeaderMutation>();
            if (!HeaderMutations.TryCompileLevel(remove, add, request, list, out var error))
            {
                Error(error!);
            }

            return [.. list];
        }

        private MirrorPolicy[] CompileMirrors(RepeatedField<RouteAction.Types.RequestMirrorPolicy> policies, string field)
        {
            var result = new MirrorPolicy[policies.Count];
            for (var i = 0; i < policies.Count; i++)
            {
                var policy = policies[i];
                if (!string.IsNullOrEmpty(policy.ClusterHeader) || string.IsNullOrEmpty(policy.Cluster))
                {
                    Error($"{field}[{i}] must name a cluster (cluster_header is not supported)");
                    continue;
                }

                var fraction = policy.RuntimeFraction is null ? Fraction.Always : Fraction.From(policy.RuntimeFraction.DefaultValue);
                result[i] = new MirrorPolicy(policy.Cluster, fraction, policy.DisableShadowHostSuffixAppend);
            }

            return result;
        }

        private CompiledVirtualHost CompileVirtualHost(
            VirtualHost vh,
            FaultOverride? configFault,
            MirrorPolicy[] configMirrors,
            HeaderMutation[] configRequest,
            HeaderMutation[] configResponse,
            uint maxBody)
        {
            if (vh.RequireTls != VirtualHost.Types.TlsRequirementType.None)
            {
                Error($"require_tls {vh.RequireTls} is not supported by a client-side data plane");
            }

            if (vh.RetryPolicyTypedConfig is not null)
            {
                Error("retry_policy_typed_config is not supported");
            }

            if (vh.HedgePolicy is not null)
            {
                Error("hedge_policy is not supported");
            }

            RetryPolicy? retry = null;
            if (vh.RetryPolicy is not null && !RetryPolicy.TryCompile(vh.RetryPolicy, out retry, out var retryError))
            {
                Error($"retry_policy: {retryError}");
            }

            var hostFault = ResolveFaultOverride(vh.TypedPerFilterConfig, "typed_per_filter_config") ?? configFault;
            var mirrors = vh.RequestMirrorPolicies.Count > 0 ? CompileMirrors(vh.RequestMirrorPolicies, "request_mirror_policies") : configMirrors;
            var hostRequest = CompileHeaderLevel(vh.RequestHeadersToRemove, vh.RequestHeadersToAdd, request: true);
            var hostResponse = CompileHeaderLevel(vh.ResponseHeadersToRemove, vh.ResponseHeadersToAdd, request: false);

            var routes = new CompiledRoute[vh.Routes.Count];
            for (var r = 0; r < vh.Routes.Count; r++)
            {
                var route = vh.Routes[r];
                _routeIndex = r;
                _routeName = route.Name;
                var inherited = new Inherited(retry, hostFault, mirrors, configRequest, hostRequest, configResponse, hostResponse, vh.IncludeRequestAttemptCount, vh.IncludeAttemptCountInResponse, maxBody);
                routes[r] = CompileRoute(vh, route, r, inherited);
            }

            _routeIndex = null;
            _routeName = null;
            return new CompiledVirtualHost(vh.Name, [.. vh.Domains], routes);
        }

        private sealed record Inherited(
            RetryPolicy? Retry,
            FaultOverride? Fault,
            MirrorPolicy[] Mirrors,
            HeaderMutation[] ConfigRequest,
            HeaderMutation[] HostRequest,
            HeaderMutation[] ConfigResponse,
            HeaderMutation[] HostResponse,
            bool IncludeRequestAttemptCount,
            bool IncludeAttemptCountInResponse,
            uint MaxBody);

        private CompiledRoute CompileRoute(VirtualHost vh, Route route, int index, Inherited inherited)
        {
            var path = CompilePathMatch(route.Match);
            var (headers, query, runtime, grpc) = CompileMatchExtras(route.Match);

            var routeFault = ResolveFaultOverride(route.TypedPerFilterConfig, "typed_per_filter_config") ?? inherited.Fault;
            var routeRequest = CompileHeaderLevel(route.RequestHeadersToRemove, route.RequestHeadersToAdd, request: true);
            var routeResponse = CompileHeaderLevel(route.ResponseHeadersToRemove, route.ResponseHeadersToAdd, request: false);

            var name = string.IsNullOrEmpty(route.Name) ? $"routes[{index}]" : route.Name;
            var common = new CompiledRoute
            {
                Name = name,
                Index = index,
                VirtualHostName = vh.Name,
                Operation = route.Decorator?.Operation is { Length: > 0 } operation ? operation : null,
                Path = path,
                Headers = headers,
                QueryParameters = query,
                RuntimeFraction = runtime,
                GrpcOnly = grpc,
                Action = RouteActionKind.Forward,
                Targets = [],
                IncludeRequestAttemptCount = inherited.IncludeRequestAttemptCount,
                IncludeAttemptCountInResponse = inherited.IncludeAttemptCountInResponse,
            };

            switch (route.ActionCase)
            {
                case Route.ActionOneofCase.Route_:
                    return CompileRouteAction(route.Route_, common, inherited, routeFault, routeRequest, routeResponse);
                case Route.ActionOneofCase.Redirect:
                    var redirect = CompileRedirect(route.Redirect, path);
                    return new CompiledRouteBuilder(common)
                    {
                        Action = RouteActionKind.Redirect,
                        Redirect = redirect,
                        Targets = [LocalTarget(inherited, routeRequest, routeResponse, routeFault)],
                    }.Build();
                case Route.ActionOneofCase.DirectResponse:
                    var direct = CompileDirectResponse(route.DirectResponse, inherited.MaxBody);
                    return new CompiledRouteBuilder(common)
                    {
                        Action = RouteActionKind.DirectResponse,
                        DirectResponse = direct,
                        Targets = [LocalTarget(inherited, routeRequest, routeResponse, routeFault)],
                    }.Build();
                case Route.ActionOneofCase.None:
                    Error("route has no action (route, redirect or direct_response)");
                    return common;
                default:
                    Error($"action {route.ActionCase} is not supported (route, redirect or direct_response)");
                    return common;
            }
        }

        private RouteTarget LocalTarget(Inherited inherited, HeaderMutation[] routeRequest, HeaderMutation[] routeResponse, FaultOverride? fault)
            => new(
                string.Empty,
                1,
                1,
                Flatten([], routeRequest, inherited.HostRequest, inherited.ConfigRequest),
                Flatten([], routeResponse, inherited.HostResponse, inherited.ConfigResponse),
                null,
                EffectiveFault(fault));

        private FaultPolicy? EffectiveFault(FaultOverride? fault)
            => !_faultFilterPresent ? null : fault is not null ? fault.Policy : _faultDefault;

        /// <summary>Levels are given most specific first; Envoy applies them in that order unless most-specific wins.</summary>
        private HeaderMutations Flatten(HeaderMutation[] cluster, HeaderMutation[] route, HeaderMutation[] host, HeaderMutation[] config)
        {
            if (cluster.Length + route.Length + host.Length + config.Length == 0)
            {
                return HeaderMutations.Empty;
            }

            HeaderMutation[] all = _mostSpecificWins
                ? [.. config, .. host, .. route, .. cluster]
                : [.. cluster, .. route, .. host, .. config];
            return new HeaderMutations(all);
        }

        private PathMatch CompilePathMatch(RouteMatch? match)
        {
            if (match is null)
            {
                Error("route has no match");
                return new PathMatch(PathMatchKind.Prefix, "/", true, null);
            }

            var caseSensitive = match.CaseSensitive ?? true;
            switch (match.PathSpecifierCase)
            {
                case RouteMatch.PathSpecifierOneofCase.Prefix:
                    return new PathMatch(PathMatchKind.Prefix, match.Prefix, caseSensitive, null);
                case RouteMatch.PathSpecifierOneofCase.Path:
                    return new PathMatch(PathMatchKind.Exact, match.Path, caseSensitive, null);
                case RouteMatch.PathSpecifierOneofCase.PathSeparatedPrefix:
                    var value = match.PathSeparatedPrefix;
                    if (value.Length == 0 || value[0] != '/' || value.EndsWith('/') || value.AsSpan().IndexOfAny('?', '#') >= 0)
                    {
                        Error($"match.path_separated_prefix '{value}' must start with '/', not end with '/', and contain no '?' or '#'");
                    }

                    return new PathMatch(PathMatchKind.SeparatedPrefix, value, caseSensitive, null);
                case RouteMatch.PathSpecifierOneofCase.SafeRegex:
                    if (!Re2Regex.TryCompileFullMatch(match.SafeRegex.Regex, out var regex, out var error))
                    {
                        Error($"match.safe_regex: {error}");
                        return new PathMatch(PathMatchKind.Prefix, "/", true, null);
                    }

                    return new PathMatch(PathMatchKind.Regex, match.SafeRegex.Regex, true, regex);
                case RouteMatch.PathSpecifierOneofCase.None:
                    Error("match has no path specifier (prefix, path, safe_regex or path_separated_prefix)");
                    return new PathMatch(PathMatchKind.Prefix, "/", true, null);
                default:
                    Error($"match.{match.PathSpecifierCase} is not supported (prefix, path, safe_regex or path_separated_prefix)");
                    return new PathMatch(PathMatchKind.Prefix, "/", true, null);
            }
        }

        private (HeaderMatch[] Headers, QueryParameterMatch[] Query, Fraction? Runtime, bool Grpc) CompileMatchExtras(RouteMatch? match)
        {
            if (match is null)
            {
                return ([], [], null, false);
            }

            if (match.TlsContext is not null)
            {
                Error("match.tls_context is not supported");
            }

            if (match.DynamicMetadata.Count > 0)
            {
                Error("match.dynamic_metadata is not supported");
            }

            var headers = new HeaderMatch[match.Headers.Count];
            for (var i = 0; i < headers.Length; i++)
            {
                if (HeaderMatch.TryCompile(match.Headers[i], out var header, out var error))
                {
                    headers[i] = header!;
                }
                else
                {
                    Error($"match.headers[{i}]: {error}");
                }
            }

            var query = new QueryParameterMatch[match.QueryParameters.Count];
            for (var i = 0; i < query.Length; i++)
            {
                if (QueryParameterMatch.TryCompile(match.QueryParameters[i], out var parameter, out var error))
                {
                    query[i] = parameter!;
                }
                else
                {
                    Error($"match.query_parameters[{i}]: {error}");
                }
            }

            Fraction? runtime = null;
            if (match.RuntimeFraction is { } runtimeFraction)
            {
                if (runtimeFraction.DefaultValue is null)
                {
                    Error("match.runtime_fraction has no default_value");
                }
                else if (runtimeFraction.DefaultValue.Numerator > Fraction.DenominatorOf(runtimeFraction.DefaultValue.Denominator))
                {
                    Error($"match.runtime_fraction numerator {runtimeFraction.DefaultValue.Numerator} exceeds its denominator");
                }
                else
                {
                    runtime = Fraction.From(runtimeFraction.DefaultValue);
                }
            }

            return (headers, query, runtime, match.Grpc is not null);
        }

        private CompiledRoute CompileRouteAction(RouteAction action, CompiledRoute common, Inherited inherited, FaultOverride? routeFault, HeaderMutation[] routeRequest, HeaderMutation[] routeResponse)
        {
            CheckUnsupportedActionFields(action);

            string? hostLiteral = null;
            var autoHost = false;
            switch (action.HostRewriteSpecifierCase)
            {
                case RouteAction.HostRewriteSpecifierOneofCase.HostRewriteLiteral:
                    hostLiteral = action.HostRewriteLiteral;
                    break;
                case RouteAction.HostRewriteSpecifierOneofCase.AutoHostRewrite:
                    autoHost = action.AutoHostRewrite == true;
                    break;
                case RouteAction.HostRewriteSpecifierOneofCase.None:
                    break;
                default:
                    Error($"route.{action.HostRewriteSpecifierCase} is not supported (host_rewrite_literal or auto_host_rewrite)");
                    break;
            }

            var targets = Array.Empty<RouteTarget>();
            ulong total = 1;
            string? weightHeader = null;
            switch (action.ClusterSpecifierCase)
            {
                case RouteAction.ClusterSpecifierOneofCase.Cluster:
                    if (string.IsNullOrEmpty(action.Cluster))
                    {
                        Error("route.cluster is empty");
                    }

                    targets =
                    [
                        new RouteTarget(
                            action.Cluster,
                            1,
                            1,
                            Flatten([], routeRequest, inherited.HostRequest, inherited.ConfigRequest),
                            Flatten([], routeResponse, inherited.HostResponse, inherited.ConfigResponse),
                            hostLiteral,
                            EffectiveFault(routeFault)),
                    ];
                    break;
                case RouteAction.ClusterSpecifierOneofCase.WeightedClusters:
                    (targets, total) = CompileWeighted(action.WeightedClusters, inherited, routeFault, routeRequest, routeResponse, hostLiteral);
                    weightHeader = string.IsNullOrEmpty(action.WeightedClusters.HeaderName) ? null : action.WeightedClusters.HeaderName.ToLowerInvariant();
                    break;
                case RouteAction.ClusterSpecifierOneofCase.None:
                    Error("route action names no cluster (cluster or weighted_clusters)");
                    break;
                default:
                    Error($"route.{action.ClusterSpecifierCase} is not supported (cluster or weighted_clusters)");
                    break;
            }

            string? prefixRewrite = null;
            Regex? regexRewrite = null;
            string? substitution = null;
            if (!string.IsNullOrEmpty(action.PrefixRewrite))
            {
                prefixRewrite = action.PrefixRewrite;
                if (action.RegexRewrite is not null)
                {
                    Error("route sets both prefix_rewrite and regex_rewrite; only one is allowed");
                }
            }
            else if (action.RegexRewrite is { } rewrite && !HashPolicy.TryCompileRewrite(rewrite, out regexRewrite, out substitution, out var rewriteError))
            {
                Error($"route.regex_rewrite: {rewriteError}");
            }

            var timeout = Duration(action.Timeout, "route.timeout");
            var idle = Duration(action.IdleTimeout, "route.idle_timeout");
            var maxStream = Duration(action.MaxStreamDuration?.MaxStreamDuration_, "route.max_stream_duration.max_stream_duration");
            var grpcMax = Duration(action.MaxStreamDuration?.GrpcTimeoutHeaderMax, "route.max_stream_duration.grpc_timeout_header_max");
            var grpcOffset = Duration(action.MaxStreamDuration?.GrpcTimeoutHeaderOffset, "route.max_stream_duration.grpc_timeout_header_offset");

            var retry = inherited.Retry;
            if (action.RetryPolicy is not null)
            {
                if (!RetryPolicy.TryCompile(action.RetryPolicy, out retry, out var retryError))
                {
                    Error($"route.retry_policy: {retryError}");
                }
            }

            var hashes = new HashPolicy[action.HashPolicy.Count];
            for (var i = 0; i < hashes.Length; i++)
            {
                if (HashPolicy.TryCompile(action.HashPolicy[i], out var hash, out var hashError))
                {
                    hashes[i] = hash!;
                }
                else
                {
                    Error($"route.hash_policy[{i}]: {hashError}");
                }
            }

            var mirrors = action.RequestMirrorPolicies.Count > 0
                ? CompileMirrors(action.RequestMirrorPolicies, "route.request_mirror_policies")
                : inherited.Mirrors;

            return new CompiledRouteBuilder(common)
            {
                Action = RouteActionKind.Forward,
                Targets = targets,
                TotalWeight = total,
                WeightHeader = weightHeader,
                PrefixRewrite = prefixRewrite,
                RegexRewrite = regexRewrite,
                RegexSubstitution = substitution,
                AutoHostRewrite = autoHost,
                AppendXForwardedHost = action.AppendXForwardedHost,
                Timeout = timeout is null ? CompiledRoute.DefaultTimeout : timeout == TimeSpan.Zero ? System.Threading.Timeout.InfiniteTimeSpan : timeout.Value,
                IdleTimeout = ZeroIsInfinite(idle),
                MaxStreamDuration = ZeroIsInfinite(maxStream),
                GrpcTimeoutHeaderMax = ZeroIsInfinite(grpcMax),
                GrpcTimeoutHeaderOffset = grpcOffset,
                RetryPolicy = retry,
                HashPolicies = hashes,
                MirrorPolicies = mirrors,
                ClusterNotFoundStatus = action.ClusterNotFoundResponseCode switch
                {
                    RouteAction.Types.ClusterNotFoundResponseCode.NotFound => 404,
                    RouteAction.Types.ClusterNotFoundResponseCode.InternalServerError => 500,
                    _ => 503,
                },
            }.Build();
        }

        private TimeSpan? Duration(Google.Protobuf.WellKnownTypes.Duration? duration, string field)
        {
            if (!RetryPolicy.TryDuration(duration, field, out var value, out var error))
            {
                Error(error!);
            }

            return value;
        }

        private static TimeSpan? ZeroIsInfinite(TimeSpan? value)
            => value == TimeSpan.Zero ? System.Threading.Timeout.InfiniteTimeSpan : value;

        private void CheckUnsupportedActionFields(RouteAction action)
        {
            if (action.MetadataMatch is not null)
            {
                Error("route.metadata_match (subset load balancing) is not supported");
            }

            if (action.PathRewritePolicy is not null)
            {
                Error("route.path_rewrite_policy is not supported (use prefix_rewrite or regex_rewrite)");
            }

            if (action.RetryPolicyTypedConfig is not null)
            {
                Error("route.retry_policy_typed_config is not supported");
            }

            if (action.InternalRedirectPolicy is not null)
            {
                Error("route.internal_redirect_policy is not supported");
            }

            if (action.HedgePolicy is not null)
            {
                Error("route.hedge_policy is not supported");
            }

            if (action.EarlyDataPolicy is not null)
            {
                Error("route.early_data_policy is not supported");
            }
        }

        private (RouteTarget[] Targets, ulong Total) CompileWeighted(
            WeightedCluster weighted,
            Inherited inherited,
            FaultOverride? routeFault,
            HeaderMutation[] routeRequest,
            HeaderMutation[] routeResponse,
            string? routeHostLiteral)
        {
            if (weighted.Clusters.Count == 0)
            {
                Error("route.weighted_clusters has no clusters");
                return ([], 1);
            }

            var targets = new RouteTarget[weighted.Clusters.Count];
            ulong total = 0;
            for (var i = 0; i < targets.Length; i++)
            {
                var cluster = weighted.Clusters[i];
                var where = $"route.weighted_clusters.clusters[{i}] '{cluster.Name}'";
                if (!string.IsNullOrEmpty(cluster.ClusterHeader) || string.IsNullOrEmpty(cluster.Name))
                {
                    Error($"{where} must name a cluster (cluster_header is not supported)");
                }

                if (cluster.MetadataMatch is not null)
                {
                    Error($"{where} metadata_match (subset load balancing) is not supported");
                }

                var weight = cluster.Weight ?? 0;
                total += weight;
                var fault = ResolveFaultOverride(cluster.TypedPerFilterConfig, where + " typed_per_filter_config") ?? routeFault;
                var request = CompileHeaderLevel(cluster.RequestHeadersToRemove, cluster.RequestHeadersToAdd, request: true);
                var response = CompileHeaderLevel(cluster.ResponseHeadersToRemove, cluster.ResponseHeadersToAdd, request: false);
                var hostLiteral = cluster.HostRewriteSpecifierCase == WeightedCluster.Types.ClusterWeight.HostRewriteSpecifierOneofCase.HostRewriteLiteral
                    ? cluster.HostRewriteLiteral
                    : routeHostLiteral;
                targets[i] = new RouteTarget(
                    cluster.Name,
                    weight,
                    total,
                    Flatten(request, routeRequest, inherited.HostRequest, inherited.ConfigRequest),
                    Flatten(response, routeResponse, inherited.HostResponse, inherited.ConfigResponse),
                    hostLiteral,
                    EffectiveFault(fault));
            }

            if (total == 0)
            {
                Error("route.weighted_clusters total weight is 0");
                total = 1;
            }
            else if (total > uint.MaxValue)
            {
                Error($"route.weighted_clusters total weight {total} exceeds {uint.MaxValue}");
            }

            return (targets, total);
        }

        private RedirectPolicy? CompileRedirect(RedirectAction redirect, PathMatch path)
        {
            string? scheme = redirect.SchemeRewriteSpecifierCase switch
            {
                RedirectAction.SchemeRewriteSpecifierOneofCase.HttpsRedirect => redirect.HttpsRedirect ? "https" : null,
                RedirectAction.SchemeRewriteSpecifierOneofCase.SchemeRedirect => redirect.SchemeRedirect.ToLowerInvariant(),
                _ => null,
            };

            Regex? regex = null;
            string? substitution = null;
            if (redirect.PathRewriteSpecifierCase == RedirectAction.PathRewriteSpecifierOneofCase.RegexRewrite
                && !HashPolicy.TryCompileRewrite(redirect.RegexRewrite, out regex, out substitution, out var error))
            {
                Error($"redirect.regex_rewrite: {error}");
            }

            // Envoy validates path_redirect as a header value only (no NUL, CR or LF); a path without a leading '/'
            // (istiod writes Istio's redirect.uri as given, e.g. "example.org") gets one when the Location is built.
            var pathRedirect = redirect.PathRewriteSpecifierCase == RedirectAction.PathRewriteSpecifierOneofCase.PathRedirect
                && redirect.PathRedirect.Length > 0 ? redirect.PathRedirect : null;
            if (pathRedirect is not null && pathRedirect.AsSpan().IndexOfAny('\0', '\r', '\n') >= 0)
            {
                Error($"redirect.path_redirect '{pathRedirect.ReplaceLineEndings(" ")}' contains a NUL, CR or LF, which a header value cannot carry");
            }

            if (redirect.PortRedirect > 65535)
            {
                Error($"redirect.port_redirect {redirect.PortRedirect} is not a port");
            }

            var status = redirect.ResponseCode switch
            {
                RedirectAction.Types.RedirectResponseCode.MovedPermanently => 301,
                RedirectAction.Types.RedirectResponseCode.Found => 302,
                RedirectAction.Types.RedirectResponseCode.SeeOther => 303,
                RedirectAction.Types.RedirectResponseCode.TemporaryRedirect => 307,
                RedirectAction.Types.RedirectResponseCode.PermanentRedirect => 308,
                _ => 0,
            };
            if (status == 0)
            {
                Error($"redirect.response_code {(int)redirect.ResponseCode} is unknown");
            }

            _ = path;
            return new RedirectPolicy
            {
                Scheme = scheme,
                Host = string.IsNullOrEmpty(redirect.HostRedirect) ? null : redirect.HostRedirect,
                Port = redirect.PortRedirect,
                Path = pathRedirect,
                PrefixRewrite = redirect.PathRewriteSpecifierCase == RedirectAction.PathRewriteSpecifierOneofCase.PrefixRewrite ? redirect.PrefixRewrite : null,
                RegexRewrite = regex,
                RegexSubstitution = substitution,
                StatusCode = status,
                StripQuery = redirect.StripQuery,
            };
        }

        private DirectResponse? CompileDirectResponse(DirectResponseAction action, uint maxBody)
        {
            if (action.Status is < 200 or > 599)
            {
                Error($"direct_response.status {action.Status} is outside 200-599");
            }

            ReadOnlyMemory<byte> body = ReadOnlyMemory<byte>.Empty;
            if (action.Body is { } source)
            {
                switch (source.SpecifierCase)
                {
                    case DataSource.SpecifierOneofCase.InlineString:
                        body = System.Text.Encoding.UTF8.GetBytes(source.InlineString);
                        break;
                    case DataSource.SpecifierOneofCase.InlineBytes:
                        body = source.InlineBytes.ToByteArray();
                        break;
                    default:
                        Error($"direct_response.body {source.SpecifierCase} is not supported (inline_string or inline_bytes)");
                        break;
                }
            }

            if (body.Length > maxBody)
            {
                Error($"direct_response.body is {body.Length} bytes, over the {maxBody}-byte limit (max_direct_response_body_size_bytes)");
            }

            return new DirectResponse((int)action.Status, body);
        }
    }

    /// <summary>Copies a route with the action-specific parts set (CompiledRoute's members are init-only).</summary>
    private sealed class CompiledRouteBuilder(CompiledRoute common)
    {
        public RouteActionKind Action { get; init; }

        public RouteTarget[] Targets { get; init; } = [];

        public ulong TotalWeight { get; init; } = 1;

        public string? WeightHeader { get; init; }

        public string? PrefixRewrite { get; init; }

        public Regex? RegexRewrite { get; init; }

        public string? RegexSubstitution { get; init; }

        public bool AutoHostRewrite { get; init; }

        public bool AppendXForwardedHost { get; init; }

        public TimeSpan Timeout { get; init; } = CompiledRoute.DefaultTimeout;

        public TimeSpan? IdleTimeout { get; init; }

        public TimeSpan? MaxStreamDuration { get; init; }

        public TimeSpan? GrpcTimeoutHeaderMax { get; init; }

        public TimeSpan? GrpcTimeoutHeaderOffset { get; init; }

        public RetryPolicy? RetryPolicy { get; init; }

        public HashPolicy[] HashPolicies { get; init; } = [];

        public MirrorPolicy[] MirrorPolicies { get; init; } = [];

        public int ClusterNotFoundStatus { get; init; } = 503;

        public RedirectPolicy? Redirect { get; init; }

        public DirectResponse? DirectResponse { get; init; }

        public CompiledRoute Build() => new()
        {
            Name = common.Name,
            Index = common.Index,
            VirtualHostName = common.VirtualHostName,
            Operation = common.Operation,
            Path = common.Path,
            Headers = common.Headers,
            QueryParameters = common.QueryParameters,
            RuntimeFraction = common.RuntimeFraction,
            GrpcOnly = common.GrpcOnly,
            IncludeRequestAttemptCount = common.IncludeRequestAttemptCount,
            IncludeAttemptCountInResponse = common.IncludeAttemptCountInResponse,
            Action = Action,
            Targets = Targets,
            TotalWeight = TotalWeight,
            WeightHeader = WeightHeader,
            PrefixRewrite = PrefixRewrite,
            RegexRewrite = RegexRewrite,
            RegexSubstitution = RegexSubstitution,
            AutoHostRewrite = AutoHostRewrite,
            AppendXForwardedHost = AppendXForwardedHost,
            Timeout = Timeout,
            IdleTimeout = IdleTimeout,
            MaxStreamDuration = MaxStreamDuration,
            GrpcTimeoutHeaderMax = GrpcTimeoutHeaderMax,
            GrpcTimeoutHeaderOffset = GrpcTimeoutHeaderOffset,
            RetryPolicy = RetryPolicy,
            HashPolicies = HashPolicies,
            MirrorPolicies = MirrorPolicies,
            ClusterNotFoundStatus = ClusterNotFoundStatus,
            Redirect = Redirect,
            DirectResponse = DirectResponse,
        };
    }
}

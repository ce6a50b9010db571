using System.Globalization;
using IPAddress = System.Net.IPAddress;
using SocketAddress = Envoy.Config.Core.V3.SocketAddress;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Envoy.Type.Matcher.V3;
using Google.Protobuf.WellKnownTypes;
using Google.Protobuf;
using Mesh.Sdk.LoadBalancing;
using Mesh.Sdk.Resilience;
using Mesh.Sdk.Resources;
using Mesh.Sdk.Routing;
using Mesh.Xds;

namespace Mesh.Sdk.Xds.Internal;

/// <summary>
/// Checks every resource before use, rejecting what the data plane could not apply faithfully. The rules follow
/// gRPC's proxyless xDS client so that the same control plane output is accepted or refused alike.
/// </summary>
internal static class XdsResourceValidator
{
    public const string HttpConnectionManagerTypeUrl = XdsTypeUrls.HttpConnectionManager;
    public const string RouterTypeUrl = XdsTypeUrls.Router;

    /// <summary>HTTP filter configurations the SDK understands, by type URL.</summary>
    public static readonly IReadOnlySet<string> KnownHttpFilterTypeUrls = new HashSet<string>(StringComparer.Ordinal)
    {
        RouterTypeUrl,
        XdsTypeUrls.Fault,
        XdsTypeUrls.Rbac,
        XdsTypeUrls.LocalRateLimit,
    };

    /// <summary>Typed load balancing policies the SDK understands, by type URL.</summary>
    public static readonly IReadOnlySet<string> KnownLoadBalancingPolicyTypeUrls = new HashSet<string>(StringComparer.Ordinal)
    {
        XdsTypeUrls.RoundRobin,
        XdsTypeUrls.RingHash,
        XdsTypeUrls.LeastRequest,
        XdsTypeUrls.WrrLocality,
        XdsTypeUrls.Random,
        LoadBalancerPolicy.PickFirstTypeUrl,
    };

    /// <summary>gRPC's upper bound on ring hash sizes.</summary>
    public const ulong MaxRingSize = 8 * 1024 * 1024;

    public static ListenerResource ValidateListener(Listener listener)
    {
        if (listener.ApiListener?.ApiListener_ is { } any)
        {
            if (any.TypeUrl != HttpConnectionManagerTypeUrl)
            {
                throw new XdsValidationException($"api_listener has type '{any.TypeUrl}', expected HttpConnectionManager");
            }

            var errors = new List<string>();
            var hcm = DecodeHttpConnectionManager(any, "api_listener", errors);
            Throw(errors);
            CollectHttpConnectionManagerErrors(hcm!, string.Empty, errors, out var rdsName, out var inline);
            Throw(errors);
            return new ListenerResource(listener.Name, listener, hcm!, rdsName, inline)
            {
                RouteConfigNames = rdsName is null ? [] : [rdsName],
            };
        }

        if (listener.Address is null)
        {
            throw new XdsValidationException("has neither api_listener nor address");
        }

        return ValidateSocketListener(listener);
    }

    /// <summary>
    /// A server-side listener (xDS-enabled server, for Istio <c>xds.istio.io/grpc/lds/inbound/IP:PORT</c>): an IP
    /// address and port, and filter chains that each hold exactly one HttpConnectionManager.
    /// </summary>
    private static ListenerResource ValidateSocketListener(Listener listener)
    {
        var errors = new List<string>();
        var socket = listener.Address.SocketAddress;
        if (socket is null)
        {
            errors.Add("address has no socket_address");
        }
        else
        {
            if (!IPAddress.TryParse(socket.Address, out _))
            {
                errors.Add($"address '{socket.Address}' is not an IP address");
            }

            if (socket.PortSpecifierCase != SocketAddress.PortSpecifierOneofCase.PortValue || socket.PortValue > 65535)
            {
                errors.Add("address needs a port_value in 0..65535");
            }
        }

        var chains = new List<(string Where, FilterChain Chain)>();
        for (var i = 0; i < listener.FilterChains.Count; i++)
        {
            chains.Add(($"filter_chains[{i}]", listener.FilterChains[i]));
        }

        if (listener.DefaultFilterChain is { } defaultChain)
        {
            chains.Add(("default_filter_chain", defaultChain));
        }

        if (chains.Count == 0)
        {
            errors.Add("has no filter_chains and no default_filter_chain");
        }

        HttpConnectionManager? primary = null;
        string? primaryRds = null;
        RouteConfiguration? primaryInline = null;
        var rdsNames = new List<string>();
        foreach (var (where, chain) in chains)
        {
            if (chain.TransportSocket?.TypedConfig is { } tls && tls.TypeUrl != XdsTypeUrls.DownstreamTlsContext)
            {
                errors.Add($"{where} transport_socket has unsupported config type '{tls.TypeUrl}' (DownstreamTlsContext only)");
            }
            else if (chain.TransportSocket?.TypedConfig is { } downstream)
            {
                CollectDownstreamTlsErrors(downstream, $"{where} transport_socket", errors);
            }

            if (chain.Filters.Count != 1 || chain.Filters[0].TypedConfig is not { } config || config.TypeUrl != HttpConnectionManagerTypeUrl)
            {
                errors.Add($"{where} must hold exactly one filter, an HttpConnectionManager");
                continue;
            }

            var hcm = DecodeHttpConnectionManager(config, where, errors);
            if (hcm is null)
            {
                continue;
            }

            CollectHttpConnectionManagerErrors(hcm, where + " ", errors, out var rds, out var inline, serverSide: true);
            if (rds is not null && !rdsNames.Contains(rds, StringComparer.Ordinal))
            {
                rdsNames.Add(rds);
            }

            // The default chain serves whatever no other chain matches: prefer it as the listener's main HCM.
            if (primary is null || ReferenceEquals(chain, listener.DefaultFilterChain))
            {
                (primary, primaryRds, primaryInline) = (hcm, rds, inline);
            }
        }

        Throw(errors);
        return new ListenerResource(listener.Name, listener, primary!, primaryRds, primaryInline) { RouteConfigNames = rdsNames };
    }

    private static HttpConnectionManager? DecodeHttpConnectionManager(Any any, string where, List<string> errors)
    {
        try
        {
            return HttpConnectionManager.Parser.ParseFrom(any.Value);
        }
        catch (Exception ex) when (ex is InvalidProtocolBufferException or InvalidOperationException)
        {
            errors.Add($"{where} HttpConnectionManager cannot be decoded: {ex.Message}");
            return null;
        }
    }

    private static void CollectHttpConnectionManagerErrors(HttpConnectionManager hcm, string prefix, List<string> errors, out string? rdsName, out RouteConfiguration? inline, bool serverSide = false)
    {
        rdsName = null;
        inline = null;
        switch (hcm.RouteSpecifierCase)
        {
            case HttpConnectionManager.RouteSpecifierOneofCase.Rds:
                var source = hcm.Rds.ConfigSource;
                if (source is null || source.ConfigSourceSpecifierCase is not (ConfigSource.ConfigSourceSpecifierOneofCase.Ads or ConfigSource.ConfigSourceSpecifierOneofCase.Self))
                {
                    errors.Add($"{prefix}HttpConnectionManager rds.config_source must be ads or self");
                }

                if (string.IsNullOrEmpty(hcm.Rds.RouteConfigName))
                {
                    errors.Add($"{prefix}HttpConnectionManager rds.route_config_name is empty");
                }

                rdsName = hcm.Rds.RouteConfigName;
                break;
            case HttpConnectionManager.RouteSpecifierOneofCase.RouteConfig:
                CollectRouteConfigurationErrors(hcm.RouteConfig, errors, $"{prefix}HttpConnectionManager route_config ", serverSide);
                inline = hcm.RouteConfig;
                break;
            default:
                errors.Add($"{prefix}HttpConnectionManager has neither rds nor route_config");
                break;
        }

        CollectHttpFilterErrors(hcm, prefix, errors);
    }

    private static void CollectHttpFilterErrors(HttpConnectionManager hcm, string prefix, List<string> errors)
    {
        if (hcm.HttpFilters.Count == 0)
        {
            errors.Add($"{prefix}HttpConnectionManager has no http_filters (the router filter is required)");
            return;
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < hcm.HttpFilters.Count; i++)
        {
            var filter = hcm.HttpFilters[i];
            var where = $"{prefix}http_filters[{i}] '{filter.Name}'";
            if (string.IsNullOrEmpty(filter.Name))
            {
                errors.Add($"{prefix}http_filters[{i}] has an empty name");
            }
            else if (!names.Add(filter.Name))
            {
                errors.Add($"{where} is a duplicate filter name");
            }

            var typeUrl = filter.TypedConfig?.TypeUrl;
            var isRouter = typeUrl == RouterTypeUrl;
            if (typeUrl is null)
            {
                if (!filter.IsOptional)
                {
                    errors.Add($"{where} has no typed_config");
                }
            }
            else if (!KnownHttpFilterTypeUrls.Contains(typeUrl) && !filter.IsOptional)
            {
                errors.Add($"{where} has unsupported config type '{typeUrl}' and is not optional");
            }

            var last = i == hcm.HttpFilters.Count - 1;
            if (isRouter && !last)
            {
                errors.Add($"{where} is the router but not the last filter");
            }
            else if (last && !isRouter)
            {
                errors.Add($"{where} is the last filter but not the router");
            }
        }
    }

    public static RouteConfiguration ValidateRouteConfiguration(RouteConfiguration routes)
    {
        var errors = new List<string>();
        CollectRouteConfigurationErrors(routes, errors, string.Empty);
        Throw(errors);
        return routes;
    }

    private static void CollectRouteConfigurationErrors(RouteConfiguration routes, List<string> errors, string prefix, bool serverSide = false)
    {
        for (var v = 0; v < routes.VirtualHosts.Count; v++)
        {
            var host = routes.VirtualHosts[v];
            var where = $"{prefix}virtual_hosts[{v}] '{host.Name}'";
            if (host.Domains.Count == 0)
            {
                errors.Add($"{where} has no domains");
            }

            foreach (var domain in host.Domains)
            {
                if (!IsValidDomainPattern(domain))
                {
                    errors.Add($"{where} domain '{domain}' is invalid (one '*' at the start or end at most)");
                }
            }

            for (var r = 0; r < host.Routes.Count; r++)
            {
                CollectRouteErrors(host.Routes[r], $"{where} routes[{r}]", errors);
            }
        }

        // What the structural checks pass must also compile into the data plane's route table (RE2-only
        // regex syntax, supported actions and policies): a configuration the request path would refuse is
        // NACKed here rather than ACKed and then ignored. A server listener's routes (istiod's inbound route: prefix /,
        // non_forwarding_action, gRFC A36) are never compiled into the client route table.
        if (errors.Count == 0 && !serverSide)
        {
            foreach (var error in RouteTableCompiler.Validate(routes))
            {
                errors.Add(prefix + error);
            }
        }
    }

    private static void CollectRouteErrors(Route route, string where, List<string> errors)
    {
        if (route.Match is null)
        {
            errors.Add($"{where} has no match");
        }
        else
        {
            var match = route.Match;
            switch (match.PathSpecifierCase)
            {
                case RouteMatch.PathSpecifierOneofCase.Prefix:
                case RouteMatch.PathSpecifierOneofCase.Path:
                    break;
                case RouteMatch.PathSpecifierOneofCase.SafeRegex:
                    CheckRegex(match.SafeRegex, $"{where} match.safe_regex", errors);
                    break;
                case RouteMatch.PathSpecifierOneofCase.None:
                    errors.Add($"{where} match has no path specifier (prefix, path or safe_regex)");
                    break;
                default:
                    errors.Add($"{where} match uses unsupported path specifier {match.PathSpecifierCase}");
                    break;
            }

            for (var h = 0; h < match.Headers.Count; h++)
            {
                var header = match.Headers[h];
                var hw = $"{where} match.headers[{h}] '{header.Name}'";
                if (string.IsNullOrEmpty(header.Name))
                {
                    errors.Add($"{where} match.headers[{h}] has an empty name");
                }

                switch (header.HeaderMatchSpecifierCase)
                {
                    case HeaderMatcher.HeaderMatchSpecifierOneofCase.None:
                        errors.Add($"{hw} has no match specifier");
                        break;
                    case HeaderMatcher.HeaderMatchSpecifierOneofCase.RangeMatch:
                        if (header.RangeMatch.Start > header.RangeMatch.End)
                        {
                            errors.Add($"{hw} range_match start {header.RangeMatch.Start} is after end {header.RangeMatch.End}");
                        }

                        break;
                    case var _ when HeaderMatchers.TryGetStringMatcher(header, out var stringMatcher):
                        CheckStringMatcher(stringMatcher, hw, errors);
                        break;
                }
            }

            for (var q = 0; q < match.QueryParameters.Count; q++)
            {
                var parameter = match.QueryParameters[q];
                if (parameter.QueryParameterMatchSpecifierCase == QueryParameterMatcher.QueryParameterMatchSpecifierOneofCase.StringMatch)
                {
                    CheckStringMatcher(parameter.StringMatch, $"{where} match.query_parameters[{q}] '{parameter.Name}'", errors);
                }
            }

            if (match.RuntimeFraction?.DefaultValue is { } fraction && fraction.Numerator > DenominatorOf(fraction.Denominator))
            {
                errors.Add($"{where} match.runtime_fraction numerator {fraction.Numerator} exceeds its denominator");
            }
        }

        switch (route.ActionCase)
        {
            case Route.ActionOneofCase.Route_:
                CollectRouteActionErrors(route.Route_, where, errors);
                break;
            case Route.ActionOneofCase.None:
                errors.Add($"{where} has no action");
                break;
        }
    }

    private static uint DenominatorOf(Envoy.Type.V3.FractionalPercent.Types.DenominatorType denominator) => denominator switch
    {
        Envoy.Type.V3.FractionalPercent.Types.DenominatorType.Hundred => 100,
        Envoy.Type.V3.FractionalPercent.Types.DenominatorType.TenThousand => 10_000,
        _ => 1_000_000,
    };

    private static void CollectRouteActionErrors(RouteAction action, string where, List<string> errors)
    {
        switch (action.ClusterSpecifierCase)
        {
            case RouteAction.ClusterSpecifierOneofCase.Cluster:
                if (string.IsNullOrEmpty(action.Cluster))
                {
                    errors.Add($"{where} route.cluster is empty");
                }

                break;
            case RouteAction.ClusterSpecifierOneofCase.WeightedClusters:
                ulong total = 0;
                if (action.WeightedClusters.Clusters.Count == 0)
                {
                    errors.Add($"{where} route.weighted_clusters has no clusters");
                }

                for (var c = 0; c < action.WeightedClusters.Clusters.Count; c++)
                {
                    var weighted = action.WeightedClusters.Clusters[c];
                    if (string.IsNullOrEmpty(weighted.Name))
                    {
                        errors.Add($"{where} route.weighted_clusters.clusters[{c}] has an empty name");
                    }

                    total += weighted.Weight ?? 0;
                }

                if (action.WeightedClusters.Clusters.Count > 0 && total == 0)
                {
                    errors.Add($"{where} route.weighted_clusters total weight is 0");
                }
                else if (total > uint.MaxValue)
                {
                    errors.Add($"{where} route.weighted_clusters total weight {total} exceeds {uint.MaxValue}");
                }

                break;
            case RouteAction.ClusterSpecifierOneofCase.None:
                errors.Add($"{where} route action names no cluster");
                break;
            default:
                errors.Add($"{where} route action uses unsupported cluster specifier {action.ClusterSpecifierCase}");
                break;
        }

        if (action.RegexRewrite?.Pattern is { } rewrite)
        {
            CheckRegex(rewrite, $"{where} route.regex_rewrite", errors);
        }

        foreach (var policy in action.HashPolicy)
        {
            if (policy.PolicySpecifierCase == RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.Header && policy.Header.RegexRewrite?.Pattern is { } pattern)
            {
                CheckRegex(pattern, $"{where} route.hash_policy header '{policy.Header.HeaderName}' regex_rewrite", errors);
            }
        }
    }

    private static void CheckStringMatcher(StringMatcher matcher, string where, List<string> errors)
    {
        switch (matcher.MatchPatternCase)
        {
            case StringMatcher.MatchPatternOneofCase.SafeRegex:
                CheckRegex(matcher.SafeRegex, where + " safe_regex", errors);
                break;
            case StringMatcher.MatchPatternOneofCase.None:
                errors.Add($"{where} string_match has no pattern");
                break;
        }
    }

    private static void CheckRegex(RegexMatcher matcher, string where, List<string> errors)
    {
        // xDS regexes are RE2 (as for Envoy and gRPC's clients): checked with RE2's grammar, not .NET's, which
        // refuses valid RE2 such as (?P<name>re), \p{Greek} or \x{263a}.
        if (!Mesh.Xds.Re2.Re2Regex.TryTranslate(matcher.Regex, out _, out var error))
        {
            var prefix = $"regex '{matcher.Regex}' ";
            var why = error!.StartsWith(prefix, StringComparison.Ordinal) ? error[prefix.Length..] : error;
            errors.Add($"{where} regex '{matcher.Regex}' does not compile: it {why}");
        }
    }

    private static bool IsValidDomainPattern(string domain)
    {
        if (domain.Length == 0)
        {
            return false;
        }

        var stars = domain.Count(static c => c == '*');
        return stars == 0 || (stars == 1 && (domain[0] == '*' || domain[^1] == '*'));
    }

    public static ClusterResource ValidateCluster(Cluster cluster)
    {
        var errors = new List<string>();
        string? edsName = null;
        if (cluster.ClusterDiscoveryTypeCase == Cluster.ClusterDiscoveryTypeOneofCase.ClusterType)
        {
            errors.Add($"cluster_type '{cluster.ClusterType.Name}' is not supported");
        }
        else
        {
            switch (cluster.Type)
            {
                case Cluster.Types.DiscoveryType.Eds:
                    // As gRPC C-core and grpc-js: an EDS cluster says where its endpoints come from (ADS or the same
                    // server); service_name may be empty (the cluster name is the EDS name) except under an xdstp: name.
                    if (cluster.EdsClusterConfig is not { } eds)
                    {
                        errors.Add("type EDS requires eds_cluster_config (with eds_config ads or self)");
                        break;
                    }

                    if (eds.EdsConfig is null)
                    {
                        errors.Add("eds_cluster_config.eds_config is required (ads or self)");
                    }
                    else if (eds.EdsConfig.ConfigSourceSpecifierCase is not (ConfigSource.ConfigSourceSpecifierOneofCase.Ads or ConfigSource.ConfigSourceSpecifierOneofCase.Self))
                    {
                        errors.Add("eds_cluster_config.eds_config must be ads or self");
                    }

                    if (eds.ServiceName.Length == 0 && cluster.Name.StartsWith("xdstp:", StringComparison.Ordinal))
                    {
                        errors.Add("eds_cluster_config.service_name must be set when the cluster has an xdstp: name");
                    }

                    edsName = eds.ServiceName.Length == 0 ? cluster.Name : eds.ServiceName;
                    break;
                case Cluster.Types.DiscoveryType.Static:
                case Cluster.Types.DiscoveryType.LogicalDns:
                    if (cluster.LoadAssignment is null)
                    {
                        errors.Add($"type {cluster.Type} requires load_assignment");
                    }
                    else if (cluster.Type == Cluster.Types.DiscoveryType.Static)
                    {
                        CollectEndpointErrors(cluster.LoadAssignment, errors, "load_assignment ", requireIp: true);
                    }
                    else
                    {
                        CollectLogicalDnsErrors(cluster.LoadAssignment, errors);
                    }

                    break;
                default:
                    errors.Add($"discovery type {cluster.Type} is not supported (EDS, STATIC or LOGICAL_DNS)");
                    break;
            }
        }

        switch (cluster.LbPolicy)
        {
            case Cluster.Types.LbPolicy.RoundRobin:
            case Cluster.Types.LbPolicy.LeastRequest:
            case Cluster.Types.LbPolicy.Random:
                break;
            case Cluster.Types.LbPolicy.RingHash:
                CollectRingHashErrors(cluster, errors);
                break;
            case Cluster.Types.LbPolicy.LoadBalancingPolicyConfig:
                break;
            default:
                errors.Add($"lb_policy {cluster.LbPolicy} is not supported (ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH)");
                break;
        }

        if (cluster.LoadBalancingPolicy is { } typed)
        {
            var supported = typed.Policies.Any(static p => p.TypedExtensionConfig?.TypedConfig is { } c && KnownLoadBalancingPolicyTypeUrls.Contains(c.TypeUrl));
            if (!supported)
            {
                var seen = string.Join(", ", typed.Policies.Select(static p => "'" + (p.TypedExtensionConfig?.TypedConfig?.TypeUrl ?? "(none)") + "'"));
                errors.Add($"load_balancing_policy has no supported policy (found {seen})");
            }
        }

        if (cluster.TransportSocket?.TypedConfig is { } tls && tls.TypeUrl != XdsTypeUrls.UpstreamTlsContext)
        {
            errors.Add($"transport_socket has unsupported config type '{tls.TypeUrl}' (UpstreamTlsContext only)");
        }

        CollectUpstreamTlsErrors(cluster.TransportSocket, "transport_socket", errors);
        for (var m = 0; m < cluster.TransportSocketMatches.Count; m++)
        {
            var match = cluster.TransportSocketMatches[m];
            CollectUpstreamTlsErrors(match.TransportSocket, $"transport_socket_matches[{m}] '{match.Name}' transport_socket", errors);
        }

        // What the structural checks pass must also compile into the data plane's load balancer and outlier
        // detector (gRFC A42, A48, A50, A52 ranges such as choice_count >= 2 or percentages <= 100): a cluster the
        // request path would refuse is NACKed here rather than ACKed and then failed on first use.
        if (errors.Count == 0)
        {
            CollectCompileErrors(cluster, errors);
        }

        Throw(errors);
        return new ClusterResource(cluster.Name, cluster, edsName);
    }

    private static void CollectCompileErrors(Cluster cluster, List<string> errors)
    {
        try
        {
            _ = LoadBalancerPolicy.FromCluster(cluster);
            if (cluster.OutlierDetection is { } outlier)
            {
                _ = OutlierDetectionSettings.FromProto(cluster.Name, outlier);
            }
        }
        catch (NotSupportedException ex)
        {
            errors.Add(WithoutClusterName(cluster, ex.Message));
        }

        try
        {
            _ = ClusterTransports.Of(cluster);
        }
        catch (InvalidDataException ex)
        {
            errors.Add(WithoutClusterName(cluster, ex.Message));
        }
    }

    // The compilers name the cluster ("Cluster 'x': ... ."); the NACK already carries the resource name.
    private static string WithoutClusterName(Cluster cluster, string message)
    {
        var prefix = $"Cluster '{cluster.Name}': ";
        message = message.StartsWith(prefix, StringComparison.Ordinal) ? message[prefix.Length..] : message;
        return message.TrimEnd('.');
    }

    private static void CollectUpstreamTlsErrors(TransportSocket? socket, string where, List<string> errors)
    {
        if (socket?.TypedConfig is not { TypeUrl: XdsTypeUrls.UpstreamTlsContext } config)
        {
            return;
        }

        UpstreamTlsContext tls;
        try
        {
            tls = UpstreamTlsContext.Parser.ParseFrom(config.Value);
        }
        catch (InvalidProtocolBufferException ex)
        {
            errors.Add($"{where} UpstreamTlsContext cannot be decoded: {ex.Message}");
            return;
        }

        CollectCommonTlsErrors(tls.CommonTlsContext, $"{where} UpstreamTlsContext common_tls_context", errors);
    }

    private static void CollectDownstreamTlsErrors(Any config, string where, List<string> errors)
    {
        DownstreamTlsContext tls;
        try
        {
            tls = DownstreamTlsContext.Parser.ParseFrom(config.Value);
        }
        catch (InvalidProtocolBufferException ex)
        {
            errors.Add($"{where} DownstreamTlsContext cannot be decoded: {ex.Message}");
            return;
        }

        // gRFC A29: a server has no SNI-based certificate selection and does no OCSP stapling.
        if (tls.RequireSni is true)
        {
            errors.Add($"{where} DownstreamTlsContext require_sni is not supported");
        }

        if (tls.OcspStaplePolicy != DownstreamTlsContext.Types.OcspStaplePolicy.LenientStapling)
        {
            errors.Add($"{where} DownstreamTlsContext ocsp_staple_policy {tls.OcspStaplePolicy} is not supported (LENIENT_STAPLING only)");
        }

        CollectCommonTlsErrors(tls.CommonTlsContext, $"{where} DownstreamTlsContext common_tls_context", errors);
    }

    /// <summary>
    /// gRFC A29: certificates come from certificate provider instances only; inline certificates, TLS parameters,
    /// custom handshakers and the validation options gRPC does not implement are rejected rather than ignored.
    /// </summary>
    private static void CollectCommonTlsErrors(CommonTlsContext? common, string where, List<string> errors)
    {
        if (common is null)
        {
            return;
        }

        if (common.TlsParams is not null)
        {
            errors.Add($"{where}.tls_params is not supported");
        }

        if (common.CustomHandshaker is not null)
        {
            errors.Add($"{where}.custom_handshaker is not supported");
        }

        if (common.TlsCertificates.Count > 0)
        {
            errors.Add($"{where}.tls_certificates is not supported (use tls_certificate_provider_instance)");
        }

        var (validation, vw) = common.ValidationContextTypeCase switch
        {
            CommonTlsContext.ValidationContextTypeOneofCase.ValidationContext => (common.ValidationContext, $"{where}.validation_context"),
            CommonTlsContext.ValidationContextTypeOneofCase.CombinedValidationContext => (common.CombinedValidationContext.DefaultValidationContext, $"{where}.combined_validation_context.default_validation_context"),
            _ => (null, where),
        };
        if (validation is null)
        {
            return;
        }

        if (validation.VerifyCertificateSpki.Count > 0)
        {
            errors.Add($"{vw}.verify_certificate_spki is not supported");
        }

        if (validation.VerifyCertificateHash.Count > 0)
        {
            errors.Add($"{vw}.verify_certificate_hash is not supported");
        }

        if (validation.RequireSignedCertificateTimestamp is true)
        {
            errors.Add($"{vw}.require_signed_certificate_timestamp is not supported");
        }

        if (validation.Crl is not null)
        {
            errors.Add($"{vw}.crl is not supported");
        }

        if (validation.CustomValidatorConfig is not null)
        {
            errors.Add($"{vw}.custom_validator_config is not supported");
        }

        for (var i = 0; i < validation.MatchSubjectAltNames.Count; i++)
        {
            if (!StringMatch.TryCompile(validation.MatchSubjectAltNames[i], out _, out var error))
            {
                errors.Add($"{vw}.match_subject_alt_names[{i}] does not compile: {error}");
            }
        }

        for (var i = 0; i < validation.MatchTypedSubjectAltNames.Count; i++)
        {
            if (validation.MatchTypedSubjectAltNames[i].Matcher is not { } matcher)
            {
                errors.Add($"{vw}.match_typed_subject_alt_names[{i}] has no matcher");
            }
            else if (!StringMatch.TryCompile(matcher, out _, out var error))
            {
                errors.Add($"{vw}.match_typed_subject_alt_names[{i}] does not compile: {error}");
            }
        }
    }

    private static void CollectRingHashErrors(Cluster cluster, List<string> errors)
    {
        var config = cluster.RingHashLbConfig;
        if (config is null)
        {
            return;
        }

        if (config.HashFunction != Cluster.Types.RingHashLbConfig.Types.HashFunction.XxHash)
        {
            errors.Add($"ring_hash_lb_config.hash_function {config.HashFunction} is not supported (XX_HASH only)");
        }

        var min = config.MinimumRingSize ?? 1024;
        var max = config.MaximumRingSize ?? MaxRingSize;
        if (min == 0 || min > MaxRingSize)
        {
            errors.Add($"ring_hash_lb_config.minimum_ring_size {min} must be in 1..{MaxRingSize}");
        }

        if (max == 0 || max > MaxRingSize)
        {
            errors.Add($"ring_hash_lb_config.maximum_ring_size {max} must be in 1..{MaxRingSize}");
        }

        if (min > max)
        {
            errors.Add($"ring_hash_lb_config.minimum_ring_size {min} exceeds maximum_ring_size {max}");
        }
    }

    private static void CollectLogicalDnsErrors(ClusterLoadAssignment assignment, List<string> errors)
    {
        if (assignment.Endpoints.Count != 1 || assignment.Endpoints[0].LbEndpoints.Count != 1)
        {
            errors.Add("LOGICAL_DNS load_assignment must have exactly one locality with exactly one endpoint");
            return;
        }

        var address = assignment.Endpoints[0].LbEndpoints[0].Endpoint?.Address?.SocketAddress;
        if (address is null || string.IsNullOrEmpty(address.Address) || address.PortSpecifierCase != SocketAddress.PortSpecifierOneofCase.PortValue || address.PortValue is 0 or > 65535)
        {
            errors.Add("LOGICAL_DNS load_assignment endpoint needs a socket_address with a host and a port_value in 1..65535");
        }
    }

    public static ClusterLoadAssignment ValidateEndpoints(ClusterLoadAssignment assignment)
    {
        var errors = new List<string>();
        CollectEndpointErrors(assignment, errors, string.Empty, requireIp: true);
        Throw(errors);
        return assignment;
    }

    private static void CollectEndpointErrors(ClusterLoadAssignment assignment, List<string> errors, string prefix, bool requireIp)
    {
        var priorities = new SortedSet<uint>();
        var addresses = new HashSet<string>(StringComparer.Ordinal);
        var localities = new HashSet<(uint, string, string, string)>();
        var localityWeights = new Dictionary<uint, ulong>();
        for (var l = 0; l < assignment.Endpoints.Count; l++)
        {
            var group = assignment.Endpoints[l];
            var where = $"{prefix}endpoints[{l}]";
            if (group.Locality is null)
            {
                errors.Add($"{where} has no locality");
            }
            else if (!localities.Add((group.Priority, group.Locality.Region, group.Locality.Zone, group.Locality.SubZone)))
            {
                errors.Add($"{where} repeats locality {{region='{group.Locality.Region}', zone='{group.Locality.Zone}', sub_zone='{group.Locality.SubZone}'}} at priority {group.Priority}");
            }

            priorities.Add(group.Priority);
            for (var e = 0; e < group.LbEndpoints.Count; e++)
            {
                var endpoint = group.LbEndpoints[e];
                var ew = $"{where}.lb_endpoints[{e}]";
                var socket = endpoint.Endpoint?.Address?.SocketAddress;
                if (socket is null)
                {
                    errors.Add($"{ew} has no endpoint.address.socket_address");
                    continue;
                }

                if (requireIp && !IPAddress.TryParse(socket.Address, out _))
                {
                    errors.Add($"{ew} address '{socket.Address}' is not an IP address");
                }

                if (socket.PortSpecifierCase != SocketAddress.PortSpecifierOneofCase.PortValue || socket.PortValue is 0 or > 65535)
                {
                    errors.Add($"{ew} port must be a port_value in 1..65535");
                }
                else if (!addresses.Add(socket.Address + ":" + socket.PortValue.ToString(CultureInfo.InvariantCulture)))
                {
                    errors.Add($"{ew} duplicates address {socket.Address}:{socket.PortValue}");
                }

                // gRPC C-core: an endpoint weight, when set, must be greater than 0.
                if (endpoint.LoadBalancingWeight is 0)
                {
                    errors.Add($"{ew} load_balancing_weight must be greater than 0");
                }
            }

            // gRPC C-core: the locality weights of one priority must fit a uint32.
            var sum = localityWeights.GetValueOrDefault(group.Priority) + (group.LoadBalancingWeight ?? 0);
            localityWeights[group.Priority] = sum;
            if (sum > uint.MaxValue && sum - (group.LoadBalancingWeight ?? 0) <= uint.MaxValue)
            {
                errors.Add($"{prefix}sum of locality weights for priority {group.Priority} exceeds {uint.MaxValue}");
            }
        }

        uint expected = 0;
        foreach (var priority in priorities)
        {
            if (priority != expected)
            {
                errors.Add($"{prefix}priorities are not contiguous: missing priority {expected}");
                break;
            }

            expected++;
        }
    }

    private static void Throw(List<string> errors)
    {
        if (errors.Count > 0)
        {
            throw new XdsValidationException(string.Join("; ", errors));
        }
    }
}

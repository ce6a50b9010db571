using System.Globalization;
using Google.Protobuf.Collections;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Http.Fault.V3;
using Envoy.Extensions.Filters.Http.Router.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Type.Matcher.V3;
using Envoy.Type.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Registry;
using Mesh.Xds;
using CommonFaultDelay = Envoy.Extensions.Filters.Common.Fault.V3.FaultDelay;
using EnvoyCluster = Envoy.Config.Cluster.V3.Cluster;
using EnvoyOutlier = Envoy.Config.Cluster.V3.OutlierDetection;
using EnvoyRoute = Envoy.Config.Route.V3.Route;
using HttpProtocolOptions = Envoy.Config.Core.V3.HttpProtocolOptions;
using UpstreamHttpProtocolOptions = Envoy.Extensions.Upstreams.Http.V3.HttpProtocolOptions;
using IstioDestinationRule = Mesh.ControlPlane.Config.DestinationRule;

namespace Mesh.ControlPlane.Translation;

/// <summary>
/// Translates Istio configuration plus the service registry into the resources istiod serves to
/// proxyless gRPC clients: per service port one Listener (ApiListener + HCM over RDS), one
/// RouteConfiguration, one Cluster per subset (EDS over ADS) and one ClusterLoadAssignment per cluster.
/// </summary>
internal sealed class XdsTranslator(string domain, string rootNamespace = XdsTranslator.DefaultRootNamespace, string trustDomain = XdsTranslator.DefaultTrustDomain)
{
    /// <summary>The SPIFFE trust domain of the identities in <c>ISTIO_MUTUAL</c> SAN lists unless another is given.</summary>
    public const string DefaultTrustDomain = "cluster.local";

    /// <summary>istiod's default root namespace (meshConfig.rootNamespace = the namespace istiod runs in).</summary>
    public const string DefaultRootNamespace = "istio-system";

    public string Domain { get; } = domain;

    /// <summary>Where mesh-wide PeerAuthentication and AuthorizationPolicy live.</summary>
    public string RootNamespace { get; } = rootNamespace;

    /// <summary>The trust domain of the SPIFFE identities clusters expect of their peers.</summary>
    public string TrustDomain { get; } = trustDomain;

    public static string ListenerName(string fqdn, uint port) => IstioNaming.ListenerName(fqdn, (int)port);

    public static string ClusterName(uint port, string? subset, string fqdn) => IstioNaming.ClusterName((int)port, subset, fqdn);

    public static string RouteName(uint port, string fqdn) => IstioNaming.RouteName((int)port, fqdn);

    public XdsSnapshot Translate(MeshConfig config, RegistrySnapshot registry, long version)
    {
        var listeners = new Dictionary<string, XdsResource>(StringComparer.Ordinal);
        var routes = new Dictionary<string, XdsResource>(StringComparer.Ordinal);
        var scopedRoutes = new Dictionary<string, ScopedRouteConfiguration>(StringComparer.Ordinal);
        var clusters = new Dictionary<string, XdsResource>(StringComparer.Ordinal);
        var endpoints = new Dictionary<string, XdsResource>(StringComparer.Ordinal);

        var rules = new Dictionary<string, IstioDestinationRule>(StringComparer.Ordinal);
        foreach (var dr in config.DestinationRules)
        {
            rules.TryAdd(HostNames.ToFqdn(dr.Host, dr.Namespace, Domain), dr);
        }

        foreach (var service in registry.Services)
        {
            // A VirtualService bound only to gateways has no effect on the mesh (istiod applies it to those gateways only).
            var virtualServices = config.VirtualServices
                .Where(vs => vs.AppliesToMesh && vs.Hosts.Any(h => HostNames.ToFqdn(h, vs.Namespace, Domain) == service.Hostname))
                .ToList();
            rules.TryGetValue(service.Hostname, out var rule);
            foreach (var port in service.Ports)
            {
                var listener = BuildListener(service.Hostname, port.Number);
                listeners[listener.Name] = XdsResource.Create(listener.Name, listener);
                var (skeleton, scoped) = BuildRoute(service, port.Number, virtualServices, registry, rules);
                if (scoped.Count == 0)
                {
                    // No VirtualService, or none with a route for this port: istiod's default route.
                    scoped.Add(new ScopedRoute(BuildDefaultRoute(service, port.Number, rules), null, -1, CatchAll: true));
                }

                if (scoped.Any(r => r.Source is not null))
                {
                    // Only when every route is restricted to some clients can a client be left with none; it then
                    // gets the default route, as istiod falls back to it when no route applies to the proxy.
                    var fallback = scoped.All(r => r.Source is not null) ? BuildDefaultRoute(service, port.Number, rules) : null;
                    scopedRoutes[skeleton.Name] = new ScopedRouteConfiguration(skeleton, scoped, fallback);
                }
                else
                {
                    skeleton.VirtualHosts[0].Routes.AddRange(scoped.Select(r => r.Route));
                    routes[skeleton.Name] = XdsResource.Create(skeleton.Name, skeleton);
                }

                foreach (var subset in Subsets(rule))
                {
                    var policy = TrafficPolicies.Resolve(rule, subset, port.Number);
                    var cluster = BuildCluster(ClusterName(port.Number, subset?.Name, service.Hostname), policy);
                    ApplyTls(cluster, policy?.TlsMode, service, port.Number, subset?.Labels);
                    clusters[cluster.Name] = XdsResource.Create(cluster.Name, cluster);
                    var cla = BuildLoadAssignment(cluster.Name, service, port.Number, subset?.Labels);
                    endpoints[cla.ClusterName] = XdsResource.Create(cla.ClusterName, cla);
                }
            }
        }

        return new XdsSnapshot(version, Domain, listeners, routes, clusters, endpoints, scopedRoutes)
        {
            Inbound = new InboundListeners(config.PeerAuthentications, config.AuthorizationPolicies, registry, RootNamespace, config.EnvoyFilters),
            Telemetry = new TelemetryListeners(config, registry, clusters.Keys.ToHashSet(StringComparer.Ordinal), RootNamespace),
        };
    }

    private static IEnumerable<Subset?> Subsets(IstioDestinationRule? rule)
    {
        yield return null;
        foreach (var subset in rule?.Subsets ?? [])
        {
            yield return subset;
        }
    }

    // ---- LDS ----

    private static Listener BuildListener(string fqdn, uint port)
    {
        var hcm = new HttpConnectionManager
        {
            Rds = new Rds
            {
                ConfigSource = new ConfigSource { Ads = new AggregatedConfigSource(), ResourceApiVersion = Envoy.Config.Core.V3.ApiVersion.V3 },
                RouteConfigName = RouteName(port, fqdn),
            },
        };
        hcm.HttpFilters.Add(new HttpFilter { Name = HttpFilterNames.Fault, TypedConfig = Any.Pack(new HTTPFault()) });
        hcm.HttpFilters.Add(new HttpFilter { Name = HttpFilterNames.Router, TypedConfig = Any.Pack(new Router()) });
        return new Listener
        {
            Name = ListenerName(fqdn, port),
            ApiListener = new ApiListener { ApiListener_ = Any.Pack(hcm) },
        };
    }

    // ---- RDS ----

    /// <summary>istiod's default retry policy (mesh <c>defaultHttpRetryPolicy</c> unset, 503 excluded as since Istio 1.24).</summary>
    internal const string DefaultRetryOn = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";

    /// <summary>The type URL of Envoy's <c>previous_hosts</c> retry host predicate config (an empty message).</summary>
    internal const string PreviousHostsTypeUrl = XdsTypeUrls.Prefix + "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate";

    internal const string PreviousHostsName = "envoy.retry_host_predicates.previous_hosts";

    /// <summary>The body size limit istiod sets on route configurations (1 MiB, also its validation limit).</summary>
    internal const uint MaxDirectResponseBodyBytes = IstioYamlParser.MaxDirectResponseBody;

    private (RouteConfiguration Skeleton, List<ScopedRoute> Routes) BuildRoute(MeshService service, uint port, List<Config.VirtualService> virtualServices,
        RegistrySnapshot registry, Dictionary<string, IstioDestinationRule> rules)
    {
        var vhost = new VirtualHost { Name = ListenerName(service.Hostname, port) };
        foreach (var form in HostNames.ShortForms(service.Hostname, Domain))
        {
            vhost.Domains.Add(form);
            vhost.Domains.Add($"{form}:{port}");
        }

        var routes = new List<ScopedRoute>();
        for (var group = 0; group < virtualServices.Count; group++)
        {
            var vs = virtualServices[group];
            var catchAll = false;
            foreach (var http in vs.Http)
            {
                // A match names a port, or sidecars ("mesh") are not among its gateways: not for this route table.
                var applicable = http.Match.Where(m => (m.Port is null || m.Port == port) && (m.Gateways.Count == 0 || m.Gateways.Contains(Config.VirtualService.MeshGateway, StringComparer.Ordinal))).ToList();
                if (http.Match.Count > 0 && applicable.Count == 0)
                {
                    continue;
                }

                // istiod sends a route whose redirect code Envoy does not know without any action, which clients refuse
                // together with the whole table; it is left out here (the parser warned) and still ends the
                // VirtualService's routes if it matches everything.
                var send = http.Redirect is not { IsSupportedCode: false };
                if (applicable.Count == 0)
                {
                    // No match: everything matches, and istiod stops translating the VirtualService here.
                    if (send)
                    {
                        routes.Add(new ScopedRoute(BuildRoute(http, null, vs, service, port, registry, rules), null, group, CatchAll: true));
                    }

                    catchAll = true;
                }
                else
                {
                    foreach (var match in applicable)
                    {
                        var route = BuildRoute(http, match, vs, service, port, registry, rules);
                        var source = SourcePredicate.For(match);
                        var everything = IsCatchAll(route);
                        if (send)
                        {
                            routes.Add(new ScopedRoute(route, source, group, everything));
                        }

                        if (everything && source is null)
                        {
                            // A catch-all for every client: istiod sends nothing after it. One restricted to some
                            // clients ends the VirtualService only for them (see ScopedRouteConfiguration).
                            catchAll = true;
                            break;
                        }
                    }
                }

                if (catchAll)
                {
                    break;
                }
            }
        }

        var config = new RouteConfiguration { Name = RouteName(port, service.Hostname), MaxDirectResponseBodySizeBytes = MaxDirectResponseBodyBytes };
        config.VirtualHosts.Add(vhost);
        return (config, routes);
    }

    /// <summary>
    /// istiod's default route for a service no VirtualService route applies to (on this port, for this client):
    /// everything goes to the service itself with istiod's default route settings. A service whose VirtualService
    /// yields routes gets no such catch-all: a request matching none of them gets 404 (NR), as under istiod.
    /// </summary>
    private EnvoyRoute BuildDefaultRoute(MeshService service, uint port, Dictionary<string, IstioDestinationRule> rules)
    {
        var defaultAction = new RouteAction
        {
            Cluster = ClusterName(port, null, service.Hostname),
            RetryPolicy = DefaultRetryPolicy(consistentHash: false),
        };
        SetTimeout(defaultAction, null);
        if (rules.TryGetValue(service.Hostname, out var rule) && ServiceHash(rule, port) is { } serviceHash)
        {
            defaultAction.HashPolicy.Add(BuildHashPolicy(serviceHash));
        }

        return new EnvoyRoute
        {
            Name = "default",
            Match = new RouteMatch { Prefix = "/" },
            Route_ = defaultAction,
            Decorator = new Decorator { Operation = TraceOperation(service.Hostname, port) },
        };
    }

    /// <summary>istiod's <c>hashForService</c>: the rule's consistent hash, overridden by the port-level one.</summary>
    private static ConsistentHash? ServiceHash(IstioDestinationRule rule, uint port) =>
        rule.TrafficPolicy?.PortLevelSettings.FirstOrDefault(p => p.Port == port)?.LoadBalancer?.ConsistentHash
        ?? rule.TrafficPolicy?.LoadBalancer?.ConsistentHash;

    private static void SetTimeout(RouteAction action, TimeSpan? timeout)
    {
        // istiod writes 0 (no timeout) when the VirtualService sets none, and mirrors it into
        // max_stream_duration for proxyless clients.
        var value = Duration.FromTimeSpan(timeout ?? TimeSpan.Zero);
        action.Timeout = value;
        action.MaxStreamDuration = new RouteAction.Types.MaxStreamDuration { MaxStreamDuration_ = value.Clone() };
    }

    private static RetryPolicy DefaultRetryPolicy(bool consistentHash)
    {
        var policy = new RetryPolicy { NumRetries = 2, RetryOn = DefaultRetryOn, HostSelectionRetryMaxAttempts = 5 };
        if (!consistentHash)
        {
            // With consistent hashing a retry stays on the hashed host.
            policy.RetryHostPredicate.Add(PreviousHosts());
        }

        return policy;
    }

    private static RetryPolicy.Types.RetryHostPredicate PreviousHosts() =>
        new() { Name = PreviousHostsName, TypedConfig = new Any { TypeUrl = PreviousHostsTypeUrl } };

    /// <summary>istiod's <c>ConvertPolicy</c>: null means no retries.</summary>
    private static RetryPolicy? ConvertRetries(HttpRetry? retries, bool consistentHash)
    {
        var policy = DefaultRetryPolicy(consistentHash);
        if (retries is null)
        {
            return policy;
        }

        if (retries.Attempts <= 0)
        {
            return null;
        }

        policy.NumRetries = (uint)retries.Attempts;
        if (!string.IsNullOrEmpty(retries.RetryOn))
        {
            // HTTP status codes in retryOn become retriable_status_codes.
            var conditions = new List<string>();
            foreach (var raw in retries.RetryOn.Split(','))
            {
                var part = raw.Trim();
                if (part.Length == 0)
                {
                    continue;
                }

                if (uint.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var code) && IstioYamlParser.IsKnownHttpStatus((int)code))
                {
                    policy.RetriableStatusCodes.Add(code);
                }
                else
                {
                    conditions.Add(part);
                }
            }

            policy.RetryOn = string.Join(",", conditions);
            if (policy.RetriableStatusCodes.Count > 0 && !policy.RetryOn.Contains("retriable-status-codes", StringComparison.Ordinal))
            {
                policy.RetryOn += policy.RetryOn.Length == 0 ? "retriable-status-codes" : ",retriable-status-codes";
            }
        }

        if (retries.PerTryTimeout is { } perTry)
        {
            policy.PerTryTimeout = Duration.FromTimeSpan(perTry);
        }

        if (retries.RetryIgnorePreviousHosts is { } ignorePrevious)
        {
            policy.RetryHostPredicate.Clear();
            if (ignorePrevious)
            {
                policy.RetryHostPredicate.Add(PreviousHosts());
            }
        }

        if (retries.Backoff is { } backoff)
        {
            policy.RetryBackOff = new RetryPolicy.Types.RetryBackOff { BaseInterval = Duration.FromTimeSpan(backoff) };
        }

        return policy;
    }

    private EnvoyRoute BuildRoute(HttpRoute http, HttpMatchRequest? match, Config.VirtualService vs, MeshService service, uint port, RegistrySnapshot registry,
        Dictionary<string, IstioDestinationRule> rules)
    {
        var name = http.Name ?? string.Empty;
        if (!string.IsNullOrEmpty(match?.Name))
        {
            name = $"{name}.{match.Name}";
        }

        var route = new EnvoyRoute { Name = name, Match = BuildMatch(match) };
        if (!string.IsNullOrEmpty(match?.StatPrefix))
        {
            route.StatPrefix = match.StatPrefix;
        }

        var authority = string.Empty;
        if (http.Headers is { } headers)
        {
            authority = AddHeaderOperations(headers, route.RequestHeadersToAdd, route.RequestHeadersToRemove, route.ResponseHeadersToAdd, route.ResponseHeadersToRemove);
        }

        if (http.Redirect is { } redirect)
        {
            route.Redirect = BuildRedirect(redirect, port);
        }
        else if (http.DirectResponse is { } direct)
        {
            route.DirectResponse = new DirectResponseAction { Status = direct.Status };
            if (direct.Body is not null)
            {
                route.DirectResponse.Body = new DataSource { InlineString = direct.Body };
            }
        }
        else
        {
            route.Route_ = BuildRouteAction(http, route, authority, vs, service, port, registry, rules);
        }

        if (http.Fault is { } fault)
        {
            var httpFault = new HTTPFault();
            if (fault.Delay is { } delay)
            {
                // istiod: percentage per million, else the deprecated integer percent per hundred (0 when absent: no delay).
                httpFault.Delay = new CommonFaultDelay
                {
                    FixedDelay = Duration.FromTimeSpan(delay.FixedDelay),
                    Percentage = delay.Percentage is { } p ? Fraction(p) : Hundredths(delay.Percent),
                };
            }

            if (fault.Abort is { } abort)
            {
                // No percentage written: none sent, and Envoy's default of 0 aborts nothing.
                var faultAbort = new Envoy.Extensions.Filters.Http.Fault.V3.FaultAbort();
                if (abort.Percentage is { } p)
                {
                    faultAbort.Percentage = Fraction(p);
                }

                if (abort.HttpStatus is { } status)
                {
                    faultAbort.HttpStatus = status;
                }
                else
                {
                    faultAbort.GrpcStatus = (uint)abort.GrpcStatus!.Value;
                }

                httpFault.Abort = faultAbort;
            }

            route.TypedPerFilterConfig[HttpFilterNames.Fault] = Any.Pack(httpFault);
        }

        route.Decorator = new Decorator { Operation = RouteOperation(route, vs.Name, port) };
        return route;
    }

    /// <summary>
    /// istiod's <c>GetRouteOperation</c>, the span name of requests on the route (<c>decorator.operation</c>):
    /// <c>host:port</c> of the route's single cluster, else the VirtualService's name and the port, followed by the
    /// matched path (a prefix with <c>*</c>, the exact path or the regex; <c>/*</c> when the route matches no path).
    /// </summary>
    internal static string RouteOperation(EnvoyRoute route, string virtualServiceName, uint port)
    {
        var match = route.Match;
        var path = match?.PathSpecifierCase switch
        {
            RouteMatch.PathSpecifierOneofCase.Prefix => match.Prefix + "*",
            RouteMatch.PathSpecifierOneofCase.Path => match.Path,
            RouteMatch.PathSpecifierOneofCase.SafeRegex => match.SafeRegex.Regex,
            _ => "/*",
        };
        if (route.Route_?.ClusterSpecifierCase == RouteAction.ClusterSpecifierOneofCase.Cluster
            && IstioNaming.TryParseClusterName(route.Route_.Cluster, out _, out var clusterPort, out _, out var host))
        {
            return $"{host}:{clusterPort}{path}";
        }

        return $"{virtualServiceName}:{port}{path}";
    }

    /// <summary>istiod's <c>TraceOperation</c>: the default route's span name.</summary>
    internal static string TraceOperation(string hostname, uint port) => $"{hostname}:{port}/*";

    private RouteAction BuildRouteAction(HttpRoute http, EnvoyRoute route, string authority, Config.VirtualService vs, MeshService service, uint port,
        RegistrySnapshot registry, Dictionary<string, IstioDestinationRule> rules)
    {
        var action = new RouteAction();
        SetTimeout(action, http.Timeout);

        if (http.Rewrite is { } rewrite)
        {
            if (rewrite.UriRegexRewrite is { } regex)
            {
                action.RegexRewrite = new RegexMatchAndSubstitute { Pattern = new RegexMatcher { Regex = regex.Match }, Substitution = regex.Rewrite };
            }
            else if (!string.IsNullOrEmpty(rewrite.Uri))
            {
                action.PrefixRewrite = rewrite.Uri;
            }

            if (!string.IsNullOrEmpty(rewrite.Authority))
            {
                authority = rewrite.Authority;
            }
        }

        if (authority.Length > 0)
        {
            action.HostRewriteLiteral = authority;
        }

        // istiod's MirrorPercent: mirrorPercentage per million, else the deprecated mirrorPercent per hundred, else 100/100;
        // an explicit 0 sends no mirror.
        if (http.Mirror is { } mirror && MirrorFraction(http.MirrorPercentage, http.MirrorPercent) is { } fraction)
        {
            action.RequestMirrorPolicies.Add(MirrorPolicy(DestinationCluster(mirror, vs, port, registry), fraction));
        }

        foreach (var m in http.Mirrors)
        {
            if (MirrorFraction(m.Percentage, null) is { } mirrorFraction)
            {
                action.RequestMirrorPolicies.Add(MirrorPolicy(DestinationCluster(m.Destination, vs, port, registry), mirrorFraction));
            }
        }

        var consistentHash = false;
        if (http.Route.Count == 1)
        {
            var destination = http.Route[0];
            action.Cluster = DestinationCluster(destination.Destination, vs, port, registry);
            if (destination.Headers is { } headers)
            {
                var destinationAuthority = AddHeaderOperations(headers, route.RequestHeadersToAdd, route.RequestHeadersToRemove, route.ResponseHeadersToAdd,
                    route.ResponseHeadersToRemove);
                if (destinationAuthority.Length > 0 && action.HostRewriteSpecifierCase == RouteAction.HostRewriteSpecifierOneofCase.None)
                {
                    action.HostRewriteLiteral = destinationAuthority;
                }
            }

            consistentHash = AddHashPolicy(action, destination.Destination, vs, port, registry, rules);
        }
        else
        {
            var weighted = new WeightedCluster();
            foreach (var destination in http.Route)
            {
                if (destination.Weight == 0)
                {
                    // istiod leaves out zero-weight destinations when there are others.
                    continue;
                }

                var clusterWeight = new WeightedCluster.Types.ClusterWeight
                {
                    Name = DestinationCluster(destination.Destination, vs, port, registry),
                    Weight = destination.Weight,
                };
                if (destination.Headers is { } headers)
                {
                    var destinationAuthority = AddHeaderOperations(headers, clusterWeight.RequestHeadersToAdd, clusterWeight.RequestHeadersToRemove,
                        clusterWeight.ResponseHeadersToAdd, clusterWeight.ResponseHeadersToRemove);
                    if (destinationAuthority.Length > 0)
                    {
                        clusterWeight.HostRewriteLiteral = destinationAuthority;
                    }
                }

                weighted.Clusters.Add(clusterWeight);
                AddHashPolicy(action, destination.Destination, vs, port, registry, rules);
            }

            action.WeightedClusters = weighted;
        }

        if (ConvertRetries(http.Retries, consistentHash) is { } retryPolicy)
        {
            action.RetryPolicy = retryPolicy;
        }

        return action;
    }

    private static FractionalPercent? MirrorFraction(double? percentage, uint? percent) => (percentage, percent) switch
    {
        ({ } p, _) => p > 0 ? Fraction(p) : null,
        (null, { } i) => i > 0 ? Hundredths(i) : null,
        _ => Hundredths(100),
    };

    private static RouteAction.Types.RequestMirrorPolicy MirrorPolicy(string cluster, FractionalPercent fraction) => new()
    {
        Cluster = cluster,
        RuntimeFraction = new RuntimeFractionalPercent { DefaultValue = fraction },
        TraceSampled = false,
    };

    /// <summary>Adds the destination's consistent hash (if its DestinationRule has one); returns whether it did.</summary>
    private bool AddHashPolicy(RouteAction action, Destination destination, Config.VirtualService vs, uint listenerPort, RegistrySnapshot registry,
        Dictionary<string, IstioDestinationRule> rules)
    {
        var host = HostNames.ToFqdn(destination.Host, vs.Namespace, Domain);
        if (!rules.TryGetValue(host, out var rule) || TrafficPolicies.HashFor(rule, destination.Subset, DestinationPort(destination, host, listenerPort, registry)) is not { } hash)
        {
            return false;
        }

        action.HashPolicy.Add(BuildHashPolicy(hash));
        return true;
    }

    private static RedirectAction BuildRedirect(HttpRedirect redirect, uint listenerPort)
    {
        var action = new RedirectAction
        {
            ResponseCode = redirect.RedirectCode switch
            {
                302 => RedirectAction.Types.RedirectResponseCode.Found,
                303 => RedirectAction.Types.RedirectResponseCode.SeeOther,
                307 => RedirectAction.Types.RedirectResponseCode.TemporaryRedirect,
                308 => RedirectAction.Types.RedirectResponseCode.PermanentRedirect,
                _ => RedirectAction.Types.RedirectResponseCode.MovedPermanently,
            },
        };
        if (!string.IsNullOrEmpty(redirect.PrefixRewrite))
        {
            action.PrefixRewrite = redirect.PrefixRewrite;
        }
        else if (!string.IsNullOrEmpty(redirect.Uri))
        {
            action.PathRedirect = redirect.Uri;
        }

        if (!string.IsNullOrEmpty(redirect.Authority))
        {
            action.HostRedirect = redirect.Authority;
        }

        if (!string.IsNullOrEmpty(redirect.Scheme))
        {
            action.SchemeRedirect = redirect.Scheme;
        }

        if (redirect.PortKind != RedirectPortKind.None)
        {
            // Routes are built per listener port, so "the request's port" is that port (as istiod does).
            action.PortRedirect = redirect.PortKind switch
            {
                RedirectPortKind.Port => redirect.Port,
                RedirectPortKind.FromRequestPort => listenerPort,
                _ => 0,
            };
            var scheme = string.IsNullOrEmpty(redirect.Scheme) ? "http" : redirect.Scheme;
            if ((action.PortRedirect == 80 && scheme == "http") || (action.PortRedirect == 443 && scheme == "https"))
            {
                action.PortRedirect = 0;
            }
        }

        return action;
    }

    /// <summary>
    /// istiod's header translation: set → OVERWRITE_IF_EXISTS_OR_ADD, add → APPEND_IF_EXISTS_OR_ADD, each sorted by
    /// name; pseudo-headers and <c>host</c> are not mutated, an <c>:authority</c>/<c>host</c> value is returned to
    /// become the host rewrite instead (set wins over add).
    /// </summary>
    private static string AddHeaderOperations(Headers headers, RepeatedField<HeaderValueOption> requestAdd, RepeatedField<string> requestRemove,
        RepeatedField<HeaderValueOption> responseAdd, RepeatedField<string> responseRemove)
    {
        var setAuthority = Append(headers.Request?.Set, HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExistsOrAdd, requestAdd);
        var addAuthority = Append(headers.Request?.Add, HeaderValueOption.Types.HeaderAppendAction.AppendIfExistsOrAdd, requestAdd);
        requestRemove.AddRange((headers.Request?.Remove ?? []).Where(k => !IsInternalHeader(k)));
        Append(headers.Response?.Set, HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExistsOrAdd, responseAdd);
        Append(headers.Response?.Add, HeaderValueOption.Types.HeaderAppendAction.AppendIfExistsOrAdd, responseAdd);
        responseRemove.AddRange((headers.Response?.Remove ?? []).Where(k => !IsInternalHeader(k)));
        return setAuthority.Length > 0 ? setAuthority : addAuthority;

        static string Append(IReadOnlyDictionary<string, string>? values, HeaderValueOption.Types.HeaderAppendAction appendAction, RepeatedField<HeaderValueOption> target)
        {
            var authority = string.Empty;
            foreach (var (key, value) in (values ?? Config.Empty.Labels).OrderBy(kv => kv.Key, StringComparer.Ordinal))
            {
                if (key.Equals(":authority", StringComparison.OrdinalIgnoreCase) || key.Equals("host", StringComparison.OrdinalIgnoreCase))
                {
                    authority = value;
                }

                if (!IsInternalHeader(key))
                {
                    target.Add(new HeaderValueOption { Header = new HeaderValue { Key = key, Value = value }, AppendAction = appendAction });
                }
            }

            return authority;
        }
    }

    private static bool IsInternalHeader(string name) => name.StartsWith(':') || name.Equals("host", StringComparison.OrdinalIgnoreCase);

    private static RouteAction.Types.HashPolicy BuildHashPolicy(ConsistentHash hash)
    {
        var policy = new RouteAction.Types.HashPolicy();
        if (hash.HttpHeaderName is { } header)
        {
            policy.Header = new RouteAction.Types.HashPolicy.Types.Header { HeaderName = header };
        }
        else if (hash.HttpCookie is { } cookie)
        {
            policy.Cookie = new RouteAction.Types.HashPolicy.Types.Cookie { Name = cookie.Name, Path = cookie.Path ?? string.Empty };
            foreach (var (attributeName, attributeValue) in cookie.Attributes)
            {
                policy.Cookie.Attributes.Add(new RouteAction.Types.HashPolicy.Types.CookieAttribute { Name = attributeName, Value = attributeValue });
            }

            if (cookie.Ttl is { } ttl)
            {
                policy.Cookie.Ttl = Duration.FromTimeSpan(ttl);
            }
        }
        else if (hash.UseSourceIp)
        {
            policy.ConnectionProperties = new RouteAction.Types.HashPolicy.Types.ConnectionProperties { SourceIp = true };
        }
        else if (hash.HttpQueryParameterName is { } query)
        {
            policy.QueryParameter = new RouteAction.Types.HashPolicy.Types.QueryParameter { Name = query };
        }

        return policy;
    }

    /// <summary>Istio percentages (0-100, fractional) as a per-million fraction, truncated as istiod does.</summary>
    private static FractionalPercent Fraction(double percent) => new()
    {
        Numerator = (uint)(percent * 10_000),
        Denominator = FractionalPercent.Types.DenominatorType.Million,
    };

    /// <summary>Istio's integer percentages (the deprecated <c>percent</c> fields and the 100 % default) as istiod writes them: per hundred.</summary>
    private static FractionalPercent Hundredths(uint percent) => new()
    {
        Numerator = percent,
        Denominator = FractionalPercent.Types.DenominatorType.Hundred,
    };

    private string DestinationCluster(Destination destination, Config.VirtualService vs, uint listenerPort, RegistrySnapshot registry)
    {
        var host = HostNames.ToFqdn(destination.Host, vs.Namespace, Domain);
        return ClusterName(DestinationPort(destination, host, listenerPort, registry), destination.Subset, host);
    }

    /// <summary>The destination's port: as written, else the service's only port, else the listener port (istiod's rule).</summary>
    private static uint DestinationPort(Destination destination, string host, uint listenerPort, RegistrySnapshot registry) =>
        destination.Port ?? (registry.Find(host) is { Ports.Count: 1 } target ? target.Ports[0].Number : listenerPort);

    private static RouteMatch BuildMatch(HttpMatchRequest? match)
    {
        var result = new RouteMatch();
        switch (match?.Uri)
        {
            case null or { Kind: StringMatchKind.Present }:
                result.Prefix = "/";
                break;
            case { Kind: StringMatchKind.Exact } m:
                result.Path = m.Value;
                break;
            case { Kind: StringMatchKind.Prefix } m:
                result.Prefix = m.Value;
                break;
            case var m:
                result.SafeRegex = new RegexMatcher { Regex = m.Value };
                break;
        }

        if (match is null)
        {
            return result;
        }

        // istiod writes case_sensitive on every match it translates.
        result.CaseSensitive = !match.IgnoreUriCase;

        foreach (var (name, value) in match.Headers)
        {
            result.Headers.Add(HeaderMatcher(name, value, invert: false));
        }

        foreach (var (name, value) in match.WithoutHeaders)
        {
            // A request without the header must match an inverted value condition (the header counts as empty);
            // Envoy refuses treat_missing_header_as_empty together with present_match, so istiod leaves it off there.
            var matcher = HeaderMatcher(name, value, invert: true);
            matcher.TreatMissingHeaderAsEmpty = value.Kind != StringMatchKind.Present;
            result.Headers.Add(matcher);
        }

        // istiod sorts the header and withoutHeaders matchers by name, then adds the pseudo-header ones.
        if (result.Headers.Count > 1)
        {
            var sorted = result.Headers.OrderBy(h => h.Name, StringComparer.Ordinal).ToArray();
            result.Headers.Clear();
            result.Headers.AddRange(sorted);
        }

        if (match.Method is { } method)
        {
            result.Headers.Add(HeaderMatcher(":method", method, invert: false));
        }

        if (match.Authority is { } authority)
        {
            result.Headers.Add(HeaderMatcher(":authority", authority, invert: false));
        }

        if (match.Scheme is { } scheme)
        {
            result.Headers.Add(HeaderMatcher(":scheme", scheme, invert: false));
        }

        foreach (var (name, value) in match.QueryParams)
        {
            result.QueryParameters.Add(value.Kind == StringMatchKind.Present
                ? new QueryParameterMatcher { Name = name, PresentMatch = true }
                : new QueryParameterMatcher { Name = name, StringMatch = Matcher(value) });
        }

        return result;
    }

    private static HeaderMatcher HeaderMatcher(string name, StringMatch value, bool invert) => value.Kind == StringMatchKind.Present
        ? new HeaderMatcher { Name = name, PresentMatch = true, InvertMatch = invert }
        : HeaderMatchers.Create(name, Matcher(value), invert);

    /// <summary>
    /// istiod's <c>IsCatchAllRoute</c>: a route matching every path (prefix <c>/</c> or regex <c>.*</c>) with no header,
    /// query or metadata condition. Routes after it in the same VirtualService can never match, and istiod sends none.
    /// </summary>
    internal static bool IsCatchAll(EnvoyRoute route)
    {
        var match = route.Match;
        var everyPath = match.PathSpecifierCase switch
        {
            RouteMatch.PathSpecifierOneofCase.Prefix => match.Prefix == "/",
            RouteMatch.PathSpecifierOneofCase.PathSeparatedPrefix => match.PathSeparatedPrefix == "/",
            RouteMatch.PathSpecifierOneofCase.SafeRegex => match.SafeRegex.Regex == ".*",
            _ => false,
        };
        return everyPath && match.Headers.Count == 0 && match.QueryParameters.Count == 0 && match.DynamicMetadata.Count == 0;
    }

    private static StringMatcher Matcher(StringMatch match) => match.Kind switch
    {
        StringMatchKind.Exact => new StringMatcher { Exact = match.Value },
        StringMatchKind.Prefix => new StringMatcher { Prefix = match.Value },
        _ => new StringMatcher { SafeRegex = new RegexMatcher { Regex = match.Value } },
    };

    // ---- CDS ----

    /// <summary>istiod's default circuit breaker limit for every threshold (Envoy's own defaults are too low for pod churn).</summary>
    private const uint UnlimitedThreshold = uint.MaxValue;

    private static EnvoyCluster BuildCluster(string name, EffectivePolicy? policy)
    {
        var cluster = new EnvoyCluster
        {
            Name = name,
            Type = EnvoyCluster.Types.DiscoveryType.Eds,
            EdsClusterConfig = new EnvoyCluster.Types.EdsClusterConfig
            {
                EdsConfig = new ConfigSource { Ads = new AggregatedConfigSource(), ResourceApiVersion = Envoy.Config.Core.V3.ApiVersion.V3 },
                ServiceName = name,
            },
            ConnectTimeout = Duration.FromTimeSpan(policy?.ConnectionPool?.ConnectTimeout ?? TimeSpan.FromSeconds(10)),
            LbPolicy = EnvoyCluster.Types.LbPolicy.RoundRobin,
        };

        ApplyConnectionPool(cluster, policy?.ConnectionPool);
        ApplyOutlierDetection(cluster, policy?.OutlierDetection);
        ApplyLoadBalancer(cluster, policy?.LoadBalancer);
        return cluster;
    }

    /// <summary>
    /// istiod's <c>applyTLS</c>: an explicit <c>ISTIO_MUTUAL</c> gives the cluster a TLS transport socket (SANs: every
    /// service account of the service); <c>DISABLE</c> none; SIMPLE and MUTUAL are reported as not applied by the parser.
    /// Without <c>tls</c>, auto-mTLS as istiod's sidecar cluster builder does it: <c>transport_socket_matches</c>
    /// <c>tlsMode-istio</c> (endpoints labelled <c>security.istio.io/tlsMode: istio</c>, whose EDS metadata says so) and
    /// <c>tlsMode-disabled</c> (the rest, plaintext). Only a cluster with at least one such endpoint gets the matches:
    /// for the others every endpoint would take <c>tlsMode-disabled</c> anyway, and gRPC clients (which read only
    /// <c>transport_socket</c>, gRFC A29) see the same cluster as before.
    /// </summary>
    private void ApplyTls(EnvoyCluster cluster, string? tlsMode, MeshService service, uint port, IReadOnlyDictionary<string, string>? subsetLabels)
    {
        if (tlsMode == "ISTIO_MUTUAL")
        {
            cluster.TransportSocket = IstioTls.UpstreamSocket(IstioTls.ServiceIdentities(service, TrustDomain));
            return;
        }

        if (tlsMode is not null)
        {
            return;
        }

        foreach (var endpoint in service.Endpoints)
        {
            if (endpoint.Ports.ContainsKey(port)
                && (subsetLabels is null || subsetLabels.All(kv => endpoint.Labels.TryGetValue(kv.Key, out var v) && v == kv.Value))
                && endpoint.Labels.TryGetValue(IstioTls.TlsModeLabel, out var mode) && mode == "istio")
            {
                cluster.TransportSocketMatches.AddRange(IstioTls.AutoMtlsMatches(IstioTls.ServiceIdentities(service, TrustDomain)));
                return;
            }
        }
    }

    /// <summary>
    /// istiod's <c>applyConnectionPool</c>: thresholds always present (unlimited unless set to a positive value),
    /// upstream HTTP protocol options when an idle timeout, a request or duration limit is set.
    /// </summary>
    private static void ApplyConnectionPool(EnvoyCluster cluster, Config.ConnectionPoolSettings? pool)
    {
        var thresholds = new CircuitBreakers.Types.Thresholds
        {
            MaxConnections = Positive(pool?.MaxConnections) ?? UnlimitedThreshold,
            MaxPendingRequests = Positive(pool?.Http1MaxPendingRequests) ?? UnlimitedThreshold,
            MaxRequests = Positive(pool?.Http2MaxRequests) ?? UnlimitedThreshold,
            MaxRetries = Positive(pool?.MaxRetries) ?? UnlimitedThreshold,
            TrackRemaining = true,
        };
        cluster.CircuitBreakers = new CircuitBreakers();
        cluster.CircuitBreakers.Thresholds.Add(thresholds);

        var idle = pool?.IdleTimeout ?? pool?.TcpIdleTimeout;
        var perConnection = Positive(pool?.MaxRequestsPerConnection);
        if (pool?.MaxConnectionDuration is null && idle is null && perConnection is null)
        {
            return;
        }

        var common = new HttpProtocolOptions();
        if (idle is { } i)
        {
            common.IdleTimeout = Duration.FromTimeSpan(i);
        }

        if (perConnection is { } p)
        {
            common.MaxRequestsPerConnection = p;
        }

        if (pool?.MaxConnectionDuration is { } d)
        {
            common.MaxConnectionDuration = Duration.FromTimeSpan(d);
        }

        cluster.TypedExtensionProtocolOptions[HttpProtocolOptionsKey] = Any.Pack(new UpstreamHttpProtocolOptions { CommonHttpProtocolOptions = common });
    }

    /// <summary>The <c>typed_extension_protocol_options</c> key of the upstream HTTP protocol options.</summary>
    internal const string HttpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

    private static uint? Positive(int? value) => value is > 0 ? (uint)value.Value : null;

    /// <summary>istiod's <c>applyOutlierDetection</c>, including the panic threshold it sets from minHealthPercent.</summary>
    private static void ApplyOutlierDetection(EnvoyCluster cluster, Config.OutlierDetection? od)
    {
        if (od is null)
        {
            return;
        }

        // Success-rate ejection stays off: Istio has no field for it.
        var outlier = new EnvoyOutlier { EnforcingSuccessRate = 0 };
        if (od.ConsecutiveErrors is > 0 and var errors)
        {
            // The deprecated field counts gateway errors only.
            outlier.ConsecutiveGatewayFailure = (uint)errors;
            outlier.EnforcingConsecutiveGatewayFailure = 100;
            outlier.EnforcingConsecutive5Xx = 0;
        }

        if (od.Consecutive5xxErrors is { } c5)
        {
            outlier.Consecutive5Xx = (uint)c5;
            outlier.EnforcingConsecutive5Xx = c5 > 0 ? 100u : 0u;
        }

        if (od.ConsecutiveGatewayErrors is { } cg)
        {
            outlier.ConsecutiveGatewayFailure = (uint)cg;
            outlier.EnforcingConsecutiveGatewayFailure = cg > 0 ? 100u : 0u;
        }

        if (od.Interval is { } interval)
        {
            outlier.Interval = Duration.FromTimeSpan(interval);
        }

        if (od.BaseEjectionTime is { } bet)
        {
            outlier.BaseEjectionTime = Duration.FromTimeSpan(bet);
        }

        if (od.MaxEjectionPercent is > 0 and var mep)
        {
            outlier.MaxEjectionPercent = (uint)mep;
        }

        if (od.SplitExternalLocalOriginErrors)
        {
            outlier.SplitExternalLocalOriginErrors = true;
            if (od.ConsecutiveLocalOriginFailures is > 0 and var local)
            {
                outlier.ConsecutiveLocalOriginFailure = (uint)local;
                outlier.EnforcingConsecutiveLocalOriginFailure = 100;
            }

            outlier.EnforcingLocalOriginSuccessRate = 0;
        }

        cluster.OutlierDetection = outlier;

        // istiod always writes the panic threshold here (0 when minHealthPercent is unset, which disables panic mode).
        cluster.CommonLbConfig = new EnvoyCluster.Types.CommonLbConfig { HealthyPanicThreshold = new Percent { Value = od.MinHealthPercent } };
    }

    private static void ApplyLoadBalancer(EnvoyCluster cluster, LoadBalancerSettings? lb)
    {
        if (lb is null)
        {
            return;
        }

        if (lb.ConsistentHash is { } hash)
        {
            cluster.LbPolicy = EnvoyCluster.Types.LbPolicy.RingHash;
            if (!hash.ExplicitRingHash)
            {
                // Without ringHash istiod always writes the ring size: the deprecated field or Envoy's 1024.
                cluster.RingHashLbConfig = new EnvoyCluster.Types.RingHashLbConfig { MinimumRingSize = hash.MinimumRingSize != 0 ? hash.MinimumRingSize : 1024 };
            }
            else if (hash.MinimumRingSize != 0)
            {
                cluster.RingHashLbConfig = new EnvoyCluster.Types.RingHashLbConfig { MinimumRingSize = hash.MinimumRingSize };
            }

            return;
        }

        // istiod's sidecar default is LEAST_REQUEST; proxyless clients get ROUND_ROBIN (gRPC has no least-request).
        cluster.LbPolicy = lb.Simple switch
        {
            SimpleLb.LeastRequest => EnvoyCluster.Types.LbPolicy.LeastRequest,
            SimpleLb.Random => EnvoyCluster.Types.LbPolicy.Random,
            _ => EnvoyCluster.Types.LbPolicy.RoundRobin,
        };
    }

    // ---- EDS ----

    private static ClusterLoadAssignment BuildLoadAssignment(string clusterName, MeshService service, uint port, IReadOnlyDictionary<string, string>? subsetLabels)
    {
        var cla = new ClusterLoadAssignment { ClusterName = clusterName };
        var selected = service.Endpoints
            .Where(e => e.Ports.ContainsKey(port))
            .Where(e => subsetLabels is null || subsetLabels.All(kv => e.Labels.TryGetValue(kv.Key, out var v) && v == kv.Value));
        foreach (var group in selected.GroupBy(e => e.Locality).OrderBy(g => g.Key.Region, StringComparer.Ordinal)
            .ThenBy(g => g.Key.Zone, StringComparer.Ordinal).ThenBy(g => g.Key.SubZone, StringComparer.Ordinal))
        {
            var locality = new LocalityLbEndpoints
            {
                Locality = new Locality { Region = group.Key.Region, Zone = group.Key.Zone, SubZone = group.Key.SubZone },
                Priority = 0,
            };
            uint total = 0;
            foreach (var endpoint in group)
            {
                locality.LbEndpoints.Add(new LbEndpoint
                {
                    Endpoint = new Envoy.Config.Endpoint.V3.Endpoint
                    {
                        Address = new Address { SocketAddress = new SocketAddress { Address = endpoint.Address, PortValue = endpoint.Ports[port] } },
                    },
                    HealthStatus = HealthStatus.Healthy,
                    LoadBalancingWeight = endpoint.Weight,
                    Metadata = IstioTls.EndpointMetadata(endpoint.Labels, IstioTls.TelemetryWorkload(endpoint, service)),
                });
                total += endpoint.Weight;
            }

            // gRPC clients ignore localities without a weight.
            locality.LoadBalancingWeight = total;
            cla.Endpoints.Add(locality);
        }

        return cla;
    }
}

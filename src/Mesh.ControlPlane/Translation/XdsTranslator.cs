using System.Globalization;
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
using IstioDestinationRule = Mesh.ControlPlane.Config.DestinationRule;
using IstioTrafficPolicy = Mesh.ControlPlane.Config.TrafficPolicy;

namespace Mesh.ControlPlane.Translation;

/// <summary>
/// Translates Istio configuration plus the service registry into the resources istiod serves to
/// proxyless gRPC clients: per service port one Listener (ApiListener + HCM over RDS), one
/// RouteConfiguration, one Cluster per subset (EDS over ADS) and one ClusterLoadAssignment per cluster.
/// </summary>
internal sealed class XdsTranslator(string domain)
{
    public string Domain { get; } = domain;

    public static string ListenerName(string fqdn, uint port) => IstioNaming.ListenerName(fqdn, (int)port);

    public static string ClusterName(uint port, string? subset, string fqdn) => IstioNaming.ClusterName((int)port, subset, fqdn);

    public static string RouteName(uint port, string fqdn) => IstioNaming.RouteName((int)port, fqdn);

    public XdsSnapshot Translate(MeshConfig config, RegistrySnapshot registry, long version)
    {
        var listeners = new Dictionary<string, XdsResource>(StringComparer.Ordinal);
        var routes = new Dictionary<string, XdsResource>(StringComparer.Ordinal);
        var clusters = new Dictionary<string, XdsResource>(StringComparer.Ordinal);
        var endpoints = new Dictionary<string, XdsResource>(StringComparer.Ordinal);

        var rules = new Dictionary<string, IstioDestinationRule>(StringComparer.Ordinal);
        foreach (var dr in config.DestinationRules)
        {
            rules.TryAdd(HostNames.ToFqdn(dr.Host, dr.Namespace, Domain), dr);
        }

        foreach (var service in registry.Services)
        {
            var virtualServices = config.VirtualServices
                .Where(vs => vs.Hosts.Any(h => HostNames.ToFqdn(h, vs.Namespace, Domain) == service.Hostname))
                .ToList();
            rules.TryGetValue(service.Hostname, out var rule);
            foreach (var port in service.Ports)
            {
                var listener = BuildListener(service.Hostname, port.Number);
                listeners[listener.Name] = XdsResource.Create(listener.Name, listener);
                var route = BuildRoute(service, port.Number, virtualServices, registry, rules);
                routes[route.Name] = XdsResource.Create(route.Name, route);

                foreach (var (subset, policy) in Subsets(rule))
                {
                    var cluster = BuildCluster(ClusterName(port.Number, subset?.Name, service.Hostname), policy);
                    clusters[cluster.Name] = XdsResource.Create(cluster.Name, cluster);
                    var cla = BuildLoadAssignment(cluster.Name, service, port.Number, subset?.Labels);
                    endpoints[cla.ClusterName] = XdsResource.Create(cla.ClusterName, cla);
                }
            }
        }

        return new XdsSnapshot(version, Domain, listeners, routes, clusters, endpoints);
    }

    private static IEnumerable<(Subset? Subset, IstioTrafficPolicy? Policy)> Subsets(IstioDestinationRule? rule)
    {
        yield return (null, rule?.TrafficPolicy);
        if (rule is null)
        {
            yield break;
        }

        foreach (var subset in rule.Subsets)
        {
            yield return (subset, Merge(rule.TrafficPolicy, subset.TrafficPolicy));
        }
    }

    /// <summary>A subset's policy overrides the rule's, section by section (as Istio merges them).</summary>
    private static IstioTrafficPolicy? Merge(IstioTrafficPolicy? parent, IstioTrafficPolicy? child)
    {
        if (parent is null || child is null)
        {
            return child ?? parent;
        }

        return new IstioTrafficPolicy
        {
            LoadBalancer = child.LoadBalancer ?? parent.LoadBalancer,
            ConnectionPool = child.ConnectionPool ?? parent.ConnectionPool,
            OutlierDetection = child.OutlierDetection ?? parent.OutlierDetection,
            TlsMode = child.TlsMode ?? parent.TlsMode,
        };
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

    private RouteConfiguration BuildRoute(MeshService service, uint port, List<Config.VirtualService> virtualServices, RegistrySnapshot registry,
        Dictionary<string, IstioDestinationRule> rules)
    {
        var vhost = new VirtualHost { Name = ListenerName(service.Hostname, port) };
        foreach (var form in HostNames.ShortForms(service.Hostname, Domain))
        {
            vhost.Domains.Add(form);
            vhost.Domains.Add($"{form}:{port}");
        }

        foreach (var vs in virtualServices)
        {
            foreach (var http in vs.Http)
            {
                var applicable = http.Match.Where(m => m.Port is null || m.Port == port).ToList();
                if (http.Match.Count > 0 && applicable.Count == 0)
                {
                    continue;
                }

                if (applicable.Count == 0)
                {
                    vhost.Routes.Add(BuildRoute(http, null, vs, service, port, registry, rules));
                }
                else
                {
                    foreach (var match in applicable)
                    {
                        vhost.Routes.Add(BuildRoute(http, match, vs, service, port, registry, rules));
                    }
                }
            }
        }

        // Traffic no VirtualService route matched goes to the service itself.
        vhost.Routes.Add(new EnvoyRoute
        {
            Name = "default",
            Match = new RouteMatch { Prefix = "/" },
            Route_ = new RouteAction { Cluster = ClusterName(port, null, service.Hostname) },
        });

        var config = new RouteConfiguration { Name = RouteName(port, service.Hostname) };
        config.VirtualHosts.Add(vhost);
        return config;
    }

    private EnvoyRoute BuildRoute(HttpRoute http, HttpMatchRequest? match, Config.VirtualService vs, MeshService service, uint port, RegistrySnapshot registry,
        Dictionary<string, IstioDestinationRule> rules)
    {
        var route = new EnvoyRoute { Name = http.Name ?? match?.Name ?? string.Empty, Match = BuildMatch(match) };

        if (http.Redirect is { } redirect)
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
            if (redirect.Uri is not null)
            {
                action.PathRedirect = redirect.Uri;
            }

            if (redirect.Authority is not null)
            {
                action.HostRedirect = redirect.Authority;
            }

            route.Redirect = action;
        }
        else
        {
            var action = new RouteAction();
            var targets = http.Route.Select(d => (Cluster: DestinationCluster(d.Destination, vs, service, port, registry), d.Weight)).ToList();
            if (targets.Count == 1)
            {
                action.Cluster = targets[0].Cluster;
            }
            else
            {
                var weighted = new WeightedCluster();
                foreach (var (cluster, weight) in targets)
                {
                    weighted.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = cluster, Weight = weight });
                }

                action.WeightedClusters = weighted;
            }

            if (http.Timeout is { } timeout)
            {
                action.Timeout = Duration.FromTimeSpan(timeout);
                action.MaxStreamDuration = new RouteAction.Types.MaxStreamDuration { MaxStreamDuration_ = Duration.FromTimeSpan(timeout) };
            }

            if (http.Retries is { Attempts: > 0 } retries)
            {
                var policy = new RetryPolicy
                {
                    RetryOn = retries.RetryOn ?? "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
                    NumRetries = (uint)retries.Attempts,
                };
                if (retries.PerTryTimeout is { } perTry)
                {
                    policy.PerTryTimeout = Duration.FromTimeSpan(perTry);
                }

                action.RetryPolicy = policy;
            }

            if (http.Rewrite is { } rewrite)
            {
                if (rewrite.Uri is not null)
                {
                    action.PrefixRewrite = rewrite.Uri;
                }

                if (rewrite.Authority is not null)
                {
                    action.HostRewriteLiteral = rewrite.Authority;
                }
            }

            if (http.Mirror is { } mirror)
            {
                action.RequestMirrorPolicies.Add(new RouteAction.Types.RequestMirrorPolicy
                {
                    Cluster = DestinationCluster(mirror, vs, service, port, registry),
                    RuntimeFraction = new RuntimeFractionalPercent { DefaultValue = Fraction(http.MirrorPercentage ?? 100) },
                });
            }

            var first = http.Route[0].Destination;
            if (rules.TryGetValue(HostNames.ToFqdn(first.Host, vs.Namespace, Domain), out var rule))
            {
                var policy = first.Subset is null ? rule.TrafficPolicy : Merge(rule.TrafficPolicy, rule.Subsets.FirstOrDefault(s => s.Name == first.Subset)?.TrafficPolicy);
                if (policy?.LoadBalancer?.ConsistentHash is { } hash)
                {
                    action.HashPolicy.Add(BuildHashPolicy(hash));
                }
            }

            route.Route_ = action;
        }

        if (http.Fault is { } fault)
        {
            var httpFault = new HTTPFault();
            if (fault.Delay is { } delay)
            {
                httpFault.Delay = new CommonFaultDelay { FixedDelay = Duration.FromTimeSpan(delay.FixedDelay), Percentage = Fraction(delay.Percentage) };
            }

            if (fault.Abort is { } abort)
            {
                var faultAbort = new Envoy.Extensions.Filters.Http.Fault.V3.FaultAbort { Percentage = Fraction(abort.Percentage) };
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

        if (http.Headers is { } headers)
        {
            AddHeaderOperations(headers.Request, route.RequestHeadersToAdd, route.RequestHeadersToRemove);
            AddHeaderOperations(headers.Response, route.ResponseHeadersToAdd, route.ResponseHeadersToRemove);
        }

        return route;
    }

    private static void AddHeaderOperations(HeaderOperations? ops, Google.Protobuf.Collections.RepeatedField<HeaderValueOption> add,
        Google.Protobuf.Collections.RepeatedField<string> remove)
    {
        if (ops is null)
        {
            return;
        }

        foreach (var (key, value) in ops.Set)
        {
            add.Add(new HeaderValueOption
            {
                Header = new HeaderValue { Key = key, Value = value },
                AppendAction = HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExistsOrAdd,
            });
        }

        foreach (var (key, value) in ops.Add)
        {
            add.Add(new HeaderValueOption
            {
                Header = new HeaderValue { Key = key, Value = value },
                AppendAction = HeaderValueOption.Types.HeaderAppendAction.AppendIfExistsOrAdd,
            });
        }

        remove.AddRange(ops.Remove);
    }

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

    /// <summary>Istio percentages (0-100, fractional) as a per-million fraction, as istiod does.</summary>
    private static FractionalPercent Fraction(double percent) => new()
    {
        Numerator = (uint)Math.Round(percent * 10_000),
        Denominator = FractionalPercent.Types.DenominatorType.Million,
    };

    private string DestinationCluster(Destination destination, Config.VirtualService vs, MeshService service, uint listenerPort, RegistrySnapshot registry)
    {
        var host = HostNames.ToFqdn(destination.Host, vs.Namespace, Domain);
        var port = destination.Port ?? (registry.Find(host) is { Ports.Count: 1 } target ? target.Ports[0].Number : listenerPort);
        return ClusterName(port, destination.Subset, host);
    }

    private static RouteMatch BuildMatch(HttpMatchRequest? match)
    {
        var result = new RouteMatch();
        switch (match?.Uri)
        {
            case null:
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

        if (match.IgnoreUriCase)
        {
            result.CaseSensitive = false;
        }

        foreach (var (name, value) in match.Headers)
        {
            result.Headers.Add(HeaderMatchers.Create(name, Matcher(value)));
        }

        foreach (var (name, value) in match.WithoutHeaders)
        {
            result.Headers.Add(HeaderMatchers.Create(name, Matcher(value), invert: true));
        }

        if (match.Method is { } method)
        {
            result.Headers.Add(HeaderMatchers.Create(":method", Matcher(method)));
        }

        if (match.Authority is { } authority)
        {
            result.Headers.Add(HeaderMatchers.Create(":authority", Matcher(authority)));
        }

        foreach (var (name, value) in match.QueryParams)
        {
            result.QueryParameters.Add(new QueryParameterMatcher { Name = name, StringMatch = Matcher(value) });
        }

        return result;
    }

    private static StringMatcher Matcher(StringMatch match) => match.Kind switch
    {
        StringMatchKind.Exact => new StringMatcher { Exact = match.Value },
        StringMatchKind.Prefix => new StringMatcher { Prefix = match.Value },
        _ => new StringMatcher { SafeRegex = new RegexMatcher { Regex = match.Value } },
    };

    // ---- CDS ----

    private static EnvoyCluster BuildCluster(string name, IstioTrafficPolicy? policy)
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

        if (policy?.LoadBalancer is { } lb)
        {
            if (lb.ConsistentHash is { } hash)
            {
                cluster.LbPolicy = EnvoyCluster.Types.LbPolicy.RingHash;
                cluster.RingHashLbConfig = new EnvoyCluster.Types.RingHashLbConfig();
                if (hash.MinimumRingSize is { } size)
                {
                    cluster.RingHashLbConfig.MinimumRingSize = size;
                }
            }
            else
            {
                cluster.LbPolicy = lb.Simple switch
                {
                    SimpleLb.LeastRequest => EnvoyCluster.Types.LbPolicy.LeastRequest,
                    SimpleLb.Random => EnvoyCluster.Types.LbPolicy.Random,
                    _ => EnvoyCluster.Types.LbPolicy.RoundRobin,
                };
            }
        }

        if (policy?.ConnectionPool is { } pool
            && (pool.MaxConnections ?? pool.Http1MaxPendingRequests ?? pool.Http2MaxRequests ?? pool.MaxRetries) is not null)
        {
            var thresholds = new CircuitBreakers.Types.Thresholds();
            if (pool.MaxConnections is { } c)
            {
                thresholds.MaxConnections = (uint)c;
            }

            if (pool.Http1MaxPendingRequests is { } p)
            {
                thresholds.MaxPendingRequests = (uint)p;
            }

            if (pool.Http2MaxRequests is { } r)
            {
                thresholds.MaxRequests = (uint)r;
            }

            if (pool.MaxRetries is { } m)
            {
                thresholds.MaxRetries = (uint)m;
            }

            cluster.CircuitBreakers = new CircuitBreakers();
            cluster.CircuitBreakers.Thresholds.Add(thresholds);
        }

        if (policy?.OutlierDetection is { } od)
        {
            var outlier = new EnvoyOutlier();
            if (od.Consecutive5xxErrors is { } c5)
            {
                outlier.Consecutive5Xx = (uint)c5;
            }

            if (od.ConsecutiveGatewayErrors is { } cg)
            {
                outlier.ConsecutiveGatewayFailure = (uint)cg;
            }

            if (od.Interval is { } interval)
            {
                outlier.Interval = Duration.FromTimeSpan(interval);
            }

            if (od.BaseEjectionTime is { } bet)
            {
                outlier.BaseEjectionTime = Duration.FromTimeSpan(bet);
            }

            if (od.MaxEjectionPercent is { } mep)
            {
                outlier.MaxEjectionPercent = (uint)mep;
            }

            cluster.OutlierDetection = outlier;
        }

        return cluster;
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

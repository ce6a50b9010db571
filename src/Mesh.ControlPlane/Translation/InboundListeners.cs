using System.Collections.Concurrent;
using System.Globalization;
using Envoy.Config.Core.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Http.Router.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Registry;
using Mesh.Xds;
using EnvoyRbac = Envoy.Config.Rbac.V3.RBAC;
using EnvoyRoute = Envoy.Config.Route.V3.Route;
using RbacFilter = Envoy.Extensions.Filters.Http.Rbac.V3.RBAC;

namespace Mesh.ControlPlane.Translation;

/// <summary>The workload an inbound listener is built for: its namespace and labels.</summary>
internal sealed record InboundWorkload(string Namespace, IReadOnlyDictionary<string, string> Labels);

/// <summary>
/// The inbound (server) listeners istiod's gRPC generator serves to proxyless xDS servers
/// (<c>xds.istio.io/grpc/lds/inbound/&lt;ip&gt;:&lt;port&gt;</c>, <c>pilot/pkg/networking/grpcgen/lds.go</c>):
/// the listen address; filter chains by PeerAuthentication mode (STRICT: one mTLS chain; DISABLE: one plaintext chain;
/// PERMISSIVE: for a server that sniffs TLS (Mesh.Sdk), a <c>transport_protocol: tls</c> mTLS chain and a
/// <c>raw_buffer</c> plaintext chain, as Envoy sidecars get it; for gRPC servers one plaintext chain, as istiod's grpcgen
/// sends it, because gRPC validates every chain's certificate provider instances even though it never matches a
/// <c>tls</c> chain, and a server whose bootstrap has none would reject the listener); each holds an HCM with an inline route configuration (<c>*</c>, prefix <c>/</c>, <c>non_forwarding_action</c>)
/// and the HTTP filters <c>envoy.filters.http.rbac.DENY</c>, <c>envoy.filters.http.rbac</c> (when policies apply)
/// and the router, with the local rate limit filter where an EnvoyFilter puts it (<see cref="EnvoyFilterPatches"/>).
/// A listener depends on who asks: it is built on request for the workload the name and the node
/// resolve to, and cached per distinct answer for the life of the snapshot.
/// </summary>
internal sealed class InboundListeners(
    IReadOnlyList<PeerAuthentication> peerAuthentications,
    IReadOnlyList<AuthorizationPolicy> authorizationPolicies,
    RegistrySnapshot registry,
    string rootNamespace,
    IReadOnlyList<EnvoyFilter>? envoyFilters = null)
{
    /// <summary>The HTTP filter name istiod gives the DENY policies' RBAC filter.</summary>
    public const string RbacDenyFilterName = HttpFilterNames.Rbac + ".DENY";

    /// <summary>The label that makes a PERMISSIVE workload STRICT for proxyless gRPC (clients use mTLS to it).</summary>
    public const string TlsModeLabel = "security.istio.io/tlsMode";

    private readonly ConcurrentDictionary<string, XdsResource> _built = new(StringComparer.Ordinal);

    public static InboundListeners Empty { get; } = new([], [], RegistrySnapshot.Empty, "istio-system");

    public string RootNamespace { get; } = rootNamespace;

    /// <summary>How many distinct listeners were built so far.</summary>
    public int BuiltCount => _built.Count;

    /// <summary>Splits an inbound listener name into host and port; false when it is not one.</summary>
    public static bool TryParseName(string name, out string host, out uint port)
    {
        host = string.Empty;
        port = 0;
        if (!name.StartsWith(IstioNaming.InboundListenerPrefix, StringComparison.Ordinal))
        {
            return false;
        }

        var address = name.AsSpan(IstioNaming.InboundListenerPrefix.Length);
        var colon = address.LastIndexOf(':');
        if (colon <= 0 || !uint.TryParse(address[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out port) || port > 65535)
        {
            return false;
        }

        var h = address[..colon];
        if (h.Length >= 2 && h[0] == '[' && h[^1] == ']')
        {
            h = h[1..^1];
        }

        host = h.ToString();
        return host.Length > 0;
    }

    /// <summary>
    /// The workload behind <c>host:port</c>: a registered endpoint with that address and workload port (self-registration,
    /// WorkloadEntry, ServiceEntry endpoints), else the asking node's own namespace and labels (as istiod selects
    /// policies by the proxy's labels).
    /// </summary>
    public InboundWorkload Resolve(string host, uint port, ClientScope client)
    {
        foreach (var service in registry.Services)
        {
            foreach (var endpoint in service.Endpoints)
            {
                if (endpoint.Address == host && endpoint.Ports.Values.Contains(port))
                {
                    return new InboundWorkload(service.Namespace, endpoint.Labels);
                }
            }
        }

        return new InboundWorkload(client.Namespace, client.Labels);
    }

    /// <summary>The listener a client asking for <paramref name="name"/> gets; null when the name is not an inbound name.</summary>
    public XdsResource? Find(string name, ClientScope client)
    {
        if (!TryParseName(name, out var host, out var port))
        {
            return null;
        }

        var workload = Resolve(host, port, client);
        var key = $"{name}\n{client.SniffsTls}\n{workload.Namespace}\n{string.Join(",", workload.Labels.OrderBy(static l => l.Key, StringComparer.Ordinal).Select(static l => $"{l.Key}={l.Value}"))}";
        return _built.GetOrAdd(key, static (_, state) =>
        {
            var (self, name, host, port, workload, sniffs) = state;
            var listener = self.Build(name, host, port, workload, sniffs);
            return XdsResource.Create(name, listener);
        }, (this, name, host, port, workload, client.SniffsTls));
    }

    /// <summary>
    /// The effective mTLS mode of <paramref name="port"/> of a workload (istiod's ComposePeerAuthentication): STRICT,
    /// PERMISSIVE or DISABLE. For a server that cannot sniff TLS (<paramref name="sniffsTls"/> false: gRPC), a PERMISSIVE
    /// workload labelled <c>security.istio.io/tlsMode: istio</c> is STRICT, as istiod's grpcgen makes it.
    /// </summary>
    public MtlsMode ModeFor(InboundWorkload workload, uint port, bool sniffsTls = false)
    {
        PeerAuthentication? mesh = null, ns = null, selected = null;
        foreach (var pa in peerAuthentications)
        {
            if (!pa.HasSelector)
            {
                if (pa.Namespace == RootNamespace)
                {
                    mesh ??= pa;
                }
                else if (pa.Namespace == workload.Namespace)
                {
                    ns ??= pa;
                }
            }
            else if (pa.Namespace != RootNamespace && pa.Namespace == workload.Namespace && Selects(pa.Selector, workload.Labels))
            {
                selected ??= pa;
            }
        }

        var mode = MtlsMode.Permissive;
        foreach (var level in new[] { mesh, ns, selected })
        {
            if (level is { Mode: not MtlsMode.Unset })
            {
                mode = level.Mode;
            }
        }

        if (selected is not null && selected.PortLevelMtls.TryGetValue(port, out var portMode) && portMode != MtlsMode.Unset)
        {
            mode = portMode;
        }

        // Clients use mTLS to a workload labelled for it, and gRPC servers only ever serve the plaintext chain of a
        // PERMISSIVE listener. A server that sniffs the first bytes serves both, so the label changes nothing for it.
        if (!sniffsTls && mode == MtlsMode.Permissive && workload.Labels.TryGetValue(TlsModeLabel, out var tlsMode) && tlsMode == "istio")
        {
            mode = MtlsMode.Strict;
        }

        return mode;
    }

    /// <summary>The ALLOW and DENY policies that apply to a workload: the root namespace's, then its namespace's, in file order.</summary>
    public IReadOnlyList<AuthorizationPolicy> PoliciesFor(InboundWorkload workload)
    {
        var result = new List<AuthorizationPolicy>();
        foreach (var inRoot in new[] { true, false })
        {
            foreach (var policy in authorizationPolicies)
            {
                if (policy.Action is AuthorizationAction.Allow or AuthorizationAction.Deny
                    && (policy.Namespace == RootNamespace) == inRoot
                    && (inRoot || policy.Namespace == workload.Namespace)
                    && (!policy.HasSelector || Selects(policy.Selector, workload.Labels)))
                {
                    result.Add(policy);
                }
            }
        }

        return result;
    }

    public Listener Build(string name, string host, uint port, InboundWorkload workload, bool sniffsTls = false)
    {
        var mode = ModeFor(workload, port, sniffsTls);
        var policies = PoliciesFor(workload);
        var filters = new List<HttpFilter>();
        var deny = policies.Where(static p => p.Action == AuthorizationAction.Deny).ToList();
        var allow = policies.Where(static p => p.Action == AuthorizationAction.Allow).ToList();
        if (deny.Count > 0)
        {
            var rules = AuthorizationTranslator.Build(EnvoyRbac.Types.Action.Deny, deny);
            if (rules.Policies.Count > 0)
            {
                filters.Add(new HttpFilter { Name = RbacDenyFilterName, TypedConfig = Any.Pack(new RbacFilter { Rules = rules }) });
            }
        }

        if (allow.Count > 0)
        {
            // Unlike istiod's grpcgen, which leaves the filter out when no ALLOW rule generated a policy (and so allows
            // everything), an ALLOW policy without rules denies every request, as Istio documents.
            filters.Add(new HttpFilter { Name = HttpFilterNames.Rbac, TypedConfig = Any.Pack(new RbacFilter { Rules = AuthorizationTranslator.Build(EnvoyRbac.Types.Action.Allow, allow) }) });
        }

        filters.Add(new HttpFilter { Name = HttpFilterNames.Router, TypedConfig = Any.Pack(new Router()) });
        var patches = EnvoyFilterPatches.For(envoyFilters ?? [], workload, RootNamespace);
        EnvoyFilterPatches.ApplyHttpFilters(patches, port, filters);
        var listener = new Listener
        {
            Name = name,
            Address = new Address { SocketAddress = new SocketAddress { Address = host, PortValue = port } },
        };
        switch (mode)
        {
            case MtlsMode.Strict:
                listener.FilterChains.Add(Chain(filters, patches, port, mtls: true, transportProtocol: null));
                break;
            case MtlsMode.Permissive when sniffsTls:
                // As Envoy sidecars get it: TLS and plaintext told apart by the first bytes (the tls_inspector's transport protocol).
                listener.FilterChains.Add(Chain(filters, patches, port, mtls: true, transportProtocol: TlsTransportProtocol));
                listener.FilterChains.Add(Chain(filters, patches, port, mtls: false, transportProtocol: RawBufferTransportProtocol));
                break;
            default:
                listener.FilterChains.Add(Chain(filters, patches, port, mtls: false, transportProtocol: null));
                break;
        }

        return listener;
    }

    /// <summary><c>filter_chain_match.transport_protocol</c> of the PERMISSIVE listener's mTLS chain.</summary>
    public const string TlsTransportProtocol = "tls";

    /// <summary><c>filter_chain_match.transport_protocol</c> of the PERMISSIVE listener's plaintext chain.</summary>
    public const string RawBufferTransportProtocol = "raw_buffer";

    private static FilterChain Chain(List<HttpFilter> filters, IReadOnlyList<EnvoyFilter> patches, uint port, bool mtls, string? transportProtocol)
    {
        var suffix = mtls ? "mtls" : "plaintext";
        var routeConfig = new RouteConfiguration { Name = "inbound" };
        // Named as a sidecar's inbound virtual host and route, so EnvoyFilter HTTP_ROUTE patches written for Istio match.
        var vhost = new VirtualHost { Name = EnvoyFilterPatches.InboundVirtualHostName(port), Domains = { "*" } };
        vhost.Routes.Add(new EnvoyRoute { Name = "default", Match = new RouteMatch { Prefix = "/" }, NonForwardingAction = new NonForwardingAction() });
        routeConfig.VirtualHosts.Add(vhost);
        EnvoyFilterPatches.ApplyRoutes(patches, port, routeConfig);
        var hcm = new HttpConnectionManager { RouteConfig = routeConfig };
        hcm.HttpFilters.AddRange(filters.Select(static f => f.Clone()));
        var chain = new FilterChain
        {
            Name = "inbound-" + suffix,
            Filters = { new Filter { Name = "inbound-hcm" + suffix, TypedConfig = Any.Pack(hcm) } },
        };
        if (transportProtocol is not null)
        {
            chain.FilterChainMatch = new FilterChainMatch { TransportProtocol = transportProtocol };
        }

        if (mtls)
        {
            chain.TransportSocket = new TransportSocket { Name = XdsExtensionNames.TlsTransportSocket, TypedConfig = Any.Pack(DownstreamTls()) };
        }

        return chain;
    }

    /// <summary>istiod's server TLS for proxyless gRPC: <see cref="IstioTls.Common"/> with no SAN check, client certificates required.</summary>
    private static DownstreamTlsContext DownstreamTls() => new()
    {
        CommonTlsContext = IstioTls.Common([]),
        RequireClientCertificate = true,
    };

    private static bool Selects(IReadOnlyDictionary<string, string>? selector, IReadOnlyDictionary<string, string> labels)
    {
        foreach (var (key, value) in selector ?? Config.Empty.Labels)
        {
            if (!labels.TryGetValue(key, out var actual) || actual != value)
            {
                return false;
            }
        }

        return true;
    }
}

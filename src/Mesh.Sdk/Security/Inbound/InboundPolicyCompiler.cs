using Envoy.Config.Listener.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Mesh.Sdk.RateLimiting;
using Mesh.Sdk.Security.Authorization;
using Mesh.Xds;

namespace Mesh.Sdk.Security.Inbound;

/// <summary>
/// Compiles an inbound listener (<c>xds.istio.io/grpc/lds/inbound/&lt;ip&gt;:&lt;port&gt;</c>) into an
/// <see cref="InboundPolicy"/>. The shapes understood are the ones istiod and Mesh.ControlPlane write:
/// <list type="bullet">
/// <item>one chain with a <c>DownstreamTlsContext</c> that requires client certificates: STRICT;</item>
/// <item>a chain matching <c>transport_protocol: tls</c> with that context and a chain matching <c>raw_buffer</c> (or
/// nothing) without a transport socket, both holding the same HTTP filters: PERMISSIVE, as Envoy sidecars get it;</item>
/// <item>one chain without a transport socket: DISABLE.</item>
/// </list>
/// Anything else is refused with a message naming what is wrong; the caller keeps the last good policy.
/// </summary>
internal static class InboundPolicyCompiler
{
    private const string TlsProtocol = "tls";
    private const string RawBufferProtocol = "raw_buffer";

    /// <exception cref="InboundPolicyException">The listener is not one of the shapes above.</exception>
    public static InboundPolicy Compile(Listener listener, int port, InboundPolicy? previous = null, TimeProvider? time = null)
    {
        var policy = CompileChains(listener, port);
        var steps = new List<InboundHttpStep>();
        var errors = new List<string>();
        foreach (var filter in policy.HttpFilters)
        {
            if (filter.TypedConfig?.TypeUrl == XdsTypeUrls.Router || (filter.TypedConfig is null && filter.Name == HttpFilterNames.Router))
            {
                break;
            }

            if (LocalRateLimitFilter.Is(filter))
            {
                var before = previous?.Steps.FirstOrDefault(s => s.RateLimit?.Name == filter.Name).RateLimit;
                if (LocalRateLimitFilter.TryCompile(filter, policy.Routes, time ?? TimeProvider.System, random: null, before, out var rateLimit, out var problems))
                {
                    steps.Add(new InboundHttpStep(null, rateLimit));
                }

                errors.AddRange(problems);
            }
            else if (filter.TypedConfig?.TypeUrl == XdsTypeUrls.Rbac || filter.Name.StartsWith(HttpFilterNames.Rbac, StringComparison.Ordinal))
            {
                if (InboundAuthorization.TryCompile([filter], out var authorization, out var problems))
                {
                    if (!authorization!.IsEmpty)
                    {
                        steps.Add(new InboundHttpStep(authorization, null));
                    }
                }

                errors.AddRange(problems);
            }
            else if (!filter.IsOptional)
            {
                errors.Add($"HTTP filter '{filter.Name}' ({filter.TypedConfig?.TypeUrl ?? "no typed_config"}) is not supported on inbound listeners and is not optional");
            }
        }

        if (errors.Count > 0)
        {
            throw new InboundPolicyException(string.Join("; ", errors));
        }

        return policy with { Steps = steps };
    }

    private static InboundPolicy CompileChains(Listener listener, int port)
    {
        ArgumentNullException.ThrowIfNull(listener);
        var chains = new List<(string Where, FilterChain Chain)>();
        for (var i = 0; i < listener.FilterChains.Count; i++)
        {
            chains.Add(($"filter_chains[{i}] '{listener.FilterChains[i].Name}'", listener.FilterChains[i]));
        }

        if (listener.DefaultFilterChain is { } fallback)
        {
            chains.Add(($"default_filter_chain '{fallback.Name}'", fallback));
        }

        switch (chains.Count)
        {
            case 1:
            {
                var (where, chain) = chains[0];
                var protocol = chain.FilterChainMatch?.TransportProtocol ?? string.Empty;
                var mtls = IsMutualTls(where, chain);
                if (protocol.Length > 0 && protocol != (mtls ? TlsProtocol : RawBufferProtocol))
                {
                    throw new InboundPolicyException($"{where} matches transport_protocol '{protocol}' but {(mtls ? "carries" : "carries no")} TLS");
                }

                return new InboundPolicy(port, mtls ? InboundMtlsMode.Strict : InboundMtlsMode.Disable, Filters(where, chain), listener.Name)
                {
                    Routes = Manager(where, chain).RouteConfig,
                };
            }

            case 2:
            {
                (string Where, FilterChain Chain)? tls = null, plain = null;
                foreach (var entry in chains)
                {
                    var protocol = entry.Chain.FilterChainMatch?.TransportProtocol ?? string.Empty;
                    if (protocol == TlsProtocol)
                    {
                        tls = tls is null ? entry : throw new InboundPolicyException($"two filter chains match transport_protocol 'tls' ({tls.Value.Where}, {entry.Where})");
                    }
                    else if (protocol is "" or RawBufferProtocol)
                    {
                        plain = plain is null ? entry : throw new InboundPolicyException($"two filter chains match plaintext ({plain.Value.Where}, {entry.Where})");
                    }
                    else
                    {
                        throw new InboundPolicyException($"{entry.Where} matches transport_protocol '{protocol}' (only 'tls' and 'raw_buffer' are understood)");
                    }
                }

                if (!IsMutualTls(tls!.Value.Where, tls.Value.Chain))
                {
                    throw new InboundPolicyException($"{tls.Value.Where} matches TLS but has no DownstreamTlsContext transport socket");
                }

                if (IsMutualTls(plain!.Value.Where, plain.Value.Chain))
                {
                    throw new InboundPolicyException($"{plain.Value.Where} matches plaintext but has a TLS transport socket");
                }

                var tlsFilters = Filters(tls.Value.Where, tls.Value.Chain);
                var plainFilters = Filters(plain.Value.Where, plain.Value.Chain);
                if (!tlsFilters.SequenceEqual(plainFilters))
                {
                    throw new InboundPolicyException(
                        $"{tls.Value.Where} and {plain.Value.Where} carry different HTTP filters; one port applies one list to TLS and plaintext requests alike");
                }

                return new InboundPolicy(port, InboundMtlsMode.Permissive, plainFilters, listener.Name)
                {
                    Routes = Manager(plain.Value.Where, plain.Value.Chain).RouteConfig,
                };
            }

            default:
                throw new InboundPolicyException(
                    $"has {chains.Count} filter chains; an inbound listener has one (STRICT or DISABLE) or two, 'tls' and 'raw_buffer' (PERMISSIVE)");
        }
    }

    private static bool IsMutualTls(string where, FilterChain chain)
    {
        if (chain.TransportSocket is null)
        {
            return false;
        }

        if (chain.TransportSocket.TypedConfig is not { } any || any.TypeUrl != XdsTypeUrls.DownstreamTlsContext)
        {
            throw new InboundPolicyException($"{where} transport_socket '{chain.TransportSocket.Name}' does not hold a DownstreamTlsContext");
        }

        var context = any.Unpack<DownstreamTlsContext>();
        if (context.RequireClientCertificate is not true)
        {
            // Istio's server TLS is always mutual; one-way TLS would let any caller in without an identity.
            throw new InboundPolicyException($"{where} DownstreamTlsContext does not require client certificates (only mutual TLS is served)");
        }

        return true;
    }

    private static IReadOnlyList<HttpFilter> Filters(string where, FilterChain chain) => Manager(where, chain).HttpFilters.ToArray();

    private static HttpConnectionManager Manager(string where, FilterChain chain)
    {
        if (chain.Filters.Count != 1 || chain.Filters[0].TypedConfig is not { } any || any.TypeUrl != XdsTypeUrls.HttpConnectionManager)
        {
            throw new InboundPolicyException($"{where} must hold exactly one filter, an HttpConnectionManager");
        }

        return any.Unpack<HttpConnectionManager>();
    }
}

/// <summary>An inbound listener the SDK cannot apply; the message says what is wrong.</summary>
internal sealed class InboundPolicyException(string message) : Exception(message);

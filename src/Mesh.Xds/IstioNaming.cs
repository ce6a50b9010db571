using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;

namespace Mesh.Xds;

/// <summary>
/// istiod's naming of xDS resources for proxyless gRPC clients, shared by the SDK and the control plane so
/// both sides build and parse the same names.
/// </summary>
/// <remarks>
/// Client listener <c>reviews.default.svc.cluster.local:9080</c>, route and cluster
/// <c>outbound|9080|v1|reviews.default.svc.cluster.local</c>, inbound listener
/// <c>xds.istio.io/grpc/lds/inbound/0.0.0.0:9080</c>, identity <c>spiffe://cluster.local/ns/default/sa/reviews</c>.
/// </remarks>
public static class IstioNaming
{
    /// <summary>Default Kubernetes namespace used to expand a bare service name.</summary>
    public const string DefaultNamespace = "default";

    /// <summary>Default cluster DNS domain (and SPIFFE trust domain).</summary>
    public const string DefaultDomain = "cluster.local";

    /// <summary>Direction prefix of outbound cluster and route names.</summary>
    public const string Outbound = "outbound";

    /// <summary>Direction prefix of inbound cluster names.</summary>
    public const string Inbound = "inbound";

    /// <summary>Prefix of inbound (server) listener names.</summary>
    public const string InboundListenerPrefix = "xds.istio.io/grpc/lds/inbound/";

    /// <summary>
    /// The bootstrap <c>server_listener_resource_name_template</c> istiod's proxyless bootstrap uses; gRPC servers
    /// replace <c>%s</c> with their listening address (<c>0.0.0.0:9080</c>).
    /// </summary>
    public const string InboundListenerNameTemplate = InboundListenerPrefix + "%s";

    /// <summary>Name of the certificate provider instance holding the workload certificate and the roots.</summary>
    public const string CertificateProviderInstance = "default";

    /// <summary>Certificate name of the workload certificate within <see cref="CertificateProviderInstance"/>.</summary>
    public const string WorkloadCertificateName = "default";

    /// <summary>Certificate name of the root CA bundle within <see cref="CertificateProviderInstance"/>.</summary>
    public const string RootCertificateName = "ROOTCA";

    /// <summary>Node metadata key naming the generator a client asks istiod for.</summary>
    public const string GeneratorMetadataKey = "GENERATOR";

    /// <summary>Value of <see cref="GeneratorMetadataKey"/> selecting istiod's proxyless gRPC generator.</summary>
    public const string GrpcGenerator = "grpc";

    private const string SpiffeScheme = "spiffe://";

    /// <summary>
    /// Expands a Kubernetes service host to its fully qualified name the way cluster DNS search paths do:
    /// <c>reviews</c> becomes <c>reviews.default.svc.cluster.local</c>, <c>reviews.ns</c> becomes
    /// <c>reviews.ns.svc.cluster.local</c>, <c>reviews.ns.svc</c> becomes <c>reviews.ns.svc.cluster.local</c>.
    /// A two-label host is always read as <c>service.namespace</c>. Hosts with more labels (a full FQDN or an
    /// external host such as <c>api.example.com</c>) and IP literals are returned unchanged.
    /// </summary>
    /// <param name="host">A service host, without port.</param>
    /// <param name="ns">The namespace a bare name resolves in.</param>
    /// <param name="domain">The cluster DNS domain.</param>
    /// <returns>The fully qualified host.</returns>
    /// <exception cref="ArgumentException">A parameter is empty or <paramref name="host"/> has an empty label.</exception>
    public static string ServiceFqdn(string host, string ns = DefaultNamespace, string domain = DefaultDomain)
    {
        ArgumentException.ThrowIfNullOrEmpty(host);
        ArgumentException.ThrowIfNullOrEmpty(ns);
        ArgumentException.ThrowIfNullOrEmpty(domain);

        if (IPAddress.TryParse(host, out _))
        {
            return host;
        }

        if (host.StartsWith('.') || host.EndsWith('.') || host.Contains("..", StringComparison.Ordinal))
        {
            throw new ArgumentException($"Host '{host}' has an empty DNS label.", nameof(host));
        }

        var labels = host.Split('.');
        return labels.Length switch
        {
            1 => $"{host}.{ns}.svc.{domain}",
            2 => $"{host}.svc.{domain}",
            3 when string.Equals(labels[2], "svc", StringComparison.OrdinalIgnoreCase) => $"{host}.{domain}",
            _ => host,
        };
    }

    /// <summary>Builds a client listener name: <c>reviews.default.svc.cluster.local:9080</c>.</summary>
    /// <param name="fqdn">The fully qualified service host (see <see cref="ServiceFqdn"/>).</param>
    /// <param name="port">The service port, 1 to 65535.</param>
    /// <returns><c>host:port</c>, with an IPv6 literal in brackets.</returns>
    public static string ListenerName(string fqdn, int port)
    {
        ArgumentException.ThrowIfNullOrEmpty(fqdn);
        ValidatePort(port);
        var host = fqdn.Contains(':', StringComparison.Ordinal) ? $"[{fqdn}]" : fqdn;
        return string.Create(CultureInfo.InvariantCulture, $"{host}:{port}");
    }

    /// <summary>Splits a client listener name <c>host:port</c> into host and port.</summary>
    /// <param name="name">The listener name.</param>
    /// <param name="host">The host (IPv6 literals without brackets), or empty on failure.</param>
    /// <param name="port">The port, or 0 on failure.</param>
    /// <returns><see langword="true"/> if the name has a non-empty host and a port from 1 to 65535.</returns>
    public static bool TryParseListenerName(string? name, out string host, out int port)
        => TrySplitHostPort(name, out host, out port);

    /// <summary>Builds an outbound route configuration name: <c>outbound|9080||reviews.default.svc.cluster.local</c>.</summary>
    /// <param name="port">The service port.</param>
    /// <param name="fqdn">The fully qualified service host.</param>
    /// <returns>The route configuration name.</returns>
    public static string RouteName(int port, string fqdn) => ClusterName(port, subset: null, fqdn);

    /// <summary>
    /// Builds an outbound cluster name: <c>outbound|9080|v1|reviews.default.svc.cluster.local</c>
    /// (<c>outbound|9080||…</c> without a subset).
    /// </summary>
    /// <param name="port">The service port.</param>
    /// <param name="subset">The DestinationRule subset, or null/empty for the whole service.</param>
    /// <param name="fqdn">The fully qualified service host.</param>
    /// <returns>The cluster name.</returns>
    public static string ClusterName(int port, string? subset, string fqdn)
    {
        ArgumentException.ThrowIfNullOrEmpty(fqdn);
        ValidatePort(port);
        if (subset is not null && subset.Contains('|', StringComparison.Ordinal))
        {
            throw new ArgumentException($"Subset '{subset}' must not contain '|'.", nameof(subset));
        }

        return string.Create(CultureInfo.InvariantCulture, $"{Outbound}|{port}|{subset}|{fqdn}");
    }

    /// <summary>
    /// Parses an Istio cluster or route name <c>direction|port|subset|host</c>, where direction is
    /// <see cref="Outbound"/> or <see cref="Inbound"/> and the subset may be empty.
    /// </summary>
    /// <param name="name">The cluster name.</param>
    /// <param name="direction">The direction, or empty on failure.</param>
    /// <param name="port">The port, or 0 on failure.</param>
    /// <param name="subset">The subset (empty when none), or empty on failure.</param>
    /// <param name="host">The host, or empty on failure.</param>
    /// <returns><see langword="true"/> if the name has that form.</returns>
    public static bool TryParseClusterName(
        string? name, out string direction, out int port, out string subset, out string host)
    {
        direction = subset = host = string.Empty;
        port = 0;
        if (string.IsNullOrEmpty(name))
        {
            return false;
        }

        var parts = name.Split('|');
        if (parts.Length != 4
            || (parts[0] != Outbound && parts[0] != Inbound)
            || !TryParsePort(parts[1], out var parsedPort)
            || parts[3].Length == 0)
        {
            return false;
        }

        direction = parts[0];
        port = parsedPort;
        subset = parts[2];
        host = parts[3];
        return true;
    }

    /// <summary>Builds an inbound (server) listener name: <c>xds.istio.io/grpc/lds/inbound/0.0.0.0:9080</c>.</summary>
    /// <param name="port">The port the server listens on.</param>
    /// <param name="address">The listening address; <c>0.0.0.0</c> by default.</param>
    /// <returns>The listener name.</returns>
    public static string InboundListenerName(int port, string address = "0.0.0.0")
        => InboundListenerPrefix + ListenerName(address, port);

    /// <summary>Parses an inbound listener name built by <see cref="InboundListenerName"/>.</summary>
    /// <param name="name">The listener name.</param>
    /// <param name="address">The listening address (IPv6 without brackets), or empty on failure.</param>
    /// <param name="port">The port, or 0 on failure.</param>
    /// <returns><see langword="true"/> if the name has the inbound prefix and an address with a valid port.</returns>
    public static bool TryParseInboundListenerName(string? name, out string address, out int port)
    {
        if (name is null || !name.StartsWith(InboundListenerPrefix, StringComparison.Ordinal))
        {
            address = string.Empty;
            port = 0;
            return false;
        }

        return TrySplitHostPort(name[InboundListenerPrefix.Length..], out address, out port);
    }

    /// <summary>Builds a workload's SPIFFE ID: <c>spiffe://cluster.local/ns/default/sa/reviews</c>.</summary>
    /// <param name="trustDomain">The trust domain, e.g. <c>cluster.local</c>.</param>
    /// <param name="ns">The workload's namespace.</param>
    /// <param name="serviceAccount">The workload's service account.</param>
    /// <returns>The SPIFFE ID URI string.</returns>
    public static string SpiffeId(string trustDomain, string ns, string serviceAccount)
    {
        ArgumentException.ThrowIfNullOrEmpty(trustDomain);
        ArgumentException.ThrowIfNullOrEmpty(ns);
        ArgumentException.ThrowIfNullOrEmpty(serviceAccount);
        if (trustDomain.Contains('/', StringComparison.Ordinal)
            || ns.Contains('/', StringComparison.Ordinal)
            || serviceAccount.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException("SPIFFE ID segments must not contain '/'.");
        }

        return $"{SpiffeScheme}{trustDomain}/ns/{ns}/sa/{serviceAccount}";
    }

    /// <summary>Parses an Istio SPIFFE ID <c>spiffe://td/ns/NS/sa/SA</c>.</summary>
    /// <param name="spiffeId">The SPIFFE ID.</param>
    /// <param name="trustDomain">The trust domain, or empty on failure.</param>
    /// <param name="ns">The namespace, or empty on failure.</param>
    /// <param name="serviceAccount">The service account, or empty on failure.</param>
    /// <returns><see langword="true"/> if the ID has exactly that form with non-empty segments.</returns>
    public static bool TryParseSpiffeId(
        [NotNullWhen(true)] string? spiffeId, out string trustDomain, out string ns, out string serviceAccount)
    {
        trustDomain = ns = serviceAccount = string.Empty;
        if (spiffeId is null || !spiffeId.StartsWith(SpiffeScheme, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var parts = spiffeId[SpiffeScheme.Length..].Split('/');
        if (parts.Length != 5 || parts[1] != "ns" || parts[3] != "sa"
            || parts[0].Length == 0 || parts[2].Length == 0 || parts[4].Length == 0)
        {
            return false;
        }

        trustDomain = parts[0];
        ns = parts[2];
        serviceAccount = parts[4];
        return true;
    }

    private static bool TrySplitHostPort(string? value, out string host, out int port)
    {
        host = string.Empty;
        port = 0;
        if (string.IsNullOrEmpty(value))
        {
            return false;
        }

        var colon = value.LastIndexOf(':');
        if (colon <= 0 || !TryParsePort(value[(colon + 1)..], out var parsedPort))
        {
            return false;
        }

        var hostPart = value[..colon];
        if (hostPart.StartsWith('[') && hostPart.EndsWith(']'))
        {
            hostPart = hostPart[1..^1];
        }
        else if (hostPart.Contains(':', StringComparison.Ordinal))
        {
            return false; // an unbracketed IPv6 literal is ambiguous
        }

        if (hostPart.Length == 0)
        {
            return false;
        }

        host = hostPart;
        port = parsedPort;
        return true;
    }

    private static bool TryParsePort(string text, out int port)
        => int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port is >= 1 and <= 65535;

    private static void ValidatePort(int port)
    {
        if (port is < 1 or > 65535)
        {
            throw new ArgumentOutOfRangeException(nameof(port), port, "A port must be from 1 to 65535.");
        }
    }
}

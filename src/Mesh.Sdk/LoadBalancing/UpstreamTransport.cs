using System.Text;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.Routing;
using Mesh.Xds;

namespace Mesh.Sdk.LoadBalancing;

/// <summary>How the data plane reaches an endpoint.</summary>
internal enum UpstreamTransport
{
    /// <summary>No transport socket: plaintext HTTP/1.1 or h2c.</summary>
    Plaintext,

    /// <summary>An <c>UpstreamTlsContext</c> without mesh certificate providers: TLS, validated by the system's roots.</summary>
    Tls,

    /// <summary>
    /// Istio mutual TLS: the <c>UpstreamTlsContext</c> names certificate provider instances (the workload
    /// certificate and the mesh roots), as istiod and Mesh.ControlPlane send for a DestinationRule
    /// <c>tls.mode: ISTIO_MUTUAL</c> or for auto-mTLS (<c>transport_socket_matches</c> entry <c>tlsMode-istio</c>).
    /// The connection pool does the TLS handshake itself with the workload certificate; request URIs stay <c>http://</c>.
    /// </summary>
    IstioMutual,
}

/// <summary>
/// One compiled transport of a cluster: its kind, and for Istio mutual TLS the identities a server may present.
/// Two transports with the same <see cref="Key"/> make the same connections, so a pool built for one serves the other.
/// </summary>
internal sealed class EndpointTransport : IEquatable<EndpointTransport>
{
    /// <summary>Plaintext, shared.</summary>
    public static readonly EndpointTransport Plaintext = new(UpstreamTransport.Plaintext, [], string.Empty, "plaintext");

    /// <summary>TLS validated by the system's roots, shared.</summary>
    public static readonly EndpointTransport SimpleTls = new(UpstreamTransport.Tls, [], string.Empty, "tls");

    private EndpointTransport(UpstreamTransport kind, SanMatcher[] sans, string sni, string key)
    {
        Kind = kind;
        SubjectAltNames = sans;
        Sni = sni;
        Key = key;
    }

    public UpstreamTransport Kind { get; }

    /// <summary>
    /// The server's identity must match one of these (<c>match_typed_subject_alt_names</c>, then
    /// <c>match_subject_alt_names</c>); empty: any identity the mesh roots vouch for.
    /// </summary>
    public IReadOnlyList<SanMatcher> SubjectAltNames { get; }

    /// <summary>The SNI to send (<c>UpstreamTlsContext.sni</c>); empty: none.</summary>
    public string Sni { get; }

    /// <summary>Identifies what the transport does, for pool reuse.</summary>
    public string Key { get; }

    /// <summary>The expected identities as error messages print them.</summary>
    public string DescribeExpected()
    {
        if (SubjectAltNames.Count == 0)
        {
            return "any identity issued under the mesh roots";
        }

        var text = new StringBuilder("one of ");
        for (var i = 0; i < SubjectAltNames.Count; i++)
        {
            text.Append(i == 0 ? "'" : ", '").Append(SubjectAltNames[i].Description).Append('\'');
        }

        return text.ToString();
    }

    /// <summary>Whether a certificate with these URI and DNS SANs satisfies <see cref="SubjectAltNames"/>.</summary>
    public bool AcceptsIdentity(IReadOnlyList<string> uris, IReadOnlyList<string> dnsNames)
    {
        if (SubjectAltNames.Count == 0)
        {
            return true;
        }

        foreach (var matcher in SubjectAltNames)
        {
            if ((matcher.Type is SubjectAltNameMatcher.Types.SanType.Uri or SubjectAltNameMatcher.Types.SanType.Unspecified && AnyMatches(matcher.Match, uris))
                || (matcher.Type is SubjectAltNameMatcher.Types.SanType.Dns or SubjectAltNameMatcher.Types.SanType.Unspecified && AnyMatches(matcher.Match, dnsNames)))
            {
                return true;
            }
        }

        return false;

        static bool AnyMatches(StringMatch match, IReadOnlyList<string> values)
        {
            foreach (var value in values)
            {
                if (match.Matches(value))
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>Compiles a cluster's or a transport socket match's transport socket.</summary>
    /// <exception cref="InvalidDataException">A SAN matcher does not compile; the message names the cluster.</exception>
    public static EndpointTransport Of(string clusterName, TransportSocket? socket)
    {
        if (socket?.TypedConfig is not { } config)
        {
            return Plaintext;
        }

        if (config.TypeUrl != XdsTypeUrls.UpstreamTlsContext || !config.TryUnpack<UpstreamTlsContext>(out var tls))
        {
            // A transport socket of another kind (raw_buffer, as istiod writes for tlsMode-disabled) carries no TLS.
            return Plaintext;
        }

        if (tls.CommonTlsContext is not { } common
            || !(common.TlsCertificateProviderInstance is not null
                || common.TlsCertificateCertificateProviderInstance is not null
                || common.CombinedValidationContext?.ValidationContextCertificateProviderInstance is not null
                || common.ValidationContext?.CaCertificateProviderInstance is not null
                || common.CombinedValidationContext?.DefaultValidationContext?.CaCertificateProviderInstance is not null))
        {
            return SimpleTls;
        }

        var validation = common.CombinedValidationContext?.DefaultValidationContext ?? common.ValidationContext;
        var sans = new List<SanMatcher>();
        var key = new StringBuilder("istio-mutual|").Append(tls.Sni);
        if (validation is not null)
        {
            foreach (var typed in validation.MatchTypedSubjectAltNames)
            {
                sans.Add(SanMatcher.Compile(clusterName, typed.SanType, typed.Matcher, "match_typed_subject_alt_names"));
                key.Append('|').Append((int)typed.SanType).Append(':').Append(typed.Matcher);
            }

            foreach (var untyped in validation.MatchSubjectAltNames)
            {
                sans.Add(SanMatcher.Compile(clusterName, SubjectAltNameMatcher.Types.SanType.Unspecified, untyped, "match_subject_alt_names"));
                key.Append("|*:").Append(untyped);
            }
        }

        return new EndpointTransport(UpstreamTransport.IstioMutual, [.. sans], tls.Sni, key.ToString());
    }

    public bool Equals(EndpointTransport? other) => other is not null && (ReferenceEquals(this, other) || string.Equals(Key, other.Key, StringComparison.Ordinal));

    public override bool Equals(object? obj) => Equals(obj as EndpointTransport);

    public override int GetHashCode() => StringComparer.Ordinal.GetHashCode(Key);

    public override string ToString() => Key;
}

/// <summary>One compiled SAN matcher of an <c>UpstreamTlsContext</c>.</summary>
internal sealed class SanMatcher(SubjectAltNameMatcher.Types.SanType type, StringMatch match, string description)
{
    /// <summary>The SAN type compared (<see cref="SubjectAltNameMatcher.Types.SanType.Unspecified"/>: URI and DNS SANs, as the untyped field).</summary>
    public SubjectAltNameMatcher.Types.SanType Type { get; } = type;

    public StringMatch Match { get; } = match;

    /// <summary>The matcher as messages print it: the SPIFFE id for exact matches, else <c>prefix:…</c> and so on.</summary>
    public string Description { get; } = description;

    /// <exception cref="InvalidDataException">The matcher does not compile.</exception>
    public static SanMatcher Compile(string clusterName, SubjectAltNameMatcher.Types.SanType type, Envoy.Type.Matcher.V3.StringMatcher? matcher, string field)
    {
        if (matcher is null)
        {
            throw new InvalidDataException($"Cluster '{clusterName}': {field} holds an entry without a matcher.");
        }

        if (!StringMatch.TryCompile(matcher, out var match, out var error))
        {
            throw new InvalidDataException($"Cluster '{clusterName}': {field} holds an invalid matcher: {error}.");
        }

        var description = match!.Kind == StringMatchKind.Exact ? match.Pattern : $"{match.Kind.ToString().ToLowerInvariant()}:{match.Pattern}";
        return new SanMatcher(type, match, description);
    }
}

/// <summary>
/// A cluster's transports: the cluster's own <c>transport_socket</c>, and its <c>transport_socket_matches</c> chosen per
/// endpoint by the endpoint's <c>envoy.transport_socket_match</c> metadata (the first entry whose <c>match</c> fields all
/// equal the endpoint's; an empty <c>match</c> matches every endpoint; none matching: the cluster's own), as Envoy does.
/// istiod's auto-mTLS writes <c>tlsMode-istio</c> (<c>{tlsMode: istio}</c> → Istio mutual TLS) then
/// <c>tlsMode-disabled</c> (<c>{}</c> → plaintext).
/// </summary>
internal sealed class ClusterTransports
{
    /// <summary>The endpoint metadata filter Envoy reads for transport socket matches.</summary>
    public const string MatchFilter = "envoy.transport_socket_match";

    private readonly (Struct Match, EndpointTransport Transport)[] _matches;

    private ClusterTransports(EndpointTransport @default, (Struct, EndpointTransport)[] matches)
    {
        Default = @default;
        _matches = matches;
    }

    /// <summary>The cluster's own transport (its <c>transport_socket</c>).</summary>
    public EndpointTransport Default { get; }

    /// <summary>Whether any endpoint may need Istio mutual TLS.</summary>
    public bool AnyMutual
    {
        get
        {
            if (Default.Kind == UpstreamTransport.IstioMutual)
            {
                return true;
            }

            foreach (var (_, transport) in _matches)
            {
                if (transport.Kind == UpstreamTransport.IstioMutual)
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <exception cref="InvalidDataException">A SAN matcher does not compile.</exception>
    public static ClusterTransports Of(Cluster cluster)
    {
        var matches = new (Struct, EndpointTransport)[cluster.TransportSocketMatches.Count];
        for (var i = 0; i < matches.Length; i++)
        {
            var entry = cluster.TransportSocketMatches[i];
            matches[i] = (entry.Match ?? new Struct(), EndpointTransport.Of(cluster.Name, entry.TransportSocket));
        }

        return new ClusterTransports(EndpointTransport.Of(cluster.Name, cluster.TransportSocket), matches);
    }

    /// <summary>The transport for an endpoint with <paramref name="metadata"/>.</summary>
    public EndpointTransport For(Metadata? metadata)
    {
        if (_matches.Length == 0)
        {
            return Default;
        }

        Struct? labels = null;
        metadata?.FilterMetadata.TryGetValue(MatchFilter, out labels);
        foreach (var (match, transport) in _matches)
        {
            if (Matches(match, labels))
            {
                return transport;
            }
        }

        return Default;
    }

    private static bool Matches(Struct match, Struct? labels)
    {
        foreach (var (name, expected) in match.Fields)
        {
            if (labels is null || !labels.Fields.TryGetValue(name, out var actual) || !actual.Equals(expected))
            {
                return false;
            }
        }

        return true;
    }
}

namespace Mesh.ControlPlane.Config;

// The subset of Istio's security.istio.io API the control plane applies to inbound listeners, as immutable records.

/// <summary>PeerAuthentication <c>mtls.mode</c>; <see cref="Unset"/> inherits from the enclosing scope.</summary>
internal enum MtlsMode { Unset, Disable, Permissive, Strict }

/// <summary>
/// <c>security.istio.io</c> PeerAuthentication: the mTLS mode a workload's inbound listeners require.
/// </summary>
internal sealed record PeerAuthentication : IstioResource
{
    /// <summary><c>selector.matchLabels</c>; null (or empty) means namespace-wide (mesh-wide in the root namespace).</summary>
    public IReadOnlyDictionary<string, string>? Selector { get; init; }

    public MtlsMode Mode { get; init; }

    /// <summary><c>portLevelMtls</c> by workload port; applies only with a selector, as in Istio.</summary>
    public IReadOnlyDictionary<uint, MtlsMode> PortLevelMtls { get; init; } = new Dictionary<uint, MtlsMode>();

    public bool HasSelector => Selector is { Count: > 0 };
}

/// <summary>AuthorizationPolicy <c>action</c>.</summary>
internal enum AuthorizationAction { Allow, Deny, Audit, Custom }

/// <summary>One attribute of a rule with its values and not-values (OR within each; the not-form is negated).</summary>
/// <param name="Key">The attribute: <c>source.principal</c>, <c>request.headers[x-user]</c>, the internal names of
/// from/to fields (<see cref="AuthorizationAttributes"/>).</param>
/// <param name="Values">Any of these matches.</param>
/// <param name="NotValues">None of these may match.</param>
/// <param name="Line">Where the attribute is written, for warnings.</param>
internal sealed record AuthorizationCondition(string Key, IReadOnlyList<string> Values, IReadOnlyList<string> NotValues, int Line);

/// <summary>
/// One rule: OR of its <see cref="From"/> entries (each an AND of conditions), AND OR of its <see cref="To"/> entries,
/// AND all <see cref="When"/> conditions. Empty From / To mean any source / any operation.
/// </summary>
internal sealed record AuthorizationRule(
    IReadOnlyList<IReadOnlyList<AuthorizationCondition>> From,
    IReadOnlyList<IReadOnlyList<AuthorizationCondition>> To,
    IReadOnlyList<AuthorizationCondition> When,
    int Line);

/// <summary><c>security.istio.io</c> AuthorizationPolicy.</summary>
internal sealed record AuthorizationPolicy : IstioResource
{
    /// <summary><c>selector.matchLabels</c>; null means every workload of the namespace (of the mesh in the root namespace).</summary>
    public IReadOnlyDictionary<string, string>? Selector { get; init; }

    public AuthorizationAction Action { get; init; }

    public IReadOnlyList<AuthorizationRule> Rules { get; init; } = [];

    public bool HasSelector => Selector is { Count: > 0 };
}

/// <summary>The attribute names of from.source / to.operation fields and of <c>when</c> conditions.</summary>
internal static class AuthorizationAttributes
{
    public const string SourceIp = "source.ip";
    public const string RemoteIp = "remote.ip";
    public const string SourceNamespace = "source.namespace";
    public const string SourcePrincipal = "source.principal";
    public const string SourceServiceAccount = "source.serviceAccount";
    public const string RequestPrincipal = "request.auth.principal";
    public const string RequestAudiences = "request.auth.audiences";
    public const string RequestPresenter = "request.auth.presenter";
    public const string RequestClaimsPrefix = "request.auth.claims";
    public const string RequestHeaderPrefix = "request.headers";
    public const string DestinationIp = "destination.ip";
    public const string DestinationPort = "destination.port";
    public const string ConnectionSni = "connection.sni";

    // to.operation fields (internal names, as istiod's model keys them).
    public const string Host = ":authority";
    public const string Method = ":method";
    public const string Path = "path";
}

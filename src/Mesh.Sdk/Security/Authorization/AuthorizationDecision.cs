namespace Mesh.Sdk.Security.Authorization;

/// <summary>
/// The outcome of <see cref="InboundAuthorization.Evaluate"/>. A denied HTTP request is answered <c>403</c> with
/// the body <c>RBAC: access denied</c>, a denied gRPC call with <c>PERMISSION_DENIED</c>.
/// </summary>
/// <param name="Allowed">Whether the request may proceed.</param>
/// <param name="FilterName">The RBAC filter that decided a denial, or the last that allowed; null when no filter enforced anything.</param>
/// <param name="PolicyName">
/// The policy that matched: the DENY policy that denied, or the ALLOW policy that let the request through the last ALLOW
/// filter. Null when an ALLOW filter denied because nothing matched, or when no policy was involved.
/// </param>
internal readonly record struct AuthorizationDecision(bool Allowed, string? FilterName, string? PolicyName)
{
    /// <summary>The response body Envoy's RBAC filter sends with its 403.</summary>
    public const string DeniedBody = "RBAC: access denied";

    /// <summary>Allowed, with nothing enforced.</summary>
    public static AuthorizationDecision AllowedByDefault => new(true, null, null);

    /// <summary>A line for logs and audit: <c>denied by 'envoy.filters.http.rbac' (no policy matched)</c>.</summary>
    public override string ToString() =>
        (Allowed ? "allowed" : "denied")
        + (FilterName is null ? string.Empty : $" by '{FilterName}'")
        + (PolicyName is null ? (Allowed ? string.Empty : " (no ALLOW policy matched)") : $" (policy '{PolicyName}')");
}

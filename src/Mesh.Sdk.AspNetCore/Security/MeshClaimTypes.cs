namespace Mesh.Sdk.AspNetCore.Security;

/// <summary>
/// The claims of the <c>HttpContext.User</c> identity Mesh.Sdk.AspNetCore sets for a request that arrived over mesh
/// mTLS (authentication type <see cref="AuthenticationType"/>; the identity's name is the SPIFFE id).
/// </summary>
public static class MeshClaimTypes
{
    /// <summary>The authentication type of the mesh identity: <c>MeshMtls</c>.</summary>
    public const string AuthenticationType = "MeshMtls";

    /// <summary>The caller's SPIFFE id (also the identity's name).</summary>
    public const string SpiffeId = "mesh/spiffe_id";

    /// <summary>The caller's principal, the SPIFFE id without <c>spiffe://</c>.</summary>
    public const string Principal = "mesh/principal";

    /// <summary>The caller's namespace.</summary>
    public const string Namespace = "mesh/namespace";

    /// <summary>The caller's service account.</summary>
    public const string ServiceAccount = "mesh/service_account";
}

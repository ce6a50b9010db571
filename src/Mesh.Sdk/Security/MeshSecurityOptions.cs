namespace Mesh.Sdk.Security;

/// <summary>
/// The workload certificate settings (section <c>Mesh:Security</c>). When <see cref="Enabled"/>, <c>AddMesh()</c>
/// keeps a certificate for the workload's SPIFFE id, from the first of: <see cref="CertificateDirectory"/>; the
/// bootstrap's <c>file_watcher</c> certificate provider; Istio's CA API at <see cref="CaAddress"/> (default: the xDS
/// server). See docs/security.md.
/// </summary>
public sealed class MeshSecurityOptions
{
    /// <summary>
    /// Whether the workload gets and rotates a certificate, originates Istio mutual TLS with it toward clusters that
    /// ask for it, registers with the label <c>security.istio.io/tlsMode: istio</c> (so clients use mTLS to it), and
    /// (in an ASP.NET app with <c>builder.AddMesh()</c>) serves inbound mTLS on its endpoints as PeerAuthentication says.
    /// An app without a CA keeps it off and logs nothing about certificates; its calls to mTLS clusters then fail.
    /// </summary>
    /// <value>Default: <see langword="false"/>.</value>
    public bool Enabled { get; set; }

    /// <summary>The SPIFFE trust domain of the workload's identity, <c>spiffe://&lt;trust domain&gt;/ns/&lt;namespace&gt;/sa/&lt;account&gt;</c>.</summary>
    /// <value>Default: <c>cluster.local</c>.</value>
    public string TrustDomain { get; set; } = "cluster.local";

    /// <summary>
    /// The CA's address in <c>server_uri</c> form (<c>host:port</c>, <c>dns:///host:port</c>, <c>unix:///path</c>),
    /// spoken as plaintext HTTP/2 (Mesh.ControlPlane serves its CA on the xDS port), or TLS with <see cref="CaRootCertFile"/>.
    /// </summary>
    /// <value>Default: <see langword="null"/>, meaning the bootstrap's first xDS server.</value>
    public string? CaAddress { get; set; }

    /// <summary>
    /// PEM roots the CA's TLS server certificate must chain to: when set, the CA is called over TLS (istiod's CA port
    /// 15012 with istiod's root, Istio's <c>/var/run/secrets/istio/root-cert.pem</c>), and its certificate must name
    /// the host of <see cref="CaAddress"/> (for istiod, <c>istiod.istio-system.svc:15012</c>).
    /// </summary>
    /// <value>Default: <see langword="null"/> (plaintext HTTP/2, as Mesh.ControlPlane serves its CA).</value>
    public string? CaRootCertFile { get; set; }

    /// <summary>
    /// A file whose content is sent to the CA as <c>authorization: Bearer &lt;content&gt;</c>: a join token from
    /// <c>mesh-controlplane --issue-token</c>, or an istiod JWT. Read again for every request, so it may be rotated.
    /// </summary>
    /// <value>Default: <see langword="null"/> (no token: only a control plane that trusts loopback callers signs).</value>
    public string? TokenFile { get; set; }

    /// <summary>
    /// A folder holding <c>cert-chain.pem</c>, <c>key.pem</c> and <c>root-cert.pem</c> (the layout Istio's agent,
    /// cert-manager's csi-driver and SPIRE helpers write): the certificate is read from there, no CA is called, and
    /// it is read again when the files change.
    /// </summary>
    /// <value>Default: <see langword="null"/>.</value>
    public string? CertificateDirectory { get; set; }

    /// <summary>The lifetime asked of the CA (<c>validity_duration</c>); the CA may refuse a longer one than it allows.</summary>
    /// <value>Default: 24 hours (the CA's default for Istio's agent).</value>
    public TimeSpan CertificateLifetime { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How far into a certificate's lifetime a new one is requested (Istio's <c>SECRET_GRACE_PERIOD_RATIO</c> counted from the start).</summary>
    /// <value>Default: 0.5 (half way).</value>
    public double RotationPoint { get; set; } = 0.5;

    /// <summary>How often certificate files are checked for changes besides file-system notifications (the bootstrap provider's <c>refresh_interval</c> wins for its files).</summary>
    /// <value>Default: 1 minute.</value>
    public TimeSpan FileRefreshInterval { get; set; } = TimeSpan.FromMinutes(1);
}

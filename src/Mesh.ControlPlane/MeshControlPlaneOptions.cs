using Microsoft.Extensions.Logging;

namespace Mesh.ControlPlane;

/// <summary>Settings of an embedded <see cref="MeshControlPlane"/>.</summary>
public sealed class MeshControlPlaneOptions
{
    /// <summary>Directory of Istio YAML files (*.yaml, *.yml, subdirectories included), watched for changes.</summary>
    /// <value>Default: none (serve only self-registered workloads).</value>
    public string? ConfigDirectory { get; set; }

    /// <summary>IP address the xDS server listens on (plaintext HTTP/2).</summary>
    /// <value>Default: <c>127.0.0.1</c>.</value>
    public string XdsAddress { get; set; } = "127.0.0.1";

    /// <summary>TCP port of the xDS server; 0 picks a free port (read it from <see cref="MeshControlPlane.XdsPort"/> after start).</summary>
    /// <value>Default: 15010, istiod's plaintext xDS port.</value>
    public int XdsPort { get; set; } = 15010;

    /// <summary>How long after a configuration or registry change the new snapshot is pushed; changes within it coalesce.</summary>
    /// <value>Default: 100 ms.</value>
    public TimeSpan PushDebounce { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// The longest a change waits for its push while further changes keep restarting <see cref="PushDebounce"/>:
    /// this long after the first change not yet pushed, the snapshot is pushed regardless.
    /// </summary>
    /// <value>Default: 1 s.</value>
    public TimeSpan PushMaxDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a self-registered workload stays after its last ADS stream ends.</summary>
    /// <value>Default: 10 s.</value>
    public TimeSpan RegistrationGracePeriod { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Whether self-registered workloads are kept across restarts in <c>.mesh-registry.json</c> in
    /// <see cref="ConfigDirectory"/> (written on every change, read at start), so a restarted control plane serves
    /// them before they reconnect instead of telling clients their services are gone. Needs <see cref="ConfigDirectory"/>.
    /// </summary>
    /// <value>Default: <see langword="true"/>.</value>
    public bool PersistRegistrations { get; set; } = true;

    /// <summary>
    /// How long a registration read back at start stays without its workload reconnecting. Long enough for a
    /// workload in gRPC's longest reconnect backoff (120 s, ±20 % jitter) to come back.
    /// </summary>
    /// <value>Default: 150 s.</value>
    public TimeSpan RestoredRegistrationGracePeriod { get; set; } = TimeSpan.FromSeconds(150);

    /// <summary>Quiet time after a file-system event before the config directory is rescanned.</summary>
    /// <value>Default: 200 ms.</value>
    public TimeSpan ConfigDebounce { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Interval of the rescan that catches changes the file-system watcher missed.</summary>
    /// <value>Default: 5 s.</value>
    public TimeSpan ConfigPollInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Namespace of resources and nodes that do not name one.</summary>
    /// <value>Default: <c>default</c>.</value>
    public string DefaultNamespace { get; set; } = "default";

    /// <summary>Cluster DNS domain used to expand short host names.</summary>
    /// <value>Default: <c>cluster.local</c>.</value>
    public string ClusterDomain { get; set; } = "cluster.local";

    /// <summary>
    /// Istio's root namespace: PeerAuthentications and AuthorizationPolicies in it without a selector apply to the whole
    /// mesh (AuthorizationPolicies with a selector to matching workloads of every namespace).
    /// </summary>
    /// <value>Default: <c>istio-system</c>, istiod's default (meshConfig.rootNamespace).</value>
    public string RootNamespace { get; set; } = "istio-system";

    /// <summary>The SPIFFE trust domain of the identities the CA signs: <c>spiffe://&lt;trust domain&gt;/ns/&lt;namespace&gt;/sa/&lt;account&gt;</c>.</summary>
    /// <value>Default: <c>cluster.local</c>, Istio's.</value>
    public string TrustDomain { get; set; } = "cluster.local";

    /// <summary>
    /// The CA's folder. Holding Istio's plugged-in CA files (<c>ca-cert.pem</c>, <c>ca-key.pem</c>, and for an
    /// intermediate <c>root-cert.pem</c>, optionally <c>cert-chain.pem</c>), the CA signs with them; empty or missing,
    /// a root is generated at first start and written there, and reused by later starts. The join-token key
    /// (<c>join-token.key</c>) is kept there too.
    /// </summary>
    /// <value>Default: none (a root generated in memory, lost at exit; join tokens valid until exit).</value>
    public string? CaDirectory { get; set; }

    /// <summary>PEM file of the certificate the CA signs with (a root, or an intermediate under <see cref="RootCertFile"/>); takes precedence over <see cref="CaDirectory"/>'s files.</summary>
    /// <value>Default: none.</value>
    public string? CaCertFile { get; set; }

    /// <summary>PEM file of the private key of <see cref="CaCertFile"/> (PKCS#8, or SEC1/PKCS#1).</summary>
    /// <value>Default: none.</value>
    public string? CaKeyFile { get; set; }

    /// <summary>PEM file of the root <see cref="CaCertFile"/> chains to; required when that is an intermediate.</summary>
    /// <value>Default: none.</value>
    public string? RootCertFile { get; set; }

    /// <summary>PEM file of the intermediates between <see cref="CaCertFile"/> and the root, in any order (Istio's <c>cert-chain.pem</c> may hold both ends too).</summary>
    /// <value>Default: none.</value>
    public string? CertChainFile { get; set; }

    /// <summary>Lifetime of a workload certificate whose request asks for none (istiod's <c>DEFAULT_WORKLOAD_CERT_TTL</c>).</summary>
    /// <value>Default: 24 hours.</value>
    public TimeSpan DefaultCertificateTtl { get; set; } = TimeSpan.FromHours(24);

    /// <summary>The longest lifetime a request may ask for; a longer one is refused, as istiod refuses it (<c>MAX_WORKLOAD_CERT_TTL</c>).</summary>
    /// <value>Default: 90 days.</value>
    public TimeSpan MaxCertificateTtl { get; set; } = TimeSpan.FromDays(90);

    /// <summary>
    /// Development trust: a caller connecting from a loopback address (127.0.0.0/8, ::1) without a join token gets a
    /// certificate for whatever identity its CSR names. A warning says so at start. Turn it off where other local
    /// users or processes are not to be trusted: every caller then needs a join token.
    /// </summary>
    /// <value>Default: <see langword="true"/>.</value>
    public bool TrustLoopbackCallers { get; set; } = true;

    /// <summary>
    /// TCP port of the monitoring server (istiod's monitoring port is 15014), plaintext HTTP on <see cref="XdsAddress"/>:
    /// <c>/metrics</c> (the control plane's own metrics, istiod's names), <c>/graph</c> and <c>/dotviz</c> (the service
    /// graph as JSON and Graphviz DOT) and <c>/</c> (the live dashboard page); 0 picks a free port (read it from
    /// <see cref="MeshControlPlane.MonitoringPort"/> after start).
    /// </summary>
    /// <value>Default: none (no monitoring server).</value>
    public int? MonitoringPort { get; set; }

    /// <summary>
    /// A Prometheus server whose HTTP API the service graph queries (<c>istio_requests_total</c> and the duration
    /// histogram), instead of scraping the self-registered workloads itself.
    /// </summary>
    /// <value>Default: none (scrape the workloads).</value>
    public Uri? PrometheusUrl { get; set; }

    /// <summary>How often the service graph scrapes every self-registered workload's metrics (without <see cref="PrometheusUrl"/>).</summary>
    /// <value>Default: 5 s.</value>
    public TimeSpan ScrapeInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The window the service graph's rates, error shares and latencies are computed over.</summary>
    /// <value>Default: 1 minute.</value>
    public TimeSpan GraphWindow { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Where logs go.</summary>
    /// <value>Default: no logging.</value>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>Clock for debouncing, polling and registration expiry.</summary>
    /// <value>Default: <see cref="TimeProvider.System"/>.</value>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}

using Mesh.Sdk.Propagation;
using Mesh.Sdk.Security;
using Mesh.Sdk.Telemetry;
using Mesh.Sdk.Xds;

namespace Mesh.Sdk;

/// <summary>
/// Settings of the in-process mesh, bound from the <c>Mesh</c> configuration section by
/// <c>services.AddMesh()</c> and validated at start: a bad value fails start-up with a message naming its key.
/// The xDS bootstrap itself (control plane address, node) is read by <see cref="XdsBootstrapLoader"/> from
/// <c>GRPC_XDS_BOOTSTRAP</c>, <c>GRPC_XDS_BOOTSTRAP_CONFIG</c> or the same section, unless
/// <see cref="BootstrapConfig"/> is set.
/// </summary>
public sealed class MeshOptions
{
    /// <summary>The configuration section the options are bound from.</summary>
    public const string SectionName = "Mesh";

    /// <summary>The namespace used when neither the options nor the bootstrap name one.</summary>
    public const string DefaultNamespace = "default";

    /// <summary>
    /// The service this workload belongs to (node metadata <c>MESH_SERVICE</c>), for example <c>reviews</c>. When
    /// set, the workload registers itself with the control plane as an endpoint of that service; requires
    /// <see cref="Ports"/>, unless the host discovers them from its server (<c>builder.AddMesh()</c> of
    /// Mesh.Sdk.AspNetCore: see <see cref="ServicePort"/>).
    /// </summary>
    /// <value>Default: <see langword="null"/> (no self-registration; the workload only calls others).</value>
    public string? ServiceName { get; set; }

    /// <summary>
    /// The workload's namespace (node metadata <c>NAMESPACE</c>); short host names such as <c>reviews</c> expand to
    /// <c>reviews.{Namespace}.svc.{ClusterDomain}</c>.
    /// </summary>
    /// <value>Default: <see langword="null"/>, meaning the bootstrap's node metadata <c>NAMESPACE</c>, else <c>default</c>.</value>
    public string? Namespace { get; set; }

    /// <summary>The workload's labels (node metadata <c>LABELS</c>), such as <c>app</c> and <c>version</c>; DestinationRule subsets select on them.</summary>
    /// <value>Default: empty.</value>
    public IDictionary<string, string> Labels { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>The workload's service account (node metadata <c>SERVICE_ACCOUNT</c>).</summary>
    /// <value>Default: <see langword="null"/>.</value>
    public string? ServiceAccount { get; set; }

    /// <summary>The workload's name (node metadata <c>WORKLOAD_NAME</c>), shown by the control plane.</summary>
    /// <value>Default: <see langword="null"/>.</value>
    public string? WorkloadName { get; set; }

    /// <summary>
    /// Service ports mapped to the ports this workload listens on (node metadata <c>MESH_PORTS</c>), for example
    /// <c>{ "9080": 41234 }</c>: callers address <c>reviews:9080</c>, requests reach this process on 41234.
    /// </summary>
    /// <value>Default: empty.</value>
    public IDictionary<int, int> Ports { get; } = new Dictionary<int, int>();

    /// <summary>
    /// The service port callers address when <see cref="Ports"/> is empty and the ports are discovered from the
    /// web server once it has bound (<c>builder.AddMesh()</c> of Mesh.Sdk.AspNetCore; key <c>Mesh:ServicePort</c>).
    /// The first port the server is bound to is registered under this service port, for example
    /// <c>Mesh:ServicePort=9080</c> with Kestrel on an ephemeral port 41234 registers <c>{ "9080": 41234 }</c>;
    /// further bound ports are registered under their own numbers.
    /// </summary>
    /// <value>Default: <see langword="null"/>, meaning the first bound port's own number.</value>
    public int? ServicePort { get; set; }

    /// <summary>
    /// The request headers that travel from an incoming request to the outgoing requests made while handling it
    /// (key <c>Mesh:PropagatedHeaders</c>; names are case-insensitive). Configuration adds names to the defaults;
    /// code can <c>Clear()</c> the set first. See <see cref="MeshPropagation.DefaultHeaders"/> for the defaults and why.
    /// </summary>
    /// <value>Default: <see cref="MeshPropagation.DefaultHeaders"/>.</value>
    public ISet<string> PropagatedHeaders { get; } = new HashSet<string>(MeshPropagation.DefaultHeaders, StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Whether an incoming request without <c>x-request-id</c> gets one (a new GUID), as Envoy does on inbound, so
    /// every call it makes carries the same id. Applies only when <c>x-request-id</c> is in <see cref="PropagatedHeaders"/>.
    /// </summary>
    /// <value>Default: <see langword="true"/>.</value>
    public bool GenerateRequestId { get; set; } = true;

    /// <summary>The IP address other workloads reach this one on (node metadata <c>INSTANCE_IPS</c>).</summary>
    /// <value>Default: <see langword="null"/>, meaning the first up, non-loopback IPv4 address of the host, else <c>127.0.0.1</c>.</value>
    public string? InstanceIp { get; set; }

    /// <summary>The cluster DNS domain short names expand into.</summary>
    /// <value>Default: <c>cluster.local</c>.</value>
    public string ClusterDomain { get; set; } = "cluster.local";

    /// <summary>
    /// How long the first request to a host waits for the control plane to say whether the host is in the mesh
    /// (its listener and everything it depends on arrive, or the server reports it does not exist). When it
    /// elapses with nothing known, the host is treated as outside the mesh (Istio's <c>ALLOW_ANY</c>) and a warning
    /// names the listener; should the listener arrive later, requests to the host are meshed from then on.
    /// </summary>
    /// <value>Default: 5 seconds.</value>
    public TimeSpan ResolveTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How many bytes of a request body are kept so that the request can be sent again (key
    /// <c>Mesh:RequestBufferLimitBytes</c>), Envoy's <c>per_connection_buffer_limit_bytes</c>: a body is always streamed
    /// to the first attempt, and a copy of it is kept for retries and mirrors up to this bound. A request whose body
    /// grows past it is no longer retried or mirrored; the attempt in progress carries on. 0 keeps nothing (a request
    /// with a body is never retried).
    /// </summary>
    /// <value>Default: 1048576 (1 MiB, Envoy's default).</value>
    public int RequestBufferLimitBytes { get; set; } = DefaultRequestBufferLimitBytes;

    /// <summary>The default of <see cref="RequestBufferLimitBytes"/>: 1 MiB, as Envoy's <c>per_connection_buffer_limit_bytes</c>.</summary>
    public const int DefaultRequestBufferLimitBytes = 1024 * 1024;

    /// <summary>
    /// Whether <c>AddMesh()</c> meshes every <c>IHttpClientFactory</c> client. When <see langword="false"/>, only
    /// clients configured with <c>IHttpClientBuilder.AddMesh()</c> are.
    /// </summary>
    /// <value>Default: <see langword="true"/>.</value>
    public bool MeshAllHttpClients { get; set; } = true;

    /// <summary>
    /// The xDS bootstrap as gRPC bootstrap JSON, taking precedence over <c>GRPC_XDS_BOOTSTRAP</c>,
    /// <c>GRPC_XDS_BOOTSTRAP_CONFIG</c> and the section's bootstrap keys (key <c>Mesh:BootstrapConfig</c>).
    /// </summary>
    /// <value>Default: <see langword="null"/> (read the bootstrap from the environment or configuration).</value>
    public string? BootstrapConfig { get; set; }

    /// <summary>
    /// A plaintext port on 127.0.0.1 that answers only <see cref="HealthPaths"/> (key <c>Mesh:HealthPort</c>), for
    /// health checks that cannot present a mesh certificate when the app's ports are STRICT (what Istio's probe rewrite
    /// gives kubelet). It is no mesh endpoint: not registered, no mTLS, no policy. It is served by Mesh.Sdk.AspNetCore
    /// beside the app's own endpoints, which stay as declared; 0 binds an ephemeral port.
    /// </summary>
    /// <value>Default: <see langword="null"/> (no health port).</value>
    public int? HealthPort { get; set; }

    /// <summary>The request paths the <see cref="HealthPort"/> passes to the app (exact, case-insensitive); any other path gets 404 there.</summary>
    /// <value>Default: <c>/health</c>, <c>/healthz</c>, <c>/ready</c>, <c>/readyz</c>, <c>/livez</c>.</value>
    public string[] HealthPaths { get; set; } = ["/health", "/healthz", "/ready", "/readyz", "/livez"];

    /// <summary>The xDS client's options (key <c>Mesh:Xds</c>): protocol and listeners subscribed at start.</summary>
    /// <value>Default: protocol from the bootstrap, no listeners.</value>
    public XdsClientOptions Xds { get; } = new();

    /// <summary>The telemetry options (key <c>Mesh:Telemetry</c>): Istio's standard metrics, on by default.</summary>
    /// <value>Default: metrics on, served at <c>/metrics</c> on the app's endpoints.</value>
    public MeshTelemetryOptions Telemetry { get; } = new();

    /// <summary>The workload certificate's options (key <c>Mesh:Security</c>): off unless <c>Mesh:Security:Enabled</c>.</summary>
    /// <value>Default: disabled.</value>
    public MeshSecurityOptions Security { get; } = new();
}

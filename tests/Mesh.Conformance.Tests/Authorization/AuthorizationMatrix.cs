namespace Mesh.Conformance.Tests.Authorization;

/// <summary>
/// One request of the matrix and the answer Istio's semantics give it: <c>200</c> (allowed) or <c>403</c> (denied,
/// body <c>RBAC: access denied</c>; <c>PERMISSION_DENIED</c> for gRPC).
/// </summary>
/// <param name="Id">Unique within its set.</param>
/// <param name="Caller">The caller's identity as <c>&lt;namespace&gt;/&lt;service account&gt;</c> (an mTLS peer with
/// <c>spiffe://cluster.local/ns/&lt;namespace&gt;/sa/&lt;service account&gt;</c>); null for a plaintext caller.</param>
/// <param name="Method">The HTTP method.</param>
/// <param name="Path">The <c>:path</c>, query included.</param>
/// <param name="Expected">200 or 403.</param>
/// <param name="Policy">The RBAC policy expected to decide (<c>&lt;namespace&gt;-&lt;name&gt;-&lt;rule&gt;</c>), when one does.</param>
internal sealed record AuthzCase(string Id, string? Caller, string Method, string Path, int Expected, string? Policy = null)
{
    public int Port { get; init; } = 9080;

    public string Host { get; init; } = "reviews:9080";

    public (string Name, string Value)[] Headers { get; init; } = [];

    public string RemoteIp { get; init; } = "127.0.0.1";

    public string? Sni { get; init; }
}

/// <summary>A set of AuthorizationPolicies applied together (namespace <c>default</c>, workload <c>app: reviews</c>) and the requests checked against them.</summary>
internal sealed record AuthzSet(string Name, string Yaml, AuthzCase[] Cases);

/// <summary>
/// The ALLOW/DENY matrix: Istio's <c>security.istio.io</c> YAML with principals, namespaces, paths (exact, prefix,
/// suffix, <c>*</c>), methods, hosts, ports, <c>when</c> conditions and the <c>not</c> forms; DENY before ALLOW, no
/// ALLOW policy = allow, any ALLOW policy = must match one; plaintext callers against principal rules.
/// </summary>
internal static class AuthorizationMatrix
{
    private static string Policy(string name, string spec, string ns = "default") => $"""
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {"{"}name: {name}, namespace: {ns}{"}"}
        spec:
        {spec}
        ---

        """;

    public static readonly AuthzSet[] Sets =
    [
        new("no-policy", string.Empty,
        [
            new("plaintext-get", null, "GET", "/reviews/1", 200),
            new("mtls-delete", "default/ratings", "DELETE", "/admin", 200),
        ]),

        new("deny-only", Policy("deny-admin", """
              action: DENY
              rules:
              - to: [{operation: {paths: ["/admin/*"]}}]
              - when: [{key: "request.headers[x-block]", values: ["yes"]}]
              - from: [{source: {principals: ["cluster.local/ns/default/sa/evil"]}}]
            """) + Policy("ratings-only", """
              selector: {matchLabels: {app: ratings}}
              action: ALLOW
              rules:
              - from: [{source: {principals: ["cluster.local/ns/default/sa/nobody"]}}]
            """),
        [
            new("prefix-path-denied", null, "GET", "/admin/users", 403, "default-deny-admin-0"),
            new("prefix-needs-the-slash", null, "GET", "/administrator", 200),
            new("other-path-allowed-without-allow-policy", null, "GET", "/reviews/1", 200),
            new("header-condition-denied", "default/productpage", "GET", "/reviews/1", 403, "default-deny-admin-1") { Headers = [("x-block", "yes")] },
            new("header-condition-other-value", "default/productpage", "GET", "/reviews/1", 200) { Headers = [("x-block", "no")] },
            new("principal-denied", "default/evil", "GET", "/reviews/1", 403, "default-deny-admin-2"),
            new("other-workloads-allow-does-not-apply", "default/productpage", "GET", "/reviews/1", 200),
        ]),

        new("allow-must-match", Policy("reviews-viewer", """
              selector: {matchLabels: {app: reviews}}
              rules:
              - from: [{source: {principals: ["cluster.local/ns/default/sa/productpage"]}}]
                to: [{operation: {methods: ["GET", "HEAD"], paths: ["/reviews/*", "*/healthz", "/exact"]}}]
              - from: [{source: {namespaces: ["team-*"]}}]
                to: [{operation: {ports: ["9090"]}}]
              - to: [{operation: {paths: ["/public"]}}]
              - from: [{source: {principals: ["*"]}}]
                when: [{key: "request.headers[x-canary]", values: ["always"]}]
              - from: [{source: {principals: ["cluster.local/ns/default/sa/writer"]}}]
                to: [{operation: {methods: ["POST"], paths: ["*"]}}]
              - to: [{operation: {hosts: ["reviews.example.com"], paths: ["/by-host"]}}]
            """),
        [
            new("principal-method-prefix", "default/productpage", "GET", "/reviews/1", 200, "default-reviews-viewer-0"),
            new("query-is-not-part-of-the-path", "default/productpage", "HEAD", "/reviews/1?rating=5", 200, "default-reviews-viewer-0"),
            new("prefix-needs-the-slash", "default/productpage", "GET", "/reviewsX", 403),
            new("method-not-listed", "default/productpage", "POST", "/reviews/1", 403),
            new("suffix-path", "default/productpage", "GET", "/api/v1/healthz", 200, "default-reviews-viewer-0"),
            new("exact-path", "default/productpage", "GET", "/exact", 200, "default-reviews-viewer-0"),
            new("exact-path-is-exact", "default/productpage", "GET", "/exact/more", 403),
            new("other-principal", "default/ratings", "GET", "/reviews/1", 403),
            new("plaintext-against-principal-rule", null, "GET", "/reviews/1", 403),
            new("namespace-wildcard-on-port", "team-a/builder", "DELETE", "/anything", 200, "default-reviews-viewer-1") { Port = 9090, Host = "reviews:9090" },
            new("namespace-wildcard-other-port", "team-a/builder", "GET", "/anything", 403),
            new("other-namespace-on-port", "prod/builder", "GET", "/anything", 403) { Port = 9090, Host = "reviews:9090" },
            new("plaintext-open-path", null, "GET", "/public", 200, "default-reviews-viewer-2"),
            new("plaintext-open-path-is-exact", null, "GET", "/public/x", 403),
            new("any-principal-with-header", "default/ratings", "GET", "/x", 200, "default-reviews-viewer-3") { Headers = [("x-canary", "always")] },
            new("any-principal-needs-mtls", null, "GET", "/x", 403) { Headers = [("x-canary", "always")] },
            new("header-other-value", "default/ratings", "GET", "/x", 403) { Headers = [("x-canary", "sometimes")] },
            new("star-path", "default/writer", "POST", "/anything/at/all", 200, "default-reviews-viewer-4"),
            new("star-path-method-still-checked", "default/writer", "GET", "/anything", 403),
            new("host-ignores-case", null, "GET", "/by-host", 200, "default-reviews-viewer-5") { Host = "REVIEWS.example.com" },
            new("host-with-port-is-another-host", null, "GET", "/by-host", 403) { Host = "reviews.example.com:9080" },
            new("host-other", null, "GET", "/by-host", 403),
        ]),

        new("deny-beats-allow", Policy("allow-all", """
              rules:
              - {}
            """) + Policy("deny-ratings", """
              action: DENY
              rules:
              - from: [{source: {principals: ["cluster.local/ns/default/sa/ratings"]}}]
              - to: [{operation: {methods: ["DELETE"]}}]
            """),
        [
            new("allowed-by-empty-rule", "default/productpage", "GET", "/reviews/1", 200, "default-allow-all-0"),
            new("plaintext-allowed-by-empty-rule", null, "GET", "/reviews/1", 200, "default-allow-all-0"),
            new("denied-principal", "default/ratings", "GET", "/reviews/1", 403, "default-deny-ratings-0"),
            new("denied-method", "default/productpage", "DELETE", "/reviews/1", 403, "default-deny-ratings-1"),
        ]),

        new("not-forms", Policy("not-forms", """
              rules:
              - from: [{source: {notPrincipals: ["cluster.local/ns/default/sa/ratings"], notNamespaces: ["blocked"]}}]
                to: [{operation: {notMethods: ["DELETE"], notPaths: ["/private*"], notPorts: ["9090"], notHosts: ["*.internal"]}}]
            """),
        [
            new("matches-every-not", "default/productpage", "GET", "/reviews/1", 200, "default-not-forms-0"),
            new("plaintext-is-no-listed-principal-or-namespace", null, "GET", "/reviews/1", 200, "default-not-forms-0"),
            new("not-principal", "default/ratings", "GET", "/reviews/1", 403),
            new("not-namespace", "blocked/anyone", "GET", "/reviews/1", 403),
            new("not-method", "default/productpage", "DELETE", "/reviews/1", 403),
            new("not-path-prefix", "default/productpage", "GET", "/private/keys", 403),
            new("not-port", "default/productpage", "GET", "/reviews/1", 403) { Port = 9090, Host = "reviews:9090" },
            new("not-host-suffix", "default/productpage", "GET", "/reviews/1", 403) { Host = "reviews.Internal" },
        ]),

        new("ip-blocks", Policy("deny-remote", """
              action: DENY
              rules:
              - from: [{source: {notIpBlocks: ["127.0.0.0/8", "::1"]}}]
              - from: [{source: {ipBlocks: ["10.9.0.0/16"]}}]
            """),
        [
            new("loopback", null, "GET", "/", 200),
            new("ipv4-mapped-loopback", null, "GET", "/", 200) { RemoteIp = "::ffff:127.0.0.1" },
            new("not-ip-block", null, "GET", "/", 403, "default-deny-remote-0") { RemoteIp = "192.0.2.7" },
            new("ip-block", null, "GET", "/", 403, "default-deny-remote-0") { RemoteIp = "10.9.1.1" },
        ]),

        new("when-keys", Policy("when-keys", """
              rules:
              - to: [{operation: {paths: ["/ns"]}}]
                when: [{key: source.namespace, values: ["default"]}]
              - to: [{operation: {paths: ["/principal"]}}]
                when: [{key: source.principal, notValues: ["cluster.local/ns/default/sa/ratings"]}]
              - to: [{operation: {paths: ["/port"]}}]
                when: [{key: destination.port, values: ["9090"]}]
              - to: [{operation: {paths: ["/ip"]}}]
                when: [{key: source.ip, values: ["127.0.0.0/8"]}, {key: destination.ip, values: ["127.0.0.1"]}]
              - to: [{operation: {paths: ["/sni"]}}]
                when: [{key: connection.sni, values: ["*.svc.cluster.local"]}]
              - to: [{operation: {paths: ["/sa"]}}]
                when: [{key: source.serviceAccount, values: ["productpage"]}]
            """),
        [
            new("source-namespace", "default/productpage", "GET", "/ns", 200, "default-when-keys-0"),
            new("source-namespace-other", "prod/productpage", "GET", "/ns", 403),
            new("source-namespace-plaintext", null, "GET", "/ns", 403),
            new("source-principal-not-value", "default/productpage", "GET", "/principal", 200, "default-when-keys-1"),
            new("source-principal-not-value-hit", "default/ratings", "GET", "/principal", 403),
            new("destination-port", null, "GET", "/port", 200, "default-when-keys-2") { Port = 9090, Host = "reviews:9090" },
            new("destination-port-other", null, "GET", "/port", 403),
            new("source-and-destination-ip", null, "GET", "/ip", 200, "default-when-keys-3"),
            new("source-ip-other", null, "GET", "/ip", 403) { RemoteIp = "192.0.2.1" },
            new("sni-suffix", "default/productpage", "GET", "/sni", 200, "default-when-keys-4") { Sni = "reviews.default.svc.cluster.local" },
            new("sni-missing", "default/productpage", "GET", "/sni", 403),
            new("service-account-of-policy-namespace", "default/productpage", "GET", "/sa", 200, "default-when-keys-5"),
            new("service-account-other-namespace", "prod/productpage", "GET", "/sa", 403),
        ]),

        new("allow-without-rules", Policy("allow-nothing", """
              action: ALLOW
            """) + Policy("audit", """
              action: AUDIT
              rules:
              - {}
            """),
        [
            new("mtls-denied", "default/productpage", "GET", "/", 403),
            new("plaintext-denied", null, "GET", "/", 403),
        ]),

        // No RequestAuthentication in-process: no request has a request principal or claims (istiod's metadata
        // matchers on the JWT filter's payload never match), so the not-forms match every request.
        new("request-principals-without-jwt", Policy("jwt", """
              rules:
              - from: [{source: {requestPrincipals: ["*"]}}]
              - to: [{operation: {paths: ["/open"]}}]
              - from: [{source: {notRequestPrincipals: ["*"]}}]
                to: [{operation: {paths: ["/anonymous/*"]}}]
            """),
        [
            new("jwt-rule-matches-nothing", "default/productpage", "GET", "/reviews/1", 403),
            new("other-rule-still-applies", null, "GET", "/open", 200, "default-jwt-1"),
            new("not-request-principal-allows-mtls", "default/productpage", "GET", "/anonymous/a", 200, "default-jwt-2"),
            new("not-request-principal-allows-plaintext", null, "GET", "/anonymous/b", 200, "default-jwt-2"),
        ]),

        new("request-principals-deny-without-jwt", Policy("deny-jwt", """
              action: DENY
              rules:
              - from: [{source: {requestPrincipals: ["*"]}}]
                to: [{operation: {paths: ["/jwt-only"]}}]
              - from: [{source: {notRequestPrincipals: ["*"]}}]
                to: [{operation: {paths: ["/needs-jwt/*"]}}]
              - to: [{operation: {paths: ["/claims"]}}]
                when: [{key: "request.auth.claims[groups]", values: ["admin"]}]
            """),
        [
            new("request-principal-rule-denies-nothing", "default/productpage", "GET", "/jwt-only", 200),
            new("not-request-principal-denies-mtls", "default/productpage", "GET", "/needs-jwt/x", 403, "default-deny-jwt-1"),
            new("not-request-principal-denies-plaintext", null, "GET", "/needs-jwt/y", 403, "default-deny-jwt-1"),
            new("claim-condition-denies-nothing", null, "GET", "/claims", 200),
        ]),

        new("mesh-wide-and-namespace", Policy("mesh-deny", """
              action: DENY
              rules:
              - to: [{operation: {paths: ["/mesh-deny"]}}]
            """, ns: "istio-system") + Policy("allow-default", """
              rules:
              - from: [{source: {namespaces: ["default"]}}]
            """) + Policy("other-namespace", """
              action: DENY
              rules:
              - {}
            """, ns: "prod"),
        [
            new("mesh-wide-deny", "default/productpage", "GET", "/mesh-deny", 403, "istio-system-mesh-deny-0"),
            new("namespace-allow", "default/productpage", "GET", "/x", 200, "default-allow-default-0"),
            new("namespace-allow-needs-namespace", "prod/productpage", "GET", "/x", 403),
        ]),
    ];
}

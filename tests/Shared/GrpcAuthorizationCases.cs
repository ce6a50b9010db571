namespace Mesh.Testing;

/// <summary>
/// AuthorizationPolicies for the echo server (<c>default</c>, <c>app: echo-server</c>) and the decision each plaintext
/// gRPC call must get. The same table is checked against gRPC C-core's RBAC (tests/Mesh.Interop.Tests) and against the
/// SDK's engine (tests/Mesh.Conformance.Tests), so the two agree on the listener the control plane serves.
/// </summary>
internal static class GrpcAuthorizationCases
{
    public const string Yaml = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: deny-blocked, namespace: default}
        spec:
          selector: {matchLabels: {app: echo-server}}
          action: DENY
          rules:
          - to: [{operation: {paths: ["*/Whisper"]}}]
            when: [{key: "request.headers[x-block]", values: ["yes"]}]
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: allow-echo, namespace: default}
        spec:
          selector: {matchLabels: {app: echo-server}}
          rules:
          - to: [{operation: {paths: ["/mesh.test.Echo/Say"], methods: ["POST"]}}]
          - to: [{operation: {paths: ["/mesh.test.Echo/*"], notPaths: ["/mesh.test.Echo/Shout", "/mesh.test.Echo/Murmur"]}}]
            when: [{key: "request.headers[x-user]", values: ["alice", "bo*"]}]
          - from: [{source: {principals: ["*"]}}]
            to: [{operation: {paths: ["/mesh.test.Echo/Shout"]}}]
          - from: [{source: {notPrincipals: ["cluster.local/ns/default/sa/nobody"], ipBlocks: ["127.0.0.0/8"]}}]
            to: [{operation: {paths: ["/mesh.test.Echo/Murmur"]}}]
        """;

    /// <summary>(id, method of <c>mesh.test.Echo</c>, request headers, allowed).</summary>
    public static readonly (string Id, string Method, (string Name, string Value)[] Headers, bool Allowed)[] Cases =
    [
        ("exact-path-and-method", "Say", [], true),
        ("no-allow-rule-matches", "Whisper", [], false),
        ("header-exact", "Whisper", [("x-user", "alice")], true),
        ("header-prefix", "Whisper", [("x-user", "bob")], true),
        ("header-other", "Whisper", [("x-user", "carol")], false),
        ("deny-beats-allow", "Whisper", [("x-user", "alice"), ("x-block", "yes")], false),
        ("deny-needs-its-path", "Say", [("x-block", "yes")], true),
        ("any-principal-refuses-plaintext", "Shout", [("x-user", "alice")], false),
        ("not-principal-admits-plaintext", "Murmur", [], true),
    ];

    /// <summary>
    /// Request authentication as istiod writes it (metadata principals on the JWT filter's payload): no request has a
    /// request principal or claims, so those never match and their not-forms always do, in a DENY and an ALLOW policy.
    /// </summary>
    public const string RequestAuthenticationYaml = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: deny-request-auth, namespace: default}
        spec:
          selector: {matchLabels: {app: echo-server}}
          action: DENY
          rules:
          - from: [{source: {requestPrincipals: ["*"]}}]
            to: [{operation: {paths: ["/mesh.test.Echo/Say"]}}]
          - from: [{source: {notRequestPrincipals: ["*"]}}]
            to: [{operation: {paths: ["/mesh.test.Echo/Shout"]}}]
          - to: [{operation: {paths: ["/mesh.test.Echo/Whisper"]}}]
            when: [{key: "request.auth.claims[groups]", values: ["admin"]}]
        ---
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: allow-request-auth, namespace: default}
        spec:
          selector: {matchLabels: {app: echo-server}}
          rules:
          - from: [{source: {notRequestPrincipals: ["*"]}}]
            to: [{operation: {paths: ["/mesh.test.Echo/Say", "/mesh.test.Echo/Shout", "/mesh.test.Echo/Whisper"]}}]
          - from: [{source: {requestPrincipals: ["https://issuer.example/*"]}}]
            to: [{operation: {paths: ["/mesh.test.Echo/Murmur"]}}]
          - to: [{operation: {paths: ["/mesh.test.Echo/Hum"]}}]
            when:
            - {key: "request.auth.audiences", notValues: ["*"]}
            - {key: "request.headers[x-user]", values: ["alice"]}
        """;

    /// <summary>(id, method of <c>mesh.test.Echo</c>, request headers, allowed) for <see cref="RequestAuthenticationYaml"/>.</summary>
    public static readonly (string Id, string Method, (string Name, string Value)[] Headers, bool Allowed)[] RequestAuthenticationCases =
    [
        ("deny-request-principal-denies-nothing", "Say", [], true),
        ("deny-not-request-principal-denies-all", "Shout", [], false),
        ("deny-claim-denies-nothing", "Whisper", [], true),
        ("allow-request-principal-matches-nothing", "Murmur", [], false),
        ("allow-not-audiences-matches", "Hum", [("x-user", "alice")], true),
        ("allow-not-audiences-needs-its-header", "Hum", [], false),
    ];
}

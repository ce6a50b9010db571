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
}

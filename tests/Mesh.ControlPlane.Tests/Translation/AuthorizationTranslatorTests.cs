using Envoy.Config.Rbac.V3;
using Google.Protobuf;
using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Translation;
using Mesh.Xds;
using RbacFilter = Envoy.Extensions.Filters.Http.Rbac.V3.RBAC;

namespace Mesh.ControlPlane.Tests.Translation;

/// <summary>
/// AuthorizationPolicy → RBAC, each row written from the facts of an istiod test data file
/// (<c>pilot/pkg/security/authz/builder/testdata/http/*</c>, named per row). Differences that are ours on purpose:
/// policies are named <c>&lt;ns&gt;-&lt;name&gt;-&lt;rule&gt;</c> as grpcgen names them (the builder's Envoy names
/// are <c>ns[foo]-policy[x]-rule[0]</c>), header matchers other than hosts use the single-purpose fields gRPC C-core
/// 1.51 accepts (<c>exact_match</c> for the builder's <c>string_match.exact</c>), and trust domain aliases are not known.
/// </summary>
public class AuthorizationTranslatorTests
{
    private static readonly ClientScope Httpbin = new("foo", new Dictionary<string, string> { ["app"] = "httpbin", ["version"] = "v1" });

    private static IReadOnlyDictionary<string, RbacFilter> Filters(string policyYaml)
    {
        var yaml = policyYaml + "\n---\n" + TestYaml.ReviewsServiceEntry;
        var listener = InboundListenerTests.Inbound(InboundListenerTests.Translate(yaml), "xds.istio.io/grpc/lds/inbound/0.0.0.0:8000", Httpbin);
        var hcm = InboundListenerTests.Hcm(listener);
        Assert.Equal(HttpFilterNames.Router, hcm.HttpFilters[^1].Name);
        return hcm.HttpFilters.Take(hcm.HttpFilters.Count - 1).ToDictionary(f => f.Name, f => f.TypedConfig.Unpack<RbacFilter>());
    }

    private static Policy Json(string json) => JsonParser.Default.Parse<Policy>(json);

    private const string AnyPolicy = """{"permissions": [{"andRules": {"rules": [{"any": true}]}}], "principals": [{"andIds": {"ids": [{"any": true}]}}]}""";

    [Fact]
    public void AllowEmptyRule_AllowsEverything() // allow-empty-rule-in/out.yaml
    {
        var filters = Filters("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: allow-all, namespace: foo}
            spec:
              selector: {matchLabels: {app: httpbin, version: v1}}
              rules:
              - {}
            """);

        var rbac = Assert.Single(filters, f => f.Key == HttpFilterNames.Rbac).Value.Rules;
        Assert.Equal(RBAC.Types.Action.Allow, rbac.Action);
        Assert.Equal(Json(AnyPolicy), Assert.Single(rbac.Policies, p => p.Key == "foo-allow-all-0").Value);
        Assert.Single(filters);
    }

    [Fact]
    public void DenyEmptyRule_DeniesEverything() // deny-empty-rule-in/out.yaml
    {
        var filters = Filters("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: deny-all, namespace: foo}
            spec:
              action: DENY
              selector: {matchLabels: {app: httpbin, version: v1}}
              rules:
              - {}
            """);

        var rbac = Assert.Single(filters, f => f.Key == "envoy.filters.http.rbac.DENY").Value.Rules;
        Assert.Equal(RBAC.Types.Action.Deny, rbac.Action);
        Assert.Equal(Json(AnyPolicy), Assert.Single(rbac.Policies, p => p.Key == "foo-deny-all-0").Value);
    }

    [Fact]
    public void AllowWithoutRules_DeniesEverything() // allow-nil-rule-in/out.yaml: a policy that matches nothing
    {
        var filters = Filters("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: allow-none, namespace: foo}
            spec:
              selector: {matchLabels: {app: httpbin, version: v1}}
            """);

        // An ALLOW RBAC filter with no policy: nothing matches, so every request is denied (the builder's Envoy form is
        // a policy of not-any; grpcgen leaves the filter out, which would allow everything, against Istio's API).
        var rbac = Assert.Single(filters).Value.Rules;
        Assert.Equal(RBAC.Types.Action.Allow, rbac.Action);
        Assert.Empty(rbac.Policies);
    }

    [Fact]
    public void Operations_HostsMethodsPathsPorts_InIstiodsOrder_WithWhenDestinationIp() // single-policy-in/out.yaml, rule[0].to
    {
        var filters = Filters("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: httpbin, namespace: foo}
            spec:
              rules:
              - to:
                - operation:
                    methods: ["rule[0]-to[0]-method[1]", "rule[0]-to[0]-method[2]"]
                    hosts: ["rule[0]-to[0]-host[1]", "rule[0]-to[0]-host[2]"]
                    ports: ["9001", "9002"]
                    paths: ["rule[0]-to[0]-path[1]", "rule[0]-to[0]-path[2]"]
                when:
                - key: destination.ip
                  values: ["10.10.10.10", "192.168.10.0/24"]
            """);

        var expected = Json("""
            {"permissions": [{"andRules": {"rules": [
              {"orRules": {"rules": [
                {"header": {"name": ":authority", "stringMatch": {"exact": "rule[0]-to[0]-host[1]", "ignoreCase": true}}},
                {"header": {"name": ":authority", "stringMatch": {"exact": "rule[0]-to[0]-host[2]", "ignoreCase": true}}}]}},
              {"orRules": {"rules": [
                {"header": {"name": ":method", "exactMatch": "rule[0]-to[0]-method[1]"}},
                {"header": {"name": ":method", "exactMatch": "rule[0]-to[0]-method[2]"}}]}},
              {"orRules": {"rules": [
                {"urlPath": {"path": {"exact": "rule[0]-to[0]-path[1]"}}},
                {"urlPath": {"path": {"exact": "rule[0]-to[0]-path[2]"}}}]}},
              {"orRules": {"rules": [{"destinationPort": 9001}, {"destinationPort": 9002}]}},
              {"orRules": {"rules": [
                {"destinationIp": {"addressPrefix": "10.10.10.10", "prefixLen": 32}},
                {"destinationIp": {"addressPrefix": "192.168.10.0", "prefixLen": 24}}]}}]}}],
             "principals": [{"andIds": {"ids": [{"any": true}]}}]}
            """);
        Assert.Equal(expected, Assert.Single(filters).Value.Rules.Policies["foo-httpbin-0"]);
    }

    [Fact]
    public void Sources_PrincipalsNamespacesIpBlocks_InIstiodsOrder_WithWhenHeaderAndRemoteIp() // single-policy-in/out.yaml, rule[0].from[0]
    {
        var filters = Filters("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: httpbin, namespace: foo}
            spec:
              rules:
              - from:
                - source:
                    principals: ["rule[0]-from[0]-principal[1]", "rule[0]-from[0]-principal[2]"]
                    namespaces: ["rule[0]-from[0]-ns[1]", "rule[0]-from[0]-ns[2]"]
                    ipBlocks: ["10.0.0.1", "10.0.0.2"]
                    remoteIpBlocks: ["172.16.10.10"]
                when:
                - key: "request.headers[X-header]"
                  values: ["header", "header-prefix-*", "*-suffix-header", "*"]
                - key: remote.ip
                  values: ["10.99.10.8", "10.80.64.0/18"]
            """);

        var expected = Json("""
            {"permissions": [{"andRules": {"rules": [{"any": true}]}}],
             "principals": [{"andIds": {"ids": [
              {"orIds": {"ids": [
                {"authenticated": {"principalName": {"exact": "spiffe://rule[0]-from[0]-principal[1]"}}},
                {"authenticated": {"principalName": {"exact": "spiffe://rule[0]-from[0]-principal[2]"}}}]}},
              {"orIds": {"ids": [
                {"authenticated": {"principalName": {"safeRegex": {"regex": ".*/ns/rule\\[0\\]-from\\[0\\]-ns\\[1\\]/.*"}}}},
                {"authenticated": {"principalName": {"safeRegex": {"regex": ".*/ns/rule\\[0\\]-from\\[0\\]-ns\\[2\\]/.*"}}}}]}},
              {"orIds": {"ids": [{"remoteIp": {"addressPrefix": "172.16.10.10", "prefixLen": 32}}]}},
              {"orIds": {"ids": [
                {"directRemoteIp": {"addressPrefix": "10.0.0.1", "prefixLen": 32}},
                {"directRemoteIp": {"addressPrefix": "10.0.0.2", "prefixLen": 32}}]}},
              {"orIds": {"ids": [
                {"header": {"name": "X-header", "exactMatch": "header"}},
                {"header": {"name": "X-header", "prefixMatch": "header-prefix-"}},
                {"header": {"name": "X-header", "suffixMatch": "-suffix-header"}},
                {"header": {"name": "X-header", "presentMatch": true}}]}},
              {"orIds": {"ids": [
                {"remoteIp": {"addressPrefix": "10.99.10.8", "prefixLen": 32}},
                {"remoteIp": {"addressPrefix": "10.80.64.0", "prefixLen": 18}}]}}]}}]}
            """);
        Assert.Equal(expected, Assert.Single(filters).Value.Rules.Policies["foo-httpbin-0"]);
    }

    [Fact]
    public void PrincipalWildcards_AnyPrefixSuffix() // simple-policy-principal-with-wildcard-in/out.yaml
    {
        var filters = Filters("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: httpbin, namespace: foo}
            spec:
              rules:
              - from:
                - source: {principals: ["*"]}
                - source: {principals: ["*/ns/foo/sa/rule[0]-from[1]-principal[0]", "cluster.local/ns/foo/*"]}
            """);

        var expected = Json("""
            {"permissions": [{"andRules": {"rules": [{"any": true}]}}],
             "principals": [
              {"andIds": {"ids": [{"orIds": {"ids": [{"authenticated": {"principalName": {"safeRegex": {"regex": ".+"}}}}]}}]}},
              {"andIds": {"ids": [{"orIds": {"ids": [
                {"authenticated": {"principalName": {"safeRegex": {"regex": "spiffe://.*/ns/foo/sa/rule\\[0\\]-from\\[1\\]-principal\\[0\\]"}}}},
                {"authenticated": {"principalName": {"prefix": "spiffe://cluster.local/ns/foo/"}}}]}}]}}]}
            """);
        Assert.Equal(expected, Assert.Single(filters).Value.Rules.Policies["foo-httpbin-0"]);
    }

    [Fact]
    public void NotValues_AreANotOfTheOrOfThem() // allow-path-in/out.yaml (without path templates): paths and notPaths
    {
        var filters = Filters("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: httpbin-1, namespace: foo}
            spec:
              rules:
              - to:
                - operation:
                    paths: ["/exact", "/prefix/*", "*/suffix", "*"]
                    notPaths: ["/not-exact", "/not-prefix/*"]
                from:
                - source: {notNamespaces: [bar]}
            """);

        var expected = Json("""
            {"permissions": [{"andRules": {"rules": [
              {"orRules": {"rules": [
                {"urlPath": {"path": {"exact": "/exact"}}},
                {"urlPath": {"path": {"prefix": "/prefix/"}}},
                {"urlPath": {"path": {"suffix": "/suffix"}}},
                {"urlPath": {"path": {"safeRegex": {"regex": ".+"}}}}]}},
              {"notRule": {"orRules": {"rules": [
                {"urlPath": {"path": {"exact": "/not-exact"}}},
                {"urlPath": {"path": {"prefix": "/not-prefix/"}}}]}}}]}}],
             "principals": [{"andIds": {"ids": [
              {"notId": {"orIds": {"ids": [{"authenticated": {"principalName": {"safeRegex": {"regex": ".*/ns/bar/.*"}}}}]}}}]}}]}
            """);
        Assert.Equal(expected, Assert.Single(filters).Value.Rules.Policies["foo-httpbin-1-0"]);
    }

    [Fact]
    public void MultiplePolicies_OnePolicyPerRule_RootNamespaceFirst_SelectorsScope() // multiple-policies-in/out.yaml facts
    {
        var filters = Filters("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: p1, namespace: foo}
            spec:
              rules:
              - to: [{operation: {methods: [GET]}}]
              - to: [{operation: {methods: [POST]}}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: mesh, namespace: istio-system}
            spec:
              rules: [{to: [{operation: {ports: ["8000"]}}]}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: other-app, namespace: foo}
            spec:
              selector: {matchLabels: {app: productpage}}
              rules: [{}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: other-ns, namespace: bar}
            spec:
              rules: [{}]
            ---
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: audit, namespace: foo}
            spec:
              action: AUDIT
              rules: [{}]
            """);

        Assert.Equal(["istio-system-mesh-0", "foo-p1-0", "foo-p1-1"], Assert.Single(filters).Value.Rules.Policies.Keys);
    }

    [Theory]
    // Request authentication (JWT) is written as istiod writes it for a sidecar, metadata matchers on the JWT filter's
    // payload, for both actions (no checkError: the generators fail only for TCP); no filter writes that metadata in a
    // proxyless server, so they never match. Before, an ALLOW rule was dropped and a DENY rule lost the condition.
    [InlineData("ALLOW")]
    [InlineData("DENY")]
    public void RequestPrincipals_KeptInTheRule_AsJwtPayloadMetadata_ForBothActions(string action)
    {
        var filters = Filters($$$"""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: jwt, namespace: foo}
            spec:
              action: {{{action}}}
              rules:
              - from: [{source: {requestPrincipals: ["issuer/subject"], namespaces: [foo]}}]
            """);

        var ids = Assert.Single(filters).Value.Rules.Policies["foo-jwt-0"].Principals[0].AndIds.Ids;
        Assert.Equal(2, ids.Count);
        Assert.Equal(PrincipalJson("""
            {"andIds": {"ids": [
              {"metadata": {"filter": "envoy.filters.http.jwt_authn", "path": [{"key": "payload"}, {"key": "iss"}], "value": {"stringMatch": {"exact": "issuer"}}}},
              {"metadata": {"filter": "envoy.filters.http.jwt_authn", "path": [{"key": "payload"}, {"key": "sub"}], "value": {"stringMatch": {"exact": "subject"}}}}]}}
            """), ids[0]);
        Assert.Equal(".*/ns/foo/.*", ids[1].OrIds.Ids[0].Authenticated.PrincipalName.SafeRegex.Regex);
    }

    [Fact]
    public void RequestAuthentication_WildcardsNotFormsAndClaims_AsIstiodGeneratesThem() // allow-full-rule-in/out.yaml
    {
        var filters = Filters("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: jwt, namespace: foo}
            spec:
              action: DENY
              rules:
              - from:
                - source:
                    requestPrincipals: ["requestPrincipals", "requestPrincipals-prefix-*", "*-suffix-requestPrincipals", "*", "https://example.com/*"]
                    notRequestPrincipals: ["*"]
                when:
                - key: "request.auth.audiences"
                  values: ["audiences", "audiences-prefix-*"]
                  notValues: ["*-not-suffix-audiences"]
                - key: "request.auth.claims[nested1][nested2]"
                  values: ["nested"]
            """);

        static string Claim(string path, string value) =>
            """{"metadata": {"filter": "envoy.filters.http.jwt_authn", "path": [{"key": "payload"}, """ + path + """], "value": """ + value + "}}";
        static string Jwt(string iss, string sub) =>
            """{"andIds": {"ids": [""" + Claim("""{"key": "iss"}""", iss) + ", " + Claim("""{"key": "sub"}""", sub) + "]}}";
        const string Any = """{"stringMatch": {"safeRegex": {"regex": ".+"}}}""";
        var ids = Assert.Single(filters).Value.Rules.Policies["foo-jwt-0"].Principals[0].AndIds.Ids;
        Assert.Equal(
            [
                PrincipalJson("""{"orIds": {"ids": [""" + string.Join(", ",
                    Jwt("""{"stringMatch": {"exact": "requestPrincipals"}}""", """{"stringMatch": {"exact": ""}}"""),
                    Jwt("""{"stringMatch": {"prefix": "requestPrincipals-prefix-"}}""", Any),
                    Jwt(Any, """{"stringMatch": {"suffix": "-suffix-requestPrincipals"}}"""),
                    Jwt(Any, Any),
                    Jwt("""{"stringMatch": {"exact": "https://example.com"}}""", Any)) + "]}}"),
                PrincipalJson("""{"notId": """ + Jwt(Any, Any) + "}"),
                PrincipalJson(Claim("""{"key": "aud"}""", """
                    {"orMatch": {"valueMatchers": [
                      {"listMatch": {"oneOf": {"orMatch": {"valueMatchers": [{"stringMatch": {"exact": "audiences"}}, {"stringMatch": {"prefix": "audiences-prefix-"}}]}}}},
                      {"orMatch": {"valueMatchers": [{"stringMatch": {"exact": "audiences"}}, {"stringMatch": {"prefix": "audiences-prefix-"}}]}}]}}
                    """)),
                PrincipalJson("""{"notId": """ + Claim("""{"key": "aud"}""", """
                    {"orMatch": {"valueMatchers": [
                      {"listMatch": {"oneOf": {"stringMatch": {"suffix": "-not-suffix-audiences"}}}},
                      {"stringMatch": {"suffix": "-not-suffix-audiences"}}]}}
                    """) + "}"),
                PrincipalJson(Claim("""{"key": "nested1"}, {"key": "nested2"}""", """
                    {"orMatch": {"valueMatchers": [{"listMatch": {"oneOf": {"stringMatch": {"exact": "nested"}}}}, {"stringMatch": {"exact": "nested"}}]}}
                    """)),
            ],
            ids);
    }

    [Fact]
    public void ServiceAccountsAndDestinationPort_AsIstiodGeneratesThem()
    {
        var filters = Filters("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: sa, namespace: foo}
            spec:
              rules:
              - from: [{source: {serviceAccounts: ["reader", "bar/writer"]}}]
                when:
                - key: destination.port
                  notValues: ["9000"]
                - key: source.principal
                  values: ["cluster.local/ns/foo/sa/x"]
            """);

        var policy = Assert.Single(filters).Value.Rules.Policies["foo-sa-0"];
        Assert.Equal(PermissionJson("""{"andRules": {"rules": [{"notRule": {"orRules": {"rules": [{"destinationPort": 9000}]}}}]}}"""), policy.Permissions[0]);
        var ids = policy.Principals[0].AndIds.Ids;
        Assert.Equal(["spiffe://.+/ns/foo/(.+/|)sa/reader(/.+)?", "spiffe://.+/ns/bar/(.+/|)sa/writer(/.+)?"],
            ids[0].OrIds.Ids.Select(i => i.Authenticated.PrincipalName.SafeRegex.Regex));
        Assert.Equal("spiffe://cluster.local/ns/foo/sa/x", ids[1].OrIds.Ids[0].Authenticated.PrincipalName.Exact);
    }

    [Fact]
    public void NotOperations_HostWildcards_AndConnectionSni_AsIstiodGeneratesThem()
    {
        var filters = Filters("""
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: nots, namespace: foo}
            spec:
              rules:
              - to:
                - operation:
                    hosts: ["*.example.com", "api.*", "*"]
                    notHosts: ["Admin.example.com"]
                    notMethods: ["DELETE"]
                    notPorts: ["9090"]
                when:
                - key: connection.sni
                  values: ["*.svc.cluster.local", "exact.sni"]
            """);

        var expected = PermissionJson("""
            {"andRules": {"rules": [
              {"orRules": {"rules": [
                {"header": {"name": ":authority", "stringMatch": {"suffix": ".example.com", "ignoreCase": true}}},
                {"header": {"name": ":authority", "stringMatch": {"prefix": "api.", "ignoreCase": true}}},
                {"header": {"name": ":authority", "presentMatch": true}}]}},
              {"notRule": {"orRules": {"rules": [{"header": {"name": ":authority", "stringMatch": {"exact": "Admin.example.com", "ignoreCase": true}}}]}}},
              {"notRule": {"orRules": {"rules": [{"header": {"name": ":method", "exactMatch": "DELETE"}}]}}},
              {"notRule": {"orRules": {"rules": [{"destinationPort": 9090}]}}},
              {"orRules": {"rules": [{"requestedServerName": {"suffix": ".svc.cluster.local"}}, {"requestedServerName": {"exact": "exact.sni"}}]}}]}}
            """);
        var policy = Assert.Single(filters).Value.Rules.Policies["foo-nots-0"];
        Assert.Equal(expected, Assert.Single(policy.Permissions));
        Assert.Equal(Json(AnyPolicy).Principals, policy.Principals);
    }

    private static Permission PermissionJson(string json) => JsonParser.Default.Parse<Permission>(json);

    private static Principal PrincipalJson(string json) => JsonParser.Default.Parse<Principal>(json);
}

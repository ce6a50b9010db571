using Mesh.ControlPlane.Config;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.ControlPlane.Tests.Config;

/// <summary>PeerAuthentication and AuthorizationPolicy parsing: the model, and bad input rejected with line and reason.</summary>
public class SecurityPolicyParserTests
{
    private const string Pa = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: x, namespace: foo}\nspec:\n";
    private const string Ap = "apiVersion: security.istio.io/v1beta1\nkind: AuthorizationPolicy\nmetadata: {name: x, namespace: foo}\nspec:\n";

    [Fact]
    public void Parse_PeerAuthentication_SelectorModeAndPortLevel()
    {
        var parsed = IstioYamlParser.Parse(Pa + "  selector: {matchLabels: {app: a}}\n  mtls: {mode: STRICT}\n  portLevelMtls:\n    8080: {mode: DISABLE}\n    9090: {}\n", "default");

        var pa = Assert.IsType<PeerAuthentication>(Assert.Single(parsed.Resources));
        Assert.Equal(("foo", "x", MtlsMode.Strict), (pa.Namespace, pa.Name, pa.Mode));
        Assert.Equal(new Dictionary<string, string> { ["app"] = "a" }, pa.Selector);
        Assert.Equal(new Dictionary<uint, MtlsMode> { [8080] = MtlsMode.Disable, [9090] = MtlsMode.Unset }, pa.PortLevelMtls);
        Assert.Empty(parsed.Unapplied);
    }

    [Fact]
    public void Parse_AuthorizationPolicy_DefaultsToAllow_RulesFromToWhen()
    {
        var parsed = IstioYamlParser.Parse(Ap + "  rules:\n  - from: [{source: {principals: [a], notNamespaces: [b]}}]\n    to: [{operation: {paths: [/x], notMethods: [GET]}}]\n    when: [{key: 'request.headers[x-user]', values: [u]}]\n  -\n", "default");

        var ap = Assert.IsType<AuthorizationPolicy>(Assert.Single(parsed.Resources));
        Assert.Equal(AuthorizationAction.Allow, ap.Action);
        Assert.Null(ap.Selector);
        Assert.Equal(2, ap.Rules.Count);
        var rule = ap.Rules[0];
        Assert.Equal([("source.principal", "a", ""), ("source.namespace", "", "b")],
            rule.From[0].Select(c => (c.Key, string.Join(",", c.Values), string.Join(",", c.NotValues))));
        Assert.Equal([(":method", "", "GET"), ("path", "/x", "")],
            rule.To[0].Select(c => (c.Key, string.Join(",", c.Values), string.Join(",", c.NotValues))));
        Assert.Equal("request.headers[x-user]", Assert.Single(rule.When).Key);
        // The nil rule "-" matches everything, like {}.
        Assert.Equal((0, 0, 0), (ap.Rules[1].From.Count, ap.Rules[1].To.Count, ap.Rules[1].When.Count));
    }

    [Theory]
    [InlineData("AUDIT")]
    [InlineData("CUSTOM")]
    public void Parse_AuditAndCustom_AreReportedAsNotApplied(string action)
    {
        var parsed = IstioYamlParser.Parse(Ap + $"  action: {action}\n  rules: [{{}}]\n", "default");

        var report = Assert.Single(parsed.Unapplied);
        Assert.True(report.Severe);
        Assert.Equal(("AuthorizationPolicy", "x", 1), (report.Kind, report.Name, report.Line));
        Assert.Contains($"action {action} is not supported by proxyless gRPC servers", report.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_RequestPrincipals_WarnsThatNoRequestHasOne()
    {
        var parsed = IstioYamlParser.Parse(Ap + "  rules:\n  - from: [{source: {requestPrincipals: [iss/sub]}}]\n", "default");

        var warning = Assert.Single(parsed.Warnings);
        Assert.Equal("6:41: AuthorizationPolicy 'foo/x': 'request.auth.principal' (request authentication, JWT): the SDK and proxyless gRPC "
            + "servers apply no RequestAuthentication, so no request has a request principal or JWT claims; as under Istio without a "
            + "RequestAuthentication, its values never match, so the source or condition holding them matches no request", warning);
    }

    [Theory]
    [InlineData(Pa + "  mtls: {mode: MUTUAL}\n", 5, "unknown mTLS mode 'MUTUAL' in 'spec.mtls.mode' (expected UNSET, DISABLE, PERMISSIVE, STRICT)")]
    [InlineData(Pa + "  mtls: {mode: STRICT}\n  portLevelMtls:\n    8080: {mode: DISABLE}\n", 7, "'spec.portLevelMtls' requires 'spec.selector'")]
    [InlineData(Pa + "  selector: {matchLabels: {app: a}}\n  portLevelMtls:\n    http: {mode: DISABLE}\n", 7, "'spec.portLevelMtls' must be an integer from 1 to 65535, got 'http'")]
    [InlineData(Ap + "  action: REJECT\n", 5, "unknown action 'REJECT' in 'spec.action' (expected ALLOW, DENY, AUDIT or CUSTOM)")]
    [InlineData(Ap + "  rules:\n  - when: [{key: source.planet, values: [earth]}]\n", 6, "unknown attribute 'source.planet'")]
    [InlineData(Ap + "  rules:\n  - when: [{key: 'request.headers', values: [x]}]\n", 6, "condition key 'request.headers' must name its item in brackets")]
    [InlineData(Ap + "  rules:\n  - when: [{key: source.ip}]\n", 6, "condition 'source.ip' in 'spec.rules[].when[]' needs 'values' or 'notValues'")]
    [InlineData(Ap + "  rules:\n  - from:\n    - source:\n        ipBlocks: [10.0.0.300]\n", 8, "'10.0.0.300' of 'source.ip' is not an IP address or CIDR range")]
    [InlineData(Ap + "  rules:\n  - to:\n    - operation:\n        ports: [http]\n", 8, "'http' of 'destination.port' is not a port")]
    [InlineData(Ap + "  rules:\n  - from:\n    - source: {}\n", 7, "'spec.rules[].from[].source' is empty")]
    [InlineData(Ap + "  rules:\n  - to:\n    - operation: {verbs: [GET]}\n", 7, "unknown field 'verbs' in spec.rules[0].to[0].operation (known: hosts, methods, notHosts, notMethods, notPaths, notPorts, paths, ports)")]
    [InlineData(Ap + "  targetRef: {kind: Gateway, name: g}\n", 5, "'spec.targetRef' (policy attachment to gateways and services) is not supported")]
    public void Parse_RejectsInvalidPolicyWithLineAndReason(string yaml, int line, string reason)
    {
        var ex = Assert.Throws<ConfigException>(() => IstioYamlParser.Parse(yaml, "default"));

        Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
        Assert.Equal(line, ex.Line);
    }

    [Fact]
    public void Store_BadPolicyEdit_KeepsTheLastGoodPolicies()
    {
        var store = new ConfigStore("default", NullLogger.Instance);
        store.Apply("/cfg/authz.yaml", Ap + "  action: DENY\n  rules: [{}]\n");

        Assert.False(store.Apply("/cfg/authz.yaml", Ap + "  action: DENY\n  rules: [{when: [{key: nope, values: [x]}]}]\n"));

        var error = Assert.Single(store.LastErrors);
        Assert.Equal(("/cfg/authz.yaml", 6), (error.File, error.Line));
        Assert.Equal(AuthorizationAction.Deny, Assert.Single(store.Current.AuthorizationPolicies).Action);
        Assert.True(store.Apply("/cfg/authz.yaml", null));
        Assert.Empty(store.Current.AuthorizationPolicies);
    }
}

using System.Net;
using Envoy.Config.Rbac.V3;
using Envoy.Extensions.Filters.Http.Router.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Type.Matcher.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.Security.Authorization;
using EnvoyRbac = Envoy.Config.Rbac.V3.RBAC;
using RbacFilter = Envoy.Extensions.Filters.Http.Rbac.V3.RBAC;

namespace Mesh.Sdk.Tests.Security.Authorization;

public sealed class InboundAuthorizationTests
{
    private static readonly AuthorizationRequest Request = new("GET", "/admin/users", "svc:8080")
    {
        DestinationPort = 8080,
        DirectRemoteAddress = IPAddress.Loopback,
        Peer = AuthenticatedPeer.FromSpiffeId("spiffe://cluster.local/ns/default/sa/client"),
    };

    private static readonly HttpFilter Router = new() { Name = "envoy.filters.http.router", TypedConfig = Any.Pack(new Router()) };

    private static Policy PathPrefix(string prefix) => new()
    {
        Permissions = { new Permission { UrlPath = new PathMatcher { Path = new StringMatcher { Prefix = prefix } } } },
        Principals = { new Principal { Any = true } },
    };

    private static HttpFilter Filter(string name, EnvoyRbac.Types.Action action, params (string Name, Policy Policy)[] policies)
    {
        var rules = new EnvoyRbac { Action = action };
        foreach (var (policyName, policy) in policies)
        {
            rules.Policies[policyName] = policy;
        }

        return new HttpFilter { Name = name, TypedConfig = Any.Pack(new RbacFilter { Rules = rules }) };
    }

    private static InboundAuthorization Compile(params HttpFilter[] filters)
    {
        Assert.True(InboundAuthorization.TryCompile(filters, out var authorization, out var errors), string.Join("; ", errors));
        return authorization!;
    }

    [Fact]
    public void NoRbacFilter_AllowsEverything()
    {
        var authorization = Compile(Router);
        Assert.True(authorization.IsEmpty);
        Assert.Equal(new AuthorizationDecision(true, null, null), authorization.Evaluate(in Request));
    }

    [Fact]
    public void AllowFilter_RequestMustMatchAPolicy()
    {
        var authorization = Compile(Filter("envoy.filters.http.rbac", EnvoyRbac.Types.Action.Allow, ("default-allow-admin-0", PathPrefix("/admin/"))), Router);
        Assert.Equal(new AuthorizationDecision(true, "envoy.filters.http.rbac", "default-allow-admin-0"), authorization.Evaluate(in Request));
        Assert.Equal(new AuthorizationDecision(false, "envoy.filters.http.rbac", null), authorization.Evaluate(Request with { PathAndQuery = "/public" }));
        Assert.Equal("denied by 'envoy.filters.http.rbac' (no ALLOW policy matched)", authorization.Evaluate(Request with { PathAndQuery = "/public" }).ToString());
    }

    [Fact]
    public void AllowFilterWithoutPolicies_DeniesEverything()
    {
        var authorization = Compile(Filter("envoy.filters.http.rbac", EnvoyRbac.Types.Action.Allow));
        Assert.False(authorization.Evaluate(in Request).Allowed);
    }

    [Fact]
    public void DenyFilterFirst_BeatsAMatchingAllow()
    {
        var authorization = Compile(
            Filter("envoy.filters.http.rbac.DENY", EnvoyRbac.Types.Action.Deny, ("default-deny-users-0", PathPrefix("/admin/users"))),
            Filter("envoy.filters.http.rbac", EnvoyRbac.Types.Action.Allow, ("default-allow-admin-0", PathPrefix("/admin/"))),
            Router);
        var denied = authorization.Evaluate(in Request);
        Assert.Equal(new AuthorizationDecision(false, "envoy.filters.http.rbac.DENY", "default-deny-users-0"), denied);
        Assert.Equal("denied by 'envoy.filters.http.rbac.DENY' (policy 'default-deny-users-0')", denied.ToString());
        Assert.Equal(new AuthorizationDecision(true, "envoy.filters.http.rbac", "default-allow-admin-0"), authorization.Evaluate(Request with { PathAndQuery = "/admin/groups" }));
    }

    [Fact]
    public void DenyFilterWithoutMatch_Allows()
    {
        var authorization = Compile(Filter("envoy.filters.http.rbac.DENY", EnvoyRbac.Types.Action.Deny, ("default-deny-0", PathPrefix("/secret"))));
        Assert.Equal(new AuthorizationDecision(true, null, null), authorization.Evaluate(in Request));
        Assert.False(authorization.Evaluate(Request with { PathAndQuery = "/secret/x" }).Allowed);
    }

    [Fact]
    public void LogFilter_RulesLessFilter_ShadowRulesAndDisabledFilters_DecideNothing()
    {
        var log = Filter("envoy.filters.http.rbac.LOG", EnvoyRbac.Types.Action.Log, ("all", PathPrefix("/")));
        var rulesLess = new HttpFilter { Name = "envoy.filters.http.rbac", TypedConfig = Any.Pack(new RbacFilter()) };
        var shadowOnly = new HttpFilter
        {
            Name = "envoy.filters.http.rbac.shadow",
            TypedConfig = Any.Pack(new RbacFilter { ShadowRules = new EnvoyRbac { Action = EnvoyRbac.Types.Action.Allow } }),
        };
        var disabled = Filter("envoy.filters.http.rbac.off", EnvoyRbac.Types.Action.Allow);
        disabled.Disabled = true;
        var authorization = Compile(log, rulesLess, shadowOnly, disabled, Router);
        Assert.True(authorization.IsEmpty);
        Assert.True(authorization.Evaluate(in Request).Allowed);
    }

    [Fact]
    public void FilterWithAMatcherTree_IsRefused()
    {
        // Upstream RBAC.matcher (4) replaces 'rules'; treating the filter as rule-less would allow every request.
        var config = RbacPoliciesTests.WithUnknownField(new RbacFilter(), 4);
        var filter = new HttpFilter { Name = "envoy.filters.http.rbac", TypedConfig = Any.Pack(config) };
        Assert.False(InboundAuthorization.TryCompile([filter], out _, out var errors));
        Assert.Equal(["HTTP filter 'envoy.filters.http.rbac': has fields this SDK does not know (such as 'matcher', the matcher-tree form of RBAC); only 'rules' is supported"], errors);
    }

    [Fact]
    public void RbacNamedFilterOfAnotherType_AndBadPolicies_AreErrorsNamingFilterAndPolicy()
    {
        var wrongType = new HttpFilter { Name = "envoy.filters.http.rbac", TypedConfig = Any.Pack(new Router()) };
        var bad = Filter("envoy.filters.http.rbac.DENY", EnvoyRbac.Types.Action.Deny, ("default-bad-0", new Policy
        {
            Permissions = { new Permission { UrlPath = new PathMatcher { Path = new StringMatcher { SafeRegex = new RegexMatcher { Regex = "[" } } } } },
            Principals = { new Principal { Any = true } },
        }));
        Assert.False(InboundAuthorization.TryCompile([wrongType, bad, Router], out var authorization, out var errors));
        Assert.Null(authorization);
        Assert.Equal(2, errors.Count);
        Assert.Equal("HTTP filter 'envoy.filters.http.rbac': typed_config is 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router', expected 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC'", errors[0]);
        Assert.StartsWith("HTTP filter 'envoy.filters.http.rbac.DENY': policy 'default-bad-0': permissions[0].url_path.path: ", errors[1], StringComparison.Ordinal);
    }
}

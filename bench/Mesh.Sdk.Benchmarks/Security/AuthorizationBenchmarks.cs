using System.Net;
using BenchmarkDotNet.Attributes;
using Envoy.Config.Rbac.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Type.Matcher.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.Security.Authorization;
using EnvoyRbac = Envoy.Config.Rbac.V3.RBAC;
using RbacFilter = Envoy.Extensions.Filters.Http.Rbac.V3.RBAC;

namespace Mesh.Sdk.Benchmarks.Security;

/// <summary>
/// Inbound RBAC in the shape istiod writes it: a DENY filter with 5 policies (path prefixes, a header) and an ALLOW
/// filter with 20 policies (principal regex or exact SPIFFE id, methods, path prefixes, ports). An mTLS request allowed
/// by the last ALLOW policy (every policy tried), one denied by the DENY filter, one denied because no ALLOW policy
/// matches, and a plaintext request.
/// </summary>
[MemoryDiagnoser]
public class AuthorizationBenchmarks
{
    private InboundAuthorization _authorization = null!;
    private AuthorizationRequest _allowedLast;
    private AuthorizationRequest _deniedByDeny;
    private AuthorizationRequest _deniedNoMatch;
    private AuthorizationRequest _plaintext;

    [GlobalSetup]
    public void Setup()
    {
        var deny = new EnvoyRbac { Action = EnvoyRbac.Types.Action.Deny };
        for (var i = 0; i < 5; i++)
        {
            deny.Policies[$"default-deny-{i}-0"] = new Policy
            {
                Permissions = { And(Path(new StringMatcher { Prefix = $"/admin{i}/" }), new Permission { Header = new HeaderMatcher { Name = "x-block", ExactMatch = "yes" } }) },
                Principals = { new Principal { AndIds = new Principal.Types.Set { Ids = { new Principal { Any = true } } } } },
            };
        }

        var allow = new EnvoyRbac { Action = EnvoyRbac.Types.Action.Allow };
        for (var i = 0; i < 20; i++)
        {
            var principal = i % 2 == 0
                ? new StringMatcher { SafeRegex = new RegexMatcher { Regex = $".*/ns/team-{i}/.*" } }
                : new StringMatcher { Exact = $"spiffe://cluster.local/ns/default/sa/client-{i}" };
            allow.Policies[$"default-allow-{i:D2}-0"] = new Policy
            {
                Permissions =
                {
                    And(
                        new Permission { OrRules = new Permission.Types.Set { Rules = { Method("GET"), Method("HEAD") } } },
                        new Permission { OrRules = new Permission.Types.Set { Rules = { Path(new StringMatcher { Prefix = $"/api/{i}/" }), Path(new StringMatcher { Suffix = "/healthz" }) } } },
                        new Permission { DestinationPort = 8080 }),
                },
                Principals = { new Principal { AndIds = new Principal.Types.Set { Ids = { new Principal { OrIds = new Principal.Types.Set { Ids = { new Principal { Authenticated = new Principal.Types.Authenticated { PrincipalName = principal } } } } } } } } },
            };
        }

        HttpFilter[] filters =
        [
            new() { Name = "envoy.filters.http.rbac.DENY", TypedConfig = Any.Pack(new RbacFilter { Rules = deny }) },
            new() { Name = "envoy.filters.http.rbac", TypedConfig = Any.Pack(new RbacFilter { Rules = allow }) },
        ];
        if (!InboundAuthorization.TryCompile(filters, out var authorization, out var errors))
        {
            throw new InvalidOperationException(string.Join("; ", errors));
        }

        _authorization = authorization!;
        var headers = new Dictionary<string, string> { ["user-agent"] = "bench", ["x-request-id"] = "0f2c" };
        var mtls = new AuthorizationRequest("GET", "/api/19/items?page=2", "svc:8080")
        {
            Headers = headers,
            DestinationAddress = IPAddress.Loopback,
            DestinationPort = 8080,
            DirectRemoteAddress = IPAddress.Loopback,
            Peer = AuthenticatedPeer.FromSpiffeId("spiffe://cluster.local/ns/default/sa/client-19"),
        };
        _allowedLast = mtls;
        _deniedByDeny = mtls with { PathAndQuery = "/admin3/x", Headers = new Dictionary<string, string> { ["x-block"] = "yes" } };
        _deniedNoMatch = mtls with { PathAndQuery = "/other" };
        _plaintext = mtls with { Peer = null };
        Check(_allowedLast, true);
        Check(_deniedByDeny, false);
        Check(_deniedNoMatch, false);
        Check(_plaintext, false);
    }

    [Benchmark]
    public bool AllowedByLastPolicy() => _authorization.Evaluate(in _allowedLast).Allowed;

    [Benchmark]
    public bool DeniedByDenyPolicy() => _authorization.Evaluate(in _deniedByDeny).Allowed;

    [Benchmark]
    public bool DeniedNoAllowMatch() => _authorization.Evaluate(in _deniedNoMatch).Allowed;

    [Benchmark]
    public bool PlaintextAgainstPrincipalRules() => _authorization.Evaluate(in _plaintext).Allowed;

    private void Check(AuthorizationRequest request, bool allowed)
    {
        if (_authorization.Evaluate(in request).Allowed != allowed)
        {
            throw new InvalidOperationException($"Benchmark setup: {request.PathAndQuery} should be {(allowed ? "allowed" : "denied")}.");
        }
    }

    private static Permission And(params Permission[] rules)
    {
        var set = new Permission.Types.Set();
        set.Rules.AddRange(rules);
        return new Permission { AndRules = set };
    }

    private static Permission Path(StringMatcher matcher) => new() { UrlPath = new PathMatcher { Path = matcher } };

    private static Permission Method(string method) => new() { Header = new HeaderMatcher { Name = ":method", ExactMatch = method } };
}

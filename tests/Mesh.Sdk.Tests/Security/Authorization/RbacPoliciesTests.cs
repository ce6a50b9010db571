using System.Net;
using Envoy.Config.Core.V3;
using Envoy.Config.Rbac.V3;
using Envoy.Config.Route.V3;
using Envoy.Type.Matcher.V3;
using Envoy.Type.V3;
using Google.Protobuf;
using Mesh.Sdk.Security.Authorization;
using EnvoyRbac = Envoy.Config.Rbac.V3.RBAC;

namespace Mesh.Sdk.Tests.Security.Authorization;

public sealed class RbacPoliciesTests
{
    private const string Reviews = "spiffe://cluster.local/ns/default/sa/reviews";

    private static readonly AuthorizationRequest Get = new("GET", "/api/v1/items?page=2", "reviews:9080")
    {
        DestinationAddress = IPAddress.Parse("10.0.0.5"),
        DestinationPort = 9080,
        DirectRemoteAddress = IPAddress.Parse("10.1.2.3"),
        Peer = AuthenticatedPeer.FromSpiffeId(Reviews),
        Headers = new Dictionary<string, string> { ["x-user"] = "alice", ["x-team"] = "blue" },
    };

    private static RbacPolicies Compile(EnvoyRbac rbac)
    {
        var errors = new List<string>();
        var compiled = RbacPolicies.Compile(rbac, errors);
        Assert.True(compiled is not null, string.Join("; ", errors));
        return compiled;
    }

    private static EnvoyRbac One(Permission permission, Principal principal, string name = "p") => new()
    {
        Action = EnvoyRbac.Types.Action.Allow,
        Policies = { [name] = new Policy { Permissions = { permission }, Principals = { principal } } },
    };

    private static bool Permits(Permission permission, AuthorizationRequest request) =>
        Compile(One(permission, new Principal { Any = true })).TryMatch(in request, out _);

    private static bool Identifies(Principal principal, AuthorizationRequest request) =>
        Compile(One(new Permission { Any = true }, principal)).TryMatch(in request, out _);

    private static IReadOnlyList<string> Errors(Permission? permission = null, Principal? principal = null)
    {
        var errors = new List<string>();
        Assert.Null(RbacPolicies.Compile(One(permission ?? new Permission { Any = true }, principal ?? new Principal { Any = true }, "ns-policy-0"), errors));
        return errors;
    }

    private static Permission Path(StringMatcher path) => new() { UrlPath = new PathMatcher { Path = path } };

    private static Principal Authenticated(StringMatcher? name) => new() { Authenticated = new Principal.Types.Authenticated { PrincipalName = name } };

    private static CidrRange Cidr(string address, uint length) => new() { AddressPrefix = address, PrefixLen = length };

    [Fact]
    public void Any_MatchesEveryRequest_PolicyNeedsPermissionAndPrincipal()
    {
        Assert.True(Permits(new Permission { Any = true }, Get));
        var rbac = One(new Permission { Any = true }, Authenticated(new StringMatcher { Exact = "spiffe://cluster.local/ns/default/sa/other" }));
        Assert.False(Compile(rbac).TryMatch(in Get, out var name));
        Assert.Null(name);
    }

    [Fact]
    public void AndOrNot_ComposeAsSets()
    {
        var get = new Permission { Header = new HeaderMatcher { Name = ":method", ExactMatch = "GET" } };
        var post = new Permission { Header = new HeaderMatcher { Name = ":method", ExactMatch = "POST" } };
        var port = new Permission { DestinationPort = 9080 };
        Assert.True(Permits(new Permission { AndRules = new Permission.Types.Set { Rules = { get, port } } }, Get));
        Assert.False(Permits(new Permission { AndRules = new Permission.Types.Set { Rules = { post, port } } }, Get));
        Assert.True(Permits(new Permission { OrRules = new Permission.Types.Set { Rules = { post, get } } }, Get));
        Assert.False(Permits(new Permission { OrRules = new Permission.Types.Set { Rules = { post } } }, Get));
        Assert.True(Permits(new Permission { NotRule = post }, Get));
        Assert.False(Permits(new Permission { NotRule = new Permission { OrRules = new Permission.Types.Set { Rules = { post, get } } } }, Get));

        var alice = new Principal { Header = new HeaderMatcher { Name = "x-user", ExactMatch = "alice" } };
        var bob = new Principal { Header = new HeaderMatcher { Name = "x-user", ExactMatch = "bob" } };
        Assert.True(Identifies(new Principal { OrIds = new Principal.Types.Set { Ids = { bob, alice } } }, Get));
        Assert.False(Identifies(new Principal { AndIds = new Principal.Types.Set { Ids = { bob, alice } } }, Get));
        Assert.True(Identifies(new Principal { NotId = bob }, Get));
    }

    [Fact]
    public void Header_AllForms_PseudoHeaders_MissingAndInverted()
    {
        Assert.True(Permits(new Permission { Header = new HeaderMatcher { Name = ":method", ExactMatch = "GET" } }, Get));
        Assert.True(Permits(new Permission { Header = new HeaderMatcher { Name = ":authority", StringMatch = new StringMatcher { Prefix = "REVIEWS", IgnoreCase = true } } }, Get));
        Assert.False(Permits(new Permission { Header = new HeaderMatcher { Name = ":authority", StringMatch = new StringMatcher { Prefix = "REVIEWS" } } }, Get));
        Assert.True(Permits(new Permission { Header = new HeaderMatcher { Name = ":path", PrefixMatch = "/api/v1/items?page" } }, Get));
        Assert.True(Permits(new Permission { Header = new HeaderMatcher { Name = "X-User", SuffixMatch = "ice" } }, Get));
        Assert.True(Permits(new Permission { Header = new HeaderMatcher { Name = "x-user", SafeRegexMatch = new RegexMatcher { Regex = "a.*e" } } }, Get));
        Assert.True(Permits(new Permission { Header = new HeaderMatcher { Name = "x-user", ContainsMatch = "lic" } }, Get));
        Assert.True(Permits(new Permission { Header = new HeaderMatcher { Name = "x-user", PresentMatch = true } }, Get));
        Assert.False(Permits(new Permission { Header = new HeaderMatcher { Name = "x-absent", PresentMatch = true } }, Get));
        // A missing header fails every string match, inverted or not (Envoy); present_match: false matches it.
        Assert.False(Permits(new Permission { Header = new HeaderMatcher { Name = "x-absent", ExactMatch = "a" } }, Get));
        Assert.False(Permits(new Permission { Header = new HeaderMatcher { Name = "x-absent", ExactMatch = "a", InvertMatch = true } }, Get));
        Assert.True(Permits(new Permission { Header = new HeaderMatcher { Name = "x-absent", PresentMatch = false } }, Get));
        Assert.True(Permits(new Permission { Header = new HeaderMatcher { Name = "x-user", ExactMatch = "bob", InvertMatch = true } }, Get));
        Assert.True(Permits(new Permission { Header = new HeaderMatcher { Name = "x-n", RangeMatch = new Int64Range { Start = 1, End = 5 } } }, Get with { Headers = new Dictionary<string, string> { ["x-n"] = "4" } }));
    }

    [Theory]
    [InlineData("exact", "/api/v1/items", true)]
    [InlineData("exact", "/api/v1/items?page=2", false)]
    [InlineData("prefix", "/api/", true)]
    [InlineData("prefix", "/API/", false)]
    [InlineData("suffix", "/items", true)]
    [InlineData("regex", ".+", true)]
    [InlineData("regex", "/api/v[0-9]+/.*", true)]
    [InlineData("regex", "/api", false)]
    public void UrlPath_MatchesThePathWithoutQuery(string kind, string pattern, bool expected)
    {
        var matcher = kind switch
        {
            "exact" => new StringMatcher { Exact = pattern },
            "prefix" => new StringMatcher { Prefix = pattern },
            "suffix" => new StringMatcher { Suffix = pattern },
            _ => new StringMatcher { SafeRegex = new RegexMatcher { Regex = pattern } },
        };
        Assert.Equal(expected, Permits(Path(matcher), Get));
    }

    [Fact]
    public void UrlPath_IgnoreCase_AndFragmentStripped()
    {
        Assert.True(Permits(Path(new StringMatcher { Prefix = "/API/", IgnoreCase = true }), Get));
        Assert.True(Permits(Path(new StringMatcher { Exact = "/a" }), Get with { PathAndQuery = "/a#frag" }));
        Assert.True(Identifies(new Principal { UrlPath = new PathMatcher { Path = new StringMatcher { Suffix = "items" } } }, Get));
    }

    private static Permission Template(string template) => new()
    {
        UriTemplate = new TypedExtensionConfig
        {
            Name = "uri-template",
            // UriTemplateMatchConfig.path_template is field 1, a string: the same bytes as a StringValue.
            TypedConfig = new Google.Protobuf.WellKnownTypes.Any { TypeUrl = UriTemplate.TypeUrl, Value = new Google.Protobuf.WellKnownTypes.StringValue { Value = template }.ToByteString() },
        },
    };

    [Theory]
    [InlineData("/api/*/items", "/api/v1/items?page=2", true)]
    [InlineData("/api/*/items", "/api/v1/x/items", false)]
    [InlineData("/api/*/items", "/api//items", false)]
    [InlineData("/api/**", "/api/v1/items", true)]
    [InlineData("/api/**", "/api/", true)]
    [InlineData("/api/**", "/apix/v1", false)]
    [InlineData("/a.b/*", "/aXb/c", false)]
    [InlineData("/a.b/*", "/a.b/c", true)]
    public void UriTemplate_IstiodsPathTemplates(string template, string path, bool expected)
        => Assert.Equal(expected, Permits(Template(template), Get with { PathAndQuery = path }));

    [Fact]
    public void DestinationPort_AndRange()
    {
        Assert.True(Permits(new Permission { DestinationPort = 9080 }, Get));
        Assert.False(Permits(new Permission { DestinationPort = 9081 }, Get));
        Assert.True(Permits(new Permission { DestinationPortRange = new Int32Range { Start = 9000, End = 9081 } }, Get));
        Assert.False(Permits(new Permission { DestinationPortRange = new Int32Range { Start = 9000, End = 9080 } }, Get));
    }

    [Fact]
    public void IpMatchers_Cidr_EachReadsItsOwnAddress()
    {
        Assert.True(Permits(new Permission { DestinationIp = Cidr("10.0.0.0", 24) }, Get));
        Assert.False(Permits(new Permission { DestinationIp = Cidr("10.0.1.0", 24) }, Get));
        Assert.True(Identifies(new Principal { DirectRemoteIp = Cidr("10.1.0.0", 16) }, Get));
        Assert.True(Identifies(new Principal { SourceIp = Cidr("10.1.2.3", 32) }, Get));
        Assert.False(Identifies(new Principal { DirectRemoteIp = Cidr("10.1.2.4", 32) }, Get));
        var forwarded = Get with { RemoteAddress = IPAddress.Parse("192.168.7.7") };
        Assert.True(Identifies(new Principal { RemoteIp = Cidr("192.168.0.0", 16) }, forwarded));
        Assert.False(Identifies(new Principal { DirectRemoteIp = Cidr("192.168.0.0", 16) }, forwarded));
        // remote_ip is the peer address when nothing says otherwise.
        Assert.True(Identifies(new Principal { RemoteIp = Cidr("10.1.2.3", 32) }, Get));
    }

    [Fact]
    public void RequestedServerName_MissingIsEmpty()
    {
        var sni = new Permission { RequestedServerName = new StringMatcher { Suffix = ".svc.cluster.local" } };
        Assert.True(Permits(sni, Get with { RequestedServerName = "reviews.default.svc.cluster.local" }));
        Assert.False(Permits(sni, Get));
        Assert.True(Permits(new Permission { RequestedServerName = new StringMatcher { Exact = string.Empty } }, Get));
    }

    [Fact]
    public void Authenticated_PlaintextNeverMatches_UnnamedMatchesAnyPeer()
    {
        var plaintext = Get with { Peer = null };
        Assert.False(Identifies(Authenticated(null), plaintext));
        Assert.True(Identifies(Authenticated(null), Get));
        Assert.False(Identifies(Authenticated(new StringMatcher { SafeRegex = new RegexMatcher { Regex = ".+" } }), plaintext));
        // not_id of a principal matches the plaintext caller: Istio's notPrincipals let unauthenticated callers through.
        Assert.True(Identifies(new Principal { NotId = Authenticated(new StringMatcher { Exact = Reviews }) }, plaintext));
    }

    [Fact]
    public void Authenticated_TlsWithoutClientCertificate_MatchesTheEmptyName()
    {
        var request = Get with { Peer = AuthenticatedPeer.WithoutCertificate };
        Assert.True(Identifies(Authenticated(null), request));
        Assert.True(Identifies(Authenticated(new StringMatcher { Exact = string.Empty }), request));
        Assert.False(Identifies(Authenticated(new StringMatcher { SafeRegex = new RegexMatcher { Regex = ".+" } }), request));
        Assert.Null(AuthenticatedPeer.WithoutCertificate.Principal);
    }

    [Theory]
    [InlineData(Reviews, true)]
    [InlineData("spiffe://cluster.local/ns/default/sa/ratings", false)]
    public void Authenticated_IstiodForms(string peer, bool isReviews)
    {
        var request = Get with { Peer = AuthenticatedPeer.FromSpiffeId(peer) };
        Assert.Equal(isReviews, Identifies(Authenticated(new StringMatcher { Exact = Reviews }), request));
        Assert.True(Identifies(Authenticated(new StringMatcher { Prefix = "spiffe://cluster.local/ns/default/" }), request));
        Assert.True(Identifies(Authenticated(new StringMatcher { SafeRegex = new RegexMatcher { Regex = ".*/ns/default/.*" } }), request));
        Assert.False(Identifies(Authenticated(new StringMatcher { SafeRegex = new RegexMatcher { Regex = ".*/ns/prod/.*" } }), request));
        Assert.Equal(isReviews, Identifies(Authenticated(new StringMatcher { SafeRegex = new RegexMatcher { Regex = "spiffe://.+/ns/default/(.+/|)sa/reviews(/.+)?" } }), request));
        Assert.Equal(isReviews, Identifies(Authenticated(new StringMatcher { SafeRegex = new RegexMatcher { Regex = "spiffe://.*views" } }), request));
    }

    [Fact]
    public void Authenticated_TriesUriSansThenDnsSansThenSubject()
    {
        var peer = new AuthenticatedPeer(["spiffe://td/ns/a/sa/b", "spiffe://td/ns/a/sa/c"], ["api.example.com"], "CN=legacy, O=Example");
        var request = Get with { Peer = peer };
        Assert.True(Identifies(Authenticated(new StringMatcher { Exact = "spiffe://td/ns/a/sa/c" }), request));
        Assert.True(Identifies(Authenticated(new StringMatcher { Exact = "api.example.com" }), request));
        Assert.True(Identifies(Authenticated(new StringMatcher { Prefix = "CN=legacy" }), request));
        Assert.False(Identifies(Authenticated(new StringMatcher { Exact = "spiffe://td/ns/a/sa/d" }), request));
        Assert.Equal("spiffe://td/ns/a/sa/b", peer.Principal);
    }

    [Fact]
    public void Metadata_NothingWritesIt_SoOnlyAbsenceMatches()
    {
        // istiod's requestPrincipals: and_ids of envoy.filters.http.jwt_authn metadata matchers on the JWT's iss and sub.
        static MetadataMatcher Claim(string claim, ValueMatcher value, bool invert = false) => new()
        {
            Filter = "envoy.filters.http.jwt_authn",
            Path = { new MetadataMatcher.Types.PathSegment { Key = "request.auth.claims" }, new MetadataMatcher.Types.PathSegment { Key = claim } },
            Value = value,
            Invert = invert,
        };
        var anyIssuer = new ValueMatcher { StringMatch = new StringMatcher { SafeRegex = new RegexMatcher { Regex = ".+" } } };
        Assert.False(Identifies(new Principal { Metadata = Claim("iss", anyIssuer) }, Get));
        Assert.True(Identifies(new Principal { NotId = new Principal { Metadata = Claim("iss", anyIssuer) } }, Get));
        Assert.True(Identifies(new Principal { Metadata = Claim("iss", anyIssuer, invert: true) }, Get));
        Assert.True(Identifies(new Principal { Metadata = Claim("iss", new ValueMatcher { PresentMatch = false }) }, Get));
        Assert.False(Identifies(new Principal { Metadata = Claim("iss", new ValueMatcher { PresentMatch = true }) }, Get));
        Assert.True(Identifies(new Principal { Metadata = Claim("iss", new ValueMatcher { OrMatch = new OrMatcher { ValueMatchers = { anyIssuer, new ValueMatcher { PresentMatch = false } } } }) }, Get));
        Assert.False(Permits(new Permission { Metadata = Claim("x", anyIssuer) }, Get));
    }

    [Fact]
    public void PolicyWithoutPermissionsOrPrincipals_MatchesNothing()
    {
        // istiod writes an empty policy for an ALLOW rule it could not generate.
        var rbac = new EnvoyRbac { Action = EnvoyRbac.Types.Action.Allow, Policies = { ["ns-broken-0"] = new Policy() } };
        Assert.False(Compile(rbac).TryMatch(in Get, out _));
    }

    [Fact]
    public void TryMatch_ReportsTheFirstMatchingPolicyInNameOrder()
    {
        var rbac = new EnvoyRbac
        {
            Action = EnvoyRbac.Types.Action.Deny,
            Policies =
            {
                ["ns-z-0"] = new Policy { Permissions = { new Permission { Any = true } }, Principals = { new Principal { Any = true } } },
                ["ns-b-0"] = new Policy { Permissions = { new Permission { DestinationPort = 1 } }, Principals = { new Principal { Any = true } } },
                ["ns-a-1"] = new Policy { Permissions = { new Permission { Any = true } }, Principals = { new Principal { Any = true } } },
            },
        };
        var compiled = Compile(rbac);
        Assert.Equal(["ns-a-1", "ns-b-0", "ns-z-0"], compiled.PolicyNames);
        Assert.True(compiled.TryMatch(in Get, out var name));
        Assert.Equal("ns-a-1", name);
    }

    /// <summary>The message's bytes with a length-delimited field the subset does not define appended.</summary>
    internal static T WithUnknownField<T>(T message, int field)
        where T : IMessage<T>, new()
    {
        using var stream = new MemoryStream();
        var output = new CodedOutputStream(stream);
        output.WriteTag(field, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(ByteString.CopyFromUtf8("request.path == '/'"));
        output.Flush();
        var bytes = message.ToByteArray().Concat(stream.ToArray()).ToArray();
        return new MessageParser<T>(static () => new T()).ParseFrom(bytes);
    }

    [Fact]
    public void PolicyWithACelCondition_IsRefusedNotEvaluatedWithoutIt()
    {
        // Policy.condition (3) is not in the subset; evaluating the policy without it would allow or deny more than Envoy.
        var policy = WithUnknownField(new Policy { Permissions = { new Permission { Any = true } }, Principals = { new Principal { Any = true } } }, 3);
        var errors = new List<string>();
        Assert.Null(RbacPolicies.Compile(new EnvoyRbac { Policies = { ["ns-cel-0"] = policy } }, errors));
        Assert.Equal(["policy 'ns-cel-0': policy: has fields this SDK does not know (a CEL 'condition', or a newer matcher); it is refused rather than evaluated without them"], errors);
    }

    [Fact]
    public void UnsupportedOrInvalid_IsAnErrorNamingPolicyAndField()
    {
        Assert.Equal(["policy 'ns-policy-0': permissions[0].and_rules.rules[1].matcher: generic matcher extensions are not supported"],
            Errors(new Permission { AndRules = new Permission.Types.Set { Rules = { new Permission { Any = true }, new Permission { Matcher = new TypedExtensionConfig { Name = "m" } } } } }));
        Assert.Contains("permissions[0].uri_template: path template '/a/{name}': segment '{name}' is neither", Assert.Single(Errors(Template("/a/{name}"))), StringComparison.Ordinal);
        Assert.Contains("permissions[0].uri_template: path template '/**/a': '**' must be the last operator", Assert.Single(Errors(Template("/**/a"))), StringComparison.Ordinal);
        Assert.Contains("permissions[0].uri_template: '(none)' is not a URI template config", Assert.Single(Errors(new Permission { UriTemplate = new TypedExtensionConfig { Name = "uri-template" } })), StringComparison.Ordinal);
        Assert.Contains("principals[0].filter_state: filter state is not supported", Assert.Single(Errors(principal: new Principal { FilterState = new FilterStateMatcher { Key = "io.istio.peer_principal" } })), StringComparison.Ordinal);
        Assert.Equal(["policy 'ns-policy-0': permissions[0].any: must be true"], Errors(new Permission { Any = false }));
        Assert.Equal(["policy 'ns-policy-0': principals[0].or_ids.ids: is empty (at least one entry is required)"], Errors(principal: new Principal { OrIds = new Principal.Types.Set() }));
        Assert.Equal(["policy 'ns-policy-0': permissions[0]: sets no rule (or one this SDK does not know)"], Errors(new Permission()));
        Assert.Contains("principals[0].direct_remote_ip: prefix length 33 of '10.0.0.0' is longer than 32", Assert.Single(Errors(principal: new Principal { DirectRemoteIp = Cidr("10.0.0.0", 33) })), StringComparison.Ordinal);
        Assert.Contains("principals[0].remote_ip: 'ten' is not an IP address", Assert.Single(Errors(principal: new Principal { RemoteIp = Cidr("ten", 8) })), StringComparison.Ordinal);
        Assert.Contains("permissions[0].url_path.path:", Assert.Single(Errors(Path(new StringMatcher { SafeRegex = new RegexMatcher { Regex = "(" } }))), StringComparison.Ordinal);
        Assert.Contains("permissions[0].destination_port: 70000 is not a port", Assert.Single(Errors(new Permission { DestinationPort = 70000 })), StringComparison.Ordinal);
    }
}

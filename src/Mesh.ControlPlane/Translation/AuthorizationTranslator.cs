using System.Globalization;
using Envoy.Config.Core.V3;
using Envoy.Config.Rbac.V3;
using Envoy.Type.Matcher.V3;
using Mesh.ControlPlane.Config;
using Mesh.Xds;
using EnvoyRbac = Envoy.Config.Rbac.V3.RBAC;
using HeaderMatcher = Envoy.Config.Route.V3.HeaderMatcher;

namespace Mesh.ControlPlane.Translation;

/// <summary>
/// AuthorizationPolicy → RBAC as istiod's authorization model generates it for proxyless gRPC servers
/// (<c>pilot/pkg/security/authz/model</c>, called by <c>grpcgen</c> with useAuthenticated and not for TCP): one
/// policy per rule named <c>&lt;namespace&gt;-&lt;name&gt;-&lt;rule index&gt;</c>; per <c>to</c> entry one
/// <c>and_rules</c> permission and per <c>from</c> entry one <c>and_ids</c> principal (<c>any</c> when there are
/// none), each field an <c>or</c> of its values and a <c>not</c> of the <c>or</c> of its not-values, <c>when</c>
/// conditions appended to every permission or principal they belong to. Request authentication (<c>requestPrincipals</c>,
/// <c>request.auth.*</c>) becomes istiod's metadata matchers on the JWT filter's payload
/// (<c>envoy.filters.http.jwt_authn</c>): no filter writes that metadata for a proxyless server, so, as in a sidecar
/// without RequestAuthentication, they never match and their not-forms always do.
/// </summary>
internal static class AuthorizationTranslator
{
    private const string SpiffePrefix = "spiffe://";

    // istiod's filters.EnvoyJwtFilterName and EnvoyJwtFilterPayload: where the JWT filter puts the verified claims.
    private const string JwtFilter = "envoy.filters.http.jwt_authn";
    private const string JwtPayload = "payload";

    /// <summary>The RBAC rules of <paramref name="policies"/> (all of one action), in order.</summary>
    public static EnvoyRbac Build(EnvoyRbac.Types.Action action, IEnumerable<AuthorizationPolicy> policies)
    {
        var rbac = new EnvoyRbac { Action = action };
        foreach (var policy in policies)
        {
            for (var i = 0; i < policy.Rules.Count; i++)
            {
                // A rule with something gRPC cannot check is left out of an ALLOW policy (it matches nothing): istiod's
                // model fails the rule for ALLOW and skips only the condition for DENY (checkError).
                if (BuildPolicy(policy, policy.Rules[i], action) is { } generated)
                {
                    rbac.Policies[string.Create(CultureInfo.InvariantCulture, $"{policy.Namespace}-{policy.Name}-{i}")] = generated;
                }
            }
        }

        return rbac;
    }

    private static Policy? BuildPolicy(AuthorizationPolicy policy, AuthorizationRule rule, EnvoyRbac.Types.Action action)
    {
        var basePermissions = new List<AuthorizationCondition>();
        var basePrincipals = new List<AuthorizationCondition>();
        foreach (var condition in rule.When)
        {
            (IsPermission(condition.Key) ? basePermissions : basePrincipals).Add(condition);
        }

        var result = new Policy();
        foreach (var to in rule.To.Count == 0 ? [[]] : rule.To)
        {
            var and = new Permission.Types.Set();
            foreach (var condition in to.Concat(basePermissions))
            {
                if (!AddPermission(and.Rules, condition, action))
                {
                    return null;
                }
            }

            if (and.Rules.Count == 0)
            {
                and.Rules.Add(new Permission { Any = true });
            }

            result.Permissions.Add(new Permission { AndRules = and });
        }

        foreach (var from in rule.From.Count == 0 ? [[]] : rule.From)
        {
            var and = new Principal.Types.Set();
            foreach (var condition in from.Concat(basePrincipals))
            {
                if (!AddPrincipal(and.Ids, condition, policy.Namespace, action))
                {
                    return null;
                }
            }

            if (and.Ids.Count == 0)
            {
                and.Ids.Add(new Principal { Any = true });
            }

            result.Principals.Add(new Principal { AndIds = and });
        }

        return result;
    }

    private static bool IsPermission(string key) =>
        key is AuthorizationAttributes.DestinationIp or AuthorizationAttributes.DestinationPort or AuthorizationAttributes.ConnectionSni;

    /// <returns>False when the condition cannot be generated and the action is ALLOW (the rule then matches nothing).</returns>
    private static bool AddPermission(Google.Protobuf.Collections.RepeatedField<Permission> and, AuthorizationCondition condition, EnvoyRbac.Types.Action action)
    {
        if (Unsupported(condition))
        {
            return action != EnvoyRbac.Types.Action.Allow;
        }

        if (condition.Values.Count > 0)
        {
            var or = new Permission.Types.Set();
            foreach (var value in condition.Values)
            {
                or.Rules.Add(Permission(condition.Key, value));
            }

            and.Add(new Permission { OrRules = or });
        }

        if (condition.NotValues.Count > 0)
        {
            var or = new Permission.Types.Set();
            foreach (var value in condition.NotValues)
            {
                or.Rules.Add(Permission(condition.Key, value));
            }

            and.Add(new Permission { NotRule = new Permission { OrRules = or } });
        }

        return true;
    }

    private static bool AddPrincipal(Google.Protobuf.Collections.RepeatedField<Principal> and, AuthorizationCondition condition, string policyNamespace, EnvoyRbac.Types.Action action)
    {
        if (Unsupported(condition))
        {
            return action != EnvoyRbac.Types.Action.Allow;
        }

        if (IstioYamlParser.IsJwtAttribute(condition.Key))
        {
            // istiod's extended generators: the values make one principal (no extra or_ids), the not-values a not_id of one.
            if (condition.Values.Count > 0)
            {
                and.Add(RequestAuthentication(condition.Key, condition.Values));
            }

            if (condition.NotValues.Count > 0)
            {
                and.Add(new Principal { NotId = RequestAuthentication(condition.Key, condition.NotValues) });
            }

            return true;
        }

        if (condition.Values.Count > 0)
        {
            var or = new Principal.Types.Set();
            foreach (var value in condition.Values)
            {
                or.Ids.Add(Principal(condition.Key, value, policyNamespace));
            }

            and.Add(new Principal { OrIds = or });
        }

        if (condition.NotValues.Count > 0)
        {
            var or = new Principal.Types.Set();
            foreach (var value in condition.NotValues)
            {
                or.Ids.Add(Principal(condition.Key, value, policyNamespace));
            }

            and.Add(new Principal { NotId = new Principal { OrIds = or } });
        }

        return true;
    }

    /// <summary>Path templates (no uri_template matcher in proxyless gRPC).</summary>
    private static bool Unsupported(AuthorizationCondition condition) =>
        condition.Key == AuthorizationAttributes.Path && (condition.Values.Any(static v => v.Contains('{', StringComparison.Ordinal))
            || condition.NotValues.Any(static v => v.Contains('{', StringComparison.Ordinal)));

    /// <summary>istiod's request principal, audiences, presenter and claims generators, for one list of values.</summary>
    private static Principal RequestAuthentication(string key, IReadOnlyList<string> values)
    {
        switch (key)
        {
            case AuthorizationAttributes.RequestPrincipal:
                var or = new Principal.Types.Set();
                foreach (var value in values)
                {
                    var (issuer, subject) = RequestPrincipalMatchers(value);
                    or.Ids.Add(new Principal { AndIds = new Principal.Types.Set { Ids = { JwtClaim(["iss"], new ValueMatcher { StringMatch = issuer }), JwtClaim(["sub"], new ValueMatcher { StringMatch = subject }) } } });
                }

                return or.Ids.Count == 1 ? or.Ids[0] : new Principal { OrIds = or };
            case AuthorizationAttributes.RequestAudiences:
                return JwtClaimList(["aud"], values);
            case AuthorizationAttributes.RequestPresenter:
                return JwtClaimList(["azp"], values);
            default:
                return JwtClaimList(ClaimPath(key[AuthorizationAttributes.RequestClaimsPrefix.Length..]), values);
        }
    }

    /// <summary>
    /// A request principal <c>&lt;iss&gt;/&lt;sub&gt;</c> split at its last <c>/</c> (an issuer may be a URL), with
    /// istiod's wildcards: <c>*</c> any, <c>*x</c> a suffix of the issuer (or of the subject without a <c>/</c>),
    /// <c>x*</c> a prefix of the subject (or of the issuer without a <c>/</c>).
    /// </summary>
    private static (StringMatcher Issuer, StringMatcher Subject) RequestPrincipalMatchers(string value)
    {
        var slash = value.LastIndexOf('/');
        var found = slash >= 0;
        var (iss, sub) = found ? (value[..slash], value[(slash + 1)..]) : (value, string.Empty);
        if (value == "*")
        {
            return (Regex(".+"), Regex(".+"));
        }

        if (value.StartsWith('*'))
        {
            return found
                ? (iss == "*" ? Regex(".+") : new StringMatcher { Suffix = iss[1..] }, new StringMatcher { Exact = sub })
                : (Regex(".+"), new StringMatcher { Suffix = value[1..] });
        }

        if (value.EndsWith('*'))
        {
            return found
                ? (new StringMatcher { Exact = iss }, sub == "*" ? Regex(".+") : new StringMatcher { Prefix = sub[..^1] })
                : (new StringMatcher { Prefix = value[..^1] }, Regex(".+"));
        }

        return (new StringMatcher { Exact = iss }, new StringMatcher { Exact = sub });
    }

    /// <summary>istiod's <c>MetadataListValueMatcherForJWTClaims</c>: the claim as a list holding one of the values, or as one of the values.</summary>
    private static Principal JwtClaimList(IReadOnlyList<string> claims, IReadOnlyList<string> values)
    {
        var any = new List<ValueMatcher>(values.Count);
        foreach (var value in values)
        {
            any.Add(new ValueMatcher { StringMatch = Match(value, string.Empty) });
        }

        var oneOf = any.Count == 1 ? any[0] : new ValueMatcher { OrMatch = new OrMatcher { ValueMatchers = { any } } };
        var listOrValue = new OrMatcher { ValueMatchers = { new ValueMatcher { ListMatch = new ListMatcher { OneOf = oneOf } }, oneOf.Clone() } };
        return JwtClaim(claims, new ValueMatcher { OrMatch = listOrValue });
    }

    private static Principal JwtClaim(IReadOnlyList<string> claims, ValueMatcher value)
    {
        var matcher = new MetadataMatcher { Filter = JwtFilter, Value = value };
        matcher.Path.Add(new MetadataMatcher.Types.PathSegment { Key = JwtPayload });
        foreach (var claim in claims)
        {
            matcher.Path.Add(new MetadataMatcher.Types.PathSegment { Key = claim });
        }

        return new Principal { Metadata = matcher };
    }

    /// <summary>istiod's <c>extractNameInNestedBrackets</c>: <c>[a][b]</c> is the path a, b; anything else the text between the outer brackets.</summary>
    private static string[] ClaimPath(string brackets)
    {
        var claims = new List<string>();
        for (var begin = 0; begin < brackets.Length;)
        {
            var end = begin < brackets.Length && brackets[begin] == '[' ? brackets.IndexOfAny(['[', ']'], begin + 1) : -1;
            if (end < 0 || brackets[end] != ']')
            {
                return [brackets[1..^1]];
            }

            claims.Add(brackets[(begin + 1)..end]);
            begin = end + 1;
        }

        return [.. claims];
    }

    private static Permission Permission(string key, string value) => key switch
    {
        AuthorizationAttributes.Host => new Permission { Header = Header(":authority", value, ignoreCase: true) },
        AuthorizationAttributes.Method => new Permission { Header = Header(":method", value, ignoreCase: false) },
        AuthorizationAttributes.Path => new Permission { UrlPath = new PathMatcher { Path = Match(value, string.Empty) } },
        AuthorizationAttributes.DestinationPort => new Permission { DestinationPort = uint.Parse(value, CultureInfo.InvariantCulture) },
        AuthorizationAttributes.DestinationIp => new Permission { DestinationIp = Cidr(value) },
        AuthorizationAttributes.ConnectionSni => new Permission { RequestedServerName = Match(value, string.Empty) },
        _ => throw new InvalidOperationException($"'{key}' is not a permission attribute"),
    };

    private static Principal Principal(string key, string value, string policyNamespace)
    {
        if (key.StartsWith(AuthorizationAttributes.RequestHeaderPrefix, StringComparison.Ordinal))
        {
            var name = key[(AuthorizationAttributes.RequestHeaderPrefix.Length + 1)..^1];
            return new Principal { Header = Header(name, value, ignoreCase: false) };
        }

        return key switch
        {
            AuthorizationAttributes.SourcePrincipal => Authenticated(Match(value, SpiffePrefix)),
            AuthorizationAttributes.SourceNamespace => Authenticated(Regex($".*/ns/{string.Join(".*", value.Split('*').Select(QuoteMeta))}/.*")),
            AuthorizationAttributes.SourceServiceAccount => Authenticated(Regex(ServiceAccountRegex(policyNamespace, value))),
            AuthorizationAttributes.SourceIp => new Principal { DirectRemoteIp = Cidr(value) },
            AuthorizationAttributes.RemoteIp => new Principal { RemoteIp = Cidr(value) },
            _ => throw new InvalidOperationException($"'{key}' is not a principal attribute"),
        };
    }

    private static Principal Authenticated(StringMatcher matcher) =>
        new() { Authenticated = new Principal.Types.Authenticated { PrincipalName = matcher } };

    private static string ServiceAccountRegex(string policyNamespace, string value)
    {
        var slash = value.IndexOf('/', StringComparison.Ordinal);
        var (ns, sa) = slash < 0 ? (policyNamespace, value) : (value[..slash], value[(slash + 1)..]);
        return $"spiffe://.+/ns/{QuoteMeta(ns)}/(.+/|)sa/{QuoteMeta(sa)}(/.+)?";
    }

    /// <summary>Go's regexp.QuoteMeta: RE2 syntax, so .NET's Regex.Escape (which also escapes spaces and '#') is not used.</summary>
    private static string QuoteMeta(string text)
    {
        var sb = new System.Text.StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (@"\.+*?()|[]{}^$".Contains(c, StringComparison.Ordinal))
            {
                sb.Append('\\');
            }

            sb.Append(c);
        }

        return sb.ToString();
    }

    /// <summary>istiod's <c>StringMatcherWithPrefix</c>: <c>*</c> any non-empty value, <c>*x</c> suffix, <c>x*</c> prefix, else exact.</summary>
    private static StringMatcher Match(string value, string prefix)
    {
        if (value == "*")
        {
            return Regex(".+");
        }

        if (value.StartsWith('*'))
        {
            return prefix.Length == 0 ? new StringMatcher { Suffix = value[1..] } : Regex(prefix + ".*" + QuoteMeta(value[1..]));
        }

        return value.EndsWith('*') ? new StringMatcher { Prefix = prefix + value[..^1] } : new StringMatcher { Exact = prefix + value };
    }

    private static StringMatcher Regex(string regex) => new() { SafeRegex = new RegexMatcher { Regex = regex } };

    /// <summary>
    /// istiod's <c>HeaderMatcher</c> / <c>HostMatcher</c>: <c>*</c> presence, <c>*x</c> suffix, <c>x*</c> prefix, else
    /// exact (hosts ignoring case), written in the form gRPC C-core 1.51 accepts (<see cref="HeaderMatchers.Create"/>).
    /// </summary>
    private static HeaderMatcher Header(string name, string value, bool ignoreCase)
    {
        if (value == "*")
        {
            return new HeaderMatcher { Name = name, PresentMatch = true };
        }

        var matcher = value.StartsWith('*') ? new StringMatcher { Suffix = value[1..] }
            : value.EndsWith('*') ? new StringMatcher { Prefix = value[..^1] }
            : new StringMatcher { Exact = value };
        matcher.IgnoreCase = ignoreCase;
        return HeaderMatchers.Create(name, matcher);
    }

    private static CidrRange Cidr(string value)
    {
        IstioYamlParser.TryParseCidr(value, out var address, out var length);
        return new CidrRange { AddressPrefix = address, PrefixLen = length };
    }
}

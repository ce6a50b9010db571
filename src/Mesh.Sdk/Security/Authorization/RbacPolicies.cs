using System.Globalization;
using Envoy.Config.Rbac.V3;
using Envoy.Type.Matcher.V3;
using Mesh.Sdk.Routing;
using EnvoyRbac = Envoy.Config.Rbac.V3.RBAC;

namespace Mesh.Sdk.Security.Authorization;

/// <summary>
/// A compiled <c>envoy.config.rbac.v3.RBAC</c>: its action and its policies in name order (Envoy keeps them in an
/// ordered map, so the first matching name is the one reported). A policy matches when one of its permissions and one
/// of its principals match; a policy with no permissions or no principals matches nothing.
/// </summary>
internal sealed class RbacPolicies
{
    private readonly string[] _names;
    private readonly RbacMatcher[] _permissions;
    private readonly RbacMatcher[] _principals;

    private RbacPolicies(EnvoyRbac.Types.Action action, string[] names, RbacMatcher[] permissions, RbacMatcher[] principals)
    {
        Action = action;
        _names = names;
        _permissions = permissions;
        _principals = principals;
    }

    /// <summary>ALLOW, DENY or LOG.</summary>
    public EnvoyRbac.Types.Action Action { get; }

    /// <summary>The policy names, in evaluation order.</summary>
    public IReadOnlyList<string> PolicyNames => _names;

    /// <summary>The first policy (in name order) that matches the request.</summary>
    /// <returns><see langword="true"/> when one matches; <paramref name="policyName"/> is then its name.</returns>
    public bool TryMatch<TRequest>(in TRequest request, out string? policyName)
        where TRequest : IAuthorizationRequest
    {
        for (var i = 0; i < _names.Length; i++)
        {
            if (_permissions[i].Matches(in request) && _principals[i].Matches(in request))
            {
                policyName = _names[i];
                return true;
            }
        }

        policyName = null;
        return false;
    }

    /// <summary>
    /// Compiles <paramref name="rbac"/>. Every problem is added to <paramref name="errors"/> as
    /// <c>policy '&lt;name&gt;': &lt;where&gt;: &lt;why&gt;</c>; the result is null when there is any.
    /// </summary>
    public static RbacPolicies? Compile(EnvoyRbac rbac, List<string> errors)
    {
        ArgumentNullException.ThrowIfNull(rbac);
        var before = errors.Count;
        if (rbac.Action is not (EnvoyRbac.Types.Action.Allow or EnvoyRbac.Types.Action.Deny or EnvoyRbac.Types.Action.Log))
        {
            errors.Add($"unknown action {(int)rbac.Action}");
        }

        var bare = rbac.Clone();
        bare.Policies.Clear();
        if (UnknownFields.In(bare))
        {
            errors.Add("rules: has fields this SDK does not know; they are refused rather than ignored");
        }

        var names = rbac.Policies.Keys.ToArray();
        Array.Sort(names, StringComparer.Ordinal);
        var permissions = new RbacMatcher[names.Length];
        var principals = new RbacMatcher[names.Length];
        for (var i = 0; i < names.Length; i++)
        {
            var policy = rbac.Policies[names[i]];
            var context = new Context(names[i], errors);
            if (UnknownFields.In(policy))
            {
                context.Fail("policy", "has fields this SDK does not know (a CEL 'condition', or a newer matcher); it is refused rather than evaluated without them");
            }

            permissions[i] = AnyOf(policy.Permissions, static (p, path, c) => Permission(p, path, c), "permissions", context);
            principals[i] = AnyOf(policy.Principals, static (p, path, c) => Principal(p, path, c), "principals", context);
        }

        return errors.Count > before ? null : new RbacPolicies(rbac.Action, names, permissions, principals);
    }

    private readonly record struct Context(string Policy, List<string> Errors)
    {
        public RbacMatcher Fail(string path, string why)
        {
            Errors.Add($"policy '{Policy}': {path}: {why}");
            return RbacMatcher.None;
        }
    }

    /// <summary>The policy's top-level list: any entry matches; none at all matches nothing.</summary>
    private static RbacMatcher AnyOf<T>(IList<T> items, Func<T, string, Context, RbacMatcher> compile, string path, Context context)
    {
        if (items.Count == 0)
        {
            return RbacMatcher.None;
        }

        var children = new RbacMatcher[items.Count];
        for (var i = 0; i < items.Count; i++)
        {
            children[i] = compile(items[i], Index(path, i), context);
        }

        return children.Length == 1 ? children[0] : new RbacMatcher(RbacMatcherKind.Or) { Children = children };
    }

    private static RbacMatcher Set<T>(IList<T> items, RbacMatcherKind kind, Func<T, string, Context, RbacMatcher> compile, string path, Context context)
    {
        if (items.Count == 0)
        {
            // Envoy's validation requires at least one; an empty AND would match everything and an empty OR nothing.
            return context.Fail(path, "is empty (at least one entry is required)");
        }

        var children = new RbacMatcher[items.Count];
        for (var i = 0; i < items.Count; i++)
        {
            children[i] = compile(items[i], Index(path, i), context);
        }

        return children.Length == 1 ? children[0] : new RbacMatcher(kind) { Children = children };
    }

    private static string Index(string path, int i) => string.Create(CultureInfo.InvariantCulture, $"{path}[{i}]");

    private static RbacMatcher Permission(Permission permission, string path, Context context)
    {
        switch (permission.RuleCase)
        {
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.AndRules:
                return Set(permission.AndRules.Rules, RbacMatcherKind.And, static (p, path, c) => Permission(p, path, c), path + ".and_rules.rules", context);
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.OrRules:
                return Set(permission.OrRules.Rules, RbacMatcherKind.Or, static (p, path, c) => Permission(p, path, c), path + ".or_rules.rules", context);
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.NotRule:
                return Not(Permission(permission.NotRule, path + ".not_rule", context));
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.Any:
                return permission.Any ? RbacMatcher.Any : context.Fail(path + ".any", "must be true");
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.Header:
                return Header(permission.Header, path + ".header", context);
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.UrlPath:
                return UrlPath(permission.UrlPath, path + ".url_path", context);
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.DestinationIp:
                return Cidr(permission.DestinationIp, RbacMatcherKind.DestinationIp, path + ".destination_ip", context);
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.DestinationPort:
                return permission.DestinationPort > 65535
                    ? context.Fail(path + ".destination_port", $"{permission.DestinationPort} is not a port (0 to 65535)")
                    : new RbacMatcher(RbacMatcherKind.DestinationPort) { PortStart = (int)permission.DestinationPort, PortEnd = (int)permission.DestinationPort + 1 };
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.DestinationPortRange:
                var range = permission.DestinationPortRange;
                return range.Start < 0 || range.End > 65536 || range.Start > range.End
                    ? context.Fail(path + ".destination_port_range", $"[{range.Start}, {range.End}) is not a port range (0 to 65536, start not after end)")
                    : new RbacMatcher(RbacMatcherKind.DestinationPort) { PortStart = range.Start, PortEnd = range.End };
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.Metadata:
                return Metadata(permission.Metadata);
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.RequestedServerName:
                return String(permission.RequestedServerName, RbacMatcherKind.RequestedServerName, path + ".requested_server_name", context);
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.Matcher:
                return context.Fail(path + ".matcher", "generic matcher extensions are not supported");
            case Envoy.Config.Rbac.V3.Permission.RuleOneofCase.UriTemplate:
                return UriTemplate.TryToStringMatcher(permission.UriTemplate, out var template, out var templateError)
                    ? String(template!, RbacMatcherKind.UrlPath, path + ".uri_template", context)
                    : context.Fail(path + ".uri_template", templateError!);
            default:
                return context.Fail(path, "sets no rule (or one this SDK does not know)");
        }
    }

    private static RbacMatcher Principal(Principal principal, string path, Context context)
    {
        switch (principal.IdentifierCase)
        {
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.AndIds:
                return Set(principal.AndIds.Ids, RbacMatcherKind.And, static (p, path, c) => Principal(p, path, c), path + ".and_ids.ids", context);
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.OrIds:
                return Set(principal.OrIds.Ids, RbacMatcherKind.Or, static (p, path, c) => Principal(p, path, c), path + ".or_ids.ids", context);
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.NotId:
                return Not(Principal(principal.NotId, path + ".not_id", context));
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.Any:
                return principal.Any ? RbacMatcher.Any : context.Fail(path + ".any", "must be true");
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.Authenticated:
                if (principal.Authenticated.PrincipalName is not { } name)
                {
                    return new RbacMatcher(RbacMatcherKind.Authenticated);
                }

                return String(name, RbacMatcherKind.Authenticated, path + ".authenticated.principal_name", context);
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.SourceIp:
                return Cidr(principal.SourceIp, RbacMatcherKind.DirectRemoteIp, path + ".source_ip", context);
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.DirectRemoteIp:
                return Cidr(principal.DirectRemoteIp, RbacMatcherKind.DirectRemoteIp, path + ".direct_remote_ip", context);
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.RemoteIp:
                return Cidr(principal.RemoteIp, RbacMatcherKind.RemoteIp, path + ".remote_ip", context);
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.Header:
                return Header(principal.Header, path + ".header", context);
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.UrlPath:
                return UrlPath(principal.UrlPath, path + ".url_path", context);
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.Metadata:
                return Metadata(principal.Metadata);
            case Envoy.Config.Rbac.V3.Principal.IdentifierOneofCase.FilterState:
                return context.Fail(path + ".filter_state", "filter state is not supported (istiod writes it for Envoy sidecars only)");
            default:
                return context.Fail(path, "sets no identifier (or one this SDK does not know)");
        }
    }

    private static RbacMatcher Not(RbacMatcher inner) => inner.Kind == RbacMatcherKind.Constant
        ? (inner.Constant ? RbacMatcher.None : RbacMatcher.Any)
        : new RbacMatcher(RbacMatcherKind.Not) { Children = [inner] };

    private static RbacMatcher Header(Envoy.Config.Route.V3.HeaderMatcher header, string path, Context context) =>
        HeaderMatch.TryCompile(header, out var match, out var error)
            ? new RbacMatcher(RbacMatcherKind.Header) { Header = match }
            : context.Fail(path, error!);

    private static RbacMatcher UrlPath(PathMatcher matcher, string path, Context context) =>
        matcher.RuleCase == PathMatcher.RuleOneofCase.Path
            ? String(matcher.Path, RbacMatcherKind.UrlPath, path + ".path", context)
            : context.Fail(path, "sets no path matcher");

    private static RbacMatcher String(StringMatcher matcher, RbacMatcherKind kind, string path, Context context) =>
        StringMatch.TryCompile(matcher, out var match, out var error)
            ? new RbacMatcher(kind) { String = match }
            : context.Fail(path, error!);

    private static RbacMatcher Cidr(Envoy.Config.Core.V3.CidrRange range, RbacMatcherKind kind, string path, Context context) =>
        CidrMatch.TryCompile(range, out var match, out var error)
            ? new RbacMatcher(kind) { Cidr = match }
            : context.Fail(path, error!);

    /// <summary>
    /// Dynamic metadata is written by other filters (istiod's <c>request.auth.*</c> matchers read the JWT filter's
    /// <c>envoy.filters.http.jwt_authn</c> metadata); no filter writes any in-process, so every path is absent. Envoy then matches only a
    /// <c>present_match: false</c> value matcher (or an <c>or_match</c> holding one), flipped by <c>invert</c>.
    /// </summary>
    private static RbacMatcher Metadata(MetadataMatcher matcher) =>
        MatchesAbsent(matcher.Value) != matcher.Invert ? RbacMatcher.Any : RbacMatcher.None;

    private static bool MatchesAbsent(ValueMatcher? value)
    {
        switch (value?.MatchPatternCase)
        {
            case ValueMatcher.MatchPatternOneofCase.PresentMatch:
                return !value.PresentMatch;
            case ValueMatcher.MatchPatternOneofCase.OrMatch:
                foreach (var child in value.OrMatch.ValueMatchers)
                {
                    if (MatchesAbsent(child))
                    {
                        return true;
                    }
                }

                return false;
            default:
                return false;
        }
    }
}

using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Mesh.Xds;
using EnvoyRbac = Envoy.Config.Rbac.V3.RBAC;
using RbacFilter = Envoy.Extensions.Filters.Http.Rbac.V3.RBAC;

namespace Mesh.Sdk.Security.Authorization;

/// <summary>
/// The RBAC filters of an inbound listener's HTTP connection manager, compiled once per listener update and evaluated
/// per request in filter order, as Envoy and gRPC run them (istiod and the control plane send
/// <c>envoy.filters.http.rbac.DENY</c> before <c>envoy.filters.http.rbac</c>). Per filter: ALLOW lets a request pass
/// only when some policy matches, DENY stops it when some policy matches, LOG never decides. A filter without
/// <c>rules</c> enforces nothing; <c>shadow_rules</c> are not evaluated. No RBAC filter at all allows everything.
/// Immutable: swap the instance to apply a new listener.
/// </summary>
internal sealed class InboundAuthorization
{
    private readonly string[] _names;
    private readonly RbacPolicies[] _filters;

    private InboundAuthorization(string[] names, RbacPolicies[] filters)
    {
        _names = names;
        _filters = filters;
    }

    /// <summary>No RBAC filter: every request is allowed.</summary>
    public static InboundAuthorization AllowAll { get; } = new([], []);

    /// <summary>The enforcing filters' names, in evaluation order.</summary>
    public IReadOnlyList<string> FilterNames => _names;

    /// <summary>The compiled rules of each filter in <see cref="FilterNames"/>.</summary>
    public IReadOnlyList<RbacPolicies> Filters => _filters;

    /// <summary>Whether no filter enforces anything (every request is allowed without evaluation).</summary>
    public bool IsEmpty => _filters.Length == 0;

    /// <summary>
    /// Compiles the RBAC filters among an HCM's <paramref name="httpFilters"/>: those whose <c>typed_config</c> is an
    /// <c>envoy.extensions.filters.http.rbac.v3.RBAC</c>. Other filters are not this class's concern, except that a filter
    /// named <c>envoy.filters.http.rbac…</c> holding something else is an error. Disabled filters are skipped (the
    /// inbound route enables none).
    /// </summary>
    /// <param name="httpFilters">The HCM's HTTP filters, in order.</param>
    /// <param name="authorization">The compiled filters; null when there are errors.</param>
    /// <param name="errors">Each problem: the filter, the policy, where in it and why. The caller keeps its last good instance.</param>
    public static bool TryCompile(IEnumerable<HttpFilter> httpFilters, out InboundAuthorization? authorization, out IReadOnlyList<string> errors)
    {
        ArgumentNullException.ThrowIfNull(httpFilters);
        var problems = new List<string>();
        var names = new List<string>();
        var compiled = new List<RbacPolicies>();
        foreach (var filter in httpFilters)
        {
            var isRbac = filter.TypedConfig?.TypeUrl == XdsTypeUrls.Rbac;
            if (!isRbac)
            {
                if (filter.Name.StartsWith(HttpFilterNames.Rbac, StringComparison.Ordinal))
                {
                    problems.Add($"HTTP filter '{filter.Name}': typed_config is '{filter.TypedConfig?.TypeUrl ?? "(none)"}', expected '{XdsTypeUrls.Rbac}'");
                }

                continue;
            }

            if (filter.Disabled)
            {
                continue;
            }

            RbacFilter config;
            try
            {
                config = filter.TypedConfig!.Unpack<RbacFilter>();
            }
            catch (Google.Protobuf.InvalidProtocolBufferException ex)
            {
                problems.Add($"HTTP filter '{filter.Name}': typed_config does not decode: {ex.Message}");
                continue;
            }

            var top = config.Clone();
            top.Rules = null;
            top.ShadowRules = null;
            if (UnknownFields.In(top))
            {
                // Upstream's 'matcher' (the matcher-tree form of RBAC) among them: ignoring it would allow everything.
                problems.Add($"HTTP filter '{filter.Name}': has fields this SDK does not know (such as 'matcher', the matcher-tree form of RBAC); only 'rules' is supported");
                continue;
            }

            if (config.Rules is null)
            {
                // Envoy: without rules the filter enforces nothing (shadow rules only log).
                continue;
            }

            var policyErrors = new List<string>();
            var policies = RbacPolicies.Compile(config.Rules, policyErrors);
            foreach (var error in policyErrors)
            {
                problems.Add($"HTTP filter '{filter.Name}': {error}");
            }

            if (policies is { Action: not EnvoyRbac.Types.Action.Log })
            {
                names.Add(filter.Name);
                compiled.Add(policies);
            }
        }

        errors = problems;
        authorization = problems.Count > 0 ? null : compiled.Count == 0 ? AllowAll : new InboundAuthorization([.. names], [.. compiled]);
        return authorization is not null;
    }

    /// <summary>Decides a request: the first filter that denies it wins; else it is allowed.</summary>
    public AuthorizationDecision Evaluate<TRequest>(in TRequest request)
        where TRequest : IAuthorizationRequest
    {
        var decision = AuthorizationDecision.AllowedByDefault;
        for (var i = 0; i < _filters.Length; i++)
        {
            var filter = _filters[i];
            var matched = filter.TryMatch(in request, out var policy);
            if (filter.Action == EnvoyRbac.Types.Action.Deny)
            {
                if (matched)
                {
                    return new AuthorizationDecision(false, _names[i], policy);
                }
            }
            else if (!matched)
            {
                return new AuthorizationDecision(false, _names[i], null);
            }
            else
            {
                decision = new AuthorizationDecision(true, _names[i], policy);
            }
        }

        return decision;
    }
}

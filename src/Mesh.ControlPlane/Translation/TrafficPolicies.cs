using Mesh.ControlPlane.Config;
using IstioDestinationRule = Mesh.ControlPlane.Config.DestinationRule;

namespace Mesh.ControlPlane.Translation;

/// <summary>The traffic policy in force for one cluster (one port of a service, optionally one subset).</summary>
internal sealed record EffectivePolicy : PolicySections;

/// <summary>
/// istiod's precedence for DestinationRule traffic policies: subset port-level &gt; subset &gt; rule
/// port-level &gt; rule. A port-level entry replaces the whole policy it belongs to (sections it omits
/// fall back to defaults, not to the enclosing level); a subset's policy overrides the rule's section by
/// section, except that a subset port-level entry replaces every section.
/// </summary>
internal static class TrafficPolicies
{
    public static EffectivePolicy? Resolve(IstioDestinationRule? rule, Subset? subset, uint port)
    {
        var original = ForPort(rule?.TrafficPolicy, port, out _);
        if (subset?.TrafficPolicy is not { } subsetPolicy)
        {
            return original;
        }

        var child = ForPort(subsetPolicy, port, out var portLevel)!;
        if (original is null)
        {
            return child;
        }

        return new EffectivePolicy
        {
            LoadBalancer = child.LoadBalancer is not null || portLevel ? child.LoadBalancer : original.LoadBalancer,
            ConnectionPool = child.ConnectionPool is not null || portLevel ? child.ConnectionPool : original.ConnectionPool,
            OutlierDetection = child.OutlierDetection is not null || portLevel ? child.OutlierDetection : original.OutlierDetection,
            TlsMode = child.TlsMode is not null || portLevel ? child.TlsMode : original.TlsMode,
        };
    }

    /// <summary>
    /// The consistent hash a route to <paramref name="subset"/> on <paramref name="port"/> hashes with
    /// (istiod's per-destination lookup): subset port-level, subset, rule port-level, rule.
    /// </summary>
    public static ConsistentHash? HashFor(IstioDestinationRule rule, string? subset, uint port)
    {
        var subsetPolicy = subset is null ? null : rule.Subsets.FirstOrDefault(s => s.Name == subset)?.TrafficPolicy;
        return PortLevel(subsetPolicy, port)?.LoadBalancer?.ConsistentHash
            ?? subsetPolicy?.LoadBalancer?.ConsistentHash
            ?? PortLevel(rule.TrafficPolicy, port)?.LoadBalancer?.ConsistentHash
            ?? rule.TrafficPolicy?.LoadBalancer?.ConsistentHash;
    }

    private static PortTrafficPolicy? PortLevel(TrafficPolicy? policy, uint port) =>
        policy?.PortLevelSettings.FirstOrDefault(p => p.Port == port);

    private static EffectivePolicy? ForPort(TrafficPolicy? policy, uint port, out bool portLevel)
    {
        portLevel = false;
        if (policy is null)
        {
            return null;
        }

        PolicySections sections = policy;
        if (PortLevel(policy, port) is { } pl)
        {
            portLevel = true;
            sections = pl;
        }

        return new EffectivePolicy
        {
            LoadBalancer = sections.LoadBalancer,
            ConnectionPool = sections.ConnectionPool,
            OutlierDetection = sections.OutlierDetection,
            TlsMode = sections.TlsMode,
        };
    }
}

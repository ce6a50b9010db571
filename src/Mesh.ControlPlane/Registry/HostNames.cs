namespace Mesh.ControlPlane.Registry;

/// <summary>Istio's rules for turning the host names users write into service FQDNs.</summary>
internal static class HostNames
{
    /// <summary>
    /// A host with no dot is a short Kubernetes-style name in <paramref name="ns"/>
    /// (<c>reviews</c> → <c>reviews.default.svc.cluster.local</c>); anything else is taken as written,
    /// as Istio does for VirtualService and DestinationRule hosts.
    /// </summary>
    public static string ToFqdn(string host, string ns, string domain) =>
        host.Contains('.', StringComparison.Ordinal) ? host.ToLowerInvariant() : $"{host.ToLowerInvariant()}.{ns}.svc.{domain}";

    /// <summary>
    /// Candidate FQDNs for a name a client asks for (listener names, MESH_SERVICE): the name
    /// expanded as <c>name</c>, <c>name.ns</c> or <c>name.ns.svc</c>, then the name as written.
    /// </summary>
    public static IEnumerable<string> Candidates(string host, string ns, string domain)
    {
        host = host.ToLowerInvariant();
        var dots = host.Count(static c => c == '.');
        if (dots == 0)
        {
            yield return $"{host}.{ns}.svc.{domain}";
        }
        else if (dots == 1)
        {
            yield return $"{host}.svc.{domain}";
        }
        else if (host.EndsWith(".svc", StringComparison.Ordinal))
        {
            yield return $"{host}.{domain}";
        }

        yield return host;
    }

    /// <summary>The short forms under which a service FQDN is reachable (for virtual host domains).</summary>
    public static IReadOnlyList<string> ShortForms(string fqdn, string domain)
    {
        var suffix = ".svc." + domain;
        if (!fqdn.EndsWith(suffix, StringComparison.Ordinal))
        {
            return [fqdn];
        }

        var nameNs = fqdn[..^suffix.Length];
        var dot = nameNs.IndexOf('.', StringComparison.Ordinal);
        return dot < 0 ? [fqdn] : [fqdn, nameNs + ".svc", nameNs, nameNs[..dot]];
    }
}

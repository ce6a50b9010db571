using System.Diagnostics.CodeAnalysis;

namespace Mesh.Xds.Security;

/// <summary>
/// A workload identity in Istio's SPIFFE form, <c>spiffe://&lt;trust-domain&gt;/ns/&lt;namespace&gt;/sa/&lt;service-account&gt;</c>:
/// the one URI SAN of a workload certificate, and what AuthorizationPolicy principals (<c>cluster.local/ns/default/sa/reviews</c>) name.
/// </summary>
/// <param name="TrustDomain">The trust domain, such as <c>cluster.local</c>.</param>
/// <param name="Namespace">The namespace.</param>
/// <param name="ServiceAccount">The service account.</param>
public sealed record SpiffeId(string TrustDomain, string Namespace, string ServiceAccount)
{
    /// <summary>The URI scheme of SPIFFE ids.</summary>
    public const string Scheme = "spiffe";

    /// <summary>The trust domain Istio uses when none is configured.</summary>
    public const string DefaultTrustDomain = "cluster.local";

    /// <summary>The id as a URI string, <c>spiffe://cluster.local/ns/default/sa/reviews</c>.</summary>
    /// <returns>The URI.</returns>
    public override string ToString() => $"spiffe://{TrustDomain}/ns/{Namespace}/sa/{ServiceAccount}";

    /// <summary>The principal AuthorizationPolicy matches: the id without <c>spiffe://</c>.</summary>
    public string Principal => $"{TrustDomain}/ns/{Namespace}/sa/{ServiceAccount}";

    /// <summary>Creates an id, checking each part.</summary>
    /// <param name="trustDomain">The trust domain.</param>
    /// <param name="namespace">The namespace.</param>
    /// <param name="serviceAccount">The service account.</param>
    /// <returns>The id.</returns>
    /// <exception cref="ArgumentException">A part is empty or holds a character a SPIFFE path segment may not.</exception>
    public static SpiffeId Create(string trustDomain, string @namespace, string serviceAccount)
    {
        if (!IsTrustDomain(trustDomain))
        {
            throw new ArgumentException($"Trust domain '{trustDomain}' must be lower-case letters, digits, '.', '-' and '_'.", nameof(trustDomain));
        }

        if (!IsSegment(@namespace))
        {
            throw new ArgumentException($"Namespace '{@namespace}' must be letters, digits, '.', '-' and '_'.", nameof(@namespace));
        }

        if (!IsSegment(serviceAccount))
        {
            throw new ArgumentException($"Service account '{serviceAccount}' must be letters, digits, '.', '-' and '_'.", nameof(serviceAccount));
        }

        return new SpiffeId(trustDomain, @namespace, serviceAccount);
    }

    /// <summary>Reads an id in Istio's form; any other URI (another path shape, another scheme) is not one.</summary>
    /// <param name="uri">The URI, such as <c>spiffe://cluster.local/ns/default/sa/reviews</c>.</param>
    /// <param name="id">The id, when the result is <see langword="true"/>.</param>
    /// <returns>Whether <paramref name="uri"/> is an Istio SPIFFE id.</returns>
    public static bool TryParse(string? uri, [NotNullWhen(true)] out SpiffeId? id)
    {
        id = null;
        const string Prefix = "spiffe://";
        if (uri is null || !uri.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        var parts = uri[Prefix.Length..].Split('/');
        if (parts.Length != 5 || parts[1] != "ns" || parts[3] != "sa" || !IsTrustDomain(parts[0]) || !IsSegment(parts[2]) || !IsSegment(parts[4]))
        {
            return false;
        }

        id = new SpiffeId(parts[0], parts[2], parts[4]);
        return true;
    }

    /// <summary>Whether <paramref name="value"/> may be a trust domain (SPIFFE: lower-case letters, digits, '.', '-', '_').</summary>
    /// <param name="value">The value.</param>
    /// <returns><see langword="true"/> when it may.</returns>
    public static bool IsTrustDomain(string? value)
    {
        if (string.IsNullOrEmpty(value) || value.Length > 255)
        {
            return false;
        }

        foreach (var c in value)
        {
            if (!(c is >= 'a' and <= 'z' or >= '0' and <= '9' or '.' or '-' or '_'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Whether <paramref name="value"/> may be a namespace or service account in an id (letters, digits, '.', '-', '_').</summary>
    /// <param name="value">The value.</param>
    /// <returns><see langword="true"/> when it may.</returns>
    public static bool IsSegment(string? value)
    {
        if (string.IsNullOrEmpty(value) || value is "." or "..")
        {
            return false;
        }

        foreach (var c in value)
        {
            if (!(c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9' or '.' or '-' or '_'))
            {
                return false;
            }
        }

        return true;
    }
}

using System.Text.RegularExpressions;
using Envoy.Config.Route.V3;
using Mesh.Xds.Re2;

namespace Mesh.Sdk.Routing;

/// <summary>Where a <see cref="HashPolicy"/> takes its key from.</summary>
internal enum HashPolicyKind
{
    /// <summary>A request header (values joined with <c>,</c>), optionally rewritten by a regex.</summary>
    Header,

    /// <summary>A cookie; when absent and a TTL is set, the load balancer generates it and the response sets it.</summary>
    Cookie,

    /// <summary>The source IP address.</summary>
    SourceIp,

    /// <summary>A query parameter (first occurrence, undecoded).</summary>
    QueryParameter,

    /// <summary>A filter state object; the in-process data plane has none, so it never yields a key.</summary>
    FilterState,
}

/// <summary>
/// A compiled <c>RouteAction.hash_policy</c> entry for consistent-hash load balancing. Policies are evaluated in
/// order; each key found is hashed and combined (Envoy rotates the running hash left by one and XORs the next);
/// a <see cref="Terminal"/> policy that produced a key stops the evaluation.
/// </summary>
internal sealed record HashPolicy
{
    /// <summary>Where the key comes from.</summary>
    public required HashPolicyKind Kind { get; init; }

    /// <summary>Header, cookie, query parameter or filter state name (lower case for headers).</summary>
    public required string Name { get; init; }

    /// <summary>Whether a key found here ends the evaluation.</summary>
    public bool Terminal { get; init; }

    /// <summary>For headers: a regex whose matches in the value are replaced by <see cref="RewriteSubstitution"/>.</summary>
    public Regex? RewritePattern { get; init; }

    /// <summary>The .NET replacement string paired with <see cref="RewritePattern"/>.</summary>
    public string? RewriteSubstitution { get; init; }

    /// <summary>For cookies: the TTL of a generated cookie; <see langword="null"/> means never generate.</summary>
    public TimeSpan? CookieTtl { get; init; }

    /// <summary>For cookies: the path attribute of a generated cookie.</summary>
    public string? CookiePath { get; init; }

    /// <summary>For cookies: extra attributes of a generated cookie.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> CookieAttributes { get; init; } = [];

    /// <summary>Compiles a wire hash policy; on failure <paramref name="error"/> says why.</summary>
    public static bool TryCompile(RouteAction.Types.HashPolicy policy, out HashPolicy? compiled, out string? error)
    {
        compiled = null;
        error = null;
        switch (policy.PolicySpecifierCase)
        {
            case RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.Header:
                if (string.IsNullOrEmpty(policy.Header.HeaderName))
                {
                    error = "hash_policy header has an empty header_name";
                    return false;
                }

                Regex? pattern = null;
                string? substitution = null;
                if (policy.Header.RegexRewrite is { } rewrite)
                {
                    if (!TryCompileRewrite(rewrite, out pattern, out substitution, out error))
                    {
                        error = $"hash_policy header '{policy.Header.HeaderName}' regex_rewrite: {error}";
                        return false;
                    }
                }

                compiled = new HashPolicy
                {
                    Kind = HashPolicyKind.Header,
                    Name = policy.Header.HeaderName.ToLowerInvariant(),
                    Terminal = policy.Terminal,
                    RewritePattern = pattern,
                    RewriteSubstitution = substitution,
                };
                return true;
            case RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.Cookie:
                if (string.IsNullOrEmpty(policy.Cookie.Name))
                {
                    error = "hash_policy cookie has an empty name";
                    return false;
                }

                if (!RetryPolicy.TryDuration(policy.Cookie.Ttl, "hash_policy cookie ttl", out var ttl, out error))
                {
                    return false;
                }

                var attributes = new List<KeyValuePair<string, string>>();
                foreach (var attribute in policy.Cookie.Attributes)
                {
                    attributes.Add(new(attribute.Name, attribute.Value));
                }

                compiled = new HashPolicy
                {
                    Kind = HashPolicyKind.Cookie,
                    Name = policy.Cookie.Name,
                    Terminal = policy.Terminal,
                    CookieTtl = ttl,
                    CookiePath = string.IsNullOrEmpty(policy.Cookie.Path) ? null : policy.Cookie.Path,
                    CookieAttributes = attributes,
                };
                return true;
            case RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.ConnectionProperties:
                if (!policy.ConnectionProperties.SourceIp)
                {
                    error = "hash_policy connection_properties has source_ip false, which hashes nothing";
                    return false;
                }

                compiled = new HashPolicy { Kind = HashPolicyKind.SourceIp, Name = "source_ip", Terminal = policy.Terminal };
                return true;
            case RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.QueryParameter:
                if (string.IsNullOrEmpty(policy.QueryParameter.Name))
                {
                    error = "hash_policy query_parameter has an empty name";
                    return false;
                }

                compiled = new HashPolicy { Kind = HashPolicyKind.QueryParameter, Name = policy.QueryParameter.Name, Terminal = policy.Terminal };
                return true;
            case RouteAction.Types.HashPolicy.PolicySpecifierOneofCase.FilterState:
                if (string.IsNullOrEmpty(policy.FilterState.Key))
                {
                    error = "hash_policy filter_state has an empty key";
                    return false;
                }

                compiled = new HashPolicy { Kind = HashPolicyKind.FilterState, Name = policy.FilterState.Key, Terminal = policy.Terminal };
                return true;
            default:
                error = "hash_policy has no policy (header, cookie, connection_properties, query_parameter or filter_state)";
                return false;
        }
    }

    /// <summary>
    /// The key this policy takes from a request, or <see langword="null"/> when the request has none (the policy
    /// then contributes nothing). Only header rewrites and joined multi-value headers allocate.
    /// </summary>
    public string? GetKey<TRequest>(in TRequest request)
        where TRequest : IRouteRequest
    {
        switch (Kind)
        {
            case HashPolicyKind.Header:
                if (!request.TryGetHeader(Name, out var value))
                {
                    return null;
                }

                return RewritePattern is null ? value : Re2Regex.GlobalReplace(RewritePattern, value, RewriteSubstitution!);
            case HashPolicyKind.Cookie:
                return request.TryGetHeader("cookie", out var cookies) ? FindCookie(cookies, Name) : null;
            case HashPolicyKind.SourceIp:
                return request.SourceAddress?.ToString();
            case HashPolicyKind.QueryParameter:
                var pathAndQuery = request.PathAndQuery;
                var q = pathAndQuery.IndexOf('?', StringComparison.Ordinal);
                return q < 0 ? null : FindQueryParameter(pathAndQuery.AsSpan(q + 1), Name);
            default:
                return null;
        }
    }

    /// <summary>
    /// The request hash for consistent-hash load balancing, combined over <paramref name="policies"/> as Envoy does:
    /// each key found is hashed with xxHash64 (seed 0) over its UTF-8 bytes; the running hash is rotated left by one
    /// and XORed with the next; a terminal policy that produced a key ends the evaluation. Returns
    /// <see langword="false"/> when no policy yields a key (the load balancer then picks as it would without one).
    /// </summary>
    public static bool TryComputeHash<TRequest>(HashPolicy[] policies, in TRequest request, out ulong hash)
        where TRequest : IRouteRequest
    {
        hash = 0;
        var found = false;
        for (var i = 0; i < policies.Length; i++)
        {
            var policy = policies[i];
            var key = policy.GetKey(in request);
            if (key is not null)
            {
                var next = HashKey(key);
                hash = found ? ((hash << 1) | (hash >> 63)) ^ next : next;
                found = true;
            }

            if (found && policy.Terminal)
            {
                break;
            }
        }

        return found;
    }

    /// <summary>xxHash64 (seed 0) of the UTF-8 bytes of <paramref name="key"/>.</summary>
    public static ulong HashKey(ReadOnlySpan<char> key)
    {
        const int StackLimit = 512;
        var max = System.Text.Encoding.UTF8.GetMaxByteCount(key.Length);
        byte[]? rented = null;
        var buffer = max <= StackLimit ? stackalloc byte[StackLimit] : (rented = System.Buffers.ArrayPool<byte>.Shared.Rent(max));
        try
        {
            var length = System.Text.Encoding.UTF8.GetBytes(key, buffer);
            return System.IO.Hashing.XxHash64.HashToUInt64(buffer[..length]);
        }
        finally
        {
            if (rented is not null)
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    internal static bool TryCompileRewrite(Envoy.Type.Matcher.V3.RegexMatchAndSubstitute rewrite, out Regex? pattern, out string? substitution, out string? error)
    {
        pattern = null;
        substitution = null;
        if (rewrite.Pattern is null)
        {
            error = "regex_rewrite has no pattern";
            return false;
        }

        if (!Re2Regex.TryCompileSearch(rewrite.Pattern.Regex, out pattern, out error))
        {
            return false;
        }

        var groups = pattern!.GetGroupNumbers().Length - 1;
        return Re2Regex.TryTranslateSubstitution(rewrite.Substitution, groups, out substitution, out error);
    }

    private static string? FindCookie(string header, string name)
    {
        var span = header.AsSpan();
        foreach (var range in span.Split(';'))
        {
            var pair = span[range].Trim();
            var eq = pair.IndexOf('=');
            if (eq > 0 && pair[..eq].Trim().SequenceEqual(name))
            {
                var value = pair[(eq + 1)..].Trim();
                if (value.Length >= 2 && value[0] == '"' && value[^1] == '"')
                {
                    value = value[1..^1];
                }

                return value.ToString();
            }
        }

        return null;
    }

    private static string? FindQueryParameter(ReadOnlySpan<char> query, string name)
    {
        foreach (var range in query.Split('&'))
        {
            var pair = query[range];
            var eq = pair.IndexOf('=');
            var key = eq < 0 ? pair : pair[..eq];
            if (key.SequenceEqual(name))
            {
                return eq < 0 ? string.Empty : pair[(eq + 1)..].ToString();
            }
        }

        return null;
    }
}

using Envoy.Config.Route.V3;

namespace Mesh.Sdk.Routing;

/// <summary>
/// A compiled <c>QueryParameterMatcher</c>, as Envoy (1.34 and later) evaluates it: the first occurrence of the
/// parameter is tested, undecoded; a parameter without <c>=</c> has the empty value. <c>present_match</c> is
/// compared with the parameter's presence (<c>false</c> matches only when it is absent); a <c>string_match</c>
/// needs the parameter present with a matching value; a matcher with neither matches when the parameter is present.
/// </summary>
internal sealed class QueryParameterMatch
{
    private readonly StringMatch? _string;
    private readonly bool _present;

    private QueryParameterMatch(string name, StringMatch? stringMatch, bool present)
    {
        Name = name;
        _string = stringMatch;
        _present = present;
    }

    /// <summary>The parameter name (case-sensitive).</summary>
    public string Name { get; }

    /// <summary>Compiles a wire matcher; on failure <paramref name="error"/> says why.</summary>
    public static bool TryCompile(QueryParameterMatcher matcher, out QueryParameterMatch? match, out string? error)
    {
        match = null;
        error = null;
        if (string.IsNullOrEmpty(matcher.Name))
        {
            error = "query parameter matcher has an empty name";
            return false;
        }

        switch (matcher.QueryParameterMatchSpecifierCase)
        {
            case QueryParameterMatcher.QueryParameterMatchSpecifierOneofCase.StringMatch:
                if (!StringMatch.TryCompile(matcher.StringMatch, out var stringMatch, out error))
                {
                    error = $"query parameter '{matcher.Name}': {error}";
                    return false;
                }

                match = new QueryParameterMatch(matcher.Name, stringMatch, present: true);
                return true;
            case QueryParameterMatcher.QueryParameterMatchSpecifierOneofCase.PresentMatch:
                match = new QueryParameterMatch(matcher.Name, null, matcher.PresentMatch);
                return true;
            default:
                // Envoy reads a matcher with no specifier as a presence check.
                match = new QueryParameterMatch(matcher.Name, null, present: true);
                return true;
        }
    }

    /// <summary>The value matcher; <see langword="null"/> for a presence matcher.</summary>
    public StringMatch? StringMatch => _string;

    /// <summary>For a presence matcher, whether the parameter must be present (<see langword="false"/>: absent).</summary>
    public bool PresentMatch => _present;

    /// <summary>Whether the query string (without the leading <c>?</c>) satisfies the matcher.</summary>
    public bool Matches(ReadOnlySpan<char> query)
        // Absent: only present_match: false matches.
        => TryGetValue(query, out var value) ? (_string is null ? _present : _string.Matches(value)) : _string is null && !_present;

    /// <summary>The raw value of the parameter's first occurrence (empty without <c>=</c>); false when absent.</summary>
    public bool TryGetValue(ReadOnlySpan<char> query, out ReadOnlySpan<char> value)
    {
        while (!query.IsEmpty)
        {
            var end = query.IndexOf('&');
            var pair = end < 0 ? query : query[..end];
            query = end < 0 ? default : query[(end + 1)..];
            var eq = pair.IndexOf('=');
            var key = eq < 0 ? pair : pair[..eq];
            if (!key.SequenceEqual(Name))
            {
                continue;
            }

            value = eq < 0 ? default : pair[(eq + 1)..];
            return true;
        }

        value = default;
        return false;
    }
}

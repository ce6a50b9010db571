using Envoy.Config.Route.V3;

namespace Mesh.Sdk.Routing;

/// <summary>
/// A compiled <c>QueryParameterMatcher</c>: the first occurrence of the parameter is tested, undecoded, as Envoy
/// does; a parameter without <c>=</c> has the empty value.
/// </summary>
internal sealed class QueryParameterMatch
{
    private readonly StringMatch? _string;

    private QueryParameterMatch(string name, StringMatch? stringMatch)
    {
        Name = name;
        _string = stringMatch;
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

                match = new QueryParameterMatch(matcher.Name, stringMatch);
                return true;
            case QueryParameterMatcher.QueryParameterMatchSpecifierOneofCase.PresentMatch:
                if (!matcher.PresentMatch)
                {
                    error = $"query parameter '{matcher.Name}' present_match is false; Envoy only supports present_match: true";
                    return false;
                }

                match = new QueryParameterMatch(matcher.Name, null);
                return true;
            default:
                error = $"query parameter '{matcher.Name}' matcher has no specifier (string_match or present_match)";
                return false;
        }
    }

    /// <summary>Whether the query string (without the leading <c>?</c>) satisfies the matcher.</summary>
    public bool Matches(ReadOnlySpan<char> query)
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

            return _string is null || _string.Matches(eq < 0 ? default : pair[(eq + 1)..]);
        }

        return false;
    }
}

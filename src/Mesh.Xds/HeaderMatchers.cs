using Envoy.Config.Route.V3;
using Envoy.Type.Matcher.V3;

namespace Mesh.Xds;

/// <summary>
/// Reads a <see cref="HeaderMatcher"/> the same way whichever of its string forms the sender used: the
/// <c>string_match</c> field, or the single-purpose fields that predate it (<c>exact_match</c>,
/// <c>prefix_match</c>, <c>suffix_match</c>, <c>contains_match</c>, <c>safe_regex_match</c>), which
/// older gRPC clients still require and which control planes therefore still send.
/// </summary>
public static class HeaderMatchers
{
    /// <summary>The string matcher a header matcher applies, when it matches on the header's value as a string.</summary>
    /// <param name="header">The header matcher.</param>
    /// <param name="matcher">The equivalent <c>string_match</c>; a new instance for the single-purpose fields.</param>
    /// <returns><see langword="true"/> when <paramref name="header"/> is a string match of either form.</returns>
    public static bool TryGetStringMatcher(HeaderMatcher header, out StringMatcher matcher)
    {
        ArgumentNullException.ThrowIfNull(header);
        matcher = header.HeaderMatchSpecifierCase switch
        {
            HeaderMatcher.HeaderMatchSpecifierOneofCase.StringMatch => header.StringMatch,
            HeaderMatcher.HeaderMatchSpecifierOneofCase.ExactMatch => new StringMatcher { Exact = header.ExactMatch },
            HeaderMatcher.HeaderMatchSpecifierOneofCase.PrefixMatch => new StringMatcher { Prefix = header.PrefixMatch },
            HeaderMatcher.HeaderMatchSpecifierOneofCase.SuffixMatch => new StringMatcher { Suffix = header.SuffixMatch },
            HeaderMatcher.HeaderMatchSpecifierOneofCase.ContainsMatch => new StringMatcher { Contains = header.ContainsMatch },
            HeaderMatcher.HeaderMatchSpecifierOneofCase.SafeRegexMatch => new StringMatcher { SafeRegex = header.SafeRegexMatch },
            _ => null!,
        };
        return matcher is not null;
    }

    /// <summary>
    /// A header matcher in the form every gRPC xDS client accepts: the single-purpose field for exact,
    /// prefix, suffix, contains and regex matches without <c>ignore_case</c>, <c>string_match</c> otherwise.
    /// An empty exact match becomes <c>safe_regex_match: "^$"</c>: Envoy reads an empty <c>exact_match</c> as "any
    /// value" and gRPC as "the empty value", while every client reads the regex as "the empty value" (and C-core
    /// 1.51 refuses <c>string_match</c>).
    /// </summary>
    /// <param name="name">The header name.</param>
    /// <param name="matcher">The string match to apply to the header's value.</param>
    /// <param name="invert">Whether the match is inverted.</param>
    /// <returns>The header matcher.</returns>
    public static HeaderMatcher Create(string name, StringMatcher matcher, bool invert = false)
    {
        ArgumentNullException.ThrowIfNull(matcher);
        var header = new HeaderMatcher { Name = name, InvertMatch = invert };
        if (matcher.IgnoreCase)
        {
            header.StringMatch = matcher;
            return header;
        }

        if (matcher.MatchPatternCase == StringMatcher.MatchPatternOneofCase.Exact && matcher.Exact.Length == 0)
        {
            header.SafeRegexMatch = new RegexMatcher { Regex = "^$" };
            return header;
        }

        switch (matcher.MatchPatternCase)
        {
            case StringMatcher.MatchPatternOneofCase.Exact:
                header.ExactMatch = matcher.Exact;
                break;
            case StringMatcher.MatchPatternOneofCase.Prefix:
                header.PrefixMatch = matcher.Prefix;
                break;
            case StringMatcher.MatchPatternOneofCase.Suffix:
                header.SuffixMatch = matcher.Suffix;
                break;
            case StringMatcher.MatchPatternOneofCase.Contains:
                header.ContainsMatch = matcher.Contains;
                break;
            case StringMatcher.MatchPatternOneofCase.SafeRegex:
                header.SafeRegexMatch = matcher.SafeRegex;
                break;
            default:
                header.StringMatch = matcher;
                break;
        }

        return header;
    }
}

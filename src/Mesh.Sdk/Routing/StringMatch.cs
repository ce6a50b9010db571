using System.Text.RegularExpressions;
using Envoy.Type.Matcher.V3;
using Mesh.Sdk.Routing.Internal;
using Mesh.Xds.Re2;

namespace Mesh.Sdk.Routing;

/// <summary>How a <see cref="StringMatch"/> compares.</summary>
internal enum StringMatchKind
{
    /// <summary>The whole value equals the pattern.</summary>
    Exact,

    /// <summary>The value starts with the pattern.</summary>
    Prefix,

    /// <summary>The value ends with the pattern.</summary>
    Suffix,

    /// <summary>The value contains the pattern.</summary>
    Contains,

    /// <summary>The whole value matches a regular expression (RE2 subset).</summary>
    Regex,
}

/// <summary>A compiled <c>envoy.type.matcher.v3.StringMatcher</c>.</summary>
internal sealed class StringMatch
{
    private readonly Regex? _regex;

    private StringMatch(StringMatchKind kind, string pattern, bool ignoreCase, Regex? regex)
    {
        Kind = kind;
        Pattern = pattern;
        IgnoreCase = ignoreCase;
        _regex = regex;
    }

    /// <summary>How the value is compared.</summary>
    public StringMatchKind Kind { get; }

    /// <summary>The literal pattern, or the regex source for <see cref="StringMatchKind.Regex"/>.</summary>
    public string Pattern { get; }

    /// <summary>Whether literal comparisons ignore the case of ASCII letters (never applies to regexes, as in Envoy).</summary>
    public bool IgnoreCase { get; }

    /// <summary>Creates a literal matcher.</summary>
    public static StringMatch Literal(StringMatchKind kind, string pattern, bool ignoreCase)
    {
        if (kind == StringMatchKind.Regex)
        {
            throw new ArgumentException("Use TryCompile for regexes.", nameof(kind));
        }

        return new StringMatch(kind, pattern, ignoreCase, null);
    }

    /// <summary>Compiles a wire matcher; on failure <paramref name="error"/> says why.</summary>
    public static bool TryCompile(StringMatcher matcher, out StringMatch? match, out string? error)
    {
        match = null;
        error = null;
        switch (matcher.MatchPatternCase)
        {
            case StringMatcher.MatchPatternOneofCase.Exact:
                match = Literal(StringMatchKind.Exact, matcher.Exact, matcher.IgnoreCase);
                return true;
            case StringMatcher.MatchPatternOneofCase.Prefix:
                match = Literal(StringMatchKind.Prefix, matcher.Prefix, matcher.IgnoreCase);
                return true;
            case StringMatcher.MatchPatternOneofCase.Suffix:
                match = Literal(StringMatchKind.Suffix, matcher.Suffix, matcher.IgnoreCase);
                return true;
            case StringMatcher.MatchPatternOneofCase.Contains:
                match = Literal(StringMatchKind.Contains, matcher.Contains, matcher.IgnoreCase);
                return true;
            case StringMatcher.MatchPatternOneofCase.SafeRegex:
                if (!Re2Regex.TryCompileFullMatch(matcher.SafeRegex.Regex, out var regex, out error))
                {
                    return false;
                }

                match = new StringMatch(StringMatchKind.Regex, matcher.SafeRegex.Regex, false, regex);
                return true;
            default:
                error = "string matcher has no pattern (exact, prefix, suffix, contains or safe_regex)";
                return false;
        }
    }

    /// <summary>Whether <paramref name="value"/> matches. <c>ignore_case</c> folds ASCII letters only, as Envoy.</summary>
    public bool Matches(ReadOnlySpan<char> value)
    {
        if (IgnoreCase)
        {
            return Kind switch
            {
                StringMatchKind.Exact => AsciiCase.Equals(value, Pattern),
                StringMatchKind.Prefix => AsciiCase.StartsWith(value, Pattern),
                StringMatchKind.Suffix => AsciiCase.EndsWith(value, Pattern),
                StringMatchKind.Contains => AsciiCase.Contains(value, Pattern),
                _ => _regex!.IsMatch(value),
            };
        }

        return Kind switch
        {
            StringMatchKind.Exact => value.SequenceEqual(Pattern),
            StringMatchKind.Prefix => value.StartsWith(Pattern),
            StringMatchKind.Suffix => value.EndsWith(Pattern),
            StringMatchKind.Contains => value.IndexOf(Pattern) >= 0,
            _ => _regex!.IsMatch(value),
        };
    }
}

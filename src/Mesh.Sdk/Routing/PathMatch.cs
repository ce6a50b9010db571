using System.Text.RegularExpressions;
using Mesh.Xds.Re2;

namespace Mesh.Sdk.Routing;

/// <summary>How a route's path is matched.</summary>
internal enum PathMatchKind
{
    /// <summary><c>prefix</c>: the <c>:path</c> (query string included, as Envoy) starts with the value.</summary>
    Prefix,

    /// <summary><c>path</c>: the path without query string equals the value.</summary>
    Exact,

    /// <summary><c>safe_regex</c>: the path without query string fully matches the regex.</summary>
    Regex,

    /// <summary><c>path_separated_prefix</c>: the path without query equals the value or continues with <c>/</c>.</summary>
    SeparatedPrefix,
}

/// <summary>A compiled route path specifier.</summary>
internal sealed class PathMatch
{
    private readonly Regex? _regex;
    private readonly string _regexPrefix;

    /// <summary>Creates the matcher.</summary>
    public PathMatch(PathMatchKind kind, string value, bool caseSensitive, Regex? regex)
    {
        Kind = kind;
        Value = value;
        CaseSensitive = caseSensitive;
        _regex = regex;
        _regexPrefix = regex is null ? string.Empty : Re2Regex.LiteralPrefix(value);
    }

    /// <summary>The specifier kind.</summary>
    public PathMatchKind Kind { get; }

    /// <summary>The prefix, path or regex source.</summary>
    public string Value { get; }

    /// <summary>Whether literal comparisons are case-sensitive (regexes always are); otherwise ASCII letters fold, as in Envoy.</summary>
    public bool CaseSensitive { get; }

    /// <summary>
    /// Text every matching <c>:path</c> starts with (ordinal), for a cheap first test; empty when the matcher
    /// guarantees none (case-insensitive matchers, regexes without a literal start).
    /// </summary>
    public string GuaranteedPrefix => Kind == PathMatchKind.Regex ? _regexPrefix : CaseSensitive ? Value : string.Empty;

    /// <summary>Tests the request's <c>:path</c> and its query-less path.</summary>
    public bool Matches(ReadOnlySpan<char> pathAndQuery, ReadOnlySpan<char> path)
    {
        switch (Kind)
        {
            case PathMatchKind.Prefix:
                // The common case-sensitive forms use the vectorised ordinal span comparisons directly.
                return CaseSensitive ? pathAndQuery.StartsWith(Value.AsSpan()) : Internal.AsciiCase.StartsWith(pathAndQuery, Value);
            case PathMatchKind.Exact:
                return CaseSensitive ? path.SequenceEqual(Value.AsSpan()) : Internal.AsciiCase.Equals(path, Value);
            case PathMatchKind.SeparatedPrefix:
                return (CaseSensitive ? path.StartsWith(Value.AsSpan()) : Internal.AsciiCase.StartsWith(path, Value))
                    && (path.Length == Value.Length || path[Value.Length] == '/');
            default:
                return path.StartsWith(_regexPrefix.AsSpan()) && _regex!.IsMatch(path);
        }
    }
}

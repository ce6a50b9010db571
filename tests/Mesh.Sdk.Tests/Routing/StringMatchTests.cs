using Envoy.Type.Matcher.V3;
using Mesh.Sdk.Routing;

namespace Mesh.Sdk.Tests.Routing;

public sealed class StringMatchTests
{
    private static StringMatch Compile(StringMatcher matcher)
    {
        Assert.True(StringMatch.TryCompile(matcher, out var match, out var error), error);
        return match!;
    }

    [Theory]
    [InlineData("exact", "abc", false, "abc", true)]
    [InlineData("exact", "abc", false, "ABC", false)]
    [InlineData("exact", "abc", true, "ABC", true)]
    [InlineData("exact", "abc", false, "abcd", false)]
    [InlineData("prefix", "ab", false, "abc", true)]
    [InlineData("prefix", "ab", false, "xab", false)]
    [InlineData("prefix", "AB", true, "abc", true)]
    [InlineData("suffix", "bc", false, "abc", true)]
    [InlineData("suffix", "BC", false, "abc", false)]
    [InlineData("suffix", "BC", true, "abc", true)]
    [InlineData("contains", "b", false, "abc", true)]
    [InlineData("contains", "B", true, "abc", true)]
    [InlineData("contains", "x", false, "abc", false)]
    public void Matches_LiteralKinds(string kind, string pattern, bool ignoreCase, string value, bool expected)
    {
        var matcher = new StringMatcher { IgnoreCase = ignoreCase };
        switch (kind)
        {
            case "exact": matcher.Exact = pattern; break;
            case "prefix": matcher.Prefix = pattern; break;
            case "suffix": matcher.Suffix = pattern; break;
            default: matcher.Contains = pattern; break;
        }

        Assert.Equal(expected, Compile(matcher).Matches(value));
    }

    [Fact]
    public void Matches_RegexIsFullMatchAndIgnoresIgnoreCase()
    {
        var match = Compile(new StringMatcher { SafeRegex = new RegexMatcher { Regex = "v[0-9]" }, IgnoreCase = true });
        Assert.True(match.Matches("v1"));
        Assert.False(match.Matches("V1"));
        Assert.False(match.Matches("v12"));
    }

    [Fact]
    public void TryCompile_RejectsEmptyMatcherAndBadRegex()
    {
        Assert.False(StringMatch.TryCompile(new StringMatcher(), out _, out var error));
        Assert.Contains("no pattern", error);
        Assert.False(StringMatch.TryCompile(new StringMatcher { SafeRegex = new RegexMatcher { Regex = "(?=x)" } }, out _, out error));
        Assert.Contains("lookahead", error);
    }

    [Theory]
    [InlineData("prefix", "/api", "/API/x", true)]
    [InlineData("path", "/api", "/Api", true)]
    [InlineData("path_separated_prefix", "/api", "/aPI/v1", true)]
    [InlineData("prefix", "/é", "/É", false)] // case_sensitive: false folds ASCII letters only, as Envoy
    [InlineData("path", "/s", "/ſ", false)]
    public void PathMatch_CaseInsensitiveFoldsAsciiOnly(string kind, string value, string path, bool expected)
    {
        var pathKind = kind switch { "prefix" => PathMatchKind.Prefix, "path" => PathMatchKind.Exact, _ => PathMatchKind.SeparatedPrefix };
        var match = new PathMatch(pathKind, value, caseSensitive: false, regex: null);
        Assert.Equal(expected, match.Matches(path, path));
    }
}

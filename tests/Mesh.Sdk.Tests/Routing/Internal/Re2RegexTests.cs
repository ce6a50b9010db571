using Mesh.Sdk.Routing.Internal;

namespace Mesh.Sdk.Tests.Routing.Internal;

public sealed class Re2RegexTests
{
    [Theory]
    [InlineData(@"(a)\1", "backreference")]
    [InlineData(@"(?<n>a)\k<n>", "named backreference")]
    [InlineData("a(?=b)", "lookahead")]
    [InlineData("a(?!b)", "lookahead")]
    [InlineData("(?<=a)b", "lookbehind")]
    [InlineData("(?<!a)b", "lookbehind")]
    [InlineData("(?>ab)", "atomic group")]
    [InlineData("a*+", "possessive")]
    [InlineData("a++", "possessive")]
    [InlineData("a{2}+", "possessive")]
    [InlineData("(?(a)b|c)", "conditional")]
    [InlineData("(?U)a*", "ungreedy")]
    [InlineData(@"\Qa.b\E", @"\Q...\E")]
    [InlineData(@"a\Z", @"'\Z'")]
    [InlineData("[[:alpha:]]", "POSIX")]
    [InlineData("a{1001}", "1000")]
    [InlineData("(?x)a b", "group flag 'x'")]
    public void TryCompileFullMatch_RejectsConstructsRe2Lacks(string pattern, string reason)
    {
        Assert.False(Re2Regex.TryCompileFullMatch(pattern, out var regex, out var error));
        Assert.Null(regex);
        Assert.Contains(reason, error);
        Assert.Contains(pattern, error);
    }

    [Theory]
    [InlineData("/api/v[0-9]+/.*", "/api/v12/users", true)]
    [InlineData("/api/v[0-9]+/.*", "/api/v12", false)]
    [InlineData("/api", "/api/x", false)] // full match, not search
    [InlineData("(?i)/API", "/api", true)]
    [InlineData("(?P<ver>v[12])/x", "v2/x", true)]
    [InlineData(@"\d+", "123", true)]
    [InlineData(@"\d+", "١٢٣", false)] // RE2's \d is ASCII only
    [InlineData(@"\w+", "abc_1", true)]
    [InlineData(@"\w+", "é", false)]
    [InlineData(@"[\d-]+", "1-2", true)]
    [InlineData("a{2,3}", "aaa", true)]
    [InlineData("a{2,3}", "aaaa", false)]
    [InlineData("x{", "x{", true)] // a brace that starts no repetition is a literal in RE2
    [InlineData("a|b", "b", true)]
    [InlineData("[]a]+", "]a", true)]
    public void TryCompileFullMatch_MatchesWholeInput(string pattern, string input, bool expected)
    {
        Assert.True(Re2Regex.TryCompileFullMatch(pattern, out var regex, out var error), error);
        Assert.Equal(expected, regex!.IsMatch(input));
        Assert.True((regex.Options & System.Text.RegularExpressions.RegexOptions.NonBacktracking) != 0);
    }

    [Theory]
    [InlineData(@"\1-\2", 2, "${1}-${2}")]
    [InlineData("$x", 0, "$$x")]
    [InlineData(@"a\\b", 0, @"a\b")]
    public void TryTranslateSubstitution_ConvertsRe2Syntax(string substitution, int groups, string expected)
    {
        Assert.True(Re2Regex.TryTranslateSubstitution(substitution, groups, out var translated, out var error), error);
        Assert.Equal(expected, translated);
    }

    [Fact]
    public void TryTranslateSubstitution_RejectsMissingGroup()
    {
        Assert.False(Re2Regex.TryTranslateSubstitution(@"\3", 1, out _, out var error));
        Assert.Contains("group 3", error);
    }

    [Theory]
    [InlineData("/api/v[0-9]+/users", "/api/v")]
    [InlineData("/api/v1?", "/api/v")]
    [InlineData("/api/v1*", "/api/v")]
    [InlineData("/api/v1{2}", "/api/v")]
    [InlineData("/api/v1+", "/api/v1")]
    [InlineData("/a|/b", "")]
    [InlineData("(?i)/api", "")]
    [InlineData(@"\d+", "")]
    [InlineData("/exact", "/exact")]
    public void LiteralPrefix_IsGuaranteedByEveryFullMatch(string pattern, string expected)
    {
        Assert.Equal(expected, Re2Regex.LiteralPrefix(pattern));
    }
}

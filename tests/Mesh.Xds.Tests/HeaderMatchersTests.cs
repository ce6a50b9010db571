using Envoy.Config.Route.V3;
using Envoy.Type.Matcher.V3;

namespace Mesh.Xds.Tests;

public sealed class HeaderMatchersTests
{
    [Fact]
    public void Create_UsesSinglePurposeFieldsThatOlderGrpcClientsRequire()
    {
        Assert.Equal("jason", HeaderMatchers.Create("end-user", new StringMatcher { Exact = "jason" }).ExactMatch);
        Assert.Equal("/api", HeaderMatchers.Create("x", new StringMatcher { Prefix = "/api" }).PrefixMatch);
        Assert.Equal(".com", HeaderMatchers.Create("x", new StringMatcher { Suffix = ".com" }).SuffixMatch);
        Assert.Equal("mid", HeaderMatchers.Create("x", new StringMatcher { Contains = "mid" }).ContainsMatch);
        Assert.Equal("v[0-9]", HeaderMatchers.Create("x", new StringMatcher { SafeRegex = new RegexMatcher { Regex = "v[0-9]" } }).SafeRegexMatch.Regex);
        Assert.True(HeaderMatchers.Create("x", new StringMatcher { Exact = "a" }, invert: true).InvertMatch);
    }

    [Fact]
    public void Create_KeepsStringMatchWhenIgnoreCaseIsSet()
    {
        var header = HeaderMatchers.Create("end-user", new StringMatcher { Exact = "Jason", IgnoreCase = true });

        Assert.Equal(HeaderMatcher.HeaderMatchSpecifierOneofCase.StringMatch, header.HeaderMatchSpecifierCase);
        Assert.Equal(("Jason", true), (header.StringMatch.Exact, header.StringMatch.IgnoreCase));
    }

    [Fact]
    public void Create_WritesAnEmptyExactValueAsARegexEveryClientReadsAlike()
    {
        // exact_match: "" means "any value" to Envoy but "the empty value" to gRPC; string_match is refused by
        // C-core 1.51. safe_regex_match "^$" means "the empty value" to all of them.
        var header = HeaderMatchers.Create("x-empty", new StringMatcher { Exact = string.Empty });

        Assert.Equal(HeaderMatcher.HeaderMatchSpecifierOneofCase.SafeRegexMatch, header.HeaderMatchSpecifierCase);
        Assert.Equal("^$", header.SafeRegexMatch.Regex);
    }

    [Theory]
    [InlineData("exact")]
    [InlineData("prefix")]
    [InlineData("suffix")]
    [InlineData("contains")]
    [InlineData("regex")]
    public void TryGetStringMatcher_ReadsBothFormsAlike(string kind)
    {
        var matcher = kind switch
        {
            "exact" => new StringMatcher { Exact = "v" },
            "prefix" => new StringMatcher { Prefix = "v" },
            "suffix" => new StringMatcher { Suffix = "v" },
            "contains" => new StringMatcher { Contains = "v" },
            _ => new StringMatcher { SafeRegex = new RegexMatcher { Regex = "v" } },
        };

        Assert.True(HeaderMatchers.TryGetStringMatcher(HeaderMatchers.Create("h", matcher), out var fromLegacy));
        Assert.True(HeaderMatchers.TryGetStringMatcher(new HeaderMatcher { Name = "h", StringMatch = matcher }, out var fromModern));
        Assert.Equal(matcher, fromLegacy);
        Assert.Equal(matcher, fromModern);
    }

    [Fact]
    public void TryGetStringMatcher_IsFalseForPresentAndRangeMatches()
    {
        Assert.False(HeaderMatchers.TryGetStringMatcher(new HeaderMatcher { Name = "h", PresentMatch = true }, out _));
        Assert.False(HeaderMatchers.TryGetStringMatcher(new HeaderMatcher { Name = "h", RangeMatch = new() { Start = 1, End = 5 } }, out _));
    }
}

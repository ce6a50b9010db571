using Envoy.Config.Route.V3;
using Envoy.Type.Matcher.V3;
using Envoy.Type.V3;
using Mesh.Sdk.Routing;

namespace Mesh.Sdk.Tests.Routing;

public sealed class HeaderMatchTests
{
    private static HeaderMatch Compile(HeaderMatcher matcher)
    {
        Assert.True(HeaderMatch.TryCompile(matcher, out var match, out var error), error);
        return match!;
    }

    private static bool Eval(HeaderMatcher matcher, params (string, string)[] headers)
        => Compile(matcher).Matches(TestRequest.Get("/", headers));

    [Fact]
    public void StringMatch_ExactOnJoinedValues()
    {
        var matcher = new HeaderMatcher { Name = "X-Tag", StringMatch = new StringMatcher { Exact = "a,b" } };
        Assert.True(Eval(matcher, ("x-tag", "a"), ("x-tag", "b")));
        Assert.False(Eval(matcher, ("x-tag", "a")));
    }

    [Theory]
    [InlineData("v1", true)]
    [InlineData("v2", false)]
    public void StringMatch_PrefixSuffixContainsRegex(string value, bool expected)
    {
        Assert.Equal(expected, Eval(new HeaderMatcher { Name = "x", StringMatch = new StringMatcher { Suffix = "1" } }, ("x", value)));
        Assert.Equal(expected, Eval(new HeaderMatcher { Name = "x", StringMatch = new StringMatcher { Contains = "1" } }, ("x", value)));
        Assert.Equal(expected, Eval(new HeaderMatcher { Name = "x", StringMatch = new StringMatcher { SafeRegex = new RegexMatcher { Regex = "v[01]" } } }, ("x", value)));
        Assert.Equal(expected, Eval(new HeaderMatcher { Name = "x", StringMatch = new StringMatcher { Prefix = "V1", IgnoreCase = true } }, ("x", value)));
    }

    [Theory]
    [InlineData("v1", true)]
    [InlineData("v2", false)]
    public void SinglePurposeFields_MatchLikeStringMatch(string value, bool expected)
    {
        Assert.Equal(expected, Eval(new HeaderMatcher { Name = "x", ExactMatch = "v1" }, ("x", value)));
        Assert.Equal(expected, Eval(new HeaderMatcher { Name = "x", PrefixMatch = "v1" }, ("x", value)));
        Assert.Equal(expected, Eval(new HeaderMatcher { Name = "x", SuffixMatch = "1" }, ("x", value)));
        Assert.Equal(expected, Eval(new HeaderMatcher { Name = "x", ContainsMatch = "1" }, ("x", value)));
        Assert.Equal(expected, Eval(new HeaderMatcher { Name = "x", SafeRegexMatch = new RegexMatcher { Regex = "v[01]" } }, ("x", value)));
        Assert.Equal(!expected, Eval(new HeaderMatcher { Name = "x", ExactMatch = "v1", InvertMatch = true }, ("x", value)));
    }

    [Fact]
    public void Invert_FlipsPresentHeadersButMissingHeaderStillFails()
    {
        var matcher = new HeaderMatcher { Name = "x", StringMatch = new StringMatcher { Exact = "a" }, InvertMatch = true };
        Assert.False(Eval(matcher, ("x", "a")));
        Assert.True(Eval(matcher, ("x", "b")));
        Assert.False(Eval(matcher)); // Envoy: a missing header never matches a string matcher, inverted or not
    }

    [Fact]
    public void TreatMissingAsEmpty_TestsEmptyString()
    {
        var matcher = new HeaderMatcher { Name = "x", StringMatch = new StringMatcher { Exact = "a" }, InvertMatch = true, TreatMissingHeaderAsEmpty = true };
        Assert.True(Eval(matcher));
    }

    [Theory]
    [InlineData(true, false, true, false)]
    [InlineData(false, false, false, true)]
    [InlineData(true, true, false, true)]
    [InlineData(false, true, true, false)]
    public void PresentMatch_WithAndWithoutInvert(bool present, bool invert, bool whenPresent, bool whenMissing)
    {
        var matcher = new HeaderMatcher { Name = "x", PresentMatch = present, InvertMatch = invert };
        Assert.Equal(whenPresent, Eval(matcher, ("x", "anything")));
        Assert.Equal(whenMissing, Eval(matcher));
    }

    [Theory]
    [InlineData("10", true)]
    [InlineData("19", true)]
    [InlineData("20", false)] // end is exclusive
    [InlineData("9", false)]
    [InlineData("-5", false)]
    [InlineData("abc", false)]
    [InlineData("1.5", false)]
    public void RangeMatch_HalfOpenInt64(string value, bool expected)
    {
        var matcher = new HeaderMatcher { Name = "x", RangeMatch = new Int64Range { Start = 10, End = 20 } };
        Assert.Equal(expected, Eval(matcher, ("x", value)));
    }

    [Fact]
    public void RangeMatch_NegativeBoundsAndInvert()
    {
        var matcher = new HeaderMatcher { Name = "x", RangeMatch = new Int64Range { Start = -10, End = 0 }, InvertMatch = true };
        Assert.False(Eval(matcher, ("x", "-3")));
        Assert.True(Eval(matcher, ("x", "3")));
    }

    [Fact]
    public void PseudoHeaders_ReadTheRequestLine()
    {
        var method = Compile(new HeaderMatcher { Name = ":method", StringMatch = new StringMatcher { Exact = "POST" } });
        Assert.True(method.Matches(new TestRequest("svc", "/", "POST")));
        Assert.False(method.Matches(new TestRequest("svc", "/", "GET")));
        var authority = Compile(new HeaderMatcher { Name = ":authority", StringMatch = new StringMatcher { Suffix = ":9080" } });
        Assert.True(authority.Matches(new TestRequest("svc:9080", "/")));
    }

    [Fact]
    public void TryCompile_RejectsEmptyRangeAndName()
    {
        Assert.False(HeaderMatch.TryCompile(new HeaderMatcher { Name = "x", RangeMatch = new Int64Range { Start = 5, End = 5 } }, out _, out var error));
        Assert.Contains("range_match [5, 5) is empty", error);
        Assert.False(HeaderMatch.TryCompile(new HeaderMatcher { PresentMatch = true }, out _, out error));
        Assert.Contains("empty name", error);
        Assert.False(HeaderMatch.TryCompile(new HeaderMatcher { Name = "x" }, out _, out error));
        Assert.Contains("no specifier", error);
    }
}

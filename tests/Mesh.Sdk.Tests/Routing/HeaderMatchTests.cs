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
    public void TryCompile_RejectsEmptyName()
    {
        Assert.False(HeaderMatch.TryCompile(new HeaderMatcher { PresentMatch = true }, out _, out var error));
        Assert.Contains("empty name", error);
    }

    [Fact]
    public void NoSpecifier_IsAPresenceCheck()
    {
        // Envoy reads a HeaderMatcher with no specifier as present_match: true.
        var matcher = new HeaderMatcher { Name = "x" };
        Assert.True(Eval(matcher, ("x", "anything")));
        Assert.False(Eval(matcher));
    }

    [Fact]
    public void EmptyRange_IsAcceptedAndMatchesNoValue()
    {
        // Envoy puts no constraint on Int64Range: [5, 5) holds nothing, so it matches only when inverted.
        Assert.False(Eval(new HeaderMatcher { Name = "x", RangeMatch = new Int64Range { Start = 5, End = 5 } }, ("x", "5")));
        Assert.True(Eval(new HeaderMatcher { Name = "x", RangeMatch = new Int64Range { Start = 5, End = 5 }, InvertMatch = true }, ("x", "5")));
    }

    public static TheoryData<string, bool, bool, bool> MissingHeaderCases
    {
        get
        {
            // kind, invert_match, treat_missing_header_as_empty, whether a request without the header matches.
            var data = new TheoryData<string, bool, bool, bool>();
            foreach (var (kind, emptyMatches) in new[]
            {
                ("exact:a", false), ("exact:", true), ("exact_match:", true), ("exact_match:a", false),
                ("prefix:a", false), ("prefix:", true), ("suffix:a", false), ("contains:a", false),
                ("regex:a*", true), ("regex:a+", false), ("range:0,10", false), ("present:true", true), ("present:false", false),
            })
            {
                // Without treat_missing_header_as_empty a missing header matches only present_match: false
                // (or, inverted, present_match: true).
                var plain = kind == "present:false";
                data.Add(kind, false, false, plain);
                data.Add(kind, true, false, kind == "present:true");

                // With it, the header is the empty string (present, for present_match) and invert applies.
                data.Add(kind, false, true, emptyMatches);
                data.Add(kind, true, true, !emptyMatches);
            }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(MissingHeaderCases))]
    public void MissingHeader_FollowsEnvoyForEveryKind(string kind, bool invert, bool treatMissingAsEmpty, bool expected)
    {
        var colon = kind.IndexOf(':');
        var value = kind[(colon + 1)..];
        var matcher = new HeaderMatcher { Name = "x-missing", InvertMatch = invert, TreatMissingHeaderAsEmpty = treatMissingAsEmpty };
        switch (kind[..colon])
        {
            case "exact": matcher.StringMatch = new StringMatcher { Exact = value }; break;
            case "exact_match": matcher.ExactMatch = value; break;
            case "prefix": matcher.StringMatch = new StringMatcher { Prefix = value }; break;
            case "suffix": matcher.StringMatch = new StringMatcher { Suffix = value }; break;
            case "contains": matcher.StringMatch = new StringMatcher { Contains = value }; break;
            case "regex": matcher.StringMatch = new StringMatcher { SafeRegex = new RegexMatcher { Regex = value } }; break;
            case "range": matcher.RangeMatch = new Int64Range { Start = 0, End = 10 }; break;
            default: matcher.PresentMatch = bool.Parse(value); break;
        }

        Assert.Equal(expected, Eval(matcher));
    }

    [Fact]
    public void EmptyExact_LegacyFieldMatchesAnyValue_StringMatchOnlyTheEmptyValue()
    {
        // Envoy: exact_match: "" matches every value of a present header; string_match.exact: "" only "".
        Assert.True(Eval(new HeaderMatcher { Name = "x", ExactMatch = string.Empty }, ("x", "abc")));
        Assert.True(Eval(new HeaderMatcher { Name = "x", ExactMatch = string.Empty }, ("x", string.Empty)));
        Assert.False(Eval(new HeaderMatcher { Name = "x", ExactMatch = string.Empty }));
        Assert.False(Eval(new HeaderMatcher { Name = "x", StringMatch = new StringMatcher { Exact = string.Empty } }, ("x", "abc")));
        Assert.True(Eval(new HeaderMatcher { Name = "x", StringMatch = new StringMatcher { Exact = string.Empty } }, ("x", string.Empty)));

        // What a control plane writes with Mesh.Xds.HeaderMatchers keeps "the empty value".
        var written = Mesh.Xds.HeaderMatchers.Create("x", new StringMatcher { Exact = string.Empty });
        Assert.True(Eval(written, ("x", string.Empty)));
        Assert.False(Eval(written, ("x", "abc")));
    }

    [Theory]
    [InlineData("Straße", "STRAßE", true)]
    [InlineData("straße", "STRASSE", false)]
    [InlineData("é", "É", false)] // Envoy folds ASCII letters only
    [InlineData("s", "ſ", false)] // .NET's OrdinalIgnoreCase would fold ſ to S
    [InlineData("k", "\u212A", false)]
    [InlineData("JaSoN", "jason", true)]
    public void IgnoreCase_FoldsAsciiLettersOnly(string pattern, string value, bool expected)
    {
        value = System.Text.RegularExpressions.Regex.Unescape(value);
        Assert.Equal(expected, Eval(new HeaderMatcher { Name = "x", StringMatch = new StringMatcher { Exact = pattern, IgnoreCase = true } }, ("x", value)));
        Assert.Equal(expected, Eval(new HeaderMatcher { Name = "x", StringMatch = new StringMatcher { Prefix = pattern, IgnoreCase = true } }, ("x", value + "-tail")));
        Assert.Equal(expected, Eval(new HeaderMatcher { Name = "x", StringMatch = new StringMatcher { Suffix = pattern, IgnoreCase = true } }, ("x", "head-" + value)));
        Assert.Equal(expected, Eval(new HeaderMatcher { Name = "x", StringMatch = new StringMatcher { Contains = pattern, IgnoreCase = true } }, ("x", "head-" + value + "-tail")));
    }

    [Theory]
    [InlineData(" 15 ", true)] // absl::SimpleAtoi allows white space around the number
    [InlineData("\t15", true)]
    [InlineData("+15", true)]
    [InlineData("1 5", false)]
    [InlineData("15,16", false)] // a repeated header is joined with ','
    [InlineData("", false)]
    public void RangeMatch_ParsesAsAbslSimpleAtoi(string value, bool expected)
    {
        var matcher = new HeaderMatcher { Name = "x", RangeMatch = new Int64Range { Start = 10, End = 20 } };
        Assert.Equal(expected, Eval(matcher, ("x", System.Text.RegularExpressions.Regex.Unescape(value))));
    }
}

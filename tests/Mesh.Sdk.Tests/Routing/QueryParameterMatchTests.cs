using Envoy.Config.Route.V3;
using Envoy.Type.Matcher.V3;
using Mesh.Sdk.Routing;

namespace Mesh.Sdk.Tests.Routing;

public sealed class QueryParameterMatchTests
{
    private static QueryParameterMatch Compile(QueryParameterMatcher matcher)
    {
        Assert.True(QueryParameterMatch.TryCompile(matcher, out var match, out var error), error);
        return match!;
    }

    [Theory]
    [InlineData("debug=1", true)]
    [InlineData("a=2&debug=1&x", true)]
    [InlineData("debug=2&debug=1", false)] // the first occurrence counts
    [InlineData("debugx=1", false)]
    [InlineData("Debug=1", false)] // names are case-sensitive
    [InlineData("", false)]
    public void StringMatch_TestsFirstOccurrence(string query, bool expected)
    {
        var match = Compile(new QueryParameterMatcher { Name = "debug", StringMatch = new StringMatcher { Exact = "1" } });
        Assert.Equal(expected, match.Matches(query));
    }

    [Theory]
    [InlineData("debug", true)]
    [InlineData("debug=", true)]
    [InlineData("x=debug", false)]
    public void PresentMatch_AcceptsValuelessParameters(string query, bool expected)
    {
        var match = Compile(new QueryParameterMatcher { Name = "debug", PresentMatch = true });
        Assert.Equal(expected, match.Matches(query));
    }

    [Theory]
    [InlineData("", true)]
    [InlineData("x=1", true)]
    [InlineData("debug", false)]
    [InlineData("debug=", false)]
    [InlineData("x=1&debug=0", false)]
    [InlineData("debugx=1", true)]
    public void PresentMatchFalse_MatchesOnlyWhenTheParameterIsAbsent(string query, bool expected)
    {
        // Envoy 1.34+ (enable_new_query_param_present_match_behavior, on by default): presence == present_match.
        var match = Compile(new QueryParameterMatcher { Name = "debug", PresentMatch = false });
        Assert.Equal(expected, match.Matches(query));
    }

    [Theory]
    [InlineData("debug", true)]
    [InlineData("debug=1", true)]
    [InlineData("", false)]
    public void NoSpecifier_IsAPresenceCheck(string query, bool expected)
    {
        var match = Compile(new QueryParameterMatcher { Name = "debug" });
        Assert.Equal(expected, match.Matches(query));
    }

    [Theory]
    [InlineData("q=a%20b", "a%20b", true)] // values are not decoded
    [InlineData("q=a%20b", "a b", false)]
    [InlineData("q=a=b", "a=b", true)] // the value runs from the first '='
    [InlineData("q", "", true)] // no '=': the empty value
    public void StringMatch_TestsTheRawValue(string query, string exact, bool expected)
    {
        var match = Compile(new QueryParameterMatcher { Name = "q", StringMatch = new StringMatcher { Exact = exact } });
        Assert.Equal(expected, match.Matches(query));
    }
}

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

    [Fact]
    public void TryCompile_RejectsPresentFalse()
    {
        Assert.False(QueryParameterMatch.TryCompile(new QueryParameterMatcher { Name = "q", PresentMatch = false }, out _, out var error));
        Assert.Contains("present_match is false", error);
    }
}

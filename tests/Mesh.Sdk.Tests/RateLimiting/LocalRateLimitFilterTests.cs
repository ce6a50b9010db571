using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Http.LocalRatelimit.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Type.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.RateLimiting;
using Mesh.Sdk.Routing;
using Mesh.Xds;
using Microsoft.Extensions.Time.Testing;
using EnvoyTokenBucket = Envoy.Type.V3.TokenBucket;

namespace Mesh.Sdk.Tests.RateLimiting;

public class LocalRateLimitFilterTests
{
    private readonly FakeTimeProvider _time = new();

    /// <summary>The LocalRateLimit of Istio's local rate limit task: 4 per minute, enabled and enforced for all, one header.</summary>
    internal static LocalRateLimit TaskConfig(uint max = 4, uint? perFill = 4, double seconds = 60) => new()
    {
        StatPrefix = "http_local_rate_limiter",
        TokenBucket = new EnvoyTokenBucket { MaxTokens = max, TokensPerFill = perFill, FillInterval = Duration.FromTimeSpan(TimeSpan.FromSeconds(seconds)) },
        FilterEnabled = Percent(100),
        FilterEnforced = Percent(100),
        ResponseHeadersToAdd = { new HeaderValueOption { Append = false, Header = new HeaderValue { Key = "x-local-rate-limit", Value = "true" } } },
    };

    private static RuntimeFractionalPercent Percent(uint numerator) => new()
    {
        RuntimeKey = "key",
        DefaultValue = new FractionalPercent { Numerator = numerator, Denominator = FractionalPercent.Types.DenominatorType.Hundred },
    };

    private static HttpFilter Filter(LocalRateLimit config) => new() { Name = HttpFilterNames.LocalRateLimit, TypedConfig = Any.Pack(config) };

    private static RouteConfiguration Routes(LocalRateLimit? perRoute = null, Any? rawPerRoute = null)
    {
        var route = new Route { Name = "default", Match = new RouteMatch { Prefix = "/" }, NonForwardingAction = new NonForwardingAction() };
        if (perRoute is not null || rawPerRoute is not null)
        {
            route.TypedPerFilterConfig[HttpFilterNames.LocalRateLimit] = rawPerRoute ?? Any.Pack(perRoute);
        }

        return new RouteConfiguration { Name = "inbound", VirtualHosts = { new VirtualHost { Name = "inbound|http|9080", Domains = { "*" }, Routes = { route } } } };
    }

    private LocalRateLimitFilter Compile(LocalRateLimit config, RouteConfiguration? routes = null, Random? random = null, LocalRateLimitFilter? previous = null)
    {
        Assert.True(LocalRateLimitFilter.TryCompile(Filter(config), routes ?? Routes(), _time, random, previous, out var filter, out var errors), string.Join("; ", errors));
        return filter;
    }

    private static Dictionary<string, string> Headers(HeaderMutations mutations)
    {
        var target = new DictionaryTarget();
        mutations.ApplyTo(target);
        return target.Values;
    }

    [Fact]
    public void Burst_Passes_NextGets429WithTheConfiguredHeader_RefillsOnTime()
    {
        var filter = Compile(TaskConfig());

        Assert.All(Enumerable.Range(0, 4), _ => Assert.Same(RateLimitDecision.Allowed, filter.Check(0, 0)));
        var limited = filter.Check(0, 0);

        Assert.True(limited.IsLimited);
        Assert.Equal((429, 14, "local_rate_limited"), (limited.StatusCode, limited.GrpcStatusCode, limited.Body));
        Assert.Equal(new Dictionary<string, string> { ["x-local-rate-limit"] = "true" }, Headers(limited.ResponseHeaders));
        Assert.Equal(HeaderMutationKind.OverwriteOrAdd, Assert.Single(limited.ResponseHeaders.Operations).Kind);

        _time.Advance(TimeSpan.FromSeconds(59));
        Assert.True(filter.Check(0, 0).IsLimited);
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.All(Enumerable.Range(0, 4), _ => Assert.False(filter.Check(0, 0).IsLimited));
        Assert.True(filter.Check(0, 0).IsLimited);
    }

    [Fact]
    public void FilterEnabledUnset_ChecksNothing_AsEnvoysDefaultOfZeroPercent()
    {
        var config = TaskConfig(max: 1);
        config.FilterEnabled = null;
        var filter = Compile(config);

        Assert.All(Enumerable.Range(0, 10), _ => Assert.Same(RateLimitDecision.Allowed, filter.Check(0, 0)));
    }

    [Fact]
    public void FilterEnforcedUnset_OverLimitGoesOn_WithTheNotEnforcedRequestHeaders()
    {
        var config = TaskConfig(max: 1);
        config.FilterEnforced = null;
        config.RequestHeadersToAddWhenNotEnforced.Add(new HeaderValueOption { Header = new HeaderValue { Key = "x-local-ratelimited", Value = "true" } });
        var filter = Compile(config);

        Assert.Same(RateLimitDecision.Allowed, filter.Check(0, 0));
        var over = filter.Check(0, 0);

        Assert.Equal(RateLimitOutcome.LimitedNotEnforced, over.Outcome);
        Assert.False(over.IsLimited);
        Assert.Equal(new Dictionary<string, string> { ["x-local-ratelimited"] = "true" }, Headers(over.RequestHeaders));
    }

    [Fact]
    public void FilterEnabledFraction_ChecksThatShareOfRequests()
    {
        var config = TaskConfig(max: 1, seconds: 3600);
        config.FilterEnabled = Percent(50);
        var filter = Compile(config, random: new CyclingRandom());

        // Draws 0..99 in turn: the 50 below 50 are checked (one token, then limited), the others pass unchecked.
        var outcomes = Enumerable.Range(0, 100).Select(_ => filter.Check(0, 0).Outcome).ToArray();

        Assert.Equal(49, outcomes.Count(o => o == RateLimitOutcome.Limited));
        Assert.All(outcomes.Skip(50), o => Assert.Equal(RateLimitOutcome.Allowed, o));
    }

    [Fact]
    public void FilterEnforcedFraction_EnforcesThatShareOfOverLimitRequests()
    {
        var config = TaskConfig(max: 1, seconds: 3600);
        config.FilterEnforced = Percent(25);
        var filter = Compile(config, random: new CyclingRandom());
        Assert.False(filter.Check(0, 0).IsLimited);

        var outcomes = Enumerable.Range(0, 100).Select(_ => filter.Check(0, 0).Outcome).ToArray();

        Assert.Equal(25, outcomes.Count(o => o == RateLimitOutcome.Limited));
        Assert.Equal(75, outcomes.Count(o => o == RateLimitOutcome.LimitedNotEnforced));
    }

    [Theory]
    [InlineData(StatusCode.ServiceUnavailable, false, 503, 14)]
    [InlineData(StatusCode.Forbidden, false, 403, 7)]
    [InlineData(StatusCode.Ok, false, 429, 14)]
    [InlineData(StatusCode.Empty, true, 429, 8)]
    public void Status_IsTheConfiguredOne_From400Up(StatusCode code, bool resourceExhausted, int status, int grpc)
    {
        var config = TaskConfig(max: 1);
        config.Status = code == StatusCode.Empty ? null : new HttpStatus { Code = code };
        config.RateLimitedAsResourceExhausted = resourceExhausted;
        var filter = Compile(config);
        filter.Check(0, 0);

        var limited = filter.Check(0, 0);

        Assert.Equal((status, grpc), (limited.StatusCode, limited.GrpcStatusCode));
    }

    [Fact]
    public void PerRouteConfig_GovernsItsRoute_ListenerConfigWithoutBucketLimitsNothing()
    {
        // The task's second variant: the listener's filter has only stat_prefix, the route has the bucket.
        var filter = Compile(new LocalRateLimit { StatPrefix = "http_local_rate_limiter" }, Routes(TaskConfig()));

        Assert.Null(filter.Listener!.SharedBucket);
        Assert.All(Enumerable.Range(0, 4), _ => Assert.False(filter.Check(0, 0).IsLimited));
        Assert.True(filter.Check(0, 0).IsLimited);
        Assert.Same(RateLimitDecision.Allowed, filter.Check(-1, -1));
        Assert.Equal(4u, filter.PolicyFor(0, 0)!.Config.TokenBucket.MaxTokens);
    }

    [Fact]
    public void PerRouteFilterConfigDisabled_TurnsTheFilterOffForTheRoute()
    {
        var disabled = Any.Pack(new FilterConfig { Disabled = true });
        var filter = Compile(TaskConfig(max: 1), Routes(rawPerRoute: disabled));

        Assert.All(Enumerable.Range(0, 5), _ => Assert.Same(RateLimitDecision.Allowed, filter.Check(0, 0)));
        Assert.False(filter.Check(-1, -1).IsLimited);
        Assert.True(filter.Check(-1, -1).IsLimited);
    }

    [Fact]
    public void PerDownstreamConnection_EachConnectionHasItsOwnBucket()
    {
        var config = TaskConfig(max: 2);
        config.LocalRateLimitPerDownstreamConnection = true;
        var filter = Compile(config);
        object a = new(), b = new();

        Assert.Equal([false, false, true], Enumerable.Range(0, 3).Select(_ => filter.Check(0, 0, a).IsLimited));
        Assert.Equal([false, false, true], Enumerable.Range(0, 3).Select(_ => filter.Check(0, 0, b).IsLimited));
    }

    [Fact]
    public void Recompile_UnchangedConfigKeepsItsBucket_ChangedConfigStartsFull()
    {
        var first = Compile(TaskConfig(max: 2));
        first.Check(0, 0);
        first.Check(0, 0);

        var same = Compile(TaskConfig(max: 2), previous: first);
        Assert.True(same.Check(0, 0).IsLimited);

        var changed = Compile(TaskConfig(max: 3), previous: same);
        Assert.Equal([false, false, false, true], Enumerable.Range(0, 4).Select(_ => changed.Check(0, 0).IsLimited));
    }

    [Theory]
    [InlineData(true, 0.01, "token_bucket.fill_interval must be at least 50ms")]
    [InlineData(true, 0, "token_bucket.max_tokens must be greater than 0")]
    [InlineData(false, 60, "virtual host 'inbound|http|9080' route 'default': token_bucket is required in a per-route local rate limit configuration")]
    public void InvalidConfig_IsRejected_NamingWhere(bool listenerLevel, double seconds, string expected)
    {
        var bad = seconds == 0 ? TaskConfig(max: 0) : TaskConfig(seconds: seconds);
        var perRoute = new LocalRateLimit { StatPrefix = "r" };
        var filter = listenerLevel ? Filter(bad) : Filter(new LocalRateLimit { StatPrefix = "l" });

        Assert.False(LocalRateLimitFilter.TryCompile(filter, listenerLevel ? Routes() : Routes(perRoute), _time, null, null, out var compiled, out var errors));

        Assert.Null(compiled);
        Assert.Contains(expected, Assert.Single(errors), StringComparison.Ordinal);
    }

    private sealed class DictionaryTarget : IHeaderMutationTarget
    {
        public Dictionary<string, string> Values { get; } = [];

        public bool Contains(string name) => Values.ContainsKey(name);

        public void Remove(string name) => Values.Remove(name);

        public void Append(string name, string value) => Values[name] = Values.TryGetValue(name, out var old) ? old + "," + value : value;
    }

    /// <summary>Draws 0, 1, 2, … in turn (modulo the bound), so fractions select an exact share.</summary>
    private sealed class CyclingRandom : Random
    {
        private long _next;

        public override long NextInt64(long maxValue) => _next++ % maxValue;
    }
}

using System.Net;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Common.Ratelimit.V3;
using Envoy.Extensions.Filters.Http.LocalRatelimit.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.RateLimiting;
using Mesh.Sdk.Routing;
using Mesh.Xds;
using Microsoft.Extensions.Time.Testing;
using EnvoyTokenBucket = Envoy.Type.V3.TokenBucket;

namespace Mesh.Sdk.Tests.RateLimiting;

/// <summary>Descriptors: route <c>rate_limits</c> actions produce a request's descriptors, matched descriptors have their own buckets.</summary>
public class LocalRateLimitDescriptorTests
{
    private readonly FakeTimeProvider _time = new();

    private static EnvoyTokenBucket Bucket(uint max, double seconds) => new() { MaxTokens = max, TokensPerFill = max, FillInterval = Duration.FromTimeSpan(TimeSpan.FromSeconds(seconds)) };

    private static LocalRateLimit WithDescriptor(uint defaultMax, uint descriptorMax, double descriptorSeconds = 60, string value = "/productpage")
    {
        var config = LocalRateLimitFilterTests.TaskConfig(max: defaultMax, perFill: defaultMax);
        config.Descriptors.Add(new LocalRateLimitDescriptor
        {
            Entries = { new RateLimitDescriptor.Types.Entry { Key = "path", Value = value } },
            TokenBucket = Bucket(descriptorMax, descriptorSeconds),
        });
        return config;
    }

    /// <summary>The inbound route configuration with the path action on the virtual host, as the control plane writes a route rate_limits patch.</summary>
    private static RouteConfiguration Routes(bool skipIfAbsent = false, string header = ":path")
    {
        var vhost = new VirtualHost
        {
            Name = "inbound|http|9080",
            Domains = { "*" },
            Routes = { new Route { Name = "default", Match = new RouteMatch { Prefix = "/" }, NonForwardingAction = new NonForwardingAction() } },
        };
        vhost.RateLimits.Add(new RateLimit
        {
            Actions = { new RateLimit.Types.Action { RequestHeaders = new RateLimit.Types.Action.Types.RequestHeaders { HeaderName = header, DescriptorKey = "path", SkipIfAbsent = skipIfAbsent } } },
        });
        return new RouteConfiguration { Name = "inbound", VirtualHosts = { vhost } };
    }

    private LocalRateLimitFilter Compile(LocalRateLimit config, RouteConfiguration routes)
    {
        var filter = new HttpFilter { Name = HttpFilterNames.LocalRateLimit, TypedConfig = Any.Pack(config) };
        Assert.True(LocalRateLimitFilter.TryCompile(filter, routes, _time, null, null, out var compiled, out var errors), string.Join("; ", errors));
        return compiled;
    }

    private static HttpRequestRouteRequest Get(string path, string? user = null)
    {
        var message = new HttpRequestMessage(HttpMethod.Get, "http://productpage:9080" + path);
        if (user is not null)
        {
            message.Headers.Add("x-user", user);
        }

        return new HttpRequestRouteRequest(message, IPAddress.Loopback);
    }

    [Fact]
    public void MatchedDescriptor_HasItsOwnBucket_OthersUseTheDefault()
    {
        var filter = Compile(WithDescriptor(defaultMax: 100, descriptorMax: 1), Routes());

        Assert.False(filter.Check(0, 0, Get("/productpage")).IsLimited);
        var limited = filter.Check(0, 0, Get("/productpage"));
        Assert.True(limited.IsLimited);
        Assert.Equal(429, limited.StatusCode);
        Assert.All(Enumerable.Range(0, 10), _ => Assert.False(filter.Check(0, 0, Get("/reviews/0")).IsLimited));

        _time.Advance(TimeSpan.FromSeconds(60));
        Assert.False(filter.Check(0, 0, Get("/productpage")).IsLimited);
    }

    [Fact]
    public void MatchedDescriptor_AlsoConsumesTheDefaultBucket_UnlessToldNotTo()
    {
        var consuming = Compile(WithDescriptor(defaultMax: 1, descriptorMax: 5), Routes());
        Assert.False(consuming.Check(0, 0, Get("/productpage")).IsLimited);
        Assert.True(consuming.Check(0, 0, Get("/productpage")).IsLimited);

        var config = WithDescriptor(defaultMax: 1, descriptorMax: 5);
        config.AlwaysConsumeDefaultTokenBucket = false;
        var separate = Compile(config, Routes());
        Assert.Equal([false, false, false, false, false, true], Enumerable.Range(0, 6).Select(_ => separate.Check(0, 0, Get("/productpage")).IsLimited));
        Assert.False(separate.Check(0, 0, Get("/other")).IsLimited);
        Assert.True(separate.Check(0, 0, Get("/other")).IsLimited);
    }

    [Fact]
    public void AbsentHeader_ProducesNoDescriptor_TheDefaultBucketApplies()
    {
        var filter = Compile(WithDescriptor(defaultMax: 3, descriptorMax: 1, value: "alice"), Routes(header: "x-user"));

        Assert.False(filter.Check(0, 0, Get("/", "alice")).IsLimited);
        Assert.True(filter.Check(0, 0, Get("/", "alice")).IsLimited);
        Assert.Equal([false, false, true], Enumerable.Range(0, 3).Select(_ => filter.Check(0, 0, Get("/")).IsLimited));
    }

    [Theory]
    [InlineData(true, new[] { false, true, true })]
    [InlineData(false, new[] { false, false, false })]
    public void SkipIfAbsent_LeavesTheActionOut_TheRestOfTheDescriptorStays(bool skipIfAbsent, bool[] limited)
    {
        var config = LocalRateLimitFilterTests.TaskConfig(max: 100, perFill: 100);
        config.Descriptors.Add(new LocalRateLimitDescriptor
        {
            Entries = { new RateLimitDescriptor.Types.Entry { Key = "generic_key", Value = "productpage" } },
            TokenBucket = Bucket(1, 60),
        });
        var routes = Routes(header: "x-user", skipIfAbsent: skipIfAbsent);
        routes.VirtualHosts[0].RateLimits[0].Actions.Insert(0, new RateLimit.Types.Action { GenericKey = new RateLimit.Types.Action.Types.GenericKey { DescriptorValue = "productpage" } });
        var filter = Compile(config, routes);

        // Without x-user: with skip_if_absent the descriptor is (generic_key=productpage) and meets its bucket of 1;
        // without it no descriptor is produced and the default bucket of 100 applies.
        Assert.Equal(limited, Enumerable.Range(0, 3).Select(_ => filter.Check(0, 0, Get("/")).IsLimited));
        // With x-user the descriptor (generic_key=productpage, path=alice) matches no configured descriptor.
        Assert.False(filter.Check(0, 0, Get("/", "alice")).IsLimited);
    }

    [Theory]
    [InlineData(90, "must be a multiple of token_bucket.fill_interval (60000ms)")]
    [InlineData(0, "needs max_tokens and tokens_per_fill above 0 and a fill_interval")]
    public void InvalidDescriptor_IsRejected(double seconds, string expected)
    {
        var config = seconds == 0 ? WithDescriptor(100, 0) : WithDescriptor(100, 1, seconds);
        var filter = new HttpFilter { Name = HttpFilterNames.LocalRateLimit, TypedConfig = Any.Pack(config) };

        Assert.False(LocalRateLimitFilter.TryCompile(filter, Routes(), _time, null, null, out _, out var errors));

        Assert.Contains(expected, Assert.Single(errors), StringComparison.Ordinal);
    }
}

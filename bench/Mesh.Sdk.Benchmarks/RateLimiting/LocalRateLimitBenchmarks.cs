using System.Net;
using BenchmarkDotNet.Attributes;
using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Common.Ratelimit.V3;
using Envoy.Extensions.Filters.Http.LocalRatelimit.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Type.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.RateLimiting;
using Mesh.Sdk.Routing;
using Mesh.Xds;
using EnvoyTokenBucket = Envoy.Type.V3.TokenBucket;

namespace Mesh.Sdk.Benchmarks.RateLimiting;

/// <summary>
/// One local rate limit decision per request: a bucket that never runs dry (the common, allowed case), an empty one
/// (refused), per-connection buckets, and a request whose <c>:path</c> is a descriptor.
/// </summary>
[MemoryDiagnoser]
public class LocalRateLimitBenchmarks
{
    private LocalRateLimitFilter _allowed = null!;
    private LocalRateLimitFilter _refused = null!;
    private LocalRateLimitFilter _perConnection = null!;
    private LocalRateLimitFilter _descriptors = null!;
    private HttpRequestMessage _message = null!;
    private readonly object _connection = new();

    [GlobalSetup]
    public void Setup()
    {
        _allowed = Compile(Config(uint.MaxValue), Routes());
        _refused = Compile(Config(1), Routes());
        _refused.Check(0, 0);
        var perConnection = Config(uint.MaxValue);
        perConnection.LocalRateLimitPerDownstreamConnection = true;
        _perConnection = Compile(perConnection, Routes());
        var descriptors = Config(uint.MaxValue);
        descriptors.Descriptors.Add(new LocalRateLimitDescriptor
        {
            Entries = { new RateLimitDescriptor.Types.Entry { Key = "path", Value = "/productpage" } },
            TokenBucket = new EnvoyTokenBucket { MaxTokens = uint.MaxValue, FillInterval = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)) },
        });
        var routes = Routes();
        routes.VirtualHosts[0].RateLimits.Add(new RateLimit
        {
            Actions = { new RateLimit.Types.Action { RequestHeaders = new RateLimit.Types.Action.Types.RequestHeaders { HeaderName = ":path", DescriptorKey = "path" } } },
        });
        _descriptors = Compile(descriptors, routes);
        _message = new HttpRequestMessage(HttpMethod.Get, "http://productpage:9080/productpage");
    }

    [Benchmark(Baseline = true)]
    public bool Allowed() => _allowed.Check(0, 0).IsLimited;

    [Benchmark]
    public bool Refused() => _refused.Check(0, 0).IsLimited;

    [Benchmark]
    public bool PerConnection() => _perConnection.Check(0, 0, _connection).IsLimited;

    [Benchmark]
    public bool Descriptor() => _descriptors.Check(0, 0, new HttpRequestRouteRequest(_message, IPAddress.Loopback)).IsLimited;

    private static LocalRateLimit Config(uint max) => new()
    {
        StatPrefix = "bench",
        TokenBucket = new EnvoyTokenBucket { MaxTokens = max, TokensPerFill = 1, FillInterval = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)) },
        FilterEnabled = new RuntimeFractionalPercent { DefaultValue = new FractionalPercent { Numerator = 100 } },
        FilterEnforced = new RuntimeFractionalPercent { DefaultValue = new FractionalPercent { Numerator = 100 } },
        ResponseHeadersToAdd = { new HeaderValueOption { Header = new HeaderValue { Key = "x-local-rate-limit", Value = "true" } } },
    };

    private static RouteConfiguration Routes() => new()
    {
        Name = "inbound",
        VirtualHosts = { new VirtualHost { Name = "inbound|http|9080", Domains = { "*" }, Routes = { new Route { Name = "default", Match = new RouteMatch { Prefix = "/" }, NonForwardingAction = new NonForwardingAction() } } } },
    };

    private static LocalRateLimitFilter Compile(LocalRateLimit config, RouteConfiguration routes)
    {
        var filter = new HttpFilter { Name = HttpFilterNames.LocalRateLimit, TypedConfig = Any.Pack(config) };
        return LocalRateLimitFilter.TryCompile(filter, routes, TimeProvider.System, null, null, out var compiled, out var errors)
            ? compiled
            : throw new InvalidOperationException(string.Join("; ", errors));
    }
}

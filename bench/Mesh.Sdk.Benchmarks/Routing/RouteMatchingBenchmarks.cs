using System.Diagnostics.CodeAnalysis;
using System.Net;
using BenchmarkDotNet.Attributes;
using Envoy.Config.Route.V3;
using Envoy.Type.Matcher.V3;
using Mesh.Sdk.Routing;

namespace Mesh.Sdk.Benchmarks.Routing;

/// <summary>
/// Route matching over a 100-route table (40 prefix, 30 exact path, 15 regex, 15 header-matcher routes, in a
/// shuffled but fixed order): a hit on the first, middle and last route, a miss, a weighted-cluster pick, and
/// the same middle match through the HttpRequestMessage adapter.
/// </summary>
[MemoryDiagnoser]
public class RouteMatchingBenchmarks
{
    private CompiledRouteTable _table = null!;
    private BenchRequest _first;
    private BenchRequest _middle;
    private BenchRequest _last;
    private BenchRequest _miss;
    private BenchRequest _weighted;
    private HttpRequestMessage _message = null!;
    private HashPolicy[] _hashPolicies = null!;

    [GlobalSetup]
    public void Setup()
    {
        var host = new VirtualHost { Name = "reviews" };
        host.Domains.Add("reviews:9080");
        host.Domains.Add("reviews.default.svc.cluster.local:9080");
        for (var i = 0; i < 99; i++)
        {
            host.Routes.Add(MakeRoute(i));
        }

        var weighted = new Route { Name = "weighted", Match = new RouteMatch { Prefix = "/weighted" }, Route_ = new RouteAction { WeightedClusters = new WeightedCluster() } };
        weighted.Route_.WeightedClusters.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = "v1", Weight = 50 });
        weighted.Route_.WeightedClusters.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = "v2", Weight = 30 });
        weighted.Route_.WeightedClusters.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = "v3", Weight = 20 });
        host.Routes.Add(weighted);

        var config = new RouteConfiguration { Name = "bench" };
        config.VirtualHosts.Add(new VirtualHost { Name = "other", Domains = { "ratings:9080", "*.example.com" }, Routes = { new Route { Match = new RouteMatch { Prefix = "/" }, Route_ = new RouteAction { Cluster = "ratings" } } } });
        config.VirtualHosts.Add(host);
        // Unseeded Random is the same fast generator as Random.Shared, without its thread-safety wrapper.
        _table = RouteTableCompiler.Compile(config, null, new Random());

        _first = new BenchRequest("reviews:9080", "/api/p0/items?page=2", ("end-user", "jason"));
        _middle = new BenchRequest("reviews:9080", RequestPathFor(49), ("end-user", "jason"), ("x-version", "49"));
        _last = new BenchRequest("reviews:9080", "/weighted/x", ("end-user", "jason"));
        _miss = new BenchRequest("reviews:9080", "/nothing/here", ("end-user", "jason"));
        _weighted = _last;
        Check(_first, "c0");
        Check(_middle, "c49");
        Check(_miss, null);

        _hashPolicies = [new HashPolicy { Kind = HashPolicyKind.Header, Name = "x-user" }, new HashPolicy { Kind = HashPolicyKind.Header, Name = "end-user" }];

        _message = new HttpRequestMessage(HttpMethod.Get, "http://reviews:9080" + RequestPathFor(49));
        _message.Headers.Add("end-user", "jason");
        _message.Headers.Add("x-version", "49");
        if (_table.Match(new HttpRequestRouteRequest(_message)).Cluster != "c49")
        {
            throw new InvalidOperationException("The adapter benchmark request does not reach the middle route.");
        }
    }

    private void Check(BenchRequest request, string? cluster)
    {
        var result = _table.Match(in request);
        if ((result.IsMatch ? result.Cluster : null) != cluster)
        {
            throw new InvalidOperationException($"Benchmark request '{request.PathAndQuery}' routed to '{result.Cluster}', expected '{cluster}'.");
        }
    }

    private static string RequestPathFor(int i) => (i % 4) switch
    {
        0 => $"/api/p{i}/items",
        1 => $"/exact/{i}",
        2 => $"/re/{i}/v12/users",
        _ => $"/hdr/{i}",
    };

    private static Route MakeRoute(int i)
    {
        var route = new Route { Name = "r" + i, Route_ = new RouteAction { Cluster = "c" + i } };
        switch (i % 4)
        {
            case 0:
                route.Match = new RouteMatch { Prefix = $"/api/p{i}/" };
                break;
            case 1:
                route.Match = new RouteMatch { Path = $"/exact/{i}" };
                break;
            case 2 when i % 8 == 2:
                route.Match = new RouteMatch { SafeRegex = new RegexMatcher { Regex = $"/re/{i}/v[0-9]+/users" } };
                break;
            case 2:
                route.Match = new RouteMatch { Prefix = $"/re/{i}/" };
                break;
            default:
                route.Match = new RouteMatch { Prefix = $"/hdr/{i}" };
                route.Match.Headers.Add(new HeaderMatcher { Name = "end-user", StringMatch = new StringMatcher { Exact = "jason" } });
                route.Match.Headers.Add(new HeaderMatcher { Name = "x-version", StringMatch = new StringMatcher { SafeRegex = new RegexMatcher { Regex = "[0-9]+" } } });
                break;
        }

        return route;
    }

    /// <summary>Hit on the first route.</summary>
    [Benchmark(Baseline = true)]
    public string? MatchFirst() => _table.Match(in _first).Cluster;

    /// <summary>Hit on route 50 of 100 (a header-matcher route).</summary>
    [Benchmark]
    public string? MatchMiddle() => _table.Match(in _middle).Cluster;

    /// <summary>Hit on the last route (weighted clusters: includes the weighted pick).</summary>
    [Benchmark]
    public string? MatchLastWeighted() => _table.Match(in _last).Cluster;

    /// <summary>Every route tried, none matches.</summary>
    [Benchmark]
    public bool MatchMiss() => _table.Match(in _miss).IsMatch;

    /// <summary>The weighted pick alone on an already matched route.</summary>
    [Benchmark]
    public string WeightedPick() => _table.VirtualHosts[1].Routes[99].PickTarget(in _weighted, _table.Random).Cluster;

    /// <summary>Request hash over two header hash policies (one absent, one present).</summary>
    [Benchmark]
    public ulong HeaderHash() => HashPolicy.TryComputeHash(_hashPolicies, in _first, out var hash) ? hash : 0;

    /// <summary>Route 50 through the HttpRequestMessage adapter (reads authority and path from the Uri).</summary>
    [Benchmark]
    public string? MatchMiddleHttpRequestMessage() => _table.Match(new HttpRequestRouteRequest(_message)).Cluster;

    private readonly struct BenchRequest : IRouteRequest
    {
        private readonly (string Name, string Value)[] _headers;

        public BenchRequest(string authority, string pathAndQuery, params (string Name, string Value)[] headers)
        {
            Authority = authority;
            PathAndQuery = pathAndQuery;
            _headers = headers;
        }

        public string Authority { get; }

        public string PathAndQuery { get; }

        public string Method => "GET";

        public string Scheme => "http";

        public IPAddress? SourceAddress => null;

        public bool TryGetHeader(string name, [NotNullWhen(true)] out string? value)
        {
            foreach (var (headerName, headerValue) in _headers)
            {
                if (string.Equals(headerName, name, StringComparison.OrdinalIgnoreCase))
                {
                    value = headerValue;
                    return true;
                }
            }

            value = null;
            return false;
        }
    }
}

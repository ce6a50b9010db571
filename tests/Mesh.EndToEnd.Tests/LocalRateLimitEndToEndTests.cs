using System.Diagnostics;
using System.Net;
using Mesh.EndToEnd.Tests.Infrastructure;

namespace Mesh.EndToEnd.Tests;

/// <summary>
/// Istio's local rate limit EnvoyFilter against real processes: the standalone control plane and a server app with only
/// <c>builder.AddMesh()</c>, called in plaintext (no PeerAuthentication: PERMISSIVE) by a client outside the mesh.
/// </summary>
public sealed class LocalRateLimitEndToEndTests : IAsyncLifetime
{
    // The task's first EnvoyFilter with a smaller bucket: 3 requests, 3 more every 4 s.
    private const string RateLimit = """
        apiVersion: networking.istio.io/v1alpha3
        kind: EnvoyFilter
        metadata:
          name: filter-local-ratelimit-web
          namespace: istio-system
        spec:
          workloadSelector:
            labels:
              app: web
          configPatches:
            - applyTo: HTTP_FILTER
              match:
                context: SIDECAR_INBOUND
                listener:
                  filterChain:
                    filter:
                      name: "envoy.filters.network.http_connection_manager"
              patch:
                operation: INSERT_BEFORE
                value:
                  name: envoy.filters.http.local_ratelimit
                  typed_config:
                    "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                    type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                    value:
                      stat_prefix: http_local_rate_limiter
                      token_bucket:
                        max_tokens: 3
                        tokens_per_fill: 3
                        fill_interval: 4s
                      filter_enabled:
                        runtime_key: local_rate_limit_enabled
                        default_value:
                          numerator: 100
                          denominator: HUNDRED
                      filter_enforced:
                        runtime_key: local_rate_limit_enforced
                        default_value:
                          numerator: 100
                          denominator: HUNDRED
                      response_headers_to_add:
                        - append: false
                          header:
                            key: x-local-rate-limit
                            value: 'true'
        """;

    private readonly ProcessGroup _processes = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(20) };
    private int _serverPort;

    public async Task InitializeAsync()
    {
        await _processes.StartControlPlaneAsync();
        var server = _processes.StartApp("web", Paths.TestServer, new Dictionary<string, string>
        {
            ["Mesh__ServiceName"] = "web",
            ["Mesh__ServicePort"] = "8080",
            ["Mesh__ServiceAccount"] = "web",
            ["Mesh__Labels__app"] = "web",
            ["Mesh__Security__Enabled"] = "true",
        });
        _serverPort = await server.WaitForListeningPortAsync(ProcessGroup.StartTimeout);
    }

    [Fact]
    public async Task BurstPasses_NextGets429WithTheConfiguredHeader_BucketRefillsOnTime()
    {
        // Served without limit before the EnvoyFilter exists.
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal("200 web /hello HTTP/1.1", await GetAsync());
        }

        await _processes.WriteConfigAsync("ratelimit.yaml", RateLimit);

        // Wait until the limit is in force (a 429 appears), then wait for a fresh bucket: the next fill tick.
        var clock = Stopwatch.StartNew();
        while (!(await GetAsync()).StartsWith("429", StringComparison.Ordinal))
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), "the rate limit never reached the server\n" + _processes.Logs());
        }

        string first;
        var refillClock = Stopwatch.StartNew();
        while ((first = await GetAsync()).StartsWith("429", StringComparison.Ordinal))
        {
            Assert.True(refillClock.Elapsed < TimeSpan.FromSeconds(9), "the bucket did not refill within two 4 s fill intervals");
            await Task.Delay(20);
        }

        // A full bucket: 3 requests pass (the first above and two more), the 4th is limited, with the configured header.
        var refilledAt = Stopwatch.StartNew();
        Assert.Equal("200 web /hello HTTP/1.1", first);
        Assert.Equal("200 web /hello HTTP/1.1", await GetAsync());
        Assert.Equal("200 web /hello HTTP/1.1", await GetAsync());
        using (var limited = await _http.GetAsync($"http://127.0.0.1:{_serverPort}/hello"))
        {
            Assert.Equal(HttpStatusCode.TooManyRequests, limited.StatusCode);
            Assert.Equal("local_rate_limited", await limited.Content.ReadAsStringAsync());
            Assert.Equal(["true"], limited.Headers.GetValues("x-local-rate-limit"));
        }

        // Four requests within one 4 s interval: the 429 above is the bucket's, not a tick falling between them.
        Assert.True(refilledAt.Elapsed < TimeSpan.FromSeconds(3.5), $"the burst took {refilledAt.Elapsed}, too long to fall within one fill interval");

        // The next tick, 4 s after the one that refilled it, refills it again.
        await Task.Delay(TimeSpan.FromSeconds(4.3) - refilledAt.Elapsed);
        Assert.Equal("200 web /hello HTTP/1.1", await GetAsync());
    }

    private async Task<string> GetAsync()
    {
        using var response = await _http.GetAsync($"http://127.0.0.1:{_serverPort}/hello");
        return $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _processes.DisposeAsync();
    }
}

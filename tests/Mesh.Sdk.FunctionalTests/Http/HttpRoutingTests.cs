using System.Diagnostics;
using System.Net;
using System.Text;
using Mesh.Sdk.FunctionalTests.Infrastructure;
using Xunit.Abstractions;

namespace Mesh.Sdk.FunctionalTests.Http;

/// <summary>Routing features on HttpClient against real backends and the real control plane.</summary>
public sealed class HttpRoutingTests(ReviewsFixture fixture, ITestOutputHelper output) : IClassFixture<ReviewsFixture>
{
    private MeshHarness Mesh => fixture.Mesh;

    [Fact]
    public async Task WeightedSplit_SendsSharesWithinTolerance()
    {
        await Mesh.ApplyAsync("""
            - name: split
              route:
              - destination:
                  host: reviews.default.svc.cluster.local
                  subset: v1
                weight: 80
              - destination:
                  host: reviews.default.svc.cluster.local
                  subset: v2
                weight: 20
            """);
        Mesh.ResetBackends();
        const int Calls = 1000;
        var v2 = 0;
        for (var i = 0; i < Calls; i++)
        {
            var (response, reply) = await Mesh.GetAsync("/split");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            if (reply!.Version == "v2")
            {
                v2++;
            }
        }

        output.WriteLine($"v2 share {v2}/{Calls}; v1 workloads {Mesh.Backend("reviews-v1-a").Count}/{Mesh.Backend("reviews-v1-b").Count}");

        // Binomial(1000, 0.2): sd ≈ 12.6; ±50 is about 4 sd.
        Assert.InRange(v2, 150, 250);
        Assert.Equal(Calls, Mesh.Backends.Sum(b => b.Count));
        Assert.Equal(0, Mesh.Backend("reviews-v3-a").Count);
        // Round robin inside v1 spreads evenly over its two workloads.
        var v1a = Mesh.Backend("reviews-v1-a").Count;
        var v1b = Mesh.Backend("reviews-v1-b").Count;
        Assert.InRange(Math.Abs(v1a - v1b), 0, 2);
    }

    [Fact]
    public async Task HeaderPathMethodAndQueryRoutes_HitExactly()
    {
        await Mesh.ApplyAsync("""
            - name: by-header
              match:
              - headers:
                  x-user:
                    exact: jason
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v2}
              headers: {response: {set: {x-route: by-header}}}
            - name: by-exact-path
              match:
              - uri: {exact: /exact}
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v3}
              headers: {response: {set: {x-route: by-exact-path}}}
            - name: by-regex
              match:
              - uri: {regex: "/items/[0-9]+"}
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v3}
              headers: {response: {set: {x-route: by-regex}}}
            - name: by-prefix
              match:
              - uri: {prefix: /prefix/}
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v2}
              headers: {response: {set: {x-route: by-prefix}}}
            - name: by-method
              match:
              - method: {exact: POST}
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v2}
              headers: {response: {set: {x-route: by-method}}}
            - name: by-query
              match:
              - queryParams:
                  q: {exact: "yes"}
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v3}
              headers: {response: {set: {x-route: by-query}}}
            - name: fallback
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v1}
              headers: {response: {set: {x-route: fallback}}}
            """);

        var cases = new (HttpMethod Method, string Path, string? User, string Route, string Version)[]
        {
            (HttpMethod.Get, "/anything", "jason", "by-header", "v2"),
            (HttpMethod.Get, "/anything", "other", "fallback", "v1"),
            (HttpMethod.Get, "/exact", null, "by-exact-path", "v3"),
            (HttpMethod.Get, "/exact/more", null, "fallback", "v1"),
            (HttpMethod.Get, "/items/42", null, "by-regex", "v3"),
            (HttpMethod.Get, "/items/4x", null, "fallback", "v1"),
            (HttpMethod.Get, "/prefix/a/b", null, "by-prefix", "v2"),
            (HttpMethod.Get, "/prefix", null, "fallback", "v1"),
            (HttpMethod.Post, "/anything", null, "by-method", "v2"),
            (HttpMethod.Get, "/search?q=yes", null, "by-query", "v3"),
            (HttpMethod.Get, "/search?q=no", null, "fallback", "v1"),
        };
        foreach (var c in cases)
        {
            using var request = new HttpRequestMessage(c.Method, MeshHarness.BaseUrl + c.Path);
            if (c.User is not null)
            {
                request.Headers.Add("x-user", c.User);
            }

            var (response, reply) = await Mesh.SendAsync(request);
            var label = $"{c.Method} {c.Path} user={c.User}";
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{label}: {(int)response.StatusCode} {response.ReasonPhrase}");
            Assert.Equal((label, c.Route), (label, string.Join(",", response.Headers.GetValues("x-route"))));
            Assert.Equal((label, c.Version), (label, reply!.Version));
            Assert.Equal((label, c.Path), (label, reply.Path));
        }
    }

    [Fact]
    public async Task Redirect_AnswersWithLocationAndNeverReachesABackend()
    {
        await Mesh.ApplyAsync("""
            - name: moved
              match:
              - uri: {prefix: /old}
              redirect:
                uri: /new
                authority: ratings.default.svc.cluster.local
                redirectCode: 302
            - name: fallback
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v1}
            """);
        Mesh.ResetBackends();
        var (response, _) = await Mesh.GetAsync("/old");
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("http://ratings.default.svc.cluster.local/new", response.Headers.Location!.ToString());
        Assert.Equal(0, Mesh.Backends.Sum(b => b.Count));
    }

    [Fact]
    public async Task RewriteAndHeaderMutations_AreWhatTheBackendSees()
    {
        await Mesh.ApplyAsync("""
            - name: rewritten
              match:
              - uri: {prefix: /old/}
              rewrite:
                uri: /api/v2/
                authority: reviews-internal.example
              headers:
                request:
                  set: {x-set: set-value}
                  add: {x-added: added-value}
                  remove: [x-drop]
                response:
                  set: {x-response-set: yes}
                  remove: [x-backend-workload]
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v2}
            - name: fallback
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v1}
            """);
        var (response, reply) = await Mesh.GetAsync("/old/books?id=7", ("x-drop", "gone"), ("x-set", "client-value"), ("x-keep", "kept"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("/api/v2/books?id=7", reply!.Path);
        Assert.Equal("reviews-internal.example", reply.Host);
        Assert.Equal("set-value", reply.Headers["x-set"]);
        Assert.Equal("added-value", reply.Headers["x-added"]);
        Assert.Equal("kept", reply.Headers["x-keep"]);
        Assert.False(reply.Headers.ContainsKey("x-drop"));
        Assert.Equal("yes", string.Join(",", response.Headers.GetValues("x-response-set")));
        Assert.False(response.Headers.Contains("x-backend-workload"));
        Assert.True(response.Headers.Contains("x-backend-version"));

        // Without a rewrite the backend sees the Host the application wrote.
        var (_, plain) = await Mesh.GetAsync("/plain");
        Assert.Equal("reviews:9080", plain!.Host);
        Assert.Equal("/plain", plain.Path);
    }

    [Fact]
    public async Task Mirror_SendsTheFinalizedRequestToTheShadowWithoutAffectingResponses()
    {
        // Envoy's router copies the shadow's headers after finalizeRequestHeaders: the shadow sees the route's
        // header mutations, its rewritten path and rewritten authority (plus "-shadow"), as the main upstream does.
        await Mesh.ApplyAsync("""
            - name: mirrored
              match:
              - uri: {prefix: /mirror/}
              rewrite:
                uri: /shadowed/
              headers:
                request:
                  set: {x-route-added: mirrored}
                  remove: [x-drop]
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v2}
              mirror: {host: reviews.default.svc.cluster.local, subset: v3}
              mirrorPercentage: {value: 100}
            - name: mirrored-authority
              match:
              - uri: {prefix: /mirror-authority/}
              rewrite:
                authority: reviews-internal.example
              route:
              - destination: {host: reviews.default.svc.cluster.local, subset: v2}
              mirror: {host: reviews.default.svc.cluster.local, subset: v3}
              mirrorPercentage: {value: 100}
            """);
        Mesh.ResetBackends();
        var shadow = Mesh.Backend("reviews-v3-a");
        shadow.AlwaysAnswer(500);
        const int Calls = 20;
        for (var i = 0; i < Calls; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, MeshHarness.BaseUrl + "/mirror/" + i + "?q=" + i)
            {
                Content = new StringContent("body-" + i, Encoding.UTF8, "text/plain"),
            };
            request.Headers.Add("x-drop", "client");
            var (response, reply) = await Mesh.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("v2", reply!.Version);
            Assert.Equal("/shadowed/" + i + "?q=" + i, reply.Path);
        }

        var (authorityResponse, authorityReply) = await Mesh.GetAsync("/mirror-authority/x");
        Assert.Equal(HttpStatusCode.OK, authorityResponse.StatusCode);
        Assert.Equal("reviews-internal.example", authorityReply!.Host);

        var deadline = Stopwatch.StartNew();
        while (shadow.Count < Calls + 1 && deadline.Elapsed < TimeSpan.FromSeconds(5))
        {
            await Task.Delay(20);
        }

        Assert.Equal(Calls + 1, Mesh.Backend("reviews-v2-a").Count);
        Assert.Equal(Calls + 1, shadow.Count);
        var seen = shadow.Seen;
        var mirrored = seen.Where(s => s.PathAndQuery.StartsWith("/shadowed/", StringComparison.Ordinal)).ToList();
        Assert.Equal(Calls, mirrored.Count);
        Assert.All(mirrored, s =>
        {
            Assert.Equal("reviews-shadow:9080", s.Host);
            Assert.Equal("mirrored", s.Headers["x-route-added"]);
            Assert.False(s.Headers.ContainsKey("x-drop"));
        });
        Assert.Equal(
            Enumerable.Range(0, Calls).Select(i => ("/shadowed/" + i + "?q=" + i, "body-" + i)).Order(),
            mirrored.Select(s => (s.PathAndQuery, s.Body)).Order());
        var rewritten = Assert.Single(seen, s => s.PathAndQuery == "/mirror-authority/x");
        Assert.Equal("reviews-internal.example-shadow", rewritten.Host);
        Assert.Equal("GET", rewritten.Method);
        shadow.AlwaysAnswer(0);
    }

    [Fact]
    public async Task HostOutsideTheMesh_PassesThroughUntouched()
    {
        await using var external = await Backend.StartAsync("external", "external-1", "none", CancellationToken.None);
        var url = $"http://localhost:{external.Port}/outside?x=1";
        var (response, reply) = await Mesh.SendAsync(new HttpRequestMessage(HttpMethod.Get, url));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("external-1", reply!.Workload);
        Assert.Equal($"localhost:{external.Port}", reply.Host);
        Assert.Equal(1, external.Count);
        Assert.Equal(url, response.RequestMessage!.RequestUri!.ToString());
        Assert.Null(await Mesh.Runtime.ResolveListenerAsync("localhost", external.Port, CancellationToken.None));
    }
}

using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Mesh.Sdk.AspNetCore.Tests.Infrastructure;
using Mesh.Sdk.Propagation;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Mesh.Sdk.AspNetCore.Tests;

/// <summary>
/// Two meshed apps on ephemeral ports, registered by port discovery: <c>frontend</c> calls <c>backend</c> (v1 and v2
/// workloads) through the mesh while handling a request; <c>backend</c> echoes the headers it received.
/// </summary>
public sealed class PropagationFixture : IAsyncLifetime
{
    public const string Fqdn = "backend.default.svc.cluster.local";

    public ControlPlaneFixture Mesh { get; } = new();

    internal MeshWebApp BackendV1 { get; private set; } = null!;

    internal MeshWebApp BackendV2 { get; private set; } = null!;

    internal MeshWebApp Frontend { get; private set; } = null!;

    /// <summary>A plain client (not meshed) for calling the frontend directly.</summary>
    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(30) };

    public async Task InitializeAsync()
    {
        await Mesh.InitializeAsync();
        BackendV1 = await StartBackendAsync("v1");
        BackendV2 = await StartBackendAsync("v2");
        Frontend = await MeshWebApp.StartAsync(
            Mesh,
            new Dictionary<string, string?> { ["Mesh:ServiceName"] = "frontend", ["Mesh:ServicePort"] = "9080" },
            MapFrontend,
            builder => builder.Services.AddHttpClient("backend", c => c.Timeout = TimeSpan.FromSeconds(20)));
        Http.BaseAddress = Frontend.BaseAddress;

        // Both backend workloads are registered and the frontend routes to them.
        using var frontendHttp = Frontend.Services.GetRequiredService<IHttpClientFactory>().CreateClient("backend");
        var versions = new HashSet<string>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (versions.Count < 2 && DateTime.UtcNow < deadline)
        {
            try
            {
                var echo = await frontendHttp.GetFromJsonAsync<Echo>("http://backend:9080/echo", JsonSerializerOptions.Web);
                versions.Add(echo!.Version);
            }
            catch (HttpRequestException)
            {
                await Task.Delay(50);
            }
        }

        Assert.True(versions.Count == 2, $"backend versions reached: {string.Join(",", versions)}\n{Mesh.Dump()}");
    }

    private Task<MeshWebApp> StartBackendAsync(string version) => MeshWebApp.StartAsync(
        Mesh,
        new Dictionary<string, string?>
        {
            ["Mesh:ServiceName"] = "backend",
            ["Mesh:ServicePort"] = "9080",
            ["Mesh:Labels:app"] = "backend",
            ["Mesh:Labels:version"] = version,
        },
        app => app.MapGet("/echo", (HttpContext context) => Results.Json(new Echo(
            version,
            context.Request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => h.Value.ToString())))));

    private static void MapFrontend(WebApplication app)
    {
        // Calls the backend twice (the second time after ?delay= ms, so concurrent requests interleave) and answers
        // with the x-request-id the frontend itself saw and what the backend saw each time.
        app.MapGet("/call", async (HttpContext context, IHttpClientFactory factory, int? delay) =>
        {
            var http = factory.CreateClient("backend");
            var first = await http.GetFromJsonAsync<Echo>("http://backend:9080/echo", JsonSerializerOptions.Web, context.RequestAborted);
            await Task.Delay(delay ?? 0, context.RequestAborted);
            var second = await http.GetFromJsonAsync<Echo>("http://backend:9080/echo", JsonSerializerOptions.Web, context.RequestAborted);
            return Results.Json(new CallReply(context.Request.Headers["x-request-id"].ToString(), first!, second!));
        });

        // The calling code sets end-user itself: its value wins over the propagated one.
        app.MapGet("/call-explicit", async (HttpContext context, IHttpClientFactory factory) =>
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "http://backend:9080/echo");
            request.Headers.Add("end-user", "set-by-code");
            using var response = await factory.CreateClient("backend").SendAsync(request, context.RequestAborted);
            var echo = await response.Content.ReadFromJsonAsync<Echo>(JsonSerializerOptions.Web, context.RequestAborted);
            return Results.Json(new CallReply(context.Request.Headers["x-request-id"].ToString(), echo!, echo!));
        });
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        foreach (var app in new[] { Frontend, BackendV1, BackendV2 })
        {
            if (app is not null)
            {
                await app.DisposeAsync();
            }
        }

        await Mesh.DisposeAsync();
    }
}

public sealed record Echo(string Version, Dictionary<string, string> Headers)
{
    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;
}

public sealed record CallReply(string IncomingRequestId, Echo First, Echo Second);

public sealed class PropagationTests(PropagationFixture fixture) : IClassFixture<PropagationFixture>
{
    private static readonly string[] TraceHeaders =
    [
        "traceparent", "tracestate", "b3", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled", "x-b3-flags",
        "x-ot-span-context", "x-cloud-trace-context", "end-user", "user-agent", "x-request-id",
    ];

    private async Task<CallReply> CallAsync(string path, params (string Name, string Value)[] headers)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        foreach (var (name, value) in headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        using var response = await fixture.Http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode} {body}\n{fixture.Mesh.Dump()}");
        return JsonSerializer.Deserialize<CallReply>(body, JsonSerializerOptions.Web)!;
    }

    [Fact]
    public async Task IncomingTraceAndRequestHeaders_ReachTheBackend_OnEveryCall()
    {
        var sent = new (string Name, string Value)[]
        {
            ("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            ("tracestate", "congo=t61rcWkgMzE"),
            ("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1"),
            ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
            ("x-b3-spanid", "e457b5a2e4d86bd1"),
            ("x-b3-parentspanid", "05e3ac9a4f6e3b90"),
            ("x-b3-sampled", "1"),
            ("x-b3-flags", "0"),
            ("x-ot-span-context", "ot-1"),
            ("x-cloud-trace-context", "105445aa7843bc8bf206b12000100000/1;o=1"),
            ("end-user", "alice"),
            ("user-agent", "propagation-test/1.0"),
            ("x-request-id", "6c1f3e0e-2b7e-4d0c-9a3a-3f1b1e0c2d11"),
            ("x-not-propagated", "stays-here"),
        };

        var reply = await CallAsync("/call", sent);

        foreach (var echo in new[] { reply.First, reply.Second })
        {
            foreach (var (name, value) in sent)
            {
                if (name == "traceparent")
                {
                    // The frontend's request activity (child of the incoming context) is the parent now: same trace.
                    Assert.StartsWith("00-0af7651916cd43dd8448eb211c80319c-", echo.Header(name), StringComparison.Ordinal);
                    Assert.NotEqual(value, echo.Header(name));
                }
                else
                {
                    Assert.Equal(name == "x-not-propagated" ? null : value, echo.Header(name));
                }
            }
        }

        Assert.Equal("6c1f3e0e-2b7e-4d0c-9a3a-3f1b1e0c2d11", reply.IncomingRequestId);
    }

    [Fact]
    public async Task RequestWithoutRequestId_GetsAGeneratedOne_ThatTheBackendSees()
    {
        var one = await CallAsync("/call", ("end-user", "bob"));
        var two = await CallAsync("/call", ("end-user", "bob"));

        Assert.True(Guid.TryParse(one.IncomingRequestId, out _), one.IncomingRequestId);
        Assert.Equal(one.IncomingRequestId, one.First.Header("x-request-id"));
        Assert.Equal(one.IncomingRequestId, one.Second.Header("x-request-id"));
        Assert.Equal(two.IncomingRequestId, two.First.Header("x-request-id"));
        Assert.NotEqual(one.IncomingRequestId, two.IncomingRequestId);
        Assert.Equal("bob", one.First.Header("end-user"));
    }

    [Fact]
    public async Task HeaderSetByTheCallingCode_IsNotOverwritten()
    {
        var reply = await CallAsync("/call-explicit", ("end-user", "alice"), ("traceparent", "00-11111111111111111111111111111111-2222222222222222-01"));

        Assert.Equal("set-by-code", reply.First.Header("end-user"));
        Assert.StartsWith("00-11111111111111111111111111111111-", reply.First.Header("traceparent"), StringComparison.Ordinal);
        Assert.Equal(reply.IncomingRequestId, reply.First.Header("x-request-id"));
    }

    [Fact]
    public async Task PropagatedEndUser_IsMatchedByMeshRoutes()
    {
        fixture.Mesh.WriteConfig("backend.yaml", $"""
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata:
              name: backend
              namespace: default
            spec:
              host: {PropagationFixture.Fqdn}
              subsets:
              - name: v1
                labels:
                  version: v1
              - name: v2
                labels:
                  version: v2
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: backend
              namespace: default
            spec:
              hosts:
              - {PropagationFixture.Fqdn}
              http:
              - match:
                - headers:
                    end-user:
                      exact: jason
                route:
                - destination:
                    host: {PropagationFixture.Fqdn}
                    subset: v2
              - route:
                - destination:
                    host: {PropagationFixture.Fqdn}
                    subset: v1
            """);
        try
        {
            // Wait (bounded) until the route is in force at the frontend: 10 anonymous calls all on v1.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            while (true)
            {
                var replies = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => CallAsync("/call")));
                if (replies.All(r => r.First.Version == "v1" && r.Second.Version == "v1"))
                {
                    break;
                }

                Assert.True(DateTime.UtcNow < deadline, "the end-user route never took effect\n" + fixture.Mesh.Dump());
                await Task.Delay(50);
            }

            for (var i = 0; i < 10; i++)
            {
                var jason = await CallAsync("/call", ("end-user", "jason"));
                var alice = await CallAsync("/call", ("end-user", "alice"));
                Assert.Equal(("v2", "v2"), (jason.First.Version, jason.Second.Version));
                Assert.Equal(("v1", "v1"), (alice.First.Version, alice.Second.Version));
            }
        }
        finally
        {
            File.Delete(Path.Combine(fixture.Mesh.ConfigDirectory, "backend.yaml"));
        }
    }

    [Fact]
    public async Task ConcurrentRequests_EachPropagateTheirOwnValues()
    {
        const int Count = 64;
        var calls = Enumerable.Range(0, Count).Select(async i =>
        {
            var traceId = (i + 1).ToString("x32", CultureInfo.InvariantCulture);
            var headers = new List<(string, string)>
            {
                ("traceparent", $"00-{traceId}-{i + 1:x16}-01"),
                ("end-user", $"user-{i}"),
            };
            if (i % 2 == 0)
            {
                headers.Add(("x-request-id", $"given-{i}"));
            }

            var reply = await CallAsync($"/call?delay={(i * 7) % 40}", [.. headers]);
            return (i, headers, reply);
        });

        var results = await Task.WhenAll(calls);

        foreach (var (i, headers, reply) in results)
        {
            var expectedId = i % 2 == 0 ? $"given-{i}" : reply.IncomingRequestId;
            foreach (var echo in new[] { reply.First, reply.Second })
            {
                Assert.StartsWith($"00-{(i + 1).ToString("x32", CultureInfo.InvariantCulture)}-", echo.Header("traceparent"), StringComparison.Ordinal);
                Assert.Equal($"user-{i}", echo.Header("end-user"));
                Assert.Equal(expectedId, echo.Header("x-request-id"));
            }
        }

        var generated = results.Where(r => r.i % 2 == 1).Select(r => r.reply.IncomingRequestId).ToList();
        Assert.Equal(Count / 2, generated.Distinct().Count());
        Assert.All(generated, id => Assert.True(Guid.TryParse(id, out _), id));
    }

    [Fact]
    public async Task OutsideARequest_NothingIsPropagated_UnlessAScopeSetsValues()
    {
        using var http = fixture.Frontend.Services.GetRequiredService<IHttpClientFactory>().CreateClient("backend");

        var before = await http.GetFromJsonAsync<Echo>("http://backend:9080/echo", JsonSerializerOptions.Web);
        Echo? inside;
        using (MeshPropagation.BeginScope(MeshPropagationContext.Empty.With("end-user", "batch-job").With("x-request-id", "job-42")))
        {
            Assert.Equal("batch-job", MeshPropagation.Current?["END-USER"]);
            inside = await http.GetFromJsonAsync<Echo>("http://backend:9080/echo", JsonSerializerOptions.Web);
        }

        var after = await http.GetFromJsonAsync<Echo>("http://backend:9080/echo", JsonSerializerOptions.Web);

        // Without values the backend generates its own x-request-id on inbound (a GUID).
        Assert.Null(before!.Header("end-user"));
        Assert.True(Guid.TryParse(before.Header("x-request-id"), out _), before.Header("x-request-id"));
        Assert.Equal("batch-job", inside!.Header("end-user"));
        Assert.Equal("job-42", inside.Header("x-request-id"));
        Assert.Null(after!.Header("end-user"));
        Assert.True(Guid.TryParse(after.Header("x-request-id"), out _), after.Header("x-request-id"));
        Assert.Null(MeshPropagation.Current);
    }
}

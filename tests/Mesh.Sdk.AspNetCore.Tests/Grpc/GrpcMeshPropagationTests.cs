using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using Grpc.Core;
using Mesh.Sdk.AspNetCore.Tests.Grpc.Recorder;
using Mesh.Sdk.AspNetCore.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Mesh.Sdk.AspNetCore.Tests.Grpc;

/// <summary>
/// Three meshed apps on ephemeral ports, registered by port discovery with the real control plane: <c>grpc-caller</c>
/// (HTTP/1.1) calls the gRPC service <c>recorder</c> through an <c>AddGrpcClient</c> client to <c>xds:///recorder:9090</c>
/// while handling a request; <c>recorder</c> has a v1 and a v2 workload, Kestrel serving HTTP/2 without TLS (h2c),
/// each recording the metadata of every call it answers.
/// </summary>
public sealed class GrpcMeshPropagationFixture : IAsyncLifetime
{
    public const string Fqdn = "recorder.default.svc.cluster.local";

    public ControlPlaneFixture Mesh { get; } = new();

    internal RecorderWorkload V1 { get; private set; } = null!;

    internal RecorderWorkload V2 { get; private set; } = null!;

    internal MeshWebApp Caller { get; private set; } = null!;

    /// <summary>A plain client (not meshed) for calling the caller app directly.</summary>
    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(30) };

    public async Task InitializeAsync()
    {
        await Mesh.InitializeAsync();
        V1 = await RecorderWorkload.StartAsync(Mesh, "v1");
        V2 = await RecorderWorkload.StartAsync(Mesh, "v2");
        Caller = await MeshWebApp.StartAsync(
            Mesh,
            new Dictionary<string, string?> { ["Mesh:ServiceName"] = "grpc-caller", ["Mesh:ServicePort"] = "9080" },
            MapCaller,
            builder => builder.Services.AddGrpcClient<Recorder.Recorder.RecorderClient>(o => o.Address = new Uri("xds:///recorder:9090")));
        Http.BaseAddress = Caller.BaseAddress;

        // Both recorder workloads are registered and the caller's gRPC client reaches them (round robin).
        var versions = new HashSet<string>(StringComparer.Ordinal);
        var last = "no attempt";
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        for (var attempt = 0; attempt < 300 && versions.Count < 2 && DateTime.UtcNow < deadline; attempt++)
        {
            using var response = await Http.GetAsync($"/record?tag=warm-up-{attempt}");
            var body = await response.Content.ReadAsStringAsync();
            if (response.IsSuccessStatusCode)
            {
                versions.Add(JsonSerializer.Deserialize<CallerReply>(body, JsonSerializerOptions.Web)!.Version);
            }
            else
            {
                last = $"{(int)response.StatusCode} {body}";
                await Task.Delay(50);
            }
        }

        Assert.True(versions.Count == 2, $"recorder versions reached: {string.Join(",", versions)}; last failure: {last}\n{Mesh.Dump()}");
    }

    /// <summary>
    /// <c>GET /record?tag=…[&amp;endUser=…]</c>: one unary call to <c>recorder</c> carrying <c>tag</c>, with
    /// <c>end-user</c> set as call metadata by the code when <c>endUser</c> is given; answers with the version that
    /// answered and the <c>x-request-id</c> the caller itself saw.
    /// </summary>
    private static void MapCaller(WebApplication app) => app.MapGet(
        "/record",
        async (HttpContext context, [FromServices] Recorder.Recorder.RecorderClient client, string tag, string? endUser) =>
        {
            var headers = new Metadata();
            if (endUser is not null)
            {
                headers.Add("end-user", endUser);
            }

            try
            {
                var reply = await client.RecordAsync(new RecordRequest { Tag = tag }, headers, cancellationToken: context.RequestAborted);
                return Results.Json(new CallerReply(reply.Version, context.Request.Headers["x-request-id"].ToString()));
            }
            catch (RpcException error)
            {
                return Results.Text($"gRPC call failed: {error.Status}", statusCode: StatusCodes.Status502BadGateway);
            }
        });

    public async Task DisposeAsync()
    {
        Http.Dispose();
        foreach (var app in new IAsyncDisposable?[] { Caller, V1, V2 })
        {
            if (app is not null)
            {
                await app.DisposeAsync();
            }
        }

        await Mesh.DisposeAsync();
    }
}

/// <summary>What the caller app answers: the recorder version that answered its call and its own request's id.</summary>
public sealed record CallerReply(string Version, string RequestId);

/// <summary>
/// A <c>recorder</c> workload: a meshed ASP.NET Core app (<c>builder.AddMesh()</c>, service <c>recorder:9090</c>,
/// labels <c>app: recorder</c> and <c>version</c>) running the gRPC service on h2c, recording each call's metadata.
/// </summary>
internal sealed class RecorderWorkload : IAsyncDisposable
{
    private RecorderWorkload(string version, MeshWebApp app, RecorderState state)
    {
        Version = version;
        App = app;
        State = state;
    }

    public string Version { get; }

    public MeshWebApp App { get; }

    public RecorderState State { get; }

    public static async Task<RecorderWorkload> StartAsync(ControlPlaneFixture mesh, string version)
    {
        var state = new RecorderState(version);
        var app = await MeshWebApp.StartAsync(
            mesh,
            new Dictionary<string, string?>
            {
                ["Mesh:ServiceName"] = "recorder",
                ["Mesh:ServicePort"] = "9090",
                ["Mesh:Labels:app"] = "recorder",
                ["Mesh:Labels:version"] = version,
            },
            app => app.MapGrpcService<RecorderService>(),
            builder =>
            {
                builder.WebHost.ConfigureKestrel(k => k.ConfigureEndpointDefaults(l => l.Protocols = HttpProtocols.Http2));
                builder.Services.AddGrpc();
                builder.Services.AddSingleton(state);
            });
        return new RecorderWorkload(version, app, state);
    }

    public ValueTask DisposeAsync() => App.DisposeAsync();
}

/// <summary>The metadata of every call a workload answered, by the call's tag.</summary>
internal sealed class RecorderState(string version)
{
    private readonly ConcurrentDictionary<string, Metadata> _calls = new(StringComparer.Ordinal);

    public string Version { get; } = version;

    public IReadOnlyCollection<string> Tags => [.. _calls.Keys];

    public void Record(string tag, Metadata metadata)
    {
        if (!_calls.TryAdd(tag, metadata))
        {
            throw new InvalidOperationException($"Tag '{tag}' was recorded twice.");
        }
    }

    public Metadata? Call(string tag) => _calls.TryGetValue(tag, out var metadata) ? metadata : null;
}

/// <summary>The gRPC service of a recorder workload.</summary>
internal sealed class RecorderService(RecorderState state) : Recorder.Recorder.RecorderBase
{
    public override Task<RecordReply> Record(RecordRequest request, ServerCallContext context)
    {
        var copy = new Metadata();
        foreach (var entry in context.RequestHeaders)
        {
            copy.Add(entry);
        }

        state.Record(request.Tag, copy);
        return Task.FromResult(new RecordReply { Version = state.Version });
    }
}

/// <summary>
/// Header propagation onto <c>AddGrpcClient</c> calls with real parts: the caller's incoming HTTP headers reach the
/// gRPC workload as metadata, metadata the call sets itself wins, and a VirtualService matching the propagated
/// <c>end-user</c> on the gRPC service routes the call (the interceptor puts the metadata on the call before the mesh's
/// gRPC picker chooses the workload). The values would also reach the workload without the interceptor, through the
/// <c>MeshPropagationHandler</c> of the channel's HTTP client, which runs after the pick: only the route test tells the two
/// apart (without the interceptor jason's calls go to v1).
/// </summary>
public sealed class GrpcMeshPropagationTests(GrpcMeshPropagationFixture fixture) : IClassFixture<GrpcMeshPropagationFixture>
{
    private const string TraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    private const string IncomingSpanId = "00f067aa0ba902b7";

    private int _tags;

    private string NewTag(string what) => string.Create(CultureInfo.InvariantCulture, $"{what}-{Interlocked.Increment(ref _tags)}-{Guid.NewGuid():N}");

    /// <summary>Calls the caller app, which makes one gRPC call tagged <paramref name="tag"/>.</summary>
    private async Task<CallerReply> CallAsync(string tag, string? endUserSetByCode = null, params (string Name, string Value)[] headers)
    {
        var path = "/record?tag=" + Uri.EscapeDataString(tag) + (endUserSetByCode is null ? string.Empty : "&endUser=" + Uri.EscapeDataString(endUserSetByCode));
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        foreach (var (name, value) in headers)
        {
            Assert.True(request.Headers.TryAddWithoutValidation(name, value), name);
        }

        using var response = await fixture.Http.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode} {body}\n{fixture.Mesh.Dump()}");
        return JsonSerializer.Deserialize<CallerReply>(body, JsonSerializerOptions.Web)!;
    }

    /// <summary>One call through the caller app; <see langword="null"/> when it did not succeed.</summary>
    private async Task<CallerReply?> TryCallAsync(string tag)
    {
        using var response = await fixture.Http.GetAsync("/record?tag=" + Uri.EscapeDataString(tag));
        return response.IsSuccessStatusCode
            ? JsonSerializer.Deserialize<CallerReply>(await response.Content.ReadAsStringAsync(), JsonSerializerOptions.Web)
            : null;
    }

    /// <summary>The metadata the workload that answered <paramref name="reply"/> recorded for <paramref name="tag"/>.</summary>
    private Metadata Recorded(string tag, CallerReply reply)
    {
        var workload = reply.Version switch
        {
            "v1" => fixture.V1,
            "v2" => fixture.V2,
            _ => throw new InvalidOperationException($"unknown version '{reply.Version}'"),
        };
        var other = workload == fixture.V1 ? fixture.V2 : fixture.V1;
        Assert.Null(other.State.Call(tag));
        return workload.State.Call(tag) ?? throw new InvalidOperationException($"workload {workload.Version} answered but has no record of '{tag}'");
    }

    private static string[] Values(Metadata metadata, string key) => [.. metadata.GetAll(key).Select(e => e.Value)];

    [Fact]
    public async Task IncomingHeaders_ReachTheGrpcWorkload_AsMetadata()
    {
        var tag = NewTag("propagated");
        var reply = await CallAsync(
            tag,
            null,
            ("traceparent", $"00-{TraceId}-{IncomingSpanId}-01"),
            ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
            ("x-b3-spanid", "e457b5a2e4d86bd1"),
            ("x-b3-sampled", "1"),
            ("end-user", "alice"),
            ("x-request-id", "grpc-request-1"),
            ("grpc-trace-bin", "AAECA/o"),
            ("user-agent", "browser/1.0"),
            ("x-not-propagated", "stays-here"));

        var seen = Recorded(tag, reply);

        // Trace context: the same trace, with the caller's own span as parent (not a copy of the incoming parent).
        var traceparent = Assert.Single(Values(seen, "traceparent"));
        var parts = traceparent.Split('-');
        Assert.Equal(4, parts.Length);
        Assert.Equal(("00", TraceId), (parts[0], parts[1]));
        Assert.NotEqual(IncomingSpanId, parts[2]);
        Assert.Equal(["80f198ee56343ba864fe8b2a57d3eff7"], Values(seen, "x-b3-traceid"));
        Assert.Equal(["e457b5a2e4d86bd1"], Values(seen, "x-b3-spanid"));
        Assert.Equal(["1"], Values(seen, "x-b3-sampled"));
        Assert.Equal(["alice"], Values(seen, "end-user"));
        Assert.Equal(["grpc-request-1"], Values(seen, "x-request-id"));
        Assert.Equal("grpc-request-1", reply.RequestId);

        // Binary metadata arrives as the bytes the incoming base64 value encodes.
        Assert.Equal(new byte[] { 0, 1, 2, 3, 250 }, Assert.Single(seen.GetAll("grpc-trace-bin")).ValueBytes);

        // user-agent stays grpc-dotnet's; headers outside the propagated set stay at the caller.
        Assert.StartsWith("grpc-dotnet/", Assert.Single(Values(seen, "user-agent")), StringComparison.Ordinal);
        Assert.Empty(seen.GetAll("x-not-propagated"));
    }

    [Fact]
    public async Task Traced_XdsGrpcCall_HasAClientSpanBetweenTheCallersAndTheRecordersServerSpans()
    {
        await using var zipkin = await Telemetry.ZipkinReceiver.StartAsync(fixture.Mesh);
        var policy = new Mesh.Sdk.Telemetry.Tracing.TracingPolicy
        {
            Provider = Mesh.Sdk.Telemetry.Tracing.TraceProviderKind.Zipkin,
            CollectorHost = Telemetry.ZipkinReceiver.Host,
            CollectorPort = Telemetry.ZipkinReceiver.Port,
            CollectorPath = "/api/v2/spans",
            RandomSampling = 100,
        };
        var tracers = new[] { fixture.Caller.Services, fixture.V1.App.Services, fixture.V2.App.Services }
            .Select(s => s.GetRequiredService<Mesh.Sdk.Telemetry.Tracing.MeshTracer>()).ToArray();
        try
        {
            foreach (var tracer in tracers)
            {
                tracer.Apply(policy);
            }

            const string Trace = "5bf92f3577b34da6a3ce929d0e0e4736";
            var tag = NewTag("traced");
            var reply = await CallAsync(tag, null, ("traceparent", $"00-{Trace}-{IncomingSpanId}-01"));
            var seen = Recorded(tag, reply);
            var traceparent = Assert.Single(Values(seen, "traceparent")).Split('-');
            Assert.Equal(Trace, traceparent[1]);
            Assert.Equal([Trace], Values(seen, "x-b3-traceid"));
            Assert.Equal([traceparent[2]], Values(seen, "x-b3-spanid"));

            List<Telemetry.ZipkinSpan> spans = [];
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (DateTime.UtcNow < deadline)
            {
                foreach (var tracer in tracers)
                {
                    await Task.Run(() => tracer.Export?.Flush(5000));
                }

                spans = [.. zipkin.Spans.Where(s => s.TraceId == Trace && !s.FailedAttempt)];
                if (spans.Count >= 3)
                {
                    break;
                }

                await Task.Delay(50);
            }

            var server = Assert.Single(spans, s => s.Kind == "SERVER" && s.ServiceName == "grpc-caller.default");
            var client = Assert.Single(spans, s => s.Kind == "CLIENT");
            var recorder = Assert.Single(spans, s => s.Kind == "SERVER" && s.ServiceName == "recorder.default");
            Assert.Equal(IncomingSpanId, server.ParentId);
            Assert.Equal(server.Id, client.ParentId);
            Assert.Equal(client.Id, recorder.ParentId);
            Assert.Equal(traceparent[2], client.Id);
            Assert.Equal("recorder.default.svc.cluster.local:9090/*", client.Name);
            Assert.Equal("HTTP/2", client.Tags["http.protocol"]);
            Assert.Equal("recorder.default.svc.cluster.local:9090/*", recorder.Name);
        }
        finally
        {
            foreach (var tracer in tracers)
            {
                tracer.Apply(null);
            }
        }
    }

    [Fact]
    public async Task RequestWithoutRequestId_TheGeneratedIdReachesTheGrpcWorkload()
    {
        var tag = NewTag("generated-id");
        var reply = await CallAsync(tag, null, ("end-user", "bob"));

        var seen = Recorded(tag, reply);

        Assert.True(Guid.TryParse(reply.RequestId, out _), reply.RequestId);
        Assert.Equal([reply.RequestId], Values(seen, "x-request-id"));
        Assert.Equal(["bob"], Values(seen, "end-user"));
    }

    [Fact]
    public async Task MetadataSetByTheCall_IsNotOverwritten()
    {
        var tag = NewTag("explicit");
        var reply = await CallAsync(tag, "set-by-code", ("end-user", "alice"), ("x-request-id", "grpc-request-2"));

        var seen = Recorded(tag, reply);

        Assert.Equal(["set-by-code"], Values(seen, "end-user"));
        Assert.Equal(["grpc-request-2"], Values(seen, "x-request-id"));
    }

    [Fact]
    public async Task PropagatedEndUser_IsMatchedByAVirtualServiceOnTheGrpcService()
    {
        fixture.Mesh.WriteConfig("recorder.yaml", $"""
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata:
              name: recorder
              namespace: default
            spec:
              host: {GrpcMeshPropagationFixture.Fqdn}
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
              name: recorder
              namespace: default
            spec:
              hosts:
              - {GrpcMeshPropagationFixture.Fqdn}
              http:
              - match:
                - headers:
                    end-user:
                      exact: jason
                route:
                - destination:
                    host: {GrpcMeshPropagationFixture.Fqdn}
                    subset: v2
              - route:
                - destination:
                    host: {GrpcMeshPropagationFixture.Fqdn}
                    subset: v1
            """);
        try
        {
            // Wait (bounded) until the route is in force at the caller: 5 concurrent anonymous calls all answered
            // by v1. While the subset clusters are being applied a call can fail (UNAVAILABLE, 'no healthy upstream', seen on
            // CI while new subset clusters arrive); that counts as "not yet" here. The counted rounds below accept no failure.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            for (var round = 0; ; round++)
            {
                var replies = await Task.WhenAll(Enumerable.Range(0, 5).Select(i => TryCallAsync(NewTag("route-wait"))));
                if (replies.All(r => r?.Version == "v1"))
                {
                    break;
                }

                Assert.True(round < 300 && DateTime.UtcNow < deadline, "the end-user route never took effect\n" + fixture.Mesh.Dump());
                await Task.Delay(50);
            }

            const int Calls = 20;
            var jasonTags = new List<string>();
            var byVersion = new Dictionary<string, Dictionary<string, int>>(StringComparer.Ordinal)
            {
                ["jason"] = new(StringComparer.Ordinal),
                ["alice"] = new(StringComparer.Ordinal),
                ["anonymous"] = new(StringComparer.Ordinal),
                ["jason, code sets alice"] = new(StringComparer.Ordinal),
                ["alice, code sets jason"] = new(StringComparer.Ordinal),
            };

            void Count(string who, CallerReply reply) =>
                byVersion[who][reply.Version] = byVersion[who].GetValueOrDefault(reply.Version) + 1;

            for (var i = 0; i < Calls; i++)
            {
                var jasonTag = NewTag("jason");
                jasonTags.Add(jasonTag);
                var jason = await CallAsync(jasonTag, null, ("end-user", "jason"));
                Assert.Equal(["jason"], Values(Recorded(jasonTag, jason), "end-user"));
                Count("jason", jason);

                var aliceTag = NewTag("alice");
                var alice = await CallAsync(aliceTag, null, ("end-user", "alice"));
                Assert.Equal(["alice"], Values(Recorded(aliceTag, alice), "end-user"));
                Count("alice", alice);

                var anonymousTag = NewTag("anonymous");
                var anonymous = await CallAsync(anonymousTag);
                Assert.Empty(Recorded(anonymousTag, anonymous).GetAll("end-user"));
                Count("anonymous", anonymous);

                // Metadata set by the call is what the route sees, whatever the incoming request said.
                Count("jason, code sets alice", await CallAsync(NewTag("override"), "alice", ("end-user", "jason")));
                Count("alice, code sets jason", await CallAsync(NewTag("override"), "jason", ("end-user", "alice")));
            }

            var expected = new Dictionary<string, Dictionary<string, int>>(StringComparer.Ordinal)
            {
                ["jason"] = new(StringComparer.Ordinal) { ["v2"] = Calls },
                ["alice"] = new(StringComparer.Ordinal) { ["v1"] = Calls },
                ["anonymous"] = new(StringComparer.Ordinal) { ["v1"] = Calls },
                ["jason, code sets alice"] = new(StringComparer.Ordinal) { ["v1"] = Calls },
                ["alice, code sets jason"] = new(StringComparer.Ordinal) { ["v2"] = Calls },
            };
            Assert.Equal(expected, byVersion);

            // The v2 workload itself answered every one of jason's calls; v1 answered none of them.
            Assert.All(jasonTags, t => Assert.NotNull(fixture.V2.State.Call(t)));
            Assert.Empty(fixture.V1.State.Tags.Intersect(jasonTags));
        }
        finally
        {
            File.Delete(Path.Combine(fixture.Mesh.ConfigDirectory, "recorder.yaml"));
        }
    }
}

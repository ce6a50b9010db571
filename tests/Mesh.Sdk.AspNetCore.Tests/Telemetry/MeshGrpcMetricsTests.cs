using System.Net;
using Grpc.Core;
using Grpc.Net.Client;
using Mesh.Sdk.AspNetCore.Tests.Infrastructure;
using Mesh.Sdk.AspNetCore.Tests.Telemetry.Echo;
using Mesh.Sdk.Grpc;
using Mesh.Sdk.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;

namespace Mesh.Sdk.AspNetCore.Tests.Telemetry;

/// <summary>
/// Istio's standard metrics of gRPC calls and of requests the callee's inbound policies answer, with real parts: the
/// real control plane, a meshed gRPC workload (<c>builder.AddMesh()</c>, h2c) called through an <c>xds:///</c>
/// <c>GrpcChannel</c> by a meshed client, and meshed HTTP apps under a local rate limit EnvoyFilter and an
/// AuthorizationPolicy.
/// </summary>
public sealed class MeshGrpcMetricsTests(ControlPlaneFixture mesh) : IClassFixture<ControlPlaneFixture>
{
    private static readonly HttpClient Plain = new() { Timeout = TimeSpan.FromSeconds(15) };

    private static Task<string> Exposition(IServiceProvider services) => services.GetRequiredService<MeshMetrics>().ToTextAsync();

    private static double Sum(List<PrometheusSample> samples, string name, params (string Label, string Value)[] where)
        => samples.Where(s => s.Name == name && where.All(w => s.Labels.TryGetValue(w.Label, out var v) && v == w.Value)).Sum(s => s.Value);

    private static double Delta(List<PrometheusSample> after, List<PrometheusSample> before, string name, params (string Label, string Value)[] where)
        => Sum(after, name, where) - Sum(before, name, where);

    [Fact]
    public async Task GrpcCalls_UnaryAndStreaming_BothSidesCountCallsMessagesAndStatus()
    {
        await using var echo = await MeshWebApp.StartAsync(
            mesh,
            new Dictionary<string, string?>
            {
                ["Mesh:ServiceName"] = "echo",
                ["Mesh:ServicePort"] = "9090",
                ["Mesh:WorkloadName"] = "echo-v1",
                ["Mesh:Labels:app"] = "echo",
                ["Mesh:Labels:version"] = "v1",
            },
            app => app.MapGrpcService<EchoService>(),
            builder =>
            {
                builder.WebHost.ConfigureKestrel(k => k.ConfigureEndpointDefaults(l => l.Protocols = HttpProtocols.Http2));
                builder.Services.AddGrpc();
            });
        await using var caller = MeshClient.Create(mesh, o =>
        {
            o.WorkloadName = "grpc-client-v1";
            o.Labels["app"] = "grpc-client";
            o.Labels["version"] = "v1";
        });
        using var channel = GrpcChannel.ForAddress("xds:///echo:9090", new GrpcChannelOptions().UseMesh(caller));
        var client = new Echo.Echo.EchoClient(channel);

        // Until echo is registered and reached; those calls are counted too, so the assertions take differences.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            try
            {
                await client.UnaryAsync(new EchoMessage { Text = "warm-up" }, deadline: DateTime.UtcNow.AddSeconds(5));
                break;
            }
            catch (RpcException error)
            {
                Assert.True(DateTime.UtcNow < deadline, $"echo never answered: {error.Status}\n{mesh.Dump()}");
                await Task.Delay(50);
            }
        }

        var callerBefore = PrometheusSample.Parse(await Exposition(caller));
        var calleeBefore = PrometheusSample.Parse(await Exposition(echo.Services));

        // 3 unary, 1 unary failing NOT_FOUND, a client stream of 4, a server stream of 7, a bidi stream of 6 each way.
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("hello", (await client.UnaryAsync(new EchoMessage { Text = "hello" })).Text);
        }

        var failure = await Assert.ThrowsAsync<RpcException>(async () => await client.UnaryAsync(new EchoMessage { Fail = (int)StatusCode.NotFound }));
        Assert.Equal(StatusCode.NotFound, failure.StatusCode);

        using (var collect = client.Collect())
        {
            for (var i = 0; i < 4; i++)
            {
                await collect.RequestStream.WriteAsync(new EchoMessage { Text = "m" });
            }

            await collect.RequestStream.CompleteAsync();
            Assert.Equal(4, (await collect.ResponseAsync).Count);
        }

        using (var repeat = client.Repeat(new EchoMessage { Count = 7 }))
        {
            var received = 0;
            while (await repeat.ResponseStream.MoveNext(CancellationToken.None))
            {
                received++;
            }

            Assert.Equal(7, received);
        }

        using (var chat = client.Chat())
        {
            for (var i = 0; i < 6; i++)
            {
                await chat.RequestStream.WriteAsync(new EchoMessage { Text = "ping" });
                Assert.True(await chat.ResponseStream.MoveNext(CancellationToken.None));
                Assert.Equal("ping", chat.ResponseStream.Current.Text);
            }

            await chat.RequestStream.CompleteAsync();
            Assert.False(await chat.ResponseStream.MoveNext(CancellationToken.None));
        }

        var callerText = await Exposition(caller);
        var calleeText = await Exposition(echo.Services);
        await MeshMetricsTests.PromtoolCheckAsync(callerText);
        await MeshMetricsTests.PromtoolCheckAsync(calleeText);
        var callerAfter = PrometheusSample.Parse(callerText);
        var calleeAfter = PrometheusSample.Parse(calleeText);

        (string, string)[] sourceSide = [("reporter", "source"), ("destination_workload", "echo-v1"), ("request_protocol", "grpc")];
        (string, string)[] destinationSide = [("reporter", "destination"), ("source_workload", "grpc-client-v1"), ("request_protocol", "grpc")];
        foreach (var (side, before, after) in new[] { (sourceSide, callerBefore, callerAfter), (destinationSide, calleeBefore, calleeAfter) })
        {
            var reporter = side[0].Item2;
            Assert.Equal(7, Delta(after, before, "istio_requests_total", side));
            Assert.Equal(6, Delta(after, before, "istio_requests_total", [.. side, ("grpc_response_status", "0")]));
            Assert.Equal(1, Delta(after, before, "istio_requests_total", [.. side, ("grpc_response_status", "5")]));
            Assert.True(7 == Delta(after, before, "istio_requests_total", [.. side, ("response_code", "200"), ("response_flags", "-")]), reporter);

            // Client messages: 3 + 1 + 4 + 1 + 6; server messages: 3 + 0 + 1 + 7 + 6.
            Assert.True(15 == Delta(after, before, "istio_request_messages_total", side), $"{reporter} request messages {Delta(after, before, "istio_request_messages_total", side)}");
            Assert.True(17 == Delta(after, before, "istio_response_messages_total", side), $"{reporter} response messages {Delta(after, before, "istio_response_messages_total", side)}");
            Assert.Equal(7, Delta(after, before, "istio_request_duration_milliseconds_count", side));
            Assert.Equal(7, Delta(after, before, "istio_request_bytes_count", side));

            // Bytes are the framed messages: at least their 5-byte prefixes.
            Assert.True(Delta(after, before, "istio_request_bytes_sum", side) >= 15 * 5, reporter);
            Assert.True(Delta(after, before, "istio_response_bytes_sum", side) >= 17 * 5, reporter);
        }

        // Both sides agree since the start, warm-up included.
        Assert.Equal(Sum(callerAfter, "istio_request_messages_total", sourceSide), Sum(calleeAfter, "istio_request_messages_total", destinationSide));
        Assert.Equal(Sum(callerAfter, "istio_response_messages_total", sourceSide), Sum(calleeAfter, "istio_response_messages_total", destinationSide));

        var source = Assert.Single(callerAfter, s => s.Name == "istio_requests_total" && s.Labels.GetValueOrDefault("grpc_response_status") == "5");
        Assert.Equal(
            ("source", "grpc-client-v1", "grpc-client", "v1", "echo-v1", "echo", "v1", "echo.default.svc.cluster.local", "echo", "default", "grpc", "200", "-", "unknown"),
            (source["reporter"], source["source_workload"], source["source_app"], source["source_version"], source["destination_workload"], source["destination_app"],
                source["destination_version"], source["destination_service"], source["destination_service_name"], source["destination_service_namespace"],
                source["request_protocol"], source["response_code"], source["response_flags"], source["connection_security_policy"]));
        var destination = Assert.Single(calleeAfter, s => s.Name == "istio_requests_total" && s.Labels.GetValueOrDefault("grpc_response_status") == "5");
        Assert.Equal(
            ("destination", "grpc-client-v1", "grpc-client", "echo-v1", "echo", "echo.default.svc.cluster.local", "grpc", "200", "-", "none"),
            (destination["reporter"], destination["source_workload"], destination["source_app"], destination["destination_workload"], destination["destination_app"],
                destination["destination_service"], destination["request_protocol"], destination["response_code"], destination["response_flags"], destination["connection_security_policy"]));

        // Each workload's own prometheus-net registry holds Istio's metrics only: no process or runtime metrics.
        Assert.All(callerAfter.Concat(calleeAfter), s => Assert.StartsWith("istio_", s.Name, StringComparison.Ordinal));
        Assert.DoesNotContain(callerAfter, s => s["reporter"] == "destination" && s["destination_workload"] == "echo-v1");

        // Message counters are gRPC's: no HTTP series carries them.
        Assert.DoesNotContain(calleeAfter, s => s.Name == "istio_request_messages_total" && s["request_protocol"] != "grpc");
    }

    [Fact]
    public async Task GrpcCallsAbortedByAFault_ReportedByTheCallerWithFI_AndNeverReachTheCallee()
    {
        await using var faulty = await StartEchoAsync("faulty");
        await using var caller = MeshClient.Create(mesh, o =>
        {
            o.WorkloadName = "fault-client-v1";
            o.Labels["app"] = "fault-client";
        });
        using var channel = GrpcChannel.ForAddress("xds:///faulty:9090", new GrpcChannelOptions().UseMesh(caller));
        var client = new Echo.Echo.EchoClient(channel);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            try
            {
                await client.UnaryAsync(new EchoMessage { Text = "warm-up" }, deadline: DateTime.UtcNow.AddSeconds(5));
                break;
            }
            catch (RpcException error)
            {
                Assert.True(DateTime.UtcNow < deadline, $"faulty never answered: {error.Status}\n{mesh.Dump()}");
                await Task.Delay(50);
            }
        }

        mesh.WriteConfig("faulty-abort.yaml", """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: faulty, namespace: default}
            spec:
              hosts: [faulty.default.svc.cluster.local]
              http:
              - fault: {abort: {grpcStatus: RESOURCE_EXHAUSTED, percentage: {value: 100}}}
                route: [{destination: {host: faulty.default.svc.cluster.local}}]
            """);
        while (true)
        {
            var error = await Assert.ThrowsAnyAsync<Exception>(async () =>
            {
                await client.UnaryAsync(new EchoMessage { Text = "probe" }, deadline: DateTime.UtcNow.AddSeconds(5));
                throw new InvalidOperationException("not aborted yet");
            });
            if (error is RpcException { StatusCode: StatusCode.ResourceExhausted })
            {
                break;
            }

            Assert.True(DateTime.UtcNow < deadline, $"the abort never applied: {error.Message}\n{mesh.Dump()}");
            await Task.Delay(50);
        }

        var callerBefore = PrometheusSample.Parse(await Exposition(caller));
        var calleeBefore = PrometheusSample.Parse(await Exposition(faulty.Services));
        for (var i = 0; i < 3; i++)
        {
            var aborted = await Assert.ThrowsAsync<RpcException>(async () => await client.UnaryAsync(new EchoMessage { Text = "x" }));
            Assert.Equal(StatusCode.ResourceExhausted, aborted.StatusCode);
        }

        var callerText = await Exposition(caller);
        await MeshMetricsTests.PromtoolCheckAsync(callerText);
        var callerAfter = PrometheusSample.Parse(callerText);
        var calleeAfter = PrometheusSample.Parse(await Exposition(faulty.Services));
        (string, string)[] aborts = [("reporter", "source"), ("response_flags", "FI"), ("grpc_response_status", "8"), ("request_protocol", "grpc")];
        Assert.Equal(3, Delta(callerAfter, callerBefore, "istio_requests_total", aborts));
        Assert.Equal(0, Delta(callerAfter, callerBefore, "istio_request_messages_total", aborts));
        var fault = Assert.Single(callerAfter, s => s.Name == "istio_requests_total" && s["response_flags"] == "FI");
        Assert.Equal(("fault-client-v1", "faulty.default.svc.cluster.local", "faulty", "unknown", "200"),
            (fault["source_workload"], fault["destination_service"], fault["destination_service_name"], fault["destination_workload"], fault["response_code"]));

        // The aborted calls never left the caller.
        Assert.Equal(0, Delta(calleeAfter, calleeBefore, "istio_requests_total", ("reporter", "destination")));
    }

    private Task<MeshWebApp> StartEchoAsync(string service) => MeshWebApp.StartAsync(
        mesh,
        new Dictionary<string, string?>
        {
            ["Mesh:ServiceName"] = service,
            ["Mesh:ServicePort"] = "9090",
            ["Mesh:WorkloadName"] = $"{service}-v1",
            ["Mesh:Labels:app"] = service,
            ["Mesh:Labels:version"] = "v1",
        },
        app => app.MapGrpcService<EchoService>(),
        builder =>
        {
            builder.WebHost.ConfigureKestrel(k => k.ConfigureEndpointDefaults(l => l.Protocols = HttpProtocols.Http2));
            builder.Services.AddGrpc();
        });

    [Fact]
    public async Task Callee_ReportsLocalRateLimitAsRL_AndRbacDenialWithoutFlag()
    {
        await using var limited = await StartHttpAsync("limited");
        await using var guarded = await StartHttpAsync("guarded");
        mesh.WriteConfig("limited-ratelimit.yaml", """
            apiVersion: networking.istio.io/v1alpha3
            kind: EnvoyFilter
            metadata: {name: limited-ratelimit, namespace: istio-system}
            spec:
              workloadSelector: {labels: {app: limited}}
              configPatches:
              - applyTo: HTTP_FILTER
                match:
                  context: SIDECAR_INBOUND
                  listener: {filterChain: {filter: {name: envoy.filters.network.http_connection_manager}}}
                patch:
                  operation: INSERT_BEFORE
                  value:
                    name: envoy.filters.http.local_ratelimit
                    typed_config:
                      "@type": type.googleapis.com/udpa.type.v1.TypedStruct
                      type_url: type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
                      value:
                        stat_prefix: http_local_rate_limiter
                        token_bucket: {max_tokens: 2, tokens_per_fill: 2, fill_interval: 600s}
                        filter_enabled: {runtime_key: local_rate_limit_enabled, default_value: {numerator: 100, denominator: HUNDRED}}
                        filter_enforced: {runtime_key: local_rate_limit_enforced, default_value: {numerator: 100, denominator: HUNDRED}}
            """);
        mesh.WriteConfig("guarded-deny.yaml", """
            apiVersion: security.istio.io/v1
            kind: AuthorizationPolicy
            metadata: {name: guarded-deny-admin, namespace: default}
            spec:
              selector: {matchLabels: {app: guarded}}
              action: DENY
              rules:
              - to: [{operation: {paths: [/admin]}}]
            """);

        var codes = new Dictionary<string, Dictionary<int, int>> { ["limited"] = [], ["guarded"] = [] };
        async Task<int> GetAsync(MeshWebApp app, string name, string path)
        {
            using var response = await Plain.GetAsync(new Uri(app.BaseAddress, path));
            var code = (int)response.StatusCode;
            codes[name][code] = codes[name].GetValueOrDefault(code) + 1;
            return code;
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (await GetAsync(limited, "limited", "/hello") != 429)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the rate limit never reached limited\n{mesh.Dump()}");
            await Task.Delay(50);
        }

        while (await GetAsync(guarded, "guarded", "/admin") != 403)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the AuthorizationPolicy never reached guarded\n{mesh.Dump()}");
            await Task.Delay(50);
        }

        // The bucket stays empty for the rest of the test (one fill every 10 minutes).
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(429, await GetAsync(limited, "limited", "/hello"));
            Assert.Equal(403, await GetAsync(guarded, "guarded", "/admin"));
            Assert.Equal(200, await GetAsync(guarded, "guarded", "/hello"));
        }

        var limitedText = await Plain.GetStringAsync(new Uri(limited.BaseAddress, "/metrics"));
        await MeshMetricsTests.PromtoolCheckAsync(limitedText);
        var limitedSamples = PrometheusSample.Parse(limitedText);
        var guardedSamples = PrometheusSample.Parse(await Plain.GetStringAsync(new Uri(guarded.BaseAddress, "/metrics")));
        (string, string)[] inbound = [("reporter", "destination")];

        // Every refused request is the callee's 429 with RL; every served one has no flag.
        Assert.True(codes["limited"][429] >= 5);
        Assert.Equal(codes["limited"][429], Sum(limitedSamples, "istio_requests_total", [.. inbound, ("response_code", "429"), ("response_flags", "RL")]));
        Assert.Equal(codes["limited"][429], Sum(limitedSamples, "istio_requests_total", [.. inbound, ("response_flags", "RL")]));
        Assert.Equal(codes["limited"].GetValueOrDefault(200), Sum(limitedSamples, "istio_requests_total", [.. inbound, ("response_code", "200"), ("response_flags", "-")]));

        // Envoy's RBAC filter sets no response flag on its 403.
        Assert.Equal(codes["guarded"][403], Sum(guardedSamples, "istio_requests_total", [.. inbound, ("response_code", "403"), ("response_flags", "-")]));
        Assert.Equal(codes["guarded"][200], Sum(guardedSamples, "istio_requests_total", [.. inbound, ("response_code", "200"), ("response_flags", "-")]));
        Assert.DoesNotContain(guardedSamples, s => s.Name == "istio_requests_total" && s["response_flags"] != "-");
    }

    private Task<MeshWebApp> StartHttpAsync(string service) => MeshWebApp.StartAsync(
        mesh,
        new Dictionary<string, string?>
        {
            ["Mesh:ServiceName"] = service,
            ["Mesh:ServicePort"] = "9080",
            ["Mesh:WorkloadName"] = $"{service}-v1",
            ["Mesh:Labels:app"] = service,
            ["Mesh:Labels:version"] = "v1",

            // The inbound policies (rate limit, authorization) are the security feature's; plaintext stays allowed (PERMISSIVE).
            ["Mesh:Security:Enabled"] = "true",
            ["Mesh:ServiceAccount"] = service,
        },
        app =>
        {
            app.MapGet("/hello", () => "hello");
            app.MapGet("/admin", () => "admin");
        });
}

/// <summary>The gRPC service of the echo workload.</summary>
internal sealed class EchoService : Echo.Echo.EchoBase
{
    public override Task<EchoMessage> Unary(EchoMessage request, ServerCallContext context)
        => request.Fail != 0
            ? throw new RpcException(new Status((StatusCode)request.Fail, "asked to fail"))
            : Task.FromResult(new EchoMessage { Text = request.Text });

    public override async Task<EchoMessage> Collect(IAsyncStreamReader<EchoMessage> requestStream, ServerCallContext context)
    {
        var count = 0;
        await foreach (var _ in requestStream.ReadAllAsync(context.CancellationToken))
        {
            count++;
        }

        return new EchoMessage { Count = count };
    }

    public override async Task Repeat(EchoMessage request, IServerStreamWriter<EchoMessage> responseStream, ServerCallContext context)
    {
        for (var i = 0; i < request.Count; i++)
        {
            await responseStream.WriteAsync(new EchoMessage { Text = "r", Count = i });
        }
    }

    public override async Task Chat(IAsyncStreamReader<EchoMessage> requestStream, IServerStreamWriter<EchoMessage> responseStream, ServerCallContext context)
    {
        await foreach (var message in requestStream.ReadAllAsync(context.CancellationToken))
        {
            await responseStream.WriteAsync(new EchoMessage { Text = message.Text });
        }
    }
}

using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Mesh.Sdk.FunctionalTests.Infrastructure;
using Mesh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Mesh.Sdk.FunctionalTests.Reliability;

/// <summary>Runs alone, after the parallel tests: it starts processes and measures times, and must not slow others' timings.</summary>
[CollectionDefinition(nameof(ControlPlaneRestartTests), DisableParallelization = true)]
public sealed class SerialReliabilityCollection;

/// <summary>
/// The control plane (the real <c>mesh-controlplane</c> process) SIGKILLed and restarted under load, with the
/// service's two workloads self-registered and a meshed client sending one request every 10 ms.
/// </summary>
[Collection(nameof(ControlPlaneRestartTests))]
public sealed class ControlPlaneRestartTests(ITestOutputHelper output)
{
    private const string DestinationRule = """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: web
          namespace: default
        spec:
          host: web.default.svc.cluster.local
          subsets:
          - name: v1
            labels: {version: v1}
          - name: v2
            labels: {version: v2}
        """;

    private const string AllToV2 = """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: web
          namespace: default
        spec:
          hosts: [web.default.svc.cluster.local]
          http:
          - route:
            - destination: {host: web.default.svc.cluster.local, subset: v2}
        """;

    /// <summary>
    /// The workloads reach the control plane through a gate that stays shut for 3 s after the restart, so the new
    /// process hears from the client before it hears from the workloads (as when their reconnect backoff is longer).
    /// Without the registry kept across the restart the client is told that <c>web:8080</c> no longer exists and its
    /// requests leave the mesh (before the fix: 46 of 1,053 failed, "Name or service not known (web:8080)").
    /// </summary>
    [Fact]
    public async Task SigkillAndRestart_ZeroFailedRequests_AndAChangeAfterTheRestartArrivesWithin6s()
    {
        var config = Directory.CreateTempSubdirectory("mesh-restart-").FullName;
        var clock = Stopwatch.StartNew();
        var logs = new CapturingLoggerProvider();
        ControlPlaneProcess? first = null;
        ControlPlaneProcess? second = null;
        var backends = new List<Backend>();
        var workloads = new List<ServiceProvider>();
        ServiceProvider? client = null;
        try
        {
            IstioYaml.WriteAtomically(config, "web-destination-rule.yaml", DestinationRule);
            first = await ControlPlaneProcess.StartAsync(config, 0, clock, TimeSpan.FromSeconds(60));
            var port = first.Port;
            await using var gate = new TcpGate(port);
            foreach (var version in new[] { "v1", "v2" })
            {
                var backend = await Backend.StartAsync("web", "web-" + version, version, CancellationToken.None);
                backends.Add(backend);
                var workload = MeshHarness.CreateClient(gate.Port, configure: o =>
                {
                    o.ServiceName = "web";
                    o.Ports[8080] = backend.Port;
                    o.InstanceIp = "127.0.0.1";
                    o.Labels["app"] = "web";
                    o.Labels["version"] = version;
                    o.WorkloadName = "web-" + version;
                });
                workload.GetRequiredService<MeshRuntime>().Start();
                workloads.Add(workload);
            }

            client = MeshHarness.CreateClient(port, logs);
            client.GetRequiredService<MeshRuntime>().Start();
            var http = client.GetRequiredService<IHttpClientFactory>().CreateClient("functional");
            http.Timeout = TimeSpan.FromSeconds(10);

            // Both workloads serve through the mesh before the test starts.
            var seen = new HashSet<string>();
            var ready = Stopwatch.StartNew();
            while (seen.Count < 2)
            {
                Assert.True(ready.Elapsed < TimeSpan.FromSeconds(30), $"web:8080 did not reach both workloads through the mesh (seen: {string.Join(",", seen)}).\n{logs.Dump()}");
                try
                {
                    using var response = await http.GetAsync("http://web:8080/ready");
                    if (response.StatusCode == HttpStatusCode.OK)
                    {
                        seen.Add((await response.Content.ReadFromJsonAsync<BackendReply>())!.Version);
                    }
                }
                catch (HttpRequestException)
                {
                }

                await Task.Delay(20);
            }

            var results = new List<(TimeSpan At, string? Version, string? Error)>();
            using var stop = new CancellationTokenSource();
            async Task LoadAsync()
            {
                using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
                while (await timer.WaitForNextTickAsync(CancellationToken.None) && !stop.IsCancellationRequested)
                {
                    (TimeSpan, string?, string?) result;
                    try
                    {
                        using var response = await http.GetAsync("http://web:8080/load");
                        result = response.StatusCode == HttpStatusCode.OK
                            ? (clock.Elapsed, (await response.Content.ReadFromJsonAsync<BackendReply>())!.Version, null)
                            : (clock.Elapsed, null, $"{(int)response.StatusCode} {response.ReasonPhrase}");
                    }
                    catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
                    {
                        result = (clock.Elapsed, null, ex.Message + (ex.InnerException is { } inner ? " / " + inner.Message : string.Empty));
                    }

                    lock (results)
                    {
                        results.Add(result);
                    }
                }
            }

            var load = Task.Run(LoadAsync);
            await Task.Delay(1000);
            gate.Close();
            first.Kill();
            var killedAt = clock.Elapsed;
            second = await ControlPlaneProcess.StartAsync(config, port, clock, TimeSpan.FromSeconds(60));
            var listening = second.ListeningAt;
            IstioYaml.WriteAtomically(config, "web-virtual-service.yaml", AllToV2);
            await DelayUntil(clock, listening + TimeSpan.FromSeconds(3));
            gate.Open();
            await DelayUntil(clock, listening + TimeSpan.FromSeconds(10));
            await stop.CancelAsync();
            await load;

            List<(TimeSpan At, string? Version, string? Error)> all;
            lock (results)
            {
                all = [.. results];
            }

            var failed = all.Where(r => r.Error is not null).ToList();
            // The change is in force from the first request after which every answer came from v2.
            var lastNotV2 = all.FindLastIndex(r => r.Version != "v2");
            var followedAt = lastNotV2 + 1 < all.Count ? all[lastNotV2 + 1].At : (TimeSpan?)null;
            output.WriteLine($"{all.Count} requests, {failed.Count} failed; killed at {killedAt.TotalSeconds:F2} s, listening again at {listening.TotalSeconds:F2} s, "
                + $"all v2 from {followedAt?.TotalSeconds:F2} s ({(followedAt - listening)?.TotalSeconds:F2} s after listening)");
            Assert.True(failed.Count == 0, $"{failed.Count} of {all.Count} requests failed, first at {failed.FirstOrDefault().At.TotalSeconds:F2} s "
                + $"(listening again at {listening.TotalSeconds:F2} s): {string.Join(" | ", failed.Take(3).Select(f => f.Error))}\n{second.Output}\n{logs.Dump()}");
            Assert.True(all.Count > 500, $"only {all.Count} requests were sent");
            Assert.True(all.Count(r => r.At > killedAt && r.At < listening) > 20, "too few requests while the control plane was down");
            Assert.True(followedAt is { } at && at - listening < TimeSpan.FromSeconds(6),
                $"the VirtualService written after the restart was followed {(followedAt - listening)?.TotalSeconds:F2} s after the control plane listened again\n{second.Output}");
        }
        finally
        {
            foreach (var workload in workloads)
            {
                await workload.DisposeAsync();
            }

            if (client is not null)
            {
                await client.DisposeAsync();
            }

            foreach (var backend in backends)
            {
                await backend.DisposeAsync();
            }

            if (first is not null)
            {
                await first.DisposeAsync();
            }

            if (second is not null)
            {
                await second.DisposeAsync();
            }

            Directory.Delete(config, recursive: true);
        }
    }

    private static Task DelayUntil(Stopwatch clock, TimeSpan at) => at > clock.Elapsed ? Task.Delay(at - clock.Elapsed) : Task.CompletedTask;
}

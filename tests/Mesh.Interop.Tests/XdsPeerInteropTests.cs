using System.Diagnostics;
using System.Globalization;
using System.Text;
using Mesh.Interop.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Mesh.Interop.Tests;

/// <summary>
/// The control plane drives independent, real xDS clients: @grpc/grpc-js-xds (Node) and gRPC
/// C-core (Debian python3-grpcio). Each test writes Istio YAML into a fresh folder, starts the
/// control plane on an ephemeral port, runs the peer against it and checks which workload version
/// answered each call.
/// </summary>
public sealed class XdsPeerInteropTests(EchoWorkloadsFixture fixture, ITestOutputHelper output)
    : IClassFixture<EchoWorkloadsFixture>
{
    private static readonly TimeSpan PeerExitTimeout = TimeSpan.FromSeconds(45);

    public static TheoryData<string> Peers => new() { PeerKind.Node, PeerKind.Python };

    [Theory]
    [MemberData(nameof(Peers))]
    public async Task WeightedRoute_80_20_SplitsCallsBetweenSubsets(string peerName)
    {
        const int calls = 400;
        var peer = PeerKind.Get(peerName);
        using var config = new MeshConfig();
        config.WriteService(fixture.Workloads);
        config.WriteWeightedRoute(80, 20);
        await using var cp = await ControlPlaneHarness.StartAsync(config.Directory);

        using var client = PeerProcess.Start(peer, Args(MeshConfig.Target, "--count", calls, "--deadline-ms", 40_000), PeerKind.Environment(MeshConfig.Bootstrap(cp.Port)));
        var exited = await client.WaitForExitAsync(PeerExitTimeout);
        var results = client.Calls;
        var diag = Diagnostics(client, cp, config);

        Assert.True(exited, "peer did not exit in time\n" + diag);
        Assert.True(results.Count == calls, $"expected {calls} call lines, got {results.Count}{FirstError(results)}\n" + diag);
        Assert.True(results.All(c => c.Ok), $"{results.Count(c => !c.Ok)} of {calls} calls failed\n" + diag);
        var v1 = results.Count(c => c.Version == "v1");
        var v2 = results.Count(c => c.Version == "v2");
        var share = 100.0 * v1 / calls;
        output.WriteLine($"{peerName}: {calls} calls, v1={v1} v2={v2}, v1 share {share:F1}% (target 80 +/- 8), {client.Elapsed.TotalSeconds:F1}s");
        Assert.Equal(calls, v1 + v2);
        Assert.True(Math.Abs(share - 80) <= 8, $"v1 share {share:F1}% is not within 80 +/- 8 (v1={v1}, v2={v2})\n" + diag);

        // Subset v1 has two endpoints: round robin inside the cluster reaches both.
        var v1Workloads = results.Where(c => c.Version == "v1").Select(c => c.Workload).Distinct().Order().ToList();
        Assert.Equal(["echo-v1-0", "echo-v1-1"], v1Workloads);
        Assert.All(results.Where(c => c.Version == "v2"), c => Assert.Equal("echo-v2-0", c.Workload));
        AssertNoControlPlaneWarnings(cp, client, config);
    }

    [Theory]
    [MemberData(nameof(Peers))]
    public async Task HeaderMatchRoute_SendsMatchingCallsToV2AndOthersToV1(string peerName)
    {
        const int calls = 60;
        var peer = PeerKind.Get(peerName);
        using var config = new MeshConfig();
        config.WriteService(fixture.Workloads);
        config.WriteHeaderRoute();
        await using var cp = await ControlPlaneHarness.StartAsync(config.Directory);

        var env = PeerKind.Environment(MeshConfig.Bootstrap(cp.Port));
        using var withHeader = PeerProcess.Start(peer, Args(MeshConfig.Target, "--count", calls, "--metadata", "x-route=v2"), env);
        using var otherHeader = PeerProcess.Start(peer, Args(MeshConfig.Target, "--count", calls, "--metadata", "x-route=v1"), env);
        using var noHeader = PeerProcess.Start(peer, Args(MeshConfig.Target, "--count", calls), env);

        foreach (var (name, client, expected) in new[] { ("x-route: v2", withHeader, "v2"), ("x-route: v1", otherHeader, "v1"), ("no header", noHeader, "v1") })
        {
            var exited = await client.WaitForExitAsync(PeerExitTimeout);
            var results = client.Calls;
            var diag = Diagnostics(client, cp, config);
            Assert.True(exited, $"[{name}] peer did not exit in time\n" + diag);
            Assert.True(results.Count == calls, $"[{name}] expected {calls} call lines, got {results.Count}{FirstError(results)}\n" + diag);
            Assert.True(results.All(c => c.Ok), $"[{name}] {results.Count(c => !c.Ok)} of {calls} calls failed\n" + diag);
            var versions = string.Join(", ", results.GroupBy(c => c.Version).Select(g => $"{g.Key}={g.Count()}"));
            output.WriteLine($"{peerName} [{name}]: {versions}");
            Assert.True(results.All(c => c.Version == expected), $"[{name}] expected every call on {expected}, got {versions}\n" + diag);
        }

        // The header reached the workload unchanged: the route matched on what was really sent.
        Assert.All(withHeader.Calls, c => Assert.Equal("v2", c.Headers.GetValueOrDefault("x-route")));
        Assert.All(noHeader.Calls, c => Assert.False(c.Headers.ContainsKey("x-route")));
        AssertNoControlPlaneWarnings(cp, withHeader, config);
    }

    [Theory]
    [MemberData(nameof(Peers))]
    public async Task LiveRouteChange_RunningClientSwitchesFromV1ToV2(string peerName)
    {
        const int lastK = 20;
        var switchBudget = TimeSpan.FromSeconds(10);
        var peer = PeerKind.Get(peerName);
        using var config = new MeshConfig();
        config.WriteService(fixture.Workloads);
        config.WriteSingleRoute("v1");
        await using var cp = await ControlPlaneHarness.StartAsync(config.Directory);

        using var client = PeerProcess.Start(
            peer,
            Args(MeshConfig.Target, "--stream", "--interval-ms", 25, "--max-duration-ms", 40_000, "--deadline-ms", 45_000),
            PeerKind.Environment(MeshConfig.Bootstrap(cp.Port)));

        var warmedUp = await client.WaitUntilAsync(c => c.Count(x => x.Ok) >= 10, TimeSpan.FromSeconds(20));
        Assert.True(warmedUp, "peer made no 10 successful calls on the initial config\n" + Diagnostics(client, cp, config));
        var before = client.Calls;
        Assert.True(before.Where(c => c.Ok).All(c => c.Version == "v1"), "calls before the change did not all go to v1\n" + Diagnostics(client, cp, config));

        var changedAt = client.Elapsed;
        var clock = Stopwatch.StartNew();
        config.WriteSingleRoute("v2");
        var switched = await client.WaitUntilAsync(
            c => c.Count >= lastK && c.Skip(c.Count - lastK).All(x => x.Ok && x.Version == "v2"),
            switchBudget);
        var switchTime = clock.Elapsed;
        client.CloseStdin();
        var exited = await client.WaitForExitAsync(TimeSpan.FromSeconds(15));
        var all = client.Calls;
        var diag = Diagnostics(client, cp, config);

        var firstV2 = all.FirstOrDefault(c => c.Ok && c.Version == "v2");
        var failedAfterChange = all.Count(c => !c.Ok && c.At >= changedAt);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{peerName}: {before.Count} calls before the change; first v2 answer {(firstV2 is null ? "never" : ((firstV2.At - changedAt).TotalMilliseconds.ToString("F0", CultureInfo.InvariantCulture) + " ms"))} after the rewrite; last {lastK} all v2 after {switchTime.TotalMilliseconds:F0} ms; {all.Count} calls in total, {failedAfterChange} failed after the change"));

        Assert.True(switched, $"the running client did not switch to v2 within {switchBudget.TotalSeconds} s\n" + diag);
        Assert.True(exited, "peer did not exit after stdin was closed\n" + diag);
        Assert.Equal("stdin-closed", client.Done?.GetProperty("reason").GetString());
        Assert.True(all.Where(c => c.At < changedAt).All(c => c.Ok && c.Version == "v1"), "a call before the change was not answered by v1\n" + diag);
        Assert.True(failedAfterChange == 0, $"{failedAfterChange} calls failed during the switch\n" + diag);
        // Once switched, the client never goes back to v1.
        var firstV2Index = all.ToList().IndexOf(firstV2!);
        Assert.True(all.Skip(firstV2Index).All(c => c.Version == "v2"), "the client answered from v1 after it had switched to v2\n" + diag);
        AssertNoControlPlaneWarnings(cp, client, config);
    }

    [Theory]
    [MemberData(nameof(Peers))]
    public async Task ShortServiceName_ResolvesToTheSameService(string peerName)
    {
        const int calls = 20;
        var peer = PeerKind.Get(peerName);
        using var config = new MeshConfig();
        config.WriteService(fixture.Workloads);
        config.WriteSingleRoute("v2");
        await using var cp = await ControlPlaneHarness.StartAsync(config.Directory);

        using var client = PeerProcess.Start(peer, Args($"xds:///echo:{MeshConfig.Port}", "--count", calls), PeerKind.Environment(MeshConfig.Bootstrap(cp.Port)));
        var exited = await client.WaitForExitAsync(PeerExitTimeout);
        var results = client.Calls;
        var diag = Diagnostics(client, cp, config);

        Assert.True(exited, "peer did not exit in time\n" + diag);
        Assert.True(results.Count == calls && results.All(c => c.Ok), $"xds:///echo:{MeshConfig.Port}: {results.Count(c => c.Ok)} of {calls} calls succeeded\n" + diag);
        Assert.True(results.All(c => c.Version == "v2"), "short-name calls did not follow the VirtualService to v2\n" + diag);
        AssertNoControlPlaneWarnings(cp, client, config);
    }

    [Theory]
    [MemberData(nameof(Peers))]
    public async Task InvalidConfig_RunningClientKeepsLastGoodRoutes(string peerName)
    {
        var peer = PeerKind.Get(peerName);
        using var config = new MeshConfig();
        config.WriteService(fixture.Workloads);
        config.WriteSingleRoute("v1");
        await using var cp = await ControlPlaneHarness.StartAsync(config.Directory);

        using var client = PeerProcess.Start(
            peer,
            Args(MeshConfig.Target, "--stream", "--interval-ms", 25, "--max-duration-ms", 40_000, "--deadline-ms", 45_000),
            PeerKind.Environment(MeshConfig.Bootstrap(cp.Port)));
        Assert.True(await client.WaitUntilAsync(c => c.Count(x => x.Ok) >= 10, TimeSpan.FromSeconds(20)),
            "peer made no 10 successful calls on the initial config\n" + Diagnostics(client, cp, config));

        // Two broken VirtualServices in turn: a YAML syntax error (unclosed '[' at the end of the file)
        // and a weight that is no number. Each is rejected with its file and line; the running
        // client keeps the last good routes.
        string[] broken =
        [
            """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: echo
              namespace: default
            spec:
              hosts: [echo.default.svc.cluster.local
            """,
            """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: echo
              namespace: default
            spec:
              hosts:
              - echo.default.svc.cluster.local
              http:
              - route:
                - destination:
                    host: echo.default.svc.cluster.local
                    subset: v2
                  weight: eighty
            """,
        ];
        var firstRejectedAt = TimeSpan.MaxValue;
        var previousError = string.Empty;
        foreach (var content in broken)
        {
            config.WriteRawRoute(content);
            var rejected = Stopwatch.StartNew();
            while ((cp.ControlPlane.ConfigErrors.Count == 0 || cp.ControlPlane.ConfigErrors[0].ToString() == previousError)
                && rejected.Elapsed < TimeSpan.FromSeconds(10))
            {
                await Task.Delay(20);
            }

            var errors = cp.ControlPlane.ConfigErrors;
            Assert.True(errors.Count == 1 && errors[0].ToString() != previousError,
                $"the broken file was not reported as a config error:\n{content}\n" + Diagnostics(client, cp, config));
            Assert.EndsWith("virtualservice.yaml", errors[0].File);
            Assert.True(errors[0].Line > 0, $"config error without a line: {errors[0]}");
            output.WriteLine($"{peerName}: rejected: {errors[0]}");
            previousError = errors[0].ToString();
            if (firstRejectedAt == TimeSpan.MaxValue)
            {
                firstRejectedAt = client.Elapsed;
            }

            // Keep calling for a while on the last good config.
            var callsAtReject = client.Calls.Count;
            Assert.True(await client.WaitUntilAsync(c => c.Count >= callsAtReject + 20, TimeSpan.FromSeconds(10)),
                "peer stopped calling after the broken file\n" + Diagnostics(client, cp, config));
        }

        var afterReject = client.Calls.Where(c => c.At >= firstRejectedAt).ToList();
        Assert.True(afterReject.All(c => c.Ok && c.Version == "v1"),
            "calls after the broken files did not all go to v1 unchanged\n" + Diagnostics(client, cp, config));

        // The next good file is served again.
        config.WriteSingleRoute("v2");
        var switched = await client.WaitUntilAsync(
            c => c.Count >= 20 && c.Skip(c.Count - 20).All(x => x.Ok && x.Version == "v2"),
            TimeSpan.FromSeconds(10));
        client.CloseStdin();
        await client.WaitForExitAsync(TimeSpan.FromSeconds(15));
        var diag = Diagnostics(client, cp, config);
        output.WriteLine($"{peerName}: error reported; {afterReject.Count} calls on the last good config, all v1; switched to v2 after the fix: {switched}; {client.Calls.Count(c => !c.Ok)} failed calls");
        Assert.True(switched, "the client did not follow the corrected file to v2\n" + diag);
        Assert.True(client.Calls.All(c => c.Ok), "calls failed\n" + diag);
        Assert.Empty(cp.ControlPlane.ConfigErrors);

        // The only warnings are the file rejection itself: no peer NACKed anything.
        var unexpected = cp.Warnings.Where(w => !w.Category.EndsWith(".ConfigStore", StringComparison.Ordinal)).ToList();
        Assert.True(unexpected.Count == 0, $"unexpected control plane warnings:\n{string.Join("\n", unexpected)}\n" + diag);
    }

    [Theory]
    [MemberData(nameof(Peers))]
    public async Task WorkloadEntryRemoved_RunningClientStopsCallingIt(string peerName)
    {
        var peer = PeerKind.Get(peerName);
        using var config = new MeshConfig();
        config.WriteService(fixture.Workloads);
        config.WriteSingleRoute("v1");
        await using var cp = await ControlPlaneHarness.StartAsync(config.Directory);

        using var client = PeerProcess.Start(
            peer,
            Args(MeshConfig.Target, "--stream", "--interval-ms", 25, "--max-duration-ms", 40_000, "--deadline-ms", 45_000),
            PeerKind.Environment(MeshConfig.Bootstrap(cp.Port)));
        var bothSeen = await client.WaitUntilAsync(
            c => c.Any(x => x.Workload == "echo-v1-0") && c.Any(x => x.Workload == "echo-v1-1"),
            TimeSpan.FromSeconds(20));
        Assert.True(bothSeen, "round robin did not reach both v1 endpoints\n" + Diagnostics(client, cp, config));

        var removedAt = client.Elapsed;
        var clock = Stopwatch.StartNew();
        config.WriteService(fixture.Workloads.Where(w => w.Name != "echo-v1-1"));
        var followed = await client.WaitUntilAsync(
            c => c.Count >= 20 && c.Skip(c.Count - 20).All(x => x.Ok && x.Workload == "echo-v1-0"),
            TimeSpan.FromSeconds(10));
        var took = clock.Elapsed;
        client.CloseStdin();
        await client.WaitForExitAsync(TimeSpan.FromSeconds(15));
        var diag = Diagnostics(client, cp, config);
        var lastToRemoved = client.Calls.LastOrDefault(c => c.Workload == "echo-v1-1");
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{peerName}: endpoint removed; last call to it {(lastToRemoved is null ? "none" : ((lastToRemoved.At - removedAt).TotalMilliseconds.ToString("F0", CultureInfo.InvariantCulture) + " ms"))} after the rewrite; last 20 on the remaining endpoint after {took.TotalMilliseconds:F0} ms"));
        Assert.True(followed, "the running client kept calling the removed endpoint\n" + diag);
        Assert.True(client.Calls.All(c => c.Ok), "calls failed\n" + diag);
        AssertNoControlPlaneWarnings(cp, client, config);
    }

    /// <summary>The peers accepted every resource: the control plane logged no NACK and no other warning.</summary>
    private static void AssertNoControlPlaneWarnings(ControlPlaneHarness cp, PeerProcess client, MeshConfig config)
    {
        var warnings = cp.Warnings;
        Assert.True(warnings.Count == 0, $"the control plane logged {warnings.Count} warnings (NACKs?):\n{string.Join("\n", warnings)}\n" + Diagnostics(client, cp, config));
    }

    private static string FirstError(IReadOnlyList<PeerCall> results) =>
        results.FirstOrDefault(c => !c.Ok) is { } failed ? $"; first error (code {failed.Code}): {failed.Error}" : string.Empty;

    private static List<string> Args(string target, params object[] rest)
    {
        var args = new List<string> { "--proto", RepoPaths.EchoProto, "--target", target, "--call-timeout-ms", "5000" };
        args.AddRange(rest.Select(static o => Convert.ToString(o, CultureInfo.InvariantCulture)!));
        return args;
    }

    private static string Diagnostics(PeerProcess client, ControlPlaneHarness cp, MeshConfig config)
    {
        var sb = new StringBuilder();
        sb.AppendLine(client.Diagnostics());
        sb.AppendLine("--- control plane log:");
        sb.AppendLine(cp.Log());
        sb.AppendLine("--- config:");
        sb.AppendLine(config.Dump());
        return sb.ToString();
    }
}

using System.Text.Json;
using Mesh.EndToEnd.Tests.Infrastructure;

namespace Mesh.EndToEnd.Tests;

/// <summary>
/// <c>mesh-controlplane --monitoring-port 0</c> as a user runs it: the monitoring port is logged, counts the meshed app
/// connected to it, scrapes it, and draws its traffic in <c>/graph</c> and <c>/dotviz</c>.
/// </summary>
public sealed class MonitoringPortEndToEndTests : IAsyncLifetime
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(15) };
    private readonly string _config = Directory.CreateTempSubdirectory("mesh-e2e-monitoring-").FullName;
    private readonly List<DotnetProcess> _processes = [];

    private string Logs() => string.Join("\n\n", _processes.Select(static p => $"--- {p.Name}\n{p.Output()}"));

    [Fact]
    public async Task MonitoringPortFlag_ServesMetricsGraphAndDotviz_OfTheRegisteredApp()
    {
        var controlPlane = DotnetProcess.Start("control-plane", Paths.ControlPlane, ["--config", _config, "--xds-port", "0", "--monitoring-port", "0"],
            new Dictionary<string, string>());
        _processes.Add(controlPlane);
        var xds = await controlPlane.WaitForLineAsync(@"xDS server listening on .*\(port (\d+)\)", ProcessGroup.StartTimeout);
        var monitoringLine = await controlPlane.WaitForLineAsync(@"Monitoring listening on 'http://127\.0\.0\.1:(\d+)/' \(port (\d+)\)", ProcessGroup.StartTimeout);
        var monitoring = new Uri($"http://127.0.0.1:{monitoringLine.Groups[2].Value}/");

        var app = DotnetProcess.Start("web", Paths.TestServer, [], new Dictionary<string, string>
        {
            ["ASPNETCORE_URLS"] = "http://127.0.0.1:0",
            ["Mesh__XdsServer"] = $"127.0.0.1:{xds.Groups[1].Value}",
            ["Mesh__ServiceName"] = "web",
            ["Mesh__ServiceAccount"] = "web",
            ["Mesh__Labels__app"] = "web",
            ["Mesh__Labels__version"] = "v1",
        });
        _processes.Add(app);
        var port = await app.WaitForListeningPortAsync(ProcessGroup.StartTimeout);

        // The app connected: pilot_xds counts it, and the graph knows its workload before any traffic.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!(await Http.GetStringAsync(new Uri(monitoring, "metrics"))).Contains("pilot_xds{version=", StringComparison.Ordinal)
            || !(await Http.GetStringAsync(new Uri(monitoring, "graph"))).Contains("\"default/web/v1\"", StringComparison.Ordinal))
        {
            Assert.True(DateTime.UtcNow < deadline, Logs());
            await Task.Delay(300);
        }

        // Traffic from outside the mesh, counted by web itself, scraped every 5 s (the default) by the control plane.
        const int Calls = 10;
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        double requests;
        do
        {
            for (var i = 0; i < Calls; i++)
            {
                Assert.StartsWith("web /hello", await Http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/hello")), StringComparison.Ordinal);
            }

            await Task.Delay(1000);
            using var graph = JsonDocument.Parse(await Http.GetStringAsync(new Uri(monitoring, "graph")));
            requests = graph.RootElement.GetProperty("edges").EnumerateArray()
                .Where(e => e.GetProperty("source").GetString() == "unknown" && e.GetProperty("target").GetString() == "default/web/v1")
                .Sum(e => e.GetProperty("requests").GetDouble());
            Assert.True(DateTime.UtcNow < deadline, $"no traffic in the graph\n{Logs()}");
        }
        while (requests < Calls);

        var metrics = await Http.GetStringAsync(new Uri(monitoring, "metrics"));
        Assert.Contains("pilot_xds{version=", metrics, StringComparison.Ordinal);
        Assert.Matches(@"pilot_xds_pushes\{type=""lds""\} [1-9]", metrics);
        var dot = await Http.GetStringAsync(new Uri(monitoring, "dotviz"));
        Assert.Contains("\n\"unknown\" -> \"web\" [label=\"reqs/sec: ", dot, StringComparison.Ordinal);
        Assert.Contains("\n\"web\" [label=\"web (web)\"];\n", dot, StringComparison.Ordinal);
        Assert.Contains(">Mesh service graph</h1>", await Http.GetStringAsync(monitoring), StringComparison.Ordinal);
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var process in Enumerable.Reverse(_processes))
        {
            await process.DisposeAsync();
        }

        try
        {
            Directory.Delete(_config, recursive: true);
        }
        catch (IOException)
        {
            // A temp folder left behind is harmless.
        }
    }
}

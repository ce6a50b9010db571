using System.Diagnostics;
using System.Globalization;
using System.Net;
using Mesh.Sdk.FunctionalTests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace Mesh.Sdk.FunctionalTests.Http;

/// <summary>
/// Envoy's route timeout lasts until the end of the response: against a real Kestrel backend that sends the
/// response headers at once and then dribbles the body, a body still arriving when the route timeout elapses fails
/// to read after about the timeout, and its circuit-breaker slots are given back; a body that ends in time reads fine.
/// </summary>
public sealed class HttpRouteTimeoutBodyTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const string Fqdn = "dribble.default.svc.cluster.local";
    private const string Listener = Fqdn + ":9080";
    private const string Cluster = "outbound|9080||" + Fqdn;
    private const string BaseUrl = "http://dribble:9080";
    private static readonly TimeSpan RouteTimeout = TimeSpan.FromMilliseconds(500);

    private MeshHarness _mesh = null!;
    private WebApplication _backend = null!;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http1));
        _backend = builder.Build();
        _backend.Run(DribbleAsync);
        await _backend.StartAsync();
        var port = new Uri(_backend.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single()).Port;

        _mesh = await MeshHarness.StartAsync();
        _mesh.WriteAtomically("dribble.yaml", string.Create(CultureInfo.InvariantCulture, $$"""
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: dribble, namespace: default}
            spec:
              hosts: [{{Fqdn}}]
              location: MESH_INTERNAL
              ports: [{number: 9080, name: http, protocol: HTTP}]
              resolution: STATIC
              workloadSelector:
                labels: {app: dribble}
            ---
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: dribble-1, namespace: default}
            spec:
              address: 127.0.0.1
              ports:
                http: {{port}}
              labels: {app: dribble}
            ---
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: dribble, namespace: default}
            spec:
              hosts: [{{Fqdn}}]
              http:
              - name: timed
                match:
                - uri: {prefix: /timed/}
                timeout: 500ms
                route:
                - destination:
                    host: {{Fqdn}}
              - name: untimed
                route:
                - destination:
                    host: {{Fqdn}}
            """));
        await WaitForRoutesAsync();
    }

    public async Task DisposeAsync()
    {
        if (_mesh is not null)
        {
            await _mesh.DisposeAsync();
        }

        if (_backend is not null)
        {
            await _backend.StopAsync();
            await _backend.DisposeAsync();
        }
    }

    [Fact]
    public async Task StreamedBody_StillArrivingAtTheRouteTimeout_FailsAfterAboutTheTimeout_AndReleasesItsSlots()
    {
        // 30 chunks, one every 100 ms: the body would take about 3 s.
        var clock = Stopwatch.StartNew();
        using var response = await _mesh.Http.GetAsync(BaseUrl + "/timed/slow?chunks=30&everyMs=100", HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, Held().Requests);

        await using var body = await response.Content.ReadAsStreamAsync();
        var buffer = new byte[64];
        var read = 0;
        var error = await Assert.ThrowsAsync<HttpIOException>(async () =>
        {
            int n;
            while ((n = await body.ReadAsync(buffer)) > 0)
            {
                read += n;
            }
        });
        var elapsed = clock.Elapsed;
        output.WriteLine($"read {read} bytes, failed after {elapsed.TotalMilliseconds:F0} ms: {error.Message}");

        Assert.InRange(elapsed, RouteTimeout - TimeSpan.FromMilliseconds(50), RouteTimeout + TimeSpan.FromMilliseconds(1500));
        Assert.InRange(read, 2, 20);
        Assert.Equal(HttpRequestError.ResponseEnded, error.HttpRequestError);
        Assert.Contains("route 'timed' timeout 00:00:00.5000000 elapsed before the response body", error.Message, StringComparison.Ordinal);
        Assert.IsType<TimeoutException>(error.InnerException);
        Assert.Equal((0L, 0L), Held());
    }

    [Fact]
    public async Task SynchronousRead_StillWaitingAtTheRouteTimeout_FailsAfterAboutTheTimeout()
    {
        var clock = Stopwatch.StartNew();
        using var response = await _mesh.Http.GetAsync(BaseUrl + "/timed/sync?chunks=30&everyMs=100", HttpCompletionOption.ResponseHeadersRead);
        using var body = response.Content.ReadAsStream();
        var buffer = new byte[64];
        var error = Assert.Throws<HttpIOException>(() =>
        {
            while (body.Read(buffer, 0, buffer.Length) > 0)
            {
            }
        });
        var elapsed = clock.Elapsed;
        output.WriteLine($"failed after {elapsed.TotalMilliseconds:F0} ms: {error.Message}");

        Assert.InRange(elapsed, RouteTimeout - TimeSpan.FromMilliseconds(50), RouteTimeout + TimeSpan.FromMilliseconds(1500));
        Assert.Contains("route 'timed' timeout 00:00:00.5000000 elapsed", error.Message, StringComparison.Ordinal);
        Assert.Equal((0L, 0L), Held());
    }

    [Fact]
    public async Task BufferedBody_StillArrivingAtTheRouteTimeout_FailsTheCall_AndReleasesItsSlots()
    {
        var clock = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<HttpRequestException>(() => _mesh.Http.GetStringAsync(BaseUrl + "/timed/buffered?chunks=30&everyMs=100"));
        var elapsed = clock.Elapsed;
        output.WriteLine($"failed after {elapsed.TotalMilliseconds:F0} ms: {error}");

        Assert.InRange(elapsed, RouteTimeout - TimeSpan.FromMilliseconds(50), RouteTimeout + TimeSpan.FromMilliseconds(1500));
        var inner = Assert.IsType<HttpIOException>(error.InnerException);
        Assert.Contains("route 'timed' timeout 00:00:00.5000000 elapsed", inner.Message, StringComparison.Ordinal);
        Assert.Equal((0L, 0L), Held());
    }

    [Fact]
    public async Task BodyEndingWithinTheRouteTimeout_ReadsFine_BothWays()
    {
        // 4 chunks 50 ms apart: the body ends after about 150 ms, well inside 500 ms.
        Assert.Equal("0\n1\n2\n3\n", await _mesh.Http.GetStringAsync(BaseUrl + "/timed/quick?chunks=4&everyMs=50"));
        Assert.Equal((0L, 0L), Held());

        using var response = await _mesh.Http.GetAsync(BaseUrl + "/timed/quick?chunks=4&everyMs=50", HttpCompletionOption.ResponseHeadersRead);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        Assert.Equal("0\n1\n2\n3\n", await reader.ReadToEndAsync());
        Assert.Equal((0L, 0L), Held());
    }

    [Fact]
    public async Task RouteWithoutTimeout_DoesNotBoundTheBody()
    {
        // 8 chunks 100 ms apart (about 700 ms, past the other route's 500 ms) on the route without a timeout.
        var clock = Stopwatch.StartNew();
        var text = await _mesh.Http.GetStringAsync(BaseUrl + "/untimed?chunks=8&everyMs=100");
        Assert.Equal(string.Concat(Enumerable.Range(0, 8).Select(i => i + "\n")), text);
        Assert.True(clock.Elapsed > RouteTimeout, $"the body took {clock.Elapsed}");
        Assert.Equal((0L, 0L), Held());
    }

    /// <summary>Headers and the first chunk at once, then one line per interval, each flushed.</summary>
    private static async Task DribbleAsync(HttpContext context)
    {
        var chunks = int.Parse(context.Request.Query["chunks"].ToString(), CultureInfo.InvariantCulture);
        var every = TimeSpan.FromMilliseconds(int.Parse(context.Request.Query["everyMs"].ToString(), CultureInfo.InvariantCulture));
        context.Response.ContentType = "text/plain";
        try
        {
            await context.Response.StartAsync(context.RequestAborted);
            for (var i = 0; i < chunks; i++)
            {
                if (i > 0)
                {
                    await Task.Delay(every, context.RequestAborted);
                }

                await context.Response.WriteAsync(i.ToString(CultureInfo.InvariantCulture) + "\n", context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
            }
        }
        catch (OperationCanceledException)
        {
            // The client went away (the route timeout ended the body).
        }
    }

    private (long Requests, long Connections) Held()
    {
        Assert.True(_mesh.Runtime.Clusters.TryGetCluster(Cluster, out var cluster), $"cluster '{Cluster}' is not known");
        return (cluster.CircuitBreakers.Default.Requests.Count, cluster.CircuitBreakers.Default.Connections.Count);
    }

    private async Task WaitForRoutesAsync()
    {
        using var cts = new CancellationTokenSource(MeshHarness.ApplyTimeout);
        try
        {
            await _mesh.Runtime.ResolveListenerAsync("dribble", 9080, cts.Token);
        }
        catch (TimeoutException)
        {
            // Polled below.
        }

        await _mesh.WaitUntilAsync(
            () => _mesh.Runtime.Routes.TryGetTable(Listener, out var table)
                  && _mesh.Runtime.Snapshots.Current.IsComplete(Listener)
                  && table.VirtualHosts.Any(h => h.Routes.Any(r => r.Name == "timed")),
            "the dribble routes reaching the client");
    }
}

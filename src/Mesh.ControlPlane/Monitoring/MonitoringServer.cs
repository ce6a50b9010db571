using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mesh.ControlPlane.Monitoring;

/// <summary>
/// The monitoring port (istiod's is 15014), plaintext HTTP/1.1 on the xDS address: <c>/metrics</c> (the control
/// plane's own metrics), <c>/graph</c> (the service graph as JSON), <c>/dotviz</c> (the same in Graphviz DOT) and
/// <c>/</c> or <c>/dashboard</c> (a self-contained page drawing the live graph).
/// </summary>
internal sealed partial class MonitoringServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly IGraphSource _source;
    private readonly ILogger _logger;

    private MonitoringServer(WebApplication app, IGraphSource source, ILogger logger)
    {
        _app = app;
        _source = source;
        _logger = logger;
    }

    public int Port { get; private set; }

    public static async Task<MonitoringServer> StartAsync(string address, int port, ControlPlaneMetrics metrics, IGraphSource source, TimeProvider time,
        ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton<IHostLifetime, EmbeddedLifetime>();
        builder.WebHost.ConfigureKestrel(k =>
        {
            if (address == "localhost")
            {
                k.ListenLocalhost(port);
            }
            else
            {
                k.Listen(IPAddress.Parse(address), port);
            }
        });
        var app = builder.Build();
        var server = new MonitoringServer(app, source, loggerFactory.CreateLogger<MonitoringServer>());
        app.MapGet("/metrics", async context =>
        {
            context.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            await metrics.Registry.CollectAndExportAsTextAsync(context.Response.Body, context.RequestAborted).ConfigureAwait(false);
        });
        app.MapGet("/graph", context => server.WriteGraphAsync(context, time, json: true));
        app.MapGet("/dotviz", context => server.WriteGraphAsync(context, time, json: false));
        app.MapGet("/", WriteDashboardAsync);
        app.MapGet("/dashboard", WriteDashboardAsync);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.Port = new Uri(bound).Port;
        return server;
    }

    private async Task WriteGraphAsync(HttpContext context, TimeProvider time, bool json)
    {
        GraphInput input;
        try
        {
            input = await _source.ReadAsync(context.RequestAborted).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is HttpRequestException or InvalidOperationException or System.Text.Json.JsonException
            or TaskCanceledException && !context.RequestAborted.IsCancellationRequested)
        {
            Log.GraphFailed(_logger, ex.Message);
            context.Response.StatusCode = StatusCodes.Status502BadGateway;
            context.Response.ContentType = "text/plain; charset=utf-8";
            await context.Response.WriteAsync($"The service graph's data source failed: {ex.Message}\n", context.RequestAborted).ConfigureAwait(false);
            return;
        }

        var graph = ServiceGraph.Build(input, time.GetUtcNow());
        context.Response.Headers.CacheControl = "no-store";
        if (json)
        {
            context.Response.ContentType = "application/json";
            await context.Response.Body.WriteAsync(graph.ToJson(), context.RequestAborted).ConfigureAwait(false);
        }
        else
        {
            context.Response.ContentType = "text/vnd.graphviz; charset=utf-8";
            await context.Response.WriteAsync(graph.ToDot(), context.RequestAborted).ConfigureAwait(false);
        }
    }

    private static async Task WriteDashboardAsync(HttpContext context)
    {
        context.Response.ContentType = "text/html; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        await using var page = typeof(MonitoringServer).Assembly.GetManifestResourceStream("Mesh.ControlPlane.Monitoring.dashboard.html")
            ?? throw new InvalidOperationException("The dashboard page is missing from the assembly's resources.");
        await page.CopyToAsync(context.Response.Body, context.RequestAborted).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await _app.StopAsync(timeout.Token).ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
    }

    private static partial class Log
    {
        [LoggerMessage(8302, LogLevel.Warning, "The service graph could not be computed: {Reason}")]
        public static partial void GraphFailed(ILogger logger, string reason);
    }
}

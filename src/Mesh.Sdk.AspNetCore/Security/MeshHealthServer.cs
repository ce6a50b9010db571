using System.Net;
using Mesh.Sdk.AspNetCore.Telemetry;
using Mesh.Sdk.Telemetry;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Mesh.Sdk.AspNetCore.Security;

/// <summary>
/// The app's server, plus, when <see cref="MeshOptions.HealthPort"/> is set, a second Kestrel server on
/// <c>127.0.0.1:&lt;HealthPort&gt;</c> that hands the app's own pipeline only the requests for
/// <see cref="MeshOptions.HealthPaths"/> (404 for any other path). That port is plaintext and no mesh endpoint (not
/// registered, no mTLS, no policy), so health checks keep working when the app's ports are STRICT, as Istio's probe
/// rewrite lets kubelet reach them. The app's endpoints (<c>ASPNETCORE_URLS</c>, <c>app.Urls</c>, Kestrel
/// configuration) are left exactly as declared, because the health port is not one of them.
/// </summary>
internal sealed partial class MeshHealthServer(IServer inner, IOptions<MeshOptions> options, IServiceProvider services, ILoggerFactory loggerFactory) : IServer
{
    private KestrelServer? _health;
    private KestrelServer? _metrics;

    public IFeatureCollection Features => inner.Features;

    /// <summary>The port the health server bound (resolves 0), or <see langword="null"/> when there is none.</summary>
    public int? BoundPort { get; private set; }

    /// <summary>The port the metrics server bound (<c>Mesh:Telemetry:MetricsPort</c>, resolves 0), or <see langword="null"/> when there is none.</summary>
    public int? MetricsBoundPort { get; private set; }

    public async Task StartAsync<TContext>(IHttpApplication<TContext> application, CancellationToken cancellationToken)
        where TContext : notnull
    {
        await inner.StartAsync(application, cancellationToken).ConfigureAwait(false);
        if (options.Value.Telemetry.MetricsPort is { } metricsPort && services.GetService(typeof(MeshMetrics)) is MeshMetrics metrics)
        {
            (_metrics, var bound) = await MeshMetricsServer.StartAsync(metricsPort, options.Value.Telemetry.MetricsPath, metrics, services, loggerFactory, cancellationToken).ConfigureAwait(false);
            MetricsBoundPort = bound;
            Log.MetricsListening(loggerFactory.CreateLogger<MeshHealthServer>(), bound, options.Value.Telemetry.MetricsPath);
        }

        if (options.Value.HealthPort is not { } port)
        {
            return;
        }

        var kestrel = new KestrelServerOptions { ApplicationServices = services };
        kestrel.Listen(IPAddress.Loopback, port);
        var transport = new SocketTransportFactory(Options.Create(new SocketTransportOptions()), loggerFactory);
        var health = new KestrelServer(Options.Create(kestrel), transport, loggerFactory);
        var paths = new HashSet<string>(options.Value.HealthPaths, StringComparer.OrdinalIgnoreCase);
        await health.StartAsync(new HealthApplication<TContext>(application, paths), cancellationToken).ConfigureAwait(false);
        _health = health;
        var address = health.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        BoundPort = address is null ? port : BindingAddress.Parse(address).Port;
        Log.Listening(loggerFactory.CreateLogger<MeshHealthServer>(), BoundPort.Value, string.Join(", ", paths));
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_health is { } health)
        {
            await health.StopAsync(cancellationToken).ConfigureAwait(false);
        }

        if (_metrics is { } metrics)
        {
            await metrics.StopAsync(cancellationToken).ConfigureAwait(false);
        }

        await inner.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    public void Dispose()
    {
        _health?.Dispose();
        _metrics?.Dispose();
        inner.Dispose();
    }

    /// <summary>Marks a request that came in on the health port: the inbound mesh middleware leaves it alone.</summary>
    internal sealed class HealthRequestFeature
    {
        public static readonly HealthRequestFeature Instance = new();
    }

    /// <summary>The app's pipeline behind a path filter: health paths reach it, others get 404 without it.</summary>
    private sealed class HealthApplication<TContext>(IHttpApplication<TContext> app, HashSet<string> paths) : IHttpApplication<HealthContext<TContext>>
        where TContext : notnull
    {
        public HealthContext<TContext> CreateContext(IFeatureCollection contextFeatures)
        {
            var path = contextFeatures.Get<IHttpRequestFeature>()?.Path ?? string.Empty;
            if (!paths.Contains(path))
            {
                return new HealthContext<TContext>(contextFeatures, default, Allowed: false);
            }

            contextFeatures.Set(HealthRequestFeature.Instance);
            return new HealthContext<TContext>(contextFeatures, app.CreateContext(contextFeatures), Allowed: true);
        }

        public Task ProcessRequestAsync(HealthContext<TContext> context)
        {
            if (!context.Allowed)
            {
                context.Features.Get<IHttpResponseFeature>()!.StatusCode = 404;
                return Task.CompletedTask;
            }

            return app.ProcessRequestAsync(context.Inner!);
        }

        public void DisposeContext(HealthContext<TContext> context, Exception? exception)
        {
            if (context.Allowed)
            {
                app.DisposeContext(context.Inner!, exception);
            }
        }
    }

    private sealed record HealthContext<TContext>(IFeatureCollection Features, TContext? Inner, bool Allowed);

    private static partial class Log
    {
        [LoggerMessage(8230, LogLevel.Information, "Health port 127.0.0.1:{Port} (plaintext, not a mesh endpoint) serves {Paths}.")]
        public static partial void Listening(ILogger logger, int port, string paths);

        [LoggerMessage(8231, LogLevel.Information, "Metrics port 127.0.0.1:{Port} (plaintext, not a mesh endpoint) serves {Path}.")]
        public static partial void MetricsListening(ILogger logger, int port, string path);
    }
}

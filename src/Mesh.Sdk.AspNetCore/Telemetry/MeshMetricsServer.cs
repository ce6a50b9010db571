using System.Net;
using Mesh.Sdk.Telemetry;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Mesh.Sdk.AspNetCore.Telemetry;

/// <summary>
/// The plaintext metrics port on <c>127.0.0.1:&lt;Mesh:Telemetry:MetricsPort&gt;</c> (Istio's merged-metrics port):
/// answers <c>GET</c> of <see cref="MeshTelemetryOptions.MetricsPath"/> with the metrics in Prometheus text format
/// (prometheus-net's exporter, the workload's own registry) and
/// 404 to anything else. No mesh endpoint: not registered, no mTLS, no policy, never the app's pipeline.
/// </summary>
internal static class MeshMetricsServer
{
    public static async Task<(KestrelServer Server, int Port)> StartAsync(int port, string path, MeshMetrics metrics, IServiceProvider services, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var kestrel = new KestrelServerOptions { ApplicationServices = services };
        kestrel.Listen(IPAddress.Loopback, port);
        var transport = new SocketTransportFactory(Options.Create(new SocketTransportOptions()), loggerFactory);
        var server = new KestrelServer(Options.Create(kestrel), transport, loggerFactory);
        await server.StartAsync(new MetricsApplication(path, metrics), cancellationToken).ConfigureAwait(false);
        var address = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        return (server, address is null ? port : BindingAddress.Parse(address).Port);
    }

    private sealed class MetricsApplication(string path, MeshMetrics metrics) : IHttpApplication<IFeatureCollection>
    {
        public IFeatureCollection CreateContext(IFeatureCollection contextFeatures) => contextFeatures;

        public async Task ProcessRequestAsync(IFeatureCollection context)
        {
            var request = context.Get<IHttpRequestFeature>()!;
            var response = context.Get<IHttpResponseFeature>()!;
            if (!string.Equals(request.Method, "GET", StringComparison.OrdinalIgnoreCase)
                || !string.Equals(request.Path, path, StringComparison.OrdinalIgnoreCase))
            {
                response.StatusCode = 404;
                return;
            }

            response.StatusCode = 200;
            response.Headers.ContentType = MeshMetrics.TextContentType;
            var aborted = context.Get<IHttpRequestLifetimeFeature>()?.RequestAborted ?? CancellationToken.None;
            await metrics.WriteTextAsync(context.Get<IHttpResponseBodyFeature>()!.Stream, aborted).ConfigureAwait(false);
        }

        public void DisposeContext(IFeatureCollection context, Exception? exception)
        {
        }
    }
}

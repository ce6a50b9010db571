using Mesh.Sdk.AspNetCore.Security;
using Mesh.Sdk.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Prometheus;

namespace Mesh.Sdk.AspNetCore.Telemetry;

/// <summary>
/// The callee's half of Istio's standard metrics, outermost in the app's pipeline: every inbound request is reported
/// with <c>reporter="destination"</c>, labelled with this workload as destination and the caller as source (workload,
/// app, version and cluster from its <c>x-envoy-peer-metadata</c> header; principal and namespace from the verified mTLS
/// identity, never from the header). <c>GET /metrics</c> on the app's endpoints is answered ahead of it by
/// prometheus-net's exporter (<see cref="MeshMetricsStartupFilter"/>), so it is not itself counted. Requests that came
/// in on the health port are not mesh requests and are not counted.
/// </summary>
internal sealed class MeshMetricsMiddleware(RequestDelegate next, MeshMetrics metrics, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    public Task InvokeAsync(HttpContext context)
    {
        if (context.Features.Get<MeshHealthServer.HealthRequestFeature>() is not null)
        {
            return next(context);
        }

        return InvokeRecordedAsync(context);
    }

    private async Task InvokeRecordedAsync(HttpContext context)
    {
        var start = _time.GetTimestamp();
        GrpcMessageCounter? requests = null;
        GrpcMessageCounter? responses = null;
        if (ReferenceEquals(MeshMetrics.Protocol(context.Request.ContentType), MeshMetrics.GrpcProtocol))
        {
            // Count the call's messages as the app reads and writes them.
            var features = context.Features;
            if (features.Get<IRequestBodyPipeFeature>() is { } requestBody)
            {
                requests = new GrpcMessageCounter();
                features.Set<IRequestBodyPipeFeature>(new CountingRequestBodyPipeFeature(requestBody, requests));
            }

            if (features.Get<IHttpResponseBodyFeature>() is { } responseBody)
            {
                responses = new GrpcMessageCounter();
                features.Set<IHttpResponseBodyFeature>(new CountingResponseBodyFeature(responseBody, responses));
            }
        }

        var failed = false;
        try
        {
            await next(context).ConfigureAwait(false);
        }
        catch
        {
            failed = true;
            throw;
        }
        finally
        {
            Record(context, failed, _time.GetElapsedTime(start), requests, responses);
        }
    }

    private void Record(HttpContext context, bool failed, TimeSpan elapsed, GrpcMessageCounter? requests, GrpcMessageCounter? responses)
    {
        var request = context.Request;
        var response = context.Response;
        var header = request.Headers[MeshTelemetry.PeerMetadataHeader];
        var peer = header.Count == 1 && header[0] is { Length: > 0 } value ? metrics.Peers.Get(value) : null;
        var identity = context.Features.Get<IMeshPeerIdentityFeature>();
        var set = metrics.Inbound(peer, identity?.SpiffeId, identity?.Namespace);

        var protocol = MeshMetrics.Protocol(request.ContentType);
        var grpcStatus = string.Empty;
        if (ReferenceEquals(protocol, MeshMetrics.GrpcProtocol))
        {
            var status = response.Headers["grpc-status"];
            if (status.Count == 0 && context.Features.Get<IHttpResponseTrailersFeature>()?.Trailers is { } trailers)
            {
                status = trailers["grpc-status"];
            }

            grpcStatus = status.Count == 1 ? status[0] ?? string.Empty : string.Empty;
        }

        // An exception before the response started is answered 500 by the server.
        var code = failed && !response.HasStarted ? StatusCodes.Status500InternalServerError : response.StatusCode;
        var flags = context.Features.Get<MeshResponseFlagsFeature>()?.Flags ?? MeshMetrics.NoFlags;
        var series = set.Get(protocol, code, grpcStatus, flags);
        if (ReferenceEquals(protocol, MeshMetrics.GrpcProtocol))
        {
            metrics.Record(series, elapsed.TotalMilliseconds, requests?.Bytes ?? request.ContentLength ?? 0, responses?.Bytes ?? response.ContentLength ?? 0, requests?.Messages ?? 0, responses?.Messages ?? 0);
        }
        else
        {
            metrics.Record(series, elapsed.TotalMilliseconds, request.ContentLength ?? 0, response.ContentLength ?? 0);
        }
    }
}

/// <summary>
/// Puts <see cref="MeshMetricsMiddleware"/> in front of the app's pipeline when metrics are on, and ahead of it, unless
/// <c>Mesh:Telemetry:MetricsPort</c> serves them elsewhere, prometheus-net's exporter for <c>GET</c> of the metrics
/// path (Prometheus text 0.0.4 from the workload's own registry).
/// </summary>
internal sealed class MeshMetricsStartupFilter(IServiceProvider services) : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next)
    {
        ArgumentNullException.ThrowIfNull(next);
        return app =>
        {
            if (services.GetService<MeshMetrics>() is { } metrics)
            {
                var telemetry = services.GetRequiredService<IOptions<MeshOptions>>().Value.Telemetry;
                if (telemetry.MetricsPort is null)
                {
                    var path = telemetry.MetricsPath;
                    app.UseWhen(
                        context => HttpMethods.IsGet(context.Request.Method)
                            && string.Equals(context.Request.Path.Value, path, StringComparison.OrdinalIgnoreCase)
                            && context.Features.Get<MeshHealthServer.HealthRequestFeature>() is null,
                        exporter => exporter.UseMiddleware<MetricServerMiddleware>(new MetricServerMiddleware.Settings { Registry = metrics.Registry, EnableOpenMetrics = false }));
                }

                app.UseMiddleware<MeshMetricsMiddleware>(metrics);
            }

            next(app);
        };
    }
}

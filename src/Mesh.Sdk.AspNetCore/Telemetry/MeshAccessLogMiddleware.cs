using System.Globalization;
using Mesh.Sdk.AspNetCore.Security;
using Mesh.Sdk.Telemetry.AccessLog;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace Mesh.Sdk.AspNetCore.Telemetry;

/// <summary>
/// Writes one access log line per inbound request when the inbound listener's HttpConnectionManager carries a file
/// access log, with what Istio's inbound sidecar would log: the request line, status, body sizes (declared
/// <c>Content-Length</c>), duration, the app as upstream host (<c>127.0.0.1:&lt;port&gt;</c>, cluster
/// <c>inbound|&lt;port&gt;||</c>, route <c>default</c>) and the caller's address. Off (one check) while none is configured.
/// </summary>
internal sealed class MeshAccessLogMiddleware(RequestDelegate next, MeshAccessLog log, TimeProvider? time = null)
{
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    public Task InvokeAsync(HttpContext context)
        => !log.Enabled || context.Features.Get<MeshHealthServer.HealthRequestFeature>() is not null ? next(context) : InvokeLoggedAsync(context);

    private async Task InvokeLoggedAsync(HttpContext context)
    {
        var start = _time.GetUtcNow();
        var timestamp = _time.GetTimestamp();
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
            var request = context.Request;
            var response = context.Response;
            var connection = context.Connection;
            var localPort = connection.LocalPort.ToString(CultureInfo.InvariantCulture);
            var requestHeaders = request.Headers;
            var responseHeaders = response.Headers;
            log.Write(new AccessLogEntry
            {
                StartTime = start,
                Method = request.Method,
                Path = string.Concat(request.PathBase.Value, request.Path.Value, request.QueryString.Value),
                Authority = request.Host.Value ?? "-",
                Protocol = request.Protocol,
                ResponseCode = failed && !response.HasStarted ? StatusCodes.Status500InternalServerError : response.StatusCode,
                BytesReceived = request.ContentLength ?? 0,
                BytesSent = response.ContentLength ?? 0,
                DurationMilliseconds = (long)_time.GetElapsedTime(timestamp).TotalMilliseconds,
                UpstreamHost = "127.0.0.1:" + localPort,
                UpstreamCluster = $"inbound|{localPort}||",
                DownstreamRemoteAddress = connection.RemoteIpAddress is { } remote ? $"{remote}:{connection.RemotePort.ToString(CultureInfo.InvariantCulture)}" : null,
                DownstreamLocalAddress = connection.LocalIpAddress is { } local ? $"{local}:{localPort}" : null,
                RouteName = "default",
                RequestHeader = name => requestHeaders.TryGetValue(name, out var v) && v.Count > 0 ? v.ToString() : null,
                ResponseHeader = name => responseHeaders.TryGetValue(name, out var v) && v.Count > 0 ? v.ToString() : null,
            });
        }
    }
}

/// <summary>Puts <see cref="MeshAccessLogMiddleware"/> in the pipeline (after propagation, so a generated <c>x-request-id</c> is logged).</summary>
internal sealed class MeshAccessLogStartupFilter(IServiceProvider services) : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next)
    {
        ArgumentNullException.ThrowIfNull(next);
        return app =>
        {
            if (services.GetService<MeshAccessLog>() is { } log)
            {
                app.UseMiddleware<MeshAccessLogMiddleware>(log);
            }

            next(app);
        };
    }
}

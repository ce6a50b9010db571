using System.Globalization;
using Mesh.Sdk.AspNetCore.Security;
using Mesh.Sdk.Telemetry;
using Mesh.Sdk.Telemetry.Tracing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Mesh.Sdk.AspNetCore.Telemetry;

/// <summary>
/// The server span of every inbound request, as Istio's inbound sidecar makes it: continuing the caller's context
/// (<c>traceparent</c>, else B3 multi-header, else <c>b3</c>), named after the inbound route
/// (<c>web.default.svc.cluster.local:9080/*</c>), tagged with Istio's and Envoy's tags, and current for the rest of the
/// pipeline, so the app's meshed calls become its children. Off (no span, no cost beyond one check) while no tracing
/// policy is in force. Health port requests and the metrics scrape are not traced.
/// </summary>
internal sealed class MeshTracingMiddleware(RequestDelegate next, MeshTracer tracer, IOptions<MeshOptions> options)
{
    private readonly string _metricsPath = options.Value.Telemetry.MetricsPath;
    private readonly bool _servesMetrics = options.Value.Telemetry.Metrics && options.Value.Telemetry.MetricsPort is null;

    public Task InvokeAsync(HttpContext context)
    {
        if (!tracer.ServerEnabled || context.Features.Get<MeshHealthServer.HealthRequestFeature>() is not null
            || (_servesMetrics && string.Equals(context.Request.Path.Value, _metricsPath, StringComparison.OrdinalIgnoreCase)))
        {
            return next(context);
        }

        return InvokeTracedAsync(context);
    }

    private async Task InvokeTracedAsync(HttpContext context)
    {
        var request = context.Request;
        var headers = request.Headers;
        var incoming = TraceHeaders.Parse(
            Get(headers, TraceHeaders.TraceParent), Get(headers, TraceHeaders.TraceState), Get(headers, TraceHeaders.B3TraceId),
            Get(headers, TraceHeaders.B3SpanId), Get(headers, TraceHeaders.B3Sampled), Get(headers, TraceHeaders.B3Flags), Get(headers, TraceHeaders.B3Single));
        var span = tracer.StartServer(incoming, headers.ContainsKey(TraceHeaders.ClientTraceId));
        if (span is null)
        {
            await next(context).ConfigureAwait(false);
            return;
        }

        if (span.IsAllDataRequested)
        {
            span.SetTag("http.url", string.Concat(request.Scheme, "://", request.Host.Value, request.PathBase.Value, request.Path.Value, request.QueryString.Value));
            span.SetTag("http.method", request.Method);
            span.SetTag("http.protocol", request.Protocol);
            span.SetTag("upstream_cluster", string.Create(CultureInfo.InvariantCulture, $"inbound|{context.Connection.LocalPort}||"));
            span.SetTag("upstream_cluster.name", string.Create(CultureInfo.InvariantCulture, $"inbound|{context.Connection.LocalPort}||"));
            span.SetTag("downstream_cluster", "-");
            span.SetTag("peer.address", context.Connection.RemoteIpAddress?.ToString());
            span.SetTag("request_size", request.ContentLength ?? 0);
            if (Get(headers, TraceHeaders.RequestId) is { } id)
            {
                span.SetTag("guid:x-request-id", id);
            }

            if (Get(headers, "User-Agent") is { } agent)
            {
                span.SetTag("user_agent", agent);
            }

            tracer.AddServerTags(span, name => Get(headers, name));
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
            if (span.IsAllDataRequested)
            {
                var response = context.Response;
                var status = failed && !response.HasStarted ? StatusCodes.Status500InternalServerError : response.StatusCode;
                span.SetTag("http.status_code", status.ToString(CultureInfo.InvariantCulture));
                span.SetTag("response_size", response.ContentLength ?? 0);
                span.SetTag("response_flags", MeshMetrics.NoFlags);
                if (status >= 500)
                {
                    span.SetTag("error", "true");
                    span.SetStatus(System.Diagnostics.ActivityStatusCode.Error);
                }
            }

            span.Stop();
        }
    }

    private static string? Get(IHeaderDictionary headers, string name)
        => headers.TryGetValue(name, out var value) && value.Count > 0 ? value.ToString() : null;
}

/// <summary>Puts <see cref="MeshTracingMiddleware"/> in the pipeline, after the propagation capture and before the metrics.</summary>
internal sealed class MeshTracingStartupFilter(IServiceProvider services) : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next)
    {
        ArgumentNullException.ThrowIfNull(next);
        return app =>
        {
            if (services.GetService<MeshTracer>() is { } tracer)
            {
                app.UseMiddleware<MeshTracingMiddleware>(tracer);
            }

            next(app);
        };
    }
}

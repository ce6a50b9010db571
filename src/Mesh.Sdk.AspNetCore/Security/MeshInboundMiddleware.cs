using Mesh.Sdk.RateLimiting;
using Mesh.Sdk.Security.Authorization;
using Mesh.Sdk.Security.Inbound;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Mesh.Sdk.AspNetCore.Security;

/// <summary>
/// The per-request half of the inbound mesh, first in the app's pipeline when <c>Mesh:Security:Enabled</c>: the
/// caller's verified mesh identity becomes <c>HttpContext.User</c> (see <see cref="MeshClaimTypes"/>), then the HTTP
/// filters of the port's inbound listener run in listener order: RBAC filters (AuthorizationPolicy) decide, and a denied
/// request is answered as Envoy answers it: <c>403</c> with <c>RBAC: access denied</c>, or for gRPC <c>PERMISSION_DENIED</c>;
/// local rate limit filters (EnvoyFilter) answer an over-limit request with their status (429) and <c>local_rate_limited</c>.
/// Requests that came in on the health port are not mesh requests and pass untouched.
/// </summary>
internal sealed partial class MeshInboundMiddleware(RequestDelegate next, InboundPolicies policies, ILogger<MeshInboundMiddleware> logger)
{
    public Task InvokeAsync(HttpContext context)
    {
        if (context.Features.Get<MeshHealthServer.HealthRequestFeature>() is not null)
        {
            return next(context);
        }

        if (context.Features.Get<IMeshPeerIdentityFeature>() is MeshPeerIdentity peer)
        {
            context.User = peer.User;
        }

        var policy = policies.Get(context.Connection.LocalPort);
        var steps = policy.Steps;
        if (steps.Count == 0)
        {
            return next(context);
        }

        var request = new HttpContextAuthorizationRequest(context, context.Features.Get<ITlsConnectionFeature>() as MeshTlsConnectionFeature);
        for (var i = 0; i < steps.Count; i++)
        {
            var step = steps[i];
            if (step.Authorization is { } authorization)
            {
                var decision = authorization.Evaluate(request);
                if (!decision.Allowed)
                {
                    Log.Denied(logger, context.Request.Method, context.Request.Path.Value, request.Peer?.Principal ?? "none (plaintext)", context.Connection.LocalPort, decision.ToString());
                    return DenyAsync(context);
                }
            }
            else if (step.RateLimit is { } rateLimit)
            {
                var (virtualHost, route) = InboundRoutes.Match(policy.Routes, request);
                var decision = rateLimit.Check(virtualHost, route, request, context.Features.Get<IConnectionLifetimeFeature>() ?? (object)context.Connection.Id);
                if (decision.Outcome == RateLimitOutcome.LimitedNotEnforced)
                {
                    decision.RequestHeaders.ApplyTo(new HeaderDictionaryTarget(context.Request.Headers));
                }
                else if (decision.IsLimited)
                {
                    Log.RateLimited(logger, context.Request.Method, context.Request.Path.Value, context.Connection.LocalPort, rateLimit.Name);
                    return RateLimitedAsync(context, decision);
                }
            }
        }

        return next(context);
    }

    /// <summary>Envoy's local reply for a rate-limited request: the status and <c>local_rate_limited</c>, or a gRPC status.</summary>
    private static Task RateLimitedAsync(HttpContext context, RateLimitDecision decision)
    {
        var response = context.Response;
        context.Features.Set(Telemetry.MeshResponseFlagsFeature.RateLimited);
        decision.ResponseHeaders.ApplyTo(new HeaderDictionaryTarget(response.Headers));
        if (IsGrpc(context))
        {
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = "application/grpc";
            response.Headers["grpc-status"] = decision.GrpcStatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture);
            response.Headers["grpc-message"] = RateLimitDecision.LimitedBody;
            return Task.CompletedTask;
        }

        response.StatusCode = decision.StatusCode;
        response.ContentType = "text/plain";
        return response.WriteAsync(RateLimitDecision.LimitedBody);
    }

    private static bool IsGrpc(HttpContext context) =>
        context.Request.ContentType is { } contentType && contentType.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase);

    /// <summary>Envoy's local reply for an RBAC denial: 403 with its text, or a Trailers-Only gRPC PERMISSION_DENIED.</summary>
    private static Task DenyAsync(HttpContext context)
    {
        var response = context.Response;
        if (context.Request.ContentType is { } contentType && contentType.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase))
        {
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = "application/grpc";
            response.Headers["grpc-status"] = "7";
            response.Headers["grpc-message"] = AuthorizationDecision.DeniedBody;
            return Task.CompletedTask;
        }

        response.StatusCode = StatusCodes.Status403Forbidden;
        response.ContentType = "text/plain";
        return response.WriteAsync(AuthorizationDecision.DeniedBody);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 8240, Level = LogLevel.Debug, Message = "Inbound {Method} {Path} from {Principal} on port {Port} {Decision}.")]
        public static partial void Denied(ILogger logger, string method, string? path, string principal, int port, string decision);

        [LoggerMessage(EventId = 8241, Level = LogLevel.Debug, Message = "Inbound {Method} {Path} on port {Port} rate limited by '{Filter}'.")]
        public static partial void RateLimited(ILogger logger, string method, string? path, int port, string filter);
    }
}

/// <summary>Puts <see cref="MeshInboundMiddleware"/> first in the pipeline when <c>Mesh:Security:Enabled</c>.</summary>
internal sealed class MeshInboundStartupFilter(IOptions<MeshOptions> options) : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next)
    {
        ArgumentNullException.ThrowIfNull(next);
        return app =>
        {
            if (options.Value.Security.Enabled)
            {
                app.UseMiddleware<MeshInboundMiddleware>();
            }

            next(app);
        };
    }
}

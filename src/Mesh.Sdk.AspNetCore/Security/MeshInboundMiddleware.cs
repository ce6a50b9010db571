using Mesh.Sdk.Security.Inbound;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;

namespace Mesh.Sdk.AspNetCore.Security;

/// <summary>
/// The per-request half of the inbound mesh, first in the app's pipeline when <c>Mesh:Security:Enabled</c>: the
/// caller's verified mesh identity becomes <c>HttpContext.User</c> (see <see cref="MeshClaimTypes"/>). The port's
/// <see cref="InboundPolicy"/> (<see cref="InboundPolicies.Get"/> by <c>Connection.LocalPort</c>) carries the HTTP
/// filters of its inbound listener for the per-request checks that follow this one. Requests that came in on the
/// health port are not mesh requests and pass untouched.
/// </summary>
internal sealed class MeshInboundMiddleware(RequestDelegate next)
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

        return next(context);
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

using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;

namespace Mesh.Sdk.AspNetCore;

/// <summary>Puts <see cref="MeshPropagationMiddleware"/> first in the pipeline, so every later component sees the captured values.</summary>
internal sealed class MeshPropagationStartupFilter : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next)
    {
        ArgumentNullException.ThrowIfNull(next);
        return app =>
        {
            app.UseMiddleware<MeshPropagationMiddleware>();
            next(app);
        };
    }
}

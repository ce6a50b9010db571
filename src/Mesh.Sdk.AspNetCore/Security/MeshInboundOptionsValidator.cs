using Microsoft.Extensions.Options;

namespace Mesh.Sdk.AspNetCore.Security;

/// <summary>Checks <see cref="MeshOptions.HealthPort"/> and <see cref="MeshOptions.HealthPaths"/> at start.</summary>
internal sealed class MeshInboundOptionsValidator : IValidateOptions<MeshOptions>
{
    public ValidateOptionsResult Validate(string? name, MeshOptions options)
    {
        var errors = new List<string>();
        if (options.HealthPort is < 0 or > 65535)
        {
            errors.Add($"Mesh:HealthPort {options.HealthPort} is not a port (0-65535; 0 binds an ephemeral one).");
        }

        if (options.HealthPort is not null && options.HealthPaths.Length == 0)
        {
            errors.Add("Mesh:HealthPaths is empty while Mesh:HealthPort is set: name the paths health checks use, e.g. /healthz.");
        }

        foreach (var path in options.HealthPaths)
        {
            if (string.IsNullOrEmpty(path) || path[0] != '/')
            {
                errors.Add($"Mesh:HealthPaths entry '{path}' must be a path starting with '/'.");
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}

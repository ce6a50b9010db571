using System.Text;

namespace Mesh.Sdk.Routing;

/// <summary>
/// Why part of a route configuration was refused: the location (route configuration, virtual host, route) and
/// the reason. <see cref="ToString"/> gives the text an xDS NACK carries in <c>error_detail</c>.
/// </summary>
/// <param name="RouteConfiguration">The route configuration name.</param>
/// <param name="VirtualHostIndex">The index in <c>virtual_hosts</c>, when the error is inside a virtual host.</param>
/// <param name="VirtualHost">The virtual host name, when the error is inside one.</param>
/// <param name="RouteIndex">The index in the virtual host's <c>routes</c>, when the error is inside a route.</param>
/// <param name="RouteName">The route name, when it has one.</param>
/// <param name="Reason">What is wrong and, where useful, what is supported instead.</param>
internal sealed record RouteCompileError(string RouteConfiguration, int? VirtualHostIndex, string? VirtualHost, int? RouteIndex, string? RouteName, string Reason)
{
    /// <inheritdoc />
    public override string ToString()
    {
        var builder = new StringBuilder();
        builder.Append("route configuration '").Append(RouteConfiguration).Append('\'');
        if (VirtualHostIndex is { } v)
        {
            builder.Append(" virtual_hosts[").Append(v).Append("] '").Append(VirtualHost).Append('\'');
        }

        if (RouteIndex is { } r)
        {
            builder.Append(" routes[").Append(r).Append(']');
            if (!string.IsNullOrEmpty(RouteName))
            {
                builder.Append(" '").Append(RouteName).Append('\'');
            }
        }

        return builder.Append(": ").Append(Reason).ToString();
    }
}

/// <summary>Thrown by <see cref="RouteTableCompiler.Compile"/> when a route configuration cannot be applied.</summary>
internal sealed class RouteCompilationException : Exception
{
    /// <summary>Creates the exception.</summary>
    public RouteCompilationException(IReadOnlyList<RouteCompileError> errors)
        : base(string.Join("; ", errors))
        => Errors = errors;

    /// <summary>Every error found.</summary>
    public IReadOnlyList<RouteCompileError> Errors { get; }
}

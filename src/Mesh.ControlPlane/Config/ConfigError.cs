namespace Mesh.ControlPlane.Config;

/// <summary>A configuration file the control plane rejected: where, and why.</summary>
/// <param name="File">Full path of the rejected file.</param>
/// <param name="Line">1-based line of the offending node (0 when the file could not be read at all).</param>
/// <param name="Column">1-based column of the offending node (0 when unknown).</param>
/// <param name="Reason">What is wrong, in words a user can act on.</param>
public sealed record ConfigError(string File, int Line, int Column, string Reason)
{
    /// <summary>Formats the error as <c>file:line:column: error: reason</c>.</summary>
    /// <returns>The formatted error.</returns>
    public override string ToString() => $"{File}:{Line}:{Column}: error: {Reason}";
}

/// <summary>Thrown by the YAML parser at the first problem in a file.</summary>
internal sealed class ConfigException(string reason, int line, int column) : Exception(reason)
{
    public int Line { get; } = line;

    public int Column { get; } = column;
}

using System.Text.RegularExpressions;

namespace Mesh.Sdk.Routing;

/// <summary>A compiled <c>RedirectAction</c>: answer with <see cref="StatusCode"/> and a <c>location</c> header.</summary>
internal sealed record RedirectPolicy
{
    /// <summary>The new scheme (lower case); <see langword="null"/> keeps the request's.</summary>
    public string? Scheme { get; init; }

    /// <summary>The new host (replacing host and port); <see langword="null"/> keeps the request's.</summary>
    public string? Host { get; init; }

    /// <summary>The new port; 0 keeps the request's.</summary>
    public uint Port { get; init; }

    /// <summary>
    /// The new path (may carry its own query; a '/' is put before it in the Location when it has none, as Envoy
    /// does); <see langword="null"/> when not set or empty (Envoy then keeps the request's path).
    /// </summary>
    public string? Path { get; init; }

    /// <summary>Replacement for the matched prefix; <see langword="null"/> when not set.</summary>
    public string? PrefixRewrite { get; init; }

    /// <summary>Regex applied to the path; <see langword="null"/> when not set.</summary>
    public Regex? RegexRewrite { get; init; }

    /// <summary>The .NET replacement string for <see cref="RegexRewrite"/>.</summary>
    public string? RegexSubstitution { get; init; }

    /// <summary>The response status: 301 (default), 302, 303, 307 or 308.</summary>
    public int StatusCode { get; init; } = 301;

    /// <summary>Whether the query string is dropped.</summary>
    public bool StripQuery { get; init; }
}

/// <summary>A compiled <c>DirectResponseAction</c>: answer locally with <see cref="Status"/> and <see cref="Body"/>.</summary>
/// <param name="Status">The HTTP status (200-599).</param>
/// <param name="Body">The body bytes; empty when none.</param>
internal sealed record DirectResponse(int Status, ReadOnlyMemory<byte> Body);

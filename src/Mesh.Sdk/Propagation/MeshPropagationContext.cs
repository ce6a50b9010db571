using System.Collections;

namespace Mesh.Sdk.Propagation;

/// <summary>
/// An immutable set of request headers to propagate (name → value; names compare case-insensitively and are kept
/// as given, values are single strings, several values of one header joined with <c>,</c>).
/// </summary>
public sealed class MeshPropagationContext : IReadOnlyCollection<KeyValuePair<string, string>>
{
    private readonly KeyValuePair<string, string>[] _headers;

    private MeshPropagationContext(KeyValuePair<string, string>[] headers) => _headers = headers;

    /// <summary>A context with no headers.</summary>
    public static MeshPropagationContext Empty { get; } = new([]);

    /// <summary>The number of headers.</summary>
    public int Count => _headers.Length;

    /// <summary>The value of header <paramref name="name"/>, or <see langword="null"/> when it is not in the set.</summary>
    /// <param name="name">The header name (any case).</param>
    public string? this[string name] => IndexOf(name) is var i and >= 0 ? _headers[i].Value : null;

    /// <summary>Creates a context from header name/value pairs; a later pair replaces an earlier one of the same name.</summary>
    /// <param name="headers">The headers.</param>
    /// <returns>The context.</returns>
    /// <exception cref="ArgumentException">A name is empty or not an HTTP token, or a value holds a line break.</exception>
    public static MeshPropagationContext Create(IEnumerable<KeyValuePair<string, string>> headers)
    {
        ArgumentNullException.ThrowIfNull(headers);
        var context = Empty;
        foreach (var (name, value) in headers)
        {
            context = context.With(name, value);
        }

        return context;
    }

    /// <summary>A copy with header <paramref name="name"/> set to <paramref name="value"/> (replacing an earlier value).</summary>
    /// <param name="name">The header name.</param>
    /// <param name="value">The value.</param>
    /// <returns>The new context.</returns>
    /// <exception cref="ArgumentException">The name is empty or not an HTTP token, or the value holds a line break.</exception>
    public MeshPropagationContext With(string name, string value)
    {
        ValidateName(name);
        ArgumentNullException.ThrowIfNull(value);
        if (value.AsSpan().IndexOfAny('\r', '\n', '\0') >= 0)
        {
            throw new ArgumentException($"The value of header '{name}' must not contain line breaks or NUL.", nameof(value));
        }

        var index = IndexOf(name);
        KeyValuePair<string, string>[] headers;
        if (index >= 0)
        {
            headers = (KeyValuePair<string, string>[])_headers.Clone();
            headers[index] = new(name, value);
        }
        else
        {
            headers = new KeyValuePair<string, string>[_headers.Length + 1];
            _headers.CopyTo(headers, 0);
            headers[^1] = new(name, value);
        }

        return new MeshPropagationContext(headers);
    }

    /// <summary>A copy without header <paramref name="name"/> (this instance when it is not in the set).</summary>
    /// <param name="name">The header name (any case).</param>
    /// <returns>The new context.</returns>
    public MeshPropagationContext Without(string name)
    {
        var index = IndexOf(name);
        if (index < 0)
        {
            return this;
        }

        var headers = new KeyValuePair<string, string>[_headers.Length - 1];
        Array.Copy(_headers, 0, headers, 0, index);
        Array.Copy(_headers, index + 1, headers, index, _headers.Length - index - 1);
        return new MeshPropagationContext(headers);
    }

    /// <summary>Whether header <paramref name="name"/> is in the set, and its value.</summary>
    /// <param name="name">The header name (any case).</param>
    /// <param name="value">The value when present.</param>
    /// <returns><see langword="true"/> when present.</returns>
    public bool TryGetValue(string name, out string value)
    {
        var index = IndexOf(name);
        value = index >= 0 ? _headers[index].Value : string.Empty;
        return index >= 0;
    }

    /// <summary>Enumerates the headers in the order they were added.</summary>
    /// <returns>The enumerator.</returns>
    public IEnumerator<KeyValuePair<string, string>> GetEnumerator() => ((IEnumerable<KeyValuePair<string, string>>)_headers).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    internal ReadOnlySpan<KeyValuePair<string, string>> AsSpan() => _headers;

    /// <summary>Creates a context from header pairs already checked by the caller (names unique, tokens).</summary>
    internal static MeshPropagationContext CreateTrusted(KeyValuePair<string, string>[] headers) => headers.Length == 0 ? Empty : new(headers);

    internal static bool IsToken(string name)
    {
        if (string.IsNullOrEmpty(name))
        {
            return false;
        }

        foreach (var c in name)
        {
            // RFC 9110 tchar.
            if (!(c is >= 'a' and <= 'z' or >= 'A' and <= 'Z' or >= '0' and <= '9'
                || "!#$%&'*+-.^_`|~".Contains(c, StringComparison.Ordinal)))
            {
                return false;
            }
        }

        return true;
    }

    private static void ValidateName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!IsToken(name))
        {
            throw new ArgumentException($"'{name}' is not a valid HTTP header name.", nameof(name));
        }
    }

    private int IndexOf(string name)
    {
        var headers = _headers;
        for (var i = 0; i < headers.Length; i++)
        {
            if (string.Equals(headers[i].Key, name, StringComparison.OrdinalIgnoreCase))
            {
                return i;
            }
        }

        return -1;
    }
}

namespace Mesh.Sdk.Routing.Internal;

/// <summary>
/// Case-insensitive comparisons as Envoy makes them (<c>absl::EqualsIgnoreCase</c> and friends): only ASCII letters
/// fold, every other character must be equal. .NET's OrdinalIgnoreCase also folds non-ASCII letters (and 'ſ' with
/// 's', 'K' with the Kelvin sign), which Envoy's <c>ignore_case</c> and <c>case_sensitive: false</c> never do.
/// </summary>
internal static class AsciiCase
{
    /// <summary>Whether <paramref name="value"/> equals <paramref name="pattern"/>, ASCII letters compared without case.</summary>
    public static bool Equals(ReadOnlySpan<char> value, ReadOnlySpan<char> pattern)
        => value.Length == pattern.Length && Same(value, pattern);

    /// <summary>Whether <paramref name="value"/> starts with <paramref name="pattern"/>, ASCII letters compared without case.</summary>
    public static bool StartsWith(ReadOnlySpan<char> value, ReadOnlySpan<char> pattern)
        => value.Length >= pattern.Length && Same(value[..pattern.Length], pattern);

    /// <summary>Whether <paramref name="value"/> ends with <paramref name="pattern"/>, ASCII letters compared without case.</summary>
    public static bool EndsWith(ReadOnlySpan<char> value, ReadOnlySpan<char> pattern)
        => value.Length >= pattern.Length && Same(value[^pattern.Length..], pattern);

    /// <summary>Whether <paramref name="value"/> contains <paramref name="pattern"/>, ASCII letters compared without case.</summary>
    public static bool Contains(ReadOnlySpan<char> value, ReadOnlySpan<char> pattern)
    {
        for (var i = 0; i + pattern.Length <= value.Length; i++)
        {
            if (Same(value.Slice(i, pattern.Length), pattern))
            {
                return true;
            }
        }

        return false;
    }

    private static bool Same(ReadOnlySpan<char> a, ReadOnlySpan<char> b)
    {
        for (var i = 0; i < a.Length; i++)
        {
            var x = a[i];
            var y = b[i];
            if (x != y && (!char.IsAsciiLetter(x) || (x | 0x20) != (y | 0x20)))
            {
                return false;
            }
        }

        return true;
    }
}

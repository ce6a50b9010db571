using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Mesh.Xds.Re2;

/// <summary>
/// Compiles the regular expressions xDS and Istio carry (Google RE2 syntax, as Envoy and Go's <c>regexp</c> read it)
/// into .NET regexes with the same meaning: the pattern is parsed with RE2's grammar and rewritten as an explicit
/// .NET pattern, or refused with a message naming the construct and its offset. Every regex runs with
/// <see cref="RegexOptions.NonBacktracking"/>, so matching time stays linear in the input, as with RE2.
/// The SDK's route matching and xDS validation and the control plane's Istio validation all use this one
/// translation, so both sides accept and refuse the same patterns.
/// </summary>
public static class Re2Regex
{
    /// <summary>RE2's largest allowed repetition count.</summary>
    public const int MaxRepeat = 1000;

    private const RegexOptions Options = RegexOptions.NonBacktracking | RegexOptions.CultureInvariant;

    /// <summary>Compiles <paramref name="pattern"/> to match whole inputs only (RE2 FullMatch).</summary>
    /// <param name="pattern">The RE2 pattern.</param>
    /// <param name="regex">The compiled regex, anchored at both ends; <see langword="null"/> on failure.</param>
    /// <param name="error">Why the pattern was refused; <see langword="null"/> on success.</param>
    /// <returns><see langword="true"/> when the pattern is valid RE2 and compiled.</returns>
    public static bool TryCompileFullMatch(string pattern, out Regex? regex, out string? error)
        => TryCompile(pattern, fullMatch: true, out regex, out error);

    /// <summary>Compiles <paramref name="pattern"/> for searching and replacing (RE2 GlobalReplace).</summary>
    /// <param name="pattern">The RE2 pattern.</param>
    /// <param name="regex">The compiled regex, unanchored; <see langword="null"/> on failure.</param>
    /// <param name="error">Why the pattern was refused; <see langword="null"/> on success.</param>
    /// <returns><see langword="true"/> when the pattern is valid RE2 and compiled.</returns>
    public static bool TryCompileSearch(string pattern, out Regex? regex, out string? error)
        => TryCompile(pattern, fullMatch: false, out regex, out error);

    private static bool TryCompile(string pattern, bool fullMatch, out Regex? regex, out string? error)
    {
        regex = null;
        if (!TryTranslate(pattern, out var translated, out error))
        {
            return false;
        }

        try
        {
            regex = new Regex(fullMatch ? "^(?:" + translated + ")\\z" : translated, Options);
            return true;
        }
        catch (ArgumentException ex)
        {
            error = $"regex '{pattern}' does not compile: {ex.Message}";
            return false;
        }
        catch (NotSupportedException ex)
        {
            error = $"regex '{pattern}' cannot be compiled for linear-time matching (RegexOptions.NonBacktracking): {ex.Message}";
            return false;
        }
    }

    /// <summary>
    /// The literal text every full match of <paramref name="pattern"/> starts with (empty when there is none), so
    /// matching can reject most inputs with one ordinal comparison before running the regex. Conservative: stops at
    /// the first metacharacter, drops a literal a quantifier applies to, and gives up on any alternation.
    /// </summary>
    /// <param name="pattern">An RE2 pattern that <see cref="TryTranslate"/> accepts.</param>
    /// <returns>The guaranteed literal prefix, possibly empty.</returns>
    public static string LiteralPrefix(string pattern)
    {
        if (pattern.Contains('|', StringComparison.Ordinal))
        {
            return string.Empty;
        }

        var end = 0;
        while (end < pattern.Length && pattern[end] is not ('\\' or '.' or '[' or ']' or '(' or ')' or '*' or '+' or '?' or '{' or '}' or '^' or '$'))
        {
            end++;
        }

        if (end < pattern.Length && end > 0 && pattern[end] is '*' or '?' or '{')
        {
            // The last literal is optional or repeated: it is not part of the guaranteed prefix (a surrogate pair is
            // one literal).
            end -= end >= 2 && char.IsLowSurrogate(pattern[end - 1]) && char.IsHighSurrogate(pattern[end - 2]) ? 2 : 1;
        }

        return pattern[..end];
    }

    /// <summary>
    /// RE2's GlobalReplace (what Envoy's <c>regex_rewrite</c> does): every non-overlapping match, left to right,
    /// replaced by <paramref name="substitution"/> (.NET syntax, from <see cref="TryTranslateSubstitution"/>). Unlike
    /// <see cref="Regex.Replace(string, string)"/>, an empty match right where the previous match ended is skipped,
    /// so <c>a*</c> over <c>baaac</c> with <c>-</c> gives <c>-b-c-</c>, not <c>-b--c-</c>.
    /// </summary>
    /// <param name="regex">A regex from <see cref="TryCompileSearch"/>.</param>
    /// <param name="input">The text to rewrite.</param>
    /// <param name="substitution">The replacement, in .NET syntax.</param>
    /// <returns>The rewritten text; <paramref name="input"/> itself when nothing matched.</returns>
    public static string GlobalReplace(Regex regex, string input, string substitution)
    {
        StringBuilder? builder = null;
        var p = 0;
        var lastEnd = -1;
        var count = 0;
        while (p <= input.Length)
        {
            var match = regex.Match(input, p);
            if (!match.Success)
            {
                break;
            }

            builder ??= new StringBuilder(input.Length + 16);
            builder.Append(input, p, match.Index - p);
            if (match.Length == 0 && match.Index == lastEnd)
            {
                // Step over one code point (a surrogate pair whole) and search again.
                if (p < input.Length)
                {
                    var n = char.IsHighSurrogate(input[p]) && p + 1 < input.Length && char.IsLowSurrogate(input[p + 1]) ? 2 : 1;
                    builder.Append(input, p, n);
                    p += n;
                }
                else
                {
                    p++;
                }

                continue;
            }

            builder.Append(match.Result(substitution));
            p = match.Index + match.Length;
            lastEnd = p;
            count++;
        }

        if (count == 0)
        {
            return input;
        }

        if (p < input.Length)
        {
            builder!.Append(input, p, input.Length - p);
        }

        return builder!.ToString();
    }

    /// <summary>
    /// Translates an RE2 substitution string (<c>\1</c> for capture group 1, <c>\\</c> for a backslash) to .NET
    /// replacement syntax.
    /// </summary>
    /// <param name="substitution">The RE2 substitution.</param>
    /// <param name="groupCount">How many capture groups the pattern has.</param>
    /// <param name="translated">The .NET replacement string; empty on failure.</param>
    /// <param name="error">Why the substitution was refused; <see langword="null"/> on success.</param>
    /// <returns><see langword="true"/> when the substitution is valid for the pattern.</returns>
    public static bool TryTranslateSubstitution(string substitution, int groupCount, out string translated, out string? error)
    {
        var builder = new StringBuilder(substitution.Length + 8);
        for (var i = 0; i < substitution.Length; i++)
        {
            var c = substitution[i];
            if (c == '$')
            {
                builder.Append("$$");
            }
            else if (c == '\\')
            {
                if (i + 1 >= substitution.Length)
                {
                    translated = string.Empty;
                    error = $"substitution '{substitution}' ends with a lone backslash";
                    return false;
                }

                var next = substitution[++i];
                if (next is >= '0' and <= '9')
                {
                    var group = next - '0';
                    if (group > groupCount)
                    {
                        translated = string.Empty;
                        error = $"substitution '{substitution}' refers to group {group} but the pattern has {groupCount}";
                        return false;
                    }

                    builder.Append("${").Append(group.ToString(CultureInfo.InvariantCulture)).Append('}');
                }
                else if (next == '\\')
                {
                    builder.Append('\\');
                }
                else
                {
                    translated = string.Empty;
                    error = $"substitution '{substitution}' has an invalid escape '\\{next}' (only \\0-\\9 and \\\\ are allowed)";
                    return false;
                }
            }
            else
            {
                builder.Append(c);
            }
        }

        translated = builder.ToString();
        error = null;
        return true;
    }

    /// <summary>
    /// Checks that <paramref name="pattern"/> is RE2 syntax and rewrites it to a .NET pattern with the same meaning;
    /// on failure <paramref name="error"/> names the construct and its offset. This is the check to validate a
    /// pattern without compiling it.
    /// </summary>
    /// <param name="pattern">The RE2 pattern.</param>
    /// <param name="translated">The equivalent .NET pattern (unanchored); empty on failure.</param>
    /// <param name="error">Why the pattern was refused, starting with <c>regex '&lt;pattern&gt;'</c>; <see langword="null"/> on success.</param>
    /// <returns><see langword="true"/> when the pattern is valid RE2 that the translation supports.</returns>
    public static bool TryTranslate(string pattern, out string translated, out string? error)
        => Re2Translator.TryTranslate(pattern, out translated, out error);
}

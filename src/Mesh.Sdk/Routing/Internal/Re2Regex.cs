using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Mesh.Sdk.Routing.Internal;

/// <summary>
/// Compiles the regular expressions xDS carries (Google RE2 syntax) into .NET regexes with the same meaning.
/// Constructs RE2 does not have (backreferences, lookaround, atomic groups, possessive quantifiers, conditionals)
/// are rejected rather than silently given .NET semantics; RE2-only spellings are translated; the ASCII classes
/// <c>\d</c>, <c>\w</c> and <c>\s</c> keep RE2's ASCII meaning. Every regex runs with
/// <see cref="RegexOptions.NonBacktracking"/> so matching time stays linear in the input, as with RE2.
/// </summary>
internal static class Re2Regex
{
    /// <summary>RE2's largest allowed repetition count.</summary>
    public const int MaxRepeat = 1000;

    private const RegexOptions Options = RegexOptions.NonBacktracking | RegexOptions.CultureInvariant;

    /// <summary>Compiles <paramref name="pattern"/> to match whole inputs only (RE2 FullMatch).</summary>
    public static bool TryCompileFullMatch(string pattern, out Regex? regex, out string? error)
        => TryCompile(pattern, fullMatch: true, out regex, out error);

    /// <summary>Compiles <paramref name="pattern"/> for searching and replacing (RE2 GlobalReplace).</summary>
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
            error = $"regex '{pattern}' uses a construct linear-time matching does not support: {ex.Message}";
            return false;
        }
    }

    /// <summary>
    /// The literal text every full match of <paramref name="pattern"/> starts with (empty when there is none), so
    /// matching can reject most inputs with one ordinal comparison before running the regex. Conservative: stops at
    /// the first metacharacter, drops a literal a quantifier applies to, and gives up on any alternation.
    /// </summary>
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
            // The last literal is optional or repeated: it is not part of the guaranteed prefix.
            end--;
        }

        return pattern[..end];
    }

    /// <summary>
    /// Translates an RE2 substitution string (<c>\1</c> for capture group 1, <c>\\</c> for a backslash) to .NET
    /// replacement syntax.
    /// </summary>
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

    /// <summary>Checks that <paramref name="pattern"/> is within RE2's syntax and rewrites it to .NET syntax.</summary>
    public static bool TryTranslate(string pattern, out string translated, out string? error)
    {
        var builder = new StringBuilder(pattern.Length + 16);
        var inClass = false;
        var classStart = -1;
        translated = string.Empty;
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            if (c == '\\')
            {
                if (i + 1 >= pattern.Length)
                {
                    error = $"regex '{pattern}' ends with a lone backslash";
                    return false;
                }

                var next = pattern[++i];
                switch (next)
                {
                    case >= '1' and <= '9':
                        error = $"regex '{pattern}' uses a backreference '\\{next}', which RE2 does not support";
                        return false;
                    case 'k':
                        error = $"regex '{pattern}' uses a named backreference '\\k', which RE2 does not support";
                        return false;
                    case 'Z' or 'G' or 'C' or 'X' or 'R' or 'K':
                        error = $"regex '{pattern}' uses the escape '\\{next}', which RE2 does not support";
                        return false;
                    case 'Q':
                        error = $"regex '{pattern}' uses a \\Q...\\E literal block; escape the characters instead";
                        return false;
                    case 'd':
                        builder.Append(inClass ? "0-9" : "[0-9]");
                        break;
                    case 'w':
                        builder.Append(inClass ? "0-9A-Za-z_" : "[0-9A-Za-z_]");
                        break;
                    case 's':
                        builder.Append(inClass ? "\\t\\n\\f\\r " : "[\\t\\n\\f\\r ]");
                        break;
                    case 'D' when !inClass:
                        builder.Append("[^0-9]");
                        break;
                    case 'W' when !inClass:
                        builder.Append("[^0-9A-Za-z_]");
                        break;
                    case 'S' when !inClass:
                        builder.Append("[^\\t\\n\\f\\r ]");
                        break;
                    default:
                        builder.Append('\\').Append(next);
                        break;
                }

                continue;
            }

            if (inClass)
            {
                if (c == '[' && i + 1 < pattern.Length && pattern[i + 1] == ':')
                {
                    error = $"regex '{pattern}' uses a POSIX character class '[:...:]'; spell the class out instead";
                    return false;
                }

                if (c == ']' && i != classStart + 1 && !(i == classStart + 2 && pattern[classStart + 1] == '^'))
                {
                    inClass = false;
                }

                builder.Append(c);
                continue;
            }

            switch (c)
            {
                case '[':
                    inClass = true;
                    classStart = i;
                    builder.Append(c);
                    break;
                case '(':
                    if (!TryGroup(pattern, ref i, builder, out error))
                    {
                        return false;
                    }

                    break;
                case '*' or '+' or '?':
                    builder.Append(c);
                    if (!CheckQuantifierSuffix(pattern, ref i, builder, out error))
                    {
                        return false;
                    }

                    break;
                case '{':
                    var close = pattern.IndexOf('}', i);
                    if (close > i && IsRepetition(pattern.AsSpan(i + 1, close - i - 1), out var max))
                    {
                        if (max > MaxRepeat)
                        {
                            error = $"regex '{pattern}' repeats more than {MaxRepeat} times, RE2's limit";
                            return false;
                        }

                        builder.Append(pattern, i, close - i + 1);
                        i = close;
                        if (!CheckQuantifierSuffix(pattern, ref i, builder, out error))
                        {
                            return false;
                        }
                    }
                    else
                    {
                        // RE2 reads a '{' that starts no repetition as a literal.
                        builder.Append("\\{");
                    }

                    break;
                default:
                    builder.Append(c);
                    break;
            }
        }

        if (inClass)
        {
            error = $"regex '{pattern}' has an unterminated character class";
            return false;
        }

        translated = builder.ToString();
        error = null;
        return true;
    }

    private static bool CheckQuantifierSuffix(string pattern, ref int i, StringBuilder builder, out string? error)
    {
        error = null;
        if (i + 1 < pattern.Length)
        {
            var next = pattern[i + 1];
            if (next == '+')
            {
                error = $"regex '{pattern}' uses a possessive quantifier, which RE2 does not support";
                return false;
            }

            if (next == '?')
            {
                builder.Append('?');
                i++;
            }
        }

        return true;
    }

    private static bool IsRepetition(ReadOnlySpan<char> body, out int max)
    {
        max = 0;
        var comma = body.IndexOf(',');
        var first = comma < 0 ? body : body[..comma];
        if (!int.TryParse(first, NumberStyles.None, CultureInfo.InvariantCulture, out var min))
        {
            return false;
        }

        max = min;
        if (comma >= 0)
        {
            var second = body[(comma + 1)..];
            if (second.Length > 0)
            {
                if (!int.TryParse(second, NumberStyles.None, CultureInfo.InvariantCulture, out max))
                {
                    return false;
                }
            }
        }

        return true;
    }

    private static bool TryGroup(string pattern, ref int i, StringBuilder builder, out string? error)
    {
        error = null;
        if (i + 1 >= pattern.Length || pattern[i + 1] != '?')
        {
            builder.Append('(');
            return true;
        }

        var rest = pattern.AsSpan(i + 2);
        if (rest.StartsWith("=") || rest.StartsWith("!"))
        {
            error = $"regex '{pattern}' uses lookahead '(?{rest[0]}', which RE2 does not support";
            return false;
        }

        if (rest.StartsWith("<=") || rest.StartsWith("<!"))
        {
            error = $"regex '{pattern}' uses lookbehind '(?{rest[..2]}', which RE2 does not support";
            return false;
        }

        if (rest.StartsWith(">"))
        {
            error = $"regex '{pattern}' uses an atomic group '(?>', which RE2 does not support";
            return false;
        }

        if (rest.StartsWith("("))
        {
            error = $"regex '{pattern}' uses a conditional '(?(', which RE2 does not support";
            return false;
        }

        if (rest.StartsWith("P<"))
        {
            // RE2's Python-style named group; .NET spells it without the P.
            builder.Append("(?<");
            i += 3;
            return true;
        }

        if (rest.StartsWith("P=") || rest.StartsWith("P>") || rest.StartsWith("'") || rest.StartsWith("#"))
        {
            error = $"regex '{pattern}' uses '(?{rest[0]}' syntax, which RE2 does not support";
            return false;
        }

        if (rest.StartsWith("<"))
        {
            builder.Append("(?<");
            i += 2;
            return true;
        }

        // Flag group: (?flags) or (?flags:...). RE2 flags are i, m, s, U.
        var j = 0;
        while (j < rest.Length && rest[j] is not (')' or ':'))
        {
            var flag = rest[j];
            if (flag == 'U')
            {
                error = $"regex '{pattern}' uses the ungreedy flag 'U'; write lazy quantifiers ('*?') instead";
                return false;
            }

            if (flag is not ('i' or 'm' or 's' or '-'))
            {
                error = $"regex '{pattern}' uses the group flag '{flag}', which RE2 does not support";
                return false;
            }

            j++;
        }

        if (j >= rest.Length)
        {
            error = $"regex '{pattern}' has an unterminated group";
            return false;
        }

        builder.Append("(?").Append(rest[..(j + 1)]);
        i += j + 2;
        return true;
    }
}

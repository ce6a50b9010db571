using System.Globalization;
using System.Text;

namespace Mesh.Xds.Re2;

/// <summary>
/// Parses one regex with RE2's grammar (as Envoy compiles it: RE2's default, Perl-like options) and writes a .NET
/// pattern with the same meaning that <see cref="System.Text.RegularExpressions.RegexOptions.NonBacktracking"/>
/// accepts, or says precisely which construct at which offset RE2 (or the translation) does not accept.
/// The output spells everything out instead of leaning on .NET's own reading: every literal and class is a
/// code-point set (case folding from Unicode's CaseFolding.txt, astral code points as surrogate pairs), anchors
/// are <c>\A</c>, <c>\z</c> or <c>(?m:^)</c>/<c>(?m:$)</c>, repetitions carry their greediness after RE2's
/// <c>U</c> flag, and every group RE2 numbers is an unnamed .NET group, so group numbers agree.
/// </summary>
internal sealed class Re2Translator
{
    private const int MaxNesting = 1000;

    private readonly string _pattern;
    private readonly StringBuilder _out = new();
    private readonly Stack<Frame> _frames = new();
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private int _pos;
    private Flags _flags;
    private string? _error;

    // The operand a following repetition applies to: where it starts in _out (-1: none, e.g. right after '(' or '|'),
    // and the product of the counted repetitions nested in it (RE2 limits that product to 1000).
    private int _atomStart = -1;
    private int _atomFactor = 1;

    // The largest repetition product inside the group being parsed.
    private int _groupFactor = 1;

    // Offset of the repetition operator just parsed, or -1: RE2 refuses a repetition of a repetition (a**, a*+).
    private int _lastRepeat = -1;

    private Re2Translator(string pattern) => _pattern = pattern;

    [Flags]
    private enum Flags
    {
        None = 0,
        FoldCase = 1,
        MultiLine = 2,
        DotNewLine = 4,
        NonGreedy = 8,
    }

    /// <summary>Translates <paramref name="pattern"/>; on failure <paramref name="error"/> names the construct and its offset.</summary>
    public static bool TryTranslate(string pattern, out string translated, out string? error)
    {
        var translator = new Re2Translator(pattern);
        if (!translator.Run())
        {
            translated = string.Empty;
            error = $"regex '{pattern}' {translator._error}";
            return false;
        }

        translated = translator._out.ToString();
        error = null;
        return true;
    }

    private bool Run()
    {
        while (_pos < _pattern.Length)
        {
            var start = _pos;
            var c = _pattern[_pos];
            var repeat = false;
            switch (c)
            {
                case '(':
                    if (!OpenGroup())
                    {
                        return false;
                    }

                    break;
                case ')':
                    if (!CloseGroup())
                    {
                        return false;
                    }

                    break;
                case '|':
                    _out.Append('|');
                    _atomStart = -1;
                    _pos++;
                    break;
                case '^':
                    BeginAtom();
                    _out.Append((_flags & Flags.MultiLine) != 0 ? "(?m:^)" : @"\A");
                    _pos++;
                    break;
                case '$':
                    BeginAtom();

                    // Without m, RE2's $ matches only at the very end, like \z (.NET's $ also before a final \n).
                    _out.Append((_flags & Flags.MultiLine) != 0 ? "(?m:$)" : @"\z");
                    _pos++;
                    break;
                case '.':
                    {
                        var set = new Re2CodePointSet();
                        if ((_flags & Flags.DotNewLine) != 0)
                        {
                            set.Add(0, Re2CodePointSet.MaxCodePoint, fold: false);
                        }
                        else
                        {
                            set.Add(0, '\n' - 1, fold: false);
                            set.Add('\n' + 1, Re2CodePointSet.MaxCodePoint, fold: false);
                        }

                        EmitSet(set);
                        _pos++;
                        break;
                    }

                case '[':
                    if (!ParseClass())
                    {
                        return false;
                    }

                    break;
                case '*' or '+' or '?':
                    _pos++;
                    if (!Repeat(start, 0, -1, c))
                    {
                        return false;
                    }

                    repeat = true;
                    break;
                case '{':
                    if (TryParseRepetition(out var min, out var max))
                    {
                        if (_error is not null || !Repeat(start, min, max, '{'))
                        {
                            return false;
                        }

                        repeat = true;
                    }
                    else
                    {
                        // RE2 reads a '{' that starts no repetition (x{, x{,2}, x{01}) as a literal.
                        EmitLiteral('{');
                        _pos++;
                    }

                    break;
                case '\\':
                    if (!ParseBackslash())
                    {
                        return false;
                    }

                    break;
                default:
                    if (!TryReadRune(out var rune))
                    {
                        return false;
                    }

                    EmitLiteral(rune);
                    break;
            }

            if (!repeat)
            {
                _lastRepeat = -1;
            }
        }

        if (_frames.Count > 0)
        {
            return Fail($"has no ')' for the group opened at offset {_frames.Peek().Offset}");
        }

        return true;
    }

    private bool OpenGroup()
    {
        var open = _pos;
        if (_frames.Count >= MaxNesting)
        {
            // RE2 itself has no such limit; this one bounds the work of .NET's regex construction.
            return Fail($"nests groups more than {MaxNesting} deep at offset {open}, the translation's limit");
        }

        if (_pos + 1 >= _pattern.Length || _pattern[_pos + 1] != '?')
        {
            _pos++;
            PushGroup(open, capturing: true, _flags);
            return true;
        }

        var rest = _pattern.AsSpan(_pos + 2);
        if (rest.StartsWith("=") || rest.StartsWith("!"))
        {
            return Fail($"uses lookahead '(?{rest[0]}' at offset {open}, which RE2 does not support");
        }

        if (rest.StartsWith("<=") || rest.StartsWith("<!"))
        {
            return Fail($"uses lookbehind '(?{rest[..2]}' at offset {open}, which RE2 does not support");
        }

        if (rest.StartsWith("P<") || rest.StartsWith("<"))
        {
            var nameStart = _pos + (rest[0] == 'P' ? 4 : 3);
            var close = _pattern.IndexOf('>', nameStart);
            if (close < 0)
            {
                return Fail($"has an unterminated group name at offset {open}");
            }

            var name = _pattern[nameStart..close];
            if (!IsValidGroupName(name))
            {
                return Fail($"has an invalid group name '{name}' at offset {open} (RE2 allows letters, digits, marks and connector punctuation, at least one)");
            }

            if (!_names.Add(name))
            {
                return Fail($"names two groups '{name}' (the second at offset {open}), which RE2 does not allow");
            }

            // RE2 numbers named and unnamed groups left to right; .NET numbers named groups last, so the name is
            // dropped (no xDS field refers to a group by name) and the numbers stay RE2's.
            _pos = close + 1;
            PushGroup(open, capturing: true, _flags);
            return true;
        }

        // Flags, with or without a group: (?i) (?-s) (?i-m:re) (?:re).
        var flags = _flags;
        var negated = false;
        var sawFlag = false;
        var i = _pos + 2;
        for (; ; i++)
        {
            if (i >= _pattern.Length)
            {
                return Fail($"has an unterminated '(?' group at offset {open}");
            }

            var f = _pattern[i];
            Flags bit;
            switch (f)
            {
                case 'i':
                    bit = Flags.FoldCase;
                    break;
                case 'm':
                    bit = Flags.MultiLine;
                    break;
                case 's':
                    bit = Flags.DotNewLine;
                    break;
                case 'U':
                    bit = Flags.NonGreedy;
                    break;
                case '-':
                    if (negated)
                    {
                        return Fail($"has a second '-' in the flags at offset {i}");
                    }

                    negated = true;
                    sawFlag = false;
                    continue;
                case ':' or ')':
                    if (negated && !sawFlag)
                    {
                        return Fail($"has '-' with no flag after it at offset {i}");
                    }

                    if (f == ':')
                    {
                        // The group's flags end with it: the flags in force before it are restored at ')'.
                        PushGroup(open, capturing: false, _flags);
                    }

                    _flags = flags;
                    _pos = i + 1;
                    return true;
                case '>' when i == _pos + 2:
                    return Fail($"uses an atomic group '(?>' at offset {open}, which RE2 does not support");
                case '(' when i == _pos + 2:
                    return Fail($"uses a conditional '(?(' at offset {open}, which RE2 does not support");
                case '#' when i == _pos + 2:
                    return Fail($"uses a comment group '(?#' at offset {open}, which RE2 does not support");
                case '\'' when i == _pos + 2:
                    return Fail($"uses the group name syntax (?'name') at offset {open}, which RE2 does not support; write (?P<name>...)");
                case 'P' when i == _pos + 2:
                    return Fail($"uses '(?P{(i + 1 < _pattern.Length ? _pattern[i + 1].ToString() : string.Empty)}' at offset {open} (a named backreference or recursion), which RE2 does not support");
                default:
                    return Fail($"uses the group flag '{f}' at offset {i}, which RE2 does not support (RE2's flags are i, m, s and U)");
            }

            sawFlag = true;
            flags = negated ? flags & ~bit : flags | bit;
        }
    }

    private void PushGroup(int offset, bool capturing, Flags saved)
    {
        _frames.Push(new Frame(offset, _out.Length, saved, _groupFactor));
        _out.Append(capturing ? "(" : "(?:");
        _atomStart = -1;
        _groupFactor = 1;
    }

    private bool CloseGroup()
    {
        if (_frames.Count == 0)
        {
            return Fail($"has an unmatched ')' at offset {_pos}");
        }

        var frame = _frames.Pop();
        _out.Append(')');
        _pos++;
        _flags = frame.SavedFlags;
        var inner = _groupFactor;
        _groupFactor = Math.Max(frame.SavedGroupFactor, inner);
        _atomStart = frame.OutputStart;
        _atomFactor = inner;
        return true;
    }

    private bool Repeat(int offset, int min, int max, char op)
    {
        var text = _pattern[offset.._pos];
        if (_lastRepeat >= 0)
        {
            var stacked = _pattern[_lastRepeat.._pos];
            return op == '+' && _pos == offset + 1
                ? Fail($"uses a possessive quantifier '{stacked}' at offset {_lastRepeat}, which RE2 does not support")
                : Fail($"repeats a repetition '{stacked}' at offset {_lastRepeat}, which RE2 does not allow (wrap the inner one in a group)");
        }

        if (_atomStart < 0)
        {
            return Fail($"has nothing before the repetition '{text}' at offset {offset}");
        }

        var lazy = false;
        if (_pos < _pattern.Length && _pattern[_pos] == '?')
        {
            lazy = true;
            _pos++;
        }

        // (?U) swaps greedy and lazy.
        lazy ^= (_flags & Flags.NonGreedy) != 0;

        var factor = _atomFactor;
        if (op == '{')
        {
            var count = max < 0 ? min : max;
            if (count > 0)
            {
                factor *= count;
            }

            if (factor > Re2Regex.MaxRepeat)
            {
                return Fail($"repeats '{text}' at offset {offset} inside other counted repetitions for more than {Re2Regex.MaxRepeat} copies in all, RE2's limit");
            }
        }

        _out.Insert(_atomStart, "(?:");
        _out.Append(')');
        switch (op)
        {
            case '*':
                _out.Append('*');
                break;
            case '+':
                _out.Append('+');
                break;
            case '?':
                _out.Append('?');
                break;
            default:
                _out.Append('{').Append(min.ToString(CultureInfo.InvariantCulture));
                if (max != min)
                {
                    _out.Append(',');
                    if (max >= 0)
                    {
                        _out.Append(max.ToString(CultureInfo.InvariantCulture));
                    }
                }

                _out.Append('}');
                break;
        }

        if (lazy)
        {
            _out.Append('?');
        }

        _atomFactor = factor;
        _groupFactor = Math.Max(_groupFactor, factor);
        _lastRepeat = offset;
        return true;
    }

    /// <summary>RE2's counted repetition: {n}, {n,} or {n,m}, numbers without leading zeros; anything else is no repetition.</summary>
    private bool TryParseRepetition(out int min, out int max)
    {
        var i = _pos + 1;
        max = 0;
        if (!TryParseCount(ref i, out min) || i >= _pattern.Length)
        {
            return false;
        }

        if (_pattern[i] == ',')
        {
            i++;
            if (i >= _pattern.Length)
            {
                return false;
            }

            if (_pattern[i] == '}')
            {
                max = -1;
            }
            else if (!TryParseCount(ref i, out max))
            {
                return false;
            }
        }
        else
        {
            max = min;
        }

        if (i >= _pattern.Length || _pattern[i] != '}')
        {
            return false;
        }

        var text = _pattern[_pos..(i + 1)];
        if ((max >= 0 && max < min) || min > Re2Regex.MaxRepeat || max > Re2Regex.MaxRepeat)
        {
            // Recognised as a repetition but out of bounds: an error, not a literal.
            _error = max >= 0 && max < min
                ? $"has a repetition '{text}' at offset {_pos} whose maximum is below its minimum"
                : $"repeats '{text}' at offset {_pos}: more than {Re2Regex.MaxRepeat} times, RE2's limit";
            min = -1;
            max = -1;
            _pos = i + 1;
            return true;
        }

        _pos = i + 1;
        return true;
    }

    private bool TryParseCount(ref int i, out int value)
    {
        value = 0;
        if (i >= _pattern.Length || !char.IsAsciiDigit(_pattern[i]))
        {
            return false;
        }

        if (_pattern[i] == '0' && i + 1 < _pattern.Length && char.IsAsciiDigit(_pattern[i + 1]))
        {
            return false;
        }

        while (i < _pattern.Length && char.IsAsciiDigit(_pattern[i]))
        {
            if (value >= 100_000_000)
            {
                return false;
            }

            value = (value * 10) + (_pattern[i] - '0');
            i++;
        }

        return true;
    }

    private bool ParseBackslash()
    {
        var start = _pos;
        if (_pos + 1 >= _pattern.Length)
        {
            return Fail($"ends with a lone backslash at offset {start}");
        }

        var next = _pattern[_pos + 1];
        switch (next)
        {
            case 'b' or 'B':
                // .NET's \b and \B are Unicode word boundaries, RE2's ASCII ones: the same wherever neither neighbour
                // is a non-ASCII word character (docs/routing.md). NonBacktracking has no lookaround to do better.
                BeginAtom();
                _out.Append('\\').Append(next);
                _pos += 2;
                return true;
            case 'A':
                BeginAtom();
                _out.Append(@"\A");
                _pos += 2;
                return true;
            case 'z':
                BeginAtom();
                _out.Append(@"\z");
                _pos += 2;
                return true;
            case 'Z':
                return Fail($"uses '\\Z' at offset {start}, which RE2 does not support (write \\z, or $ without the m flag)");
            case 'C':
                return Fail($"uses '\\C' (any byte) at offset {start}, which cannot match inside UTF-16 text");
            case 'Q':
                _pos += 2;
                while (_pos < _pattern.Length)
                {
                    if (_pattern[_pos] == '\\' && _pos + 1 < _pattern.Length && _pattern[_pos + 1] == 'E')
                    {
                        _pos += 2;
                        break;
                    }

                    if (!TryReadRune(out var literal))
                    {
                        return false;
                    }

                    EmitLiteral(literal);
                }

                return true;
            case 'p' or 'P':
                {
                    var set = new Re2CodePointSet();
                    if (!ParseUnicodeGroup(set))
                    {
                        return false;
                    }

                    EmitSet(set);
                    return true;
                }

            case 'd' or 'D' or 's' or 'S' or 'w' or 'W':
                {
                    var set = new Re2CodePointSet();
                    AddPerlClass(set, next);
                    _pos += 2;
                    EmitSet(set);
                    return true;
                }

            default:
                if (!ParseEscape(out var rune))
                {
                    return false;
                }

                EmitLiteral(rune);
                return true;
        }
    }

    /// <summary>RE2's ParseEscape: one code point from an escape (octal, hex, C escapes, escaped punctuation).</summary>
    private bool ParseEscape(out int rune)
    {
        var start = _pos;
        rune = 0;
        if (_pos + 1 >= _pattern.Length)
        {
            return Fail($"ends with a lone backslash at offset {start}");
        }

        _pos++;
        var c = _pattern[_pos++];
        switch (c)
        {
            case >= '1' and <= '7' when _pos >= _pattern.Length || _pattern[_pos] is < '0' or > '7':
            case '8' or '9':
                return Fail($"uses a backreference '\\{c}' at offset {start}, which RE2 does not support");
            case >= '0' and <= '7':
                // Octal: up to three digits (\0, \12, \123); a lone \1-\7 is a backreference (above).
                rune = c - '0';
                for (var n = 1; n < 3 && _pos < _pattern.Length && _pattern[_pos] is >= '0' and <= '7'; n++)
                {
                    rune = (rune * 8) + (_pattern[_pos++] - '0');
                }

                return true;
            case 'x':
                return ParseHex(start, out rune);
            case 'n':
                rune = '\n';
                return true;
            case 'r':
                rune = '\r';
                return true;
            case 't':
                rune = '\t';
                return true;
            case 'a':
                rune = '\a';
                return true;
            case 'f':
                rune = '\f';
                return true;
            case 'v':
                rune = '\v';
                return true;
            case 'k':
                return Fail($"uses a named backreference '\\k' at offset {start}, which RE2 does not support");
            case 'G' or 'X' or 'R' or 'K' or 'h' or 'H' or 'V' or 'e' or 'c' or 'g' or 'N' or 'o' or 'u' or 'U' or 'l' or 'L' or 'E':
                return Fail($"uses the escape '\\{c}' at offset {start}, which RE2 does not support{(c is 'u' or 'U' ? " (write \\x{263A} for a code point)" : string.Empty)}");
            default:
                if (c < 0x80 && !char.IsAsciiLetterOrDigit(c))
                {
                    // Escaped punctuation (and '_') stands for itself.
                    rune = c;
                    return true;
                }

                _pos = start;
                return Fail($"uses the escape '\\{(_pos + 1 < _pattern.Length ? ReadRuneText(_pos + 1) : string.Empty)}' at offset {start}, which RE2 does not support");
        }
    }

    private bool ParseHex(int start, out int rune)
    {
        rune = 0;
        if (_pos < _pattern.Length && _pattern[_pos] == '{')
        {
            var close = _pattern.IndexOf('}', _pos);
            var digits = close < 0 ? ReadOnlySpan<char>.Empty : _pattern.AsSpan(_pos + 1, close - _pos - 1);
            if (close < 0 || digits.IsEmpty || !IsHex(digits)
                || !int.TryParse(digits, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out rune)
                || rune > Re2CodePointSet.MaxCodePoint)
            {
                return Fail($"has an invalid escape '{(close < 0 ? _pattern[start..] : _pattern[start..(close + 1)])}' at offset {start} (\\x{{...}} takes 1 or more hex digits up to 10FFFF)");
            }

            _pos = close + 1;
            return true;
        }

        if (_pos + 2 > _pattern.Length || !IsHex(_pattern.AsSpan(_pos, 2)))
        {
            return Fail($"has an invalid escape '{_pattern[start..Math.Min(_pos + 2, _pattern.Length)]}' at offset {start} (\\x takes exactly two hex digits, or \\x{{...}})");
        }

        rune = int.Parse(_pattern.AsSpan(_pos, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
        _pos += 2;
        return true;
    }

    private static bool IsHex(ReadOnlySpan<char> digits)
    {
        foreach (var d in digits)
        {
            if (!char.IsAsciiHexDigit(d))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>RE2's ParseCharClass: [...], [^...], with ranges, escapes, Perl, POSIX and Unicode classes.</summary>
    private bool ParseClass()
    {
        var open = _pos;
        var set = new Re2CodePointSet();
        var fold = (_flags & Flags.FoldCase) != 0;
        _pos++;
        var negated = false;
        if (_pos < _pattern.Length && _pattern[_pos] == '^')
        {
            negated = true;
            _pos++;
        }

        var first = true;
        while (_pos < _pattern.Length && (_pattern[_pos] != ']' || first))
        {
            first = false;

            // RE2 has no class subtraction or intersection: '[' inside a class is a literal unless it opens [:name:].
            if (_pattern[_pos] == '[' && _pos + 1 < _pattern.Length && _pattern[_pos + 1] == ':')
            {
                var end = _pattern.IndexOf(":]", _pos + 2, StringComparison.Ordinal);
                if (end >= 0)
                {
                    var name = _pattern[(_pos + 2)..end];
                    if (!AddPosixClass(set, name, fold))
                    {
                        return Fail($"uses an unknown POSIX class '[:{name}:]' at offset {_pos}");
                    }

                    _pos = end + 2;
                    continue;
                }
            }

            if (_pattern[_pos] == '\\' && _pos + 1 < _pattern.Length)
            {
                var escape = _pattern[_pos + 1];
                if (escape is 'p' or 'P')
                {
                    if (!ParseUnicodeGroup(set))
                    {
                        return false;
                    }

                    continue;
                }

                if (escape is 'd' or 'D' or 's' or 'S' or 'w' or 'W')
                {
                    AddPerlClass(set, escape);
                    _pos += 2;
                    continue;
                }
            }

            var rangeStart = _pos;
            if (!ParseClassChar(open, out var lo))
            {
                return false;
            }

            var hi = lo;

            // a-z is a range; '-' before ']' (and, as Perl allows, anywhere else) is itself.
            if (_pos + 1 < _pattern.Length && _pattern[_pos] == '-' && _pattern[_pos + 1] != ']')
            {
                _pos++;
                if (!ParseClassChar(open, out hi))
                {
                    return false;
                }

                if (hi < lo)
                {
                    return Fail($"has a character range '{_pattern[rangeStart.._pos]}' at offset {rangeStart} that runs backwards");
                }
            }

            set.Add(lo, hi, fold);
        }

        if (_pos >= _pattern.Length)
        {
            return Fail($"has no ']' for the character class opened at offset {open}");
        }

        _pos++;
        if (negated)
        {
            set.Negate();
        }

        EmitSet(set);
        return true;
    }

    private bool ParseClassChar(int open, out int rune)
    {
        rune = 0;
        if (_pos >= _pattern.Length)
        {
            return Fail($"has no ']' for the character class opened at offset {open}");
        }

        if (_pattern[_pos] == '\\')
        {
            var next = _pos + 1 < _pattern.Length ? _pattern[_pos + 1] : '\0';
            if (next is 'b' or 'B' or 'A' or 'z' or 'Q' or 'C' or 'Z')
            {
                return Fail($"uses '\\{next}' inside a character class at offset {_pos}, which RE2 does not allow");
            }

            return ParseEscape(out rune);
        }

        return TryReadRune(out rune);
    }

    /// <summary>\pN, \p{Name}, \p{^Name}, \PN, \P{Name}: general categories, scripts and Any.</summary>
    private bool ParseUnicodeGroup(Re2CodePointSet set)
    {
        var start = _pos;
        var negate = _pattern[_pos + 1] == 'P';
        _pos += 2;
        if (_pos >= _pattern.Length)
        {
            return Fail($"has an incomplete Unicode class '{_pattern[start..]}' at offset {start}");
        }

        string name;
        if (_pattern[_pos] == '{')
        {
            var close = _pattern.IndexOf('}', _pos);
            if (close < 0)
            {
                return Fail($"has an unterminated Unicode class '{_pattern[start..]}' at offset {start}");
            }

            name = _pattern[(_pos + 1)..close];
            _pos = close + 1;
        }
        else
        {
            if (!TryReadRune(out var one))
            {
                return false;
            }

            name = char.ConvertFromUtf32(one);
        }

        var text = _pattern[start.._pos];
        if (name.StartsWith('^'))
        {
            negate = !negate;
            name = name[1..];
        }

        var fold = (_flags & Flags.FoldCase) != 0;
        if (name == "Any")
        {
            if (!negate)
            {
                set.Add(0, Re2CodePointSet.MaxCodePoint, fold: false);
            }

            return true;
        }

        if (Array.BinarySearch(Re2UnicodeTables.GroupNames, name, StringComparer.Ordinal) < 0)
        {
            var hint = name.StartsWith("Is", StringComparison.Ordinal) || name.StartsWith("In", StringComparison.Ordinal)
                ? " (RE2 has no Unicode blocks; scripts are named like Greek)"
                : string.Empty;
            return Fail($"uses an unknown Unicode class '{text}' at offset {start}{hint}; RE2 knows the general categories (L, Lu, N, ...), the scripts of Unicode {Re2UnicodeTables.UnicodeVersion} (Greek, Han, ...) and Any");
        }

        set.AddTable(Re2UnicodeTables.Group(name), negate, fold);
        return true;
    }

    private void AddPerlClass(Re2CodePointSet set, char name)
    {
        var fold = (_flags & Flags.FoldCase) != 0;
        ReadOnlySpan<int> ranges = char.ToLowerInvariant(name) switch
        {
            'd' => ['0', '9'],
            's' => ['\t', '\n', '\f', '\r', ' ', ' '],
            _ => ['0', '9', 'A', 'Z', '_', '_', 'a', 'z'],
        };
        set.AddTable(ranges, negate: char.IsUpper(name), fold);
    }

    private bool AddPosixClass(Re2CodePointSet set, string name, bool fold)
    {
        var negate = name.StartsWith('^');
        ReadOnlySpan<int> ranges = (negate ? name[1..] : name) switch
        {
            "alnum" => ['0', '9', 'A', 'Z', 'a', 'z'],
            "alpha" => ['A', 'Z', 'a', 'z'],
            "ascii" => [0, 0x7F],
            "blank" => ['\t', '\t', ' ', ' '],
            "cntrl" => [0, 0x1F, 0x7F, 0x7F],
            "digit" => ['0', '9'],
            "graph" => ['!', '~'],
            "lower" => ['a', 'z'],
            "print" => [' ', '~'],
            "punct" => ['!', '/', ':', '@', '[', '`', '{', '~'],
            "space" => ['\t', '\r', ' ', ' '],
            "upper" => ['A', 'Z'],
            "word" => ['0', '9', 'A', 'Z', '_', '_', 'a', 'z'],
            "xdigit" => ['0', '9', 'A', 'F', 'a', 'f'],
            _ => [],
        };
        if (ranges.IsEmpty)
        {
            return false;
        }

        set.AddTable(ranges, negate, fold);
        return true;
    }

    private void EmitLiteral(int rune)
    {
        if ((_flags & Flags.FoldCase) != 0)
        {
            var set = new Re2CodePointSet();
            set.Add(rune, rune, fold: true);
            EmitSet(set);
            return;
        }

        BeginAtom();
        if (rune is >= 0xD800 and <= 0xDFFF)
        {
            // A surrogate code point is no character of valid text: it matches nothing, as in RE2 on UTF-8.
            new Re2CodePointSet().AppendTo(_out);
        }
        else if (rune < 0x80 && char.IsAsciiLetterOrDigit((char)rune))
        {
            _out.Append((char)rune);
        }
        else if (rune <= 0xFFFF)
        {
            _out.Append("\\u").Append(rune.ToString("X4", CultureInfo.InvariantCulture));
        }
        else
        {
            var text = char.ConvertFromUtf32(rune);
            _out.Append("\\u").Append(((int)text[0]).ToString("X4", CultureInfo.InvariantCulture))
                .Append("\\u").Append(((int)text[1]).ToString("X4", CultureInfo.InvariantCulture));
        }
    }

    private void EmitSet(Re2CodePointSet set)
    {
        BeginAtom();
        set.AppendTo(_out);
    }

    private void BeginAtom()
    {
        _atomStart = _out.Length;
        _atomFactor = 1;
    }

    private bool TryReadRune(out int rune)
    {
        if (Rune.DecodeFromUtf16(_pattern.AsSpan(_pos), out var value, out var consumed) != System.Buffers.OperationStatus.Done)
        {
            rune = 0;
            return Fail($"has an unpaired surrogate at offset {_pos}");
        }

        rune = value.Value;
        _pos += consumed;
        return true;
    }

    private string ReadRuneText(int at)
        => char.IsHighSurrogate(_pattern[at]) && at + 1 < _pattern.Length ? _pattern.Substring(at, 2) : _pattern[at].ToString();

    /// <summary>RE2's rule: one or more code points of categories Lu Ll Lt Lm Lo Nl Mn Mc Nd Pc.</summary>
    private static bool IsValidGroupName(string name)
    {
        if (name.Length == 0)
        {
            return false;
        }

        foreach (var rune in name.EnumerateRunes())
        {
            var ok = false;
            foreach (var category in GroupNameCategories)
            {
                if (InTable(Re2UnicodeTables.Group(category), rune.Value))
                {
                    ok = true;
                    break;
                }
            }

            if (!ok)
            {
                return false;
            }
        }

        return true;
    }

    private static readonly string[] GroupNameCategories = ["Lu", "Ll", "Lt", "Lm", "Lo", "Nl", "Mn", "Mc", "Nd", "Pc"];

    private static bool InTable(ReadOnlySpan<int> ranges, int codePoint)
    {
        int lo = 0, hi = ranges.Length / 2;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (ranges[(2 * mid) + 1] < codePoint)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo < ranges.Length / 2 && ranges[2 * lo] <= codePoint;
    }

    private bool Fail(string message)
    {
        _error ??= message;
        return false;
    }

    private readonly record struct Frame(int Offset, int OutputStart, Flags SavedFlags, int SavedGroupFactor);
}

using System.Globalization;
using System.Text;

namespace Mesh.Xds.Re2;

/// <summary>
/// A set of Unicode code points (0 to 0x10FFFF) built while translating one RE2 character class, and its
/// rendering as a .NET pattern that matches exactly one code point of the set in UTF-16 text: BMP code points
/// as a character class, astral ones as surrogate pairs. Surrogate code points themselves never match: RE2 reads
/// UTF-8, where they cannot occur, and in a .NET string they only ever appear as halves of a pair.
/// </summary>
internal sealed class Re2CodePointSet
{
    /// <summary>The largest code point.</summary>
    public const int MaxCodePoint = 0x10FFFF;

    private readonly List<(int Lo, int Hi)> _ranges = [];
    private bool _normalized = true;

    /// <summary>Adds <paramref name="lo"/> to <paramref name="hi"/> inclusive; with <paramref name="fold"/>, also every code point case-equivalent to one of them.</summary>
    public void Add(int lo, int hi, bool fold)
    {
        _ranges.Add((lo, hi));
        _normalized = false;
        if (fold)
        {
            AddOrbits(lo, hi);
        }
    }

    /// <summary>Adds the (lo, hi) pairs of a Unicode table, or, when <paramref name="negate"/>, the code points outside them.</summary>
    public void AddTable(ReadOnlySpan<int> ranges, bool negate, bool fold)
    {
        if (!negate)
        {
            for (var i = 0; i < ranges.Length; i += 2)
            {
                Add(ranges[i], ranges[i + 1], fold);
            }

            return;
        }

        // RE2 negates a case-folded group after folding it, so that what is missing stays missing in every case.
        var positive = new Re2CodePointSet();
        positive.AddTable(ranges, negate: false, fold);
        positive.Negate();
        AddSet(positive);
    }

    /// <summary>Adds every code point of <paramref name="other"/>.</summary>
    public void AddSet(Re2CodePointSet other)
    {
        _ranges.AddRange(other._ranges);
        _normalized = false;
    }

    /// <summary>Replaces the set by its complement in 0..0x10FFFF.</summary>
    public void Negate()
    {
        Normalize();
        var complement = new List<(int Lo, int Hi)>(_ranges.Count + 1);
        var next = 0;
        foreach (var (lo, hi) in _ranges)
        {
            if (lo > next)
            {
                complement.Add((next, lo - 1));
            }

            next = hi + 1;
        }

        if (next <= MaxCodePoint)
        {
            complement.Add((next, MaxCodePoint));
        }

        _ranges.Clear();
        _ranges.AddRange(complement);
    }

    /// <summary>Appends a .NET pattern matching one code point of the set (one UTF-16 unit or one surrogate pair).</summary>
    public void AppendTo(StringBuilder builder)
    {
        Normalize();
        var bmp = new List<(int Lo, int Hi)>();
        var astral = new List<(int Lo, int Hi)>();
        foreach (var (lo, hi) in _ranges)
        {
            if (lo <= 0xFFFF)
            {
                AddBmp(bmp, lo, Math.Min(hi, 0xFFFF));
            }

            if (hi > 0xFFFF)
            {
                astral.Add((Math.Max(lo, 0x10000), hi));
            }
        }

        var pairs = SurrogateAlternatives(astral);
        if (bmp.Count == 0 && pairs.Count == 0)
        {
            // Nothing can match: a class of no UTF-16 unit.
            builder.Append(@"[^\u0000-\uFFFF]");
            return;
        }

        var alternatives = pairs.Count + (bmp.Count > 0 ? 1 : 0);
        if (alternatives > 1)
        {
            builder.Append("(?:");
        }

        var first = true;
        if (bmp.Count > 0)
        {
            AppendClass(builder, bmp);
            first = false;
        }

        foreach (var (highs, lows) in pairs)
        {
            if (!first)
            {
                builder.Append('|');
            }

            first = false;
            AppendClass(builder, highs);
            AppendClass(builder, lows);
        }

        if (alternatives > 1)
        {
            builder.Append(')');
        }
    }

    private static void AddBmp(List<(int Lo, int Hi)> bmp, int lo, int hi)
    {
        // Surrogate code units stand only in pairs; they are never a code point of their own.
        if (lo < 0xD800)
        {
            bmp.Add((lo, Math.Min(hi, 0xD7FF)));
        }

        if (hi > 0xDFFF)
        {
            bmp.Add((Math.Max(lo, 0xE000), hi));
        }
    }

    /// <summary>Astral ranges as (high surrogates, low surrogates) class pairs, highs with equal lows merged.</summary>
    private static List<(List<(int Lo, int Hi)> Highs, List<(int Lo, int Hi)> Lows)> SurrogateAlternatives(List<(int Lo, int Hi)> astral)
    {
        // Low-surrogate ranges per high surrogate, in ascending order.
        var perHigh = new SortedDictionary<int, List<(int Lo, int Hi)>>();
        foreach (var (lo, hi) in astral)
        {
            var h1 = 0xD800 + ((lo - 0x10000) >> 10);
            var h2 = 0xD800 + ((hi - 0x10000) >> 10);
            for (var h = h1; h <= h2; h++)
            {
                var from = h == h1 ? 0xDC00 + ((lo - 0x10000) & 0x3FF) : 0xDC00;
                var to = h == h2 ? 0xDC00 + ((hi - 0x10000) & 0x3FF) : 0xDFFF;
                if (!perHigh.TryGetValue(h, out var lows))
                {
                    perHigh[h] = lows = [];
                }

                lows.Add((from, to));
            }
        }

        // High surrogates with the same low-surrogate ranges share one alternative ([highs][lows]): fewer, larger
        // classes keep NonBacktracking's construction cheap (\p{L} has hundreds of astral ranges).
        var result = new List<(List<(int Lo, int Hi)> Highs, List<(int Lo, int Hi)> Lows)>();
        var byLows = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (high, lows) in perHigh)
        {
            var key = string.Join(',', lows);
            if (byLows.TryGetValue(key, out var index))
            {
                var highs = result[index].Highs;
                if (highs[^1].Hi == high - 1)
                {
                    highs[^1] = (highs[^1].Lo, high);
                }
                else
                {
                    highs.Add((high, high));
                }

                continue;
            }

            byLows[key] = result.Count;
            result.Add(([(high, high)], lows));
        }

        return result;
    }

    private static void AppendClass(StringBuilder builder, List<(int Lo, int Hi)> ranges)
    {
        builder.Append('[');
        foreach (var (lo, hi) in ranges)
        {
            AppendUnit(builder, lo);
            if (hi != lo)
            {
                builder.Append('-');
                AppendUnit(builder, hi);
            }
        }

        builder.Append(']');
    }

    private static void AppendUnit(StringBuilder builder, int unit)
        => builder.Append("\\u").Append(unit.ToString("X4", CultureInfo.InvariantCulture));

    private void AddOrbits(int lo, int hi)
    {
        var orbits = Re2UnicodeTables.CaseOrbits;
        var count = orbits.Length / 2;
        var index = LowerBound(orbits, lo);
        for (; index < count && orbits[2 * index] <= hi; index++)
        {
            var start = orbits[2 * index];
            var next = orbits[(2 * index) + 1];
            while (next != start)
            {
                _ranges.Add((next, next));
                var at = LowerBound(orbits, next);
                next = orbits[(2 * at) + 1];
            }
        }
    }

    /// <summary>The index of the first orbit pair whose code point is at least <paramref name="codePoint"/>.</summary>
    private static int LowerBound(ReadOnlySpan<int> orbits, int codePoint)
    {
        int lo = 0, hi = orbits.Length / 2;
        while (lo < hi)
        {
            var mid = (lo + hi) >>> 1;
            if (orbits[2 * mid] < codePoint)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    private void Normalize()
    {
        if (_normalized)
        {
            return;
        }

        _ranges.Sort(static (a, b) => a.Lo.CompareTo(b.Lo));
        var merged = new List<(int Lo, int Hi)>(_ranges.Count);
        foreach (var range in _ranges)
        {
            if (merged.Count > 0 && range.Lo <= merged[^1].Hi + 1)
            {
                merged[^1] = (merged[^1].Lo, Math.Max(merged[^1].Hi, range.Hi));
            }
            else
            {
                merged.Add(range);
            }
        }

        _ranges.Clear();
        _ranges.AddRange(merged);
        _normalized = true;
    }
}

using System.Globalization;

namespace Mesh.ControlPlane.Monitoring;

/// <summary>One sample of a scraped metric: its name, labels and value.</summary>
/// <param name="Key">The name and label text as exposed (<c>name{a="1",b="2"}</c>): the series' identity between two scrapes of one target.</param>
internal sealed record MetricSample(string Name, string Key, IReadOnlyDictionary<string, string> Labels, double Value);

/// <summary>
/// Reads samples out of the Prometheus text exposition format (version 0.0.4): <c>name{label="value",…} value [timestamp]</c>
/// lines, <c>#</c> lines skipped. Only the metrics asked for are kept; a malformed line is skipped, not fatal, so one odd
/// series does not hide a workload's traffic.
/// </summary>
internal static class PrometheusTextParser
{
    public static List<MetricSample> Parse(string text, IReadOnlySet<string> names)
    {
        var samples = new List<MetricSample>();
        foreach (var raw in text.AsSpan().EnumerateLines())
        {
            var line = raw.Trim();
            if (line.IsEmpty || line[0] == '#')
            {
                continue;
            }

            var nameEnd = line.IndexOfAny('{', ' ');
            if (nameEnd <= 0)
            {
                continue;
            }

            var name = line[..nameEnd].ToString();
            if (!names.Contains(name))
            {
                continue;
            }

            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            var rest = line[nameEnd..];
            var keyLength = nameEnd;
            if (rest[0] == '{')
            {
                var consumed = ParseLabels(rest, labels);
                if (consumed < 0)
                {
                    continue;
                }

                keyLength += consumed;
                rest = rest[consumed..];
            }

            rest = rest.TrimStart();
            var valueEnd = rest.IndexOf(' ');
            var valueText = valueEnd < 0 ? rest : rest[..valueEnd];
            if (!TryParseValue(valueText, out var value))
            {
                continue;
            }

            samples.Add(new MetricSample(name, line[..keyLength].ToString(), labels, value));
        }

        return samples;
    }

    public static bool TryParseValue(ReadOnlySpan<char> text, out double value)
    {
        switch (text)
        {
            case "+Inf" or "Inf":
                value = double.PositiveInfinity;
                return true;
            case "-Inf":
                value = double.NegativeInfinity;
                return true;
            case "NaN":
                value = double.NaN;
                return true;
            default:
                return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
        }
    }

    /// <summary>Parses <c>{a="1",b="2"}</c> at the start of <paramref name="text"/>; returns the characters consumed, or -1.</summary>
    private static int ParseLabels(ReadOnlySpan<char> text, Dictionary<string, string> labels)
    {
        var i = 1;
        var value = new System.Text.StringBuilder();
        while (i < text.Length)
        {
            while (i < text.Length && (text[i] == ' ' || text[i] == ','))
            {
                i++;
            }

            if (i < text.Length && text[i] == '}')
            {
                return i + 1;
            }

            var eq = text[i..].IndexOf('=');
            if (eq <= 0 || i + eq + 1 >= text.Length || text[i + eq + 1] != '"')
            {
                return -1;
            }

            var labelName = text.Slice(i, eq).Trim().ToString();
            i += eq + 2;
            value.Clear();
            while (true)
            {
                if (i >= text.Length)
                {
                    return -1;
                }

                var c = text[i++];
                if (c == '"')
                {
                    break;
                }

                if (c == '\\' && i < text.Length)
                {
                    var escaped = text[i++];
                    value.Append(escaped == 'n' ? '\n' : escaped);
                }
                else
                {
                    value.Append(c);
                }
            }

            labels[labelName] = value.ToString();
        }

        return -1;
    }
}

using System.Globalization;
using System.Text.RegularExpressions;

namespace Mesh.Sdk.AspNetCore.Tests.Telemetry;

/// <summary>One sample line of a Prometheus text exposition: metric name, labels and value.</summary>
internal sealed partial record PrometheusSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
{
    public string this[string label] => Labels.TryGetValue(label, out var value) ? value : throw new KeyNotFoundException($"label {label} missing in {Name}{{{string.Join(",", Labels.Select(l => $"{l.Key}=\"{l.Value}\""))}}}");

    /// <summary>Parses every sample line (comments skipped); a line that is not a sample fails the test with the line.</summary>
    public static List<PrometheusSample> Parse(string text)
    {
        var samples = new List<PrometheusSample>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            var match = SampleLine().Match(line);
            Assert.True(match.Success, $"not a Prometheus sample line: {line}");
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (Match label in LabelPair().Matches(match.Groups["labels"].Value))
            {
                labels.Add(label.Groups["key"].Value, label.Groups["value"].Value.Replace("\\\"", "\"", StringComparison.Ordinal).Replace("\\\\", "\\", StringComparison.Ordinal));
            }

            samples.Add(new PrometheusSample(match.Groups["name"].Value, labels, double.Parse(match.Groups["value"].Value, NumberStyles.Float, CultureInfo.InvariantCulture)));
        }

        return samples;
    }

    [GeneratedRegex("""^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>.*)\})? (?<value>\S+)$""")]
    private static partial Regex SampleLine();

    [GeneratedRegex("""(?<key>[a-zA-Z_][a-zA-Z0-9_]*)="(?<value>(\\.|[^"\\])*)",?""")]
    private static partial Regex LabelPair();
}

using System.Text;

namespace Mesh.Conformance.Tests;

/// <summary>
/// Keeps the conformance table of <c>docs/routing.md</c> equal to the rows: the table between the
/// <c>conformance:begin</c> / <c>conformance:end</c> markers is generated from <see cref="IstioRows"/> and
/// <see cref="EnvoyRows"/> and <see cref="RequestRows"/>. When it differs the test fails and prints the table to paste; run it with
/// <c>MESH_UPDATE_DOCS=1</c> to write it in place.
/// </summary>
public class ConformanceDocsTests
{
    private const string Begin = "<!-- conformance:begin (generated from tests/Mesh.Conformance.Tests; do not edit by hand) -->";
    private const string End = "<!-- conformance:end -->";

    [Fact]
    public void RoutingDoc_TableListsEveryRowWithItsTest()
    {
        var path = Path.Combine(RepositoryRoot(), "docs", "routing.md");
        var doc = File.ReadAllText(path).ReplaceLineEndings("\n");
        var start = doc.IndexOf(Begin, StringComparison.Ordinal);
        var end = doc.IndexOf(End, StringComparison.Ordinal);
        Assert.True(start >= 0 && end > start, $"docs/routing.md has no conformance table between the markers:\n{Begin}\n{End}");
        var current = doc[(start + Begin.Length)..end];
        var expected = "\n" + Table() + "\n";
        if (current == expected)
        {
            return;
        }

        if (Environment.GetEnvironmentVariable("MESH_UPDATE_DOCS") == "1")
        {
            File.WriteAllText(path, doc[..(start + Begin.Length)] + expected + doc[end..]);
            return;
        }

        Assert.Fail($"docs/routing.md's conformance table is stale (run this test with MESH_UPDATE_DOCS=1, or paste):\n{Begin}{expected}{End}");
    }

    /// <summary>The Markdown table of all rows.</summary>
    internal static string Table()
    {
        var text = new StringBuilder();
        text.Append("| field | behaviour | source | test |\n|---|---|---|---|\n");
        foreach (var row in IstioRows.All.Cast<ConformanceRow>().Concat(EnvoyRows.All).Concat(RequestRows.All))
        {
            text.Append("| ").Append(Cell(row.Field)).Append(" | ").Append(Cell(row.Behaviour)).Append(" | ")
                .Append(Cell(row.Source)).Append(" | `").Append(row.TestName).Append("` |\n");
        }

        return text.ToString().TrimEnd('\n');
    }

    private static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal);

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Mesh.Sdk.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"No Mesh.Sdk.sln above '{AppContext.BaseDirectory}'.");
    }
}

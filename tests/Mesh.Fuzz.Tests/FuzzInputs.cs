namespace Mesh.Fuzz.Tests;

/// <summary>The repository's fuzz corpus and saved crashes, per target.</summary>
internal static class FuzzInputs
{
    public static string Root { get; } = FindRoot();

    public static string[] Corpus(string target) => Files(Path.Combine(Root, "fuzz", "corpus", target));

    public static string[] Crashes(string target) => Files(Path.Combine(Root, "fuzz", "crashes", target));

    private static string[] Files(string directory) =>
        Directory.Exists(directory)
            ? Directory.GetFiles(directory).Where(f => !Path.GetFileName(f).StartsWith("README", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray()
            : [];

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Mesh.Sdk.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"Mesh.Sdk.sln not found above {AppContext.BaseDirectory}; the fuzz tests read fuzz/corpus from the repository");
    }
}

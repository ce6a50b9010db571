namespace Mesh.EndToEnd.Tests.Infrastructure;

/// <summary>Where the repository and the programs built in this test run's configuration are.</summary>
internal static class Paths
{
    /// <summary>The repository root (the folder holding Mesh.Sdk.sln).</summary>
    public static string RepositoryRoot { get; } = FindRoot();

    public static string ControlPlane => Program("src/Mesh.ControlPlane", "Mesh.ControlPlane");

    public static string TestServer => Program("tests/apps/MeshTestServer", "MeshTestServer");

    public static string TestClient => Program("tests/apps/MeshTestClient", "MeshTestClient");

    /// <summary>
    /// A program built next to this test assembly: the same configuration and framework folder
    /// (tests/Mesh.EndToEnd.Tests/bin/Release/net10.0 → src/Mesh.ControlPlane/bin/Release/net10.0).
    /// </summary>
    private static string Program(string projectFolder, string assemblyName)
    {
        var baseDirectory = Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory);
        var tail = Path.GetRelativePath(Path.Combine(RepositoryRoot, "tests", "Mesh.EndToEnd.Tests"), baseDirectory);
        var path = Path.Combine(RepositoryRoot, projectFolder, tail, assemblyName + ".dll");
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"'{path}' does not exist. Build tests/Mesh.EndToEnd.Tests (which builds it) in this configuration first.", path);
        }

        return path;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Mesh.Sdk.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"No Mesh.Sdk.sln above '{AppContext.BaseDirectory}'.");
    }
}

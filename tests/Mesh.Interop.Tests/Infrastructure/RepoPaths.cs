namespace Mesh.Interop.Tests.Infrastructure;

/// <summary>Locates the repository and the peer scripts from the test assembly's folder.</summary>
internal static class RepoPaths
{
    private static readonly Lazy<string> RootLazy = new(FindRoot);

    public static string Root => RootLazy.Value;

    public static string Peers => Path.Combine(Root, "tests", "peers");

    public static string EchoProto => Path.Combine(Peers, "protos", "echo.proto");

    public static string NodeDir => Path.Combine(Peers, "node");

    public static string NodeScript => Path.Combine(NodeDir, "xds-client.js");

    public static string PythonScript => Path.Combine(Peers, "python", "xds_client.py");

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Mesh.Sdk.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException(
            $"Mesh.Sdk.sln not found above '{AppContext.BaseDirectory}': run the tests from the repository checkout.");
    }
}

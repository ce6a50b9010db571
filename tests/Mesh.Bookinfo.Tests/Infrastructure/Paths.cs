namespace Mesh.Bookinfo.Tests.Infrastructure;

/// <summary>Where the repository, the sample and the launcher built in this test run's configuration are.</summary>
internal static class Paths
{
    /// <summary>The repository root (the folder holding Mesh.Sdk.sln).</summary>
    public static string RepositoryRoot { get; } = FindRoot();

    public static string Networking => Path.Combine(RepositoryRoot, "samples", "bookinfo-dotnet", "networking");

    public static string Security => Path.Combine(RepositoryRoot, "samples", "bookinfo-dotnet", "security");

    public static string Telemetry => Path.Combine(RepositoryRoot, "samples", "bookinfo-dotnet", "telemetry");

    /// <summary>A rule file of the walkthrough: from networking/ (traffic), telemetry/ (tracing) or security/ (mTLS, authorization, rate limit).</summary>
    public static string RuleFile(string file)
    {
        var networking = Path.Combine(Networking, file);
        var telemetry = Path.Combine(Telemetry, file);
        return File.Exists(networking) ? networking : File.Exists(telemetry) ? telemetry : Path.Combine(Security, file);
    }

    /// <summary>
    /// The launcher built next to this test assembly: the same configuration and framework folder
    /// (tests/Mesh.Bookinfo.Tests/bin/Release/net10.0 → samples/bookinfo-dotnet/launcher/bin/Release/net10.0).
    /// </summary>
    public static string LauncherAssembly()
    {
        var baseDirectory = Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory);
        var projectDirectory = Path.Combine(RepositoryRoot, "tests", "Mesh.Bookinfo.Tests");
        var tail = Path.GetRelativePath(projectDirectory, baseDirectory);
        var launcher = Path.Combine(RepositoryRoot, "samples", "bookinfo-dotnet", "launcher", tail, "Bookinfo.Launcher.dll");
        if (!File.Exists(launcher))
        {
            throw new FileNotFoundException(
                $"'{launcher}' does not exist. Build the solution (or tests/Mesh.Bookinfo.Tests, which builds the sample) in this configuration first.", launcher);
        }

        return launcher;
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

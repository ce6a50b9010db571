namespace Bookinfo.Launcher;

/// <summary>
/// Where the sample's folders and the built workloads are. The launcher runs from
/// <c>samples/bookinfo-dotnet/launcher/bin/CONFIGURATION/TFM/</c>; each workload was built next to it, in
/// <c>samples/bookinfo-dotnet/SERVICE/bin/CONFIGURATION/TFM/</c> (the same relative output path).
/// </summary>
internal sealed class SampleLayout
{
    private SampleLayout(string sampleRoot, string outputTail)
    {
        SampleRoot = sampleRoot;
        OutputTail = outputTail;
    }

    /// <summary>samples/bookinfo-dotnet.</summary>
    public string SampleRoot { get; }

    /// <summary>The output path below a project folder, e.g. bin/Release/net10.0.</summary>
    public string OutputTail { get; }

    public string DefaultConfigDirectory => Path.Combine(SampleRoot, "config");

    /// <summary>samples/bookinfo-dotnet/prometheus: the generated scrape targets and prometheus.yml (not in git).</summary>
    public string DefaultPrometheusDirectory => Path.Combine(SampleRoot, "prometheus");

    /// <summary>Finds the sample from the launcher's own location.</summary>
    /// <exception cref="InvalidOperationException">The launcher does not run from the sample's build output.</exception>
    public static SampleLayout Locate()
    {
        var baseDirectory = Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory);
        for (var dir = new DirectoryInfo(baseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Bookinfo.Launcher.csproj")) && dir.Parent is { } root)
            {
                return new SampleLayout(root.FullName, Path.GetRelativePath(dir.FullName, baseDirectory));
            }
        }

        throw new InvalidOperationException(
            $"The launcher runs from '{baseDirectory}', which is not inside samples/bookinfo-dotnet/launcher: run it from its build output (./scripts/run.sh does).");
    }

    /// <summary>The built assembly of a workload project.</summary>
    /// <exception cref="FileNotFoundException">The workload is not built.</exception>
    public string WorkloadAssembly(string projectFolder, string assemblyName)
    {
        var path = Path.Combine(SampleRoot, projectFolder, OutputTail, assemblyName + ".dll");
        if (!File.Exists(path))
        {
            throw new FileNotFoundException(
                $"'{path}' does not exist: build the sample first (./scripts/run.sh builds it, or `dotnet build samples/bookinfo-dotnet/launcher`).", path);
        }

        return path;
    }
}

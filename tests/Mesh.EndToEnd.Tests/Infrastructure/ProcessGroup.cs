using System.Globalization;

namespace Mesh.EndToEnd.Tests.Infrastructure;

/// <summary>
/// The processes of one test, as a user runs them: the standalone control plane on a config folder of its own, then
/// meshed apps pointed at it. Everything is stopped, and the folder deleted, on dispose.
/// </summary>
internal sealed class ProcessGroup : IAsyncDisposable
{
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly List<DotnetProcess> _processes = [];

    public string ConfigDirectory { get; } = Directory.CreateTempSubdirectory("mesh-e2e-").FullName;

    /// <summary>The control plane's xDS port, once <see cref="StartControlPlaneAsync"/> returned.</summary>
    public int XdsPort { get; private set; }

    /// <summary>
    /// Starts <c>Mesh.ControlPlane --config DIR --xds-port 0</c> and <paramref name="arguments"/>, waits for its
    /// listening line and returns the process (to read its other lines).
    /// </summary>
    public async Task<DotnetProcess> StartControlPlaneAsync(params string[] arguments)
    {
        var controlPlane = Start("control-plane", Paths.ControlPlane, ["--config", ConfigDirectory, "--xds-port", "0", .. arguments], new Dictionary<string, string>());
        var listening = await controlPlane.WaitForLineAsync(@"xDS server listening on .*\(port (\d+)\)", StartTimeout);
        XdsPort = int.Parse(listening.Groups[1].Value, CultureInfo.InvariantCulture);
        return controlPlane;
    }

    /// <summary>Starts a meshed app with <c>ASPNETCORE_URLS=http://127.0.0.1:0</c>, the control plane's address and <paramref name="environment"/>.</summary>
    public DotnetProcess StartApp(string name, string assembly, IReadOnlyDictionary<string, string> environment)
    {
        var all = new Dictionary<string, string>(environment)
        {
            ["ASPNETCORE_URLS"] = "http://127.0.0.1:0",
            ["Mesh__XdsServer"] = $"127.0.0.1:{XdsPort}",
        };
        return Start(name, assembly, [], all);
    }

    public Task WriteConfigAsync(string file, string yaml) => File.WriteAllTextAsync(Path.Combine(ConfigDirectory, file), yaml);

    /// <summary>Every process's kept output, for failure messages.</summary>
    public string Logs() => string.Join("\n\n", _processes.Select(static p => $"--- {p.Name}\n{p.Output()}"));

    private DotnetProcess Start(string name, string assembly, IEnumerable<string> args, IReadOnlyDictionary<string, string> environment)
    {
        var process = DotnetProcess.Start(name, assembly, args, environment);
        _processes.Add(process);
        return process;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in Enumerable.Reverse(_processes))
        {
            await process.DisposeAsync();
        }

        try
        {
            Directory.Delete(ConfigDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

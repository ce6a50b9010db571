using System.Globalization;
using System.Text;
using Mesh.ControlPlane;
using Mesh.Testing;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.AspNetCore.Tests.Infrastructure;

/// <summary>
/// The real <see cref="MeshControlPlane"/> on 127.0.0.1 with an ephemeral xDS port, watching a temporary config
/// folder; one per test class. Workloads register themselves with it (node metadata), so most tests need no YAML.
/// </summary>
public class ControlPlaneFixture : IAsyncLifetime
{
    private readonly ILoggerFactory _loggerFactory;

    public ControlPlaneFixture()
    {
        ConfigDirectory = Directory.CreateTempSubdirectory("mesh-aspnetcore-").FullName;
        _loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug)
            .AddFilter((category, level) => category?.StartsWith("Mesh.", StringComparison.Ordinal) == true ? level >= LogLevel.Debug : level >= LogLevel.Warning)
            .AddProvider(Logs));
    }

    public string ConfigDirectory { get; }

    /// <summary>Logs of the control plane and of every workload and client of the class.</summary>
    internal CapturingLoggerProvider Logs { get; } = new();

    public MeshControlPlane ControlPlane { get; private set; } = null!;

    public int XdsPort => ControlPlane.XdsPort;

    /// <summary>gRPC bootstrap JSON pointing at the control plane.</summary>
    public string Bootstrap =>
        "{\"xds_servers\":[{\"server_uri\":\"127.0.0.1:" + XdsPort.ToString(CultureInfo.InvariantCulture)
        + "\",\"channel_creds\":[{\"type\":\"insecure\"}],\"server_features\":[\"xds_v3\"]}],"
        + "\"node\":{\"locality\":{\"region\":\"r1\",\"zone\":\"z1\"},\"metadata\":{\"GENERATOR\":\"grpc\"}}}";

    public async Task InitializeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var options = new MeshControlPlaneOptions
        {
            ConfigDirectory = ConfigDirectory,
            XdsAddress = "127.0.0.1",
            XdsPort = 0,
            PushDebounce = TimeSpan.FromMilliseconds(20),
            ConfigDebounce = TimeSpan.FromMilliseconds(50),
            LoggerFactory = _loggerFactory,
        };
        Configure(options);
        ControlPlane = new MeshControlPlane(options);
        await ControlPlane.StartAsync(cts.Token);
    }

    /// <summary>Adjusts the control plane's options before it starts (a derived fixture turns on more).</summary>
    protected virtual void Configure(MeshControlPlaneOptions options)
    {
    }

    public void WriteConfig(string name, string yaml) => IstioYaml.WriteAtomically(ConfigDirectory, name, yaml);

    /// <summary>Control plane state and every captured log line, for assertion messages.</summary>
    public string Dump()
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"control plane snapshot {ControlPlane?.SnapshotVersion}, config errors: {string.Join("; ", ControlPlane?.ConfigErrors ?? [])}");
        sb.AppendLine(Logs.Dump());
        return sb.ToString();
    }

    public async Task DisposeAsync()
    {
        if (ControlPlane is not null)
        {
            await ControlPlane.DisposeAsync();
        }

        _loggerFactory.Dispose();
        try
        {
            Directory.Delete(ConfigDirectory, recursive: true);
        }
        catch (IOException)
        {
            // A temp folder left behind is harmless.
        }
    }
}

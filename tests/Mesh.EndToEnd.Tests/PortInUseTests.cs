using System.Net;
using System.Net.Sockets;
using Mesh.EndToEnd.Tests.Infrastructure;

namespace Mesh.EndToEnd.Tests;

/// <summary>A taken port is answered with one line naming the port and the flag to pass, a non-zero exit and no stack trace.</summary>
public sealed class PortInUseTests
{
    [Fact]
    public async Task ControlPlane_XdsPortTaken_OneLineNamingTheFlag_ExitOne()
    {
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var port = ((IPEndPoint)holder.LocalEndpoint).Port;
        var config = Directory.CreateTempSubdirectory("mesh-port-in-use-");
        try
        {
            var result = await Cli.RunAsync("dotnet", Paths.ControlPlane, "--config", config.FullName, "--xds-port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));

            Assert.Equal(1, result.ExitCode);
            Assert.Equal($"mesh-controlplane: port {port} on 127.0.0.1 is in use; pass --xds-port N (0 picks a free port)", result.Stderr.Trim());
            Assert.DoesNotContain("   at ", result.Stdout + result.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("Exception", result.Stdout + result.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            config.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task ControlPlane_MonitoringPortTaken_OneLineNamingItsFlag_ExitOne()
    {
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var port = ((IPEndPoint)holder.LocalEndpoint).Port;
        var config = Directory.CreateTempSubdirectory("mesh-port-in-use-");
        try
        {
            var result = await Cli.RunAsync("dotnet", Paths.ControlPlane, "--config", config.FullName, "--xds-port", "0",
                "--monitoring-port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));

            Assert.Equal(1, result.ExitCode);
            Assert.Equal($"mesh-controlplane: port {port} on 127.0.0.1 is in use; pass --monitoring-port N (0 picks a free port)", result.Stderr.Trim());
            Assert.DoesNotContain("   at ", result.Stdout + result.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            config.Delete(recursive: true);
        }
    }
}

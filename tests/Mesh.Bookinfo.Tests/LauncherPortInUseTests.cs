using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Mesh.Bookinfo.Tests.Infrastructure;

namespace Mesh.Bookinfo.Tests;

/// <summary>A taken port is answered with one line naming the port and the flag to pass, a non-zero exit and no stack trace.</summary>
public sealed class LauncherPortInUseTests
{
    [Theory]
    [InlineData("--port")]
    [InlineData("--xds-port")]
    public async Task PortTaken_OneLineNamingTheFlag_ExitOne(string flag)
    {
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var port = ((IPEndPoint)holder.LocalEndpoint).Port.ToString(CultureInfo.InvariantCulture);
        var config = Directory.CreateTempSubdirectory("bookinfo-port-in-use-");
        try
        {
            string[] args = flag == "--port" ? ["--port", port, "--xds-port", "0"] : ["--port", "0", "--xds-port", port];
            var (exitCode, stdout, stderr) = await RunAsync([Paths.LauncherAssembly(), "--config", config.FullName, .. args]);

            Assert.Equal(1, exitCode);
            Assert.Equal($"Bookinfo.Launcher: port {port} on 127.0.0.1 is in use; pass {flag} N (0 picks a free port)", stderr.Trim());
            Assert.DoesNotContain("   at ", stdout + stderr, StringComparison.Ordinal);
            Assert.DoesNotContain("Exception", stdout + stderr, StringComparison.Ordinal);
            Assert.DoesNotContain(" pid=", stdout, StringComparison.Ordinal); // no workload was started
        }
        finally
        {
            config.Delete(recursive: true);
        }
    }

    private static async Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info) ?? throw new InvalidOperationException("could not start dotnet");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"the launcher did not exit within 60 s: {await stdout} {await stderr}");
        }

        return (process.ExitCode, await stdout, await stderr);
    }
}

using System.Diagnostics;

namespace Mesh.Sdk.AspNetCore.Tests.Telemetry;

/// <summary>Runs a Debian tool (promtool, dot) the tests check output with; a missing tool fails with what to install.</summary>
internal static class ExternalTool
{
    public static string Find(string name, string package)
    {
        var path = new[] { $"/usr/bin/{name}", $"/usr/local/bin/{name}" }.FirstOrDefault(File.Exists);
        Assert.True(path is not null, $"{name} is missing: install Debian's {package} package (scripts/test.sh installs it)");
        return path!;
    }

    /// <summary>Runs <paramref name="tool"/> with <paramref name="input"/> on stdin; returns its exit code, stdout and stderr.</summary>
    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(string tool, string arguments, string input, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(tool, arguments)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.WriteAsync(input);
        process.StandardInput.Close();
        try
        {
            await process.WaitForExitAsync().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>
    /// <c>promtool check metrics</c>: the exposition must parse (exit 1 would be a parse error), and every lint it reports
    /// must be one of <paramref name="allowedLints"/> (exit 3 is lint only).
    /// </summary>
    public static async Task PromtoolCheckMetricsAsync(string exposition, params string[] allowedLints)
    {
        var (exitCode, output, error) = await RunAsync(Find("promtool", "prometheus"), "check metrics", exposition, TimeSpan.FromSeconds(30));
        var lines = (output + error).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(exitCode is 0 or 3, $"promtool check metrics exited {exitCode}: {output}{error}");
        Assert.All(lines, line => Assert.Contains(line, allowedLints));
    }
}

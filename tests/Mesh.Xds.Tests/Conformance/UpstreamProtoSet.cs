using System.Diagnostics;
using Google.Protobuf.Reflection;

namespace Mesh.Xds.Tests.Conformance;

/// <summary>
/// Compiles the upstream protos shipped in the npm package <c>@grpc/grpc-js-xds</c> with the <c>protoc</c> of the
/// Grpc.Tools NuGet package into a descriptor set, at test time (nothing upstream is copied into the repo).
/// </summary>
internal static class UpstreamProtoSet
{
    private const string GrpcToolsVersion = "2.85.0";
    private const string InstallHint = "run `scripts/test.sh`, or `cd tests/peers/node && npm ci`";

    public static async Task<IReadOnlyList<FileDescriptorProto>> CompileAsync(
        IEnumerable<string> protoFiles, CancellationToken cancellationToken)
    {
        var root = FindRepoRoot();
        var deps = Path.Combine(root, "tests", "peers", "node", "node_modules", "@grpc", "grpc-js-xds", "deps");
        string[] includeDirs = ["envoy-api", "xds", "googleapis", "protoc-gen-validate"];
        foreach (var dir in includeDirs)
        {
            if (!Directory.Exists(Path.Combine(deps, dir)))
            {
                throw new InvalidOperationException(
                    $"Upstream protos not found at '{Path.Combine(deps, dir)}': {InstallHint}.");
            }
        }

        var (protoc, wellKnownInclude) = FindProtoc();
        var temp = Directory.CreateTempSubdirectory("mesh-xds-conformance-");
        try
        {
            var stubDir = Path.Combine(temp.FullName, "stub");
            WriteValidateStub(Path.Combine(deps, "protoc-gen-validate", "validate", "validate.proto"), stubDir);
            var output = Path.Combine(temp.FullName, "upstream.pb");

            var psi = new ProcessStartInfo(protoc)
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };

            // The stub directory comes first so its validate/validate.proto shadows the bundled one.
            psi.ArgumentList.Add("-I" + stubDir);
            foreach (var dir in includeDirs[..3])
            {
                psi.ArgumentList.Add("-I" + Path.Combine(deps, dir));
            }

            psi.ArgumentList.Add("-I" + wellKnownInclude);
            psi.ArgumentList.Add("--include_imports");
            psi.ArgumentList.Add("--descriptor_set_out=" + output);
            foreach (var file in protoFiles)
            {
                psi.ArgumentList.Add(file);
            }

            using var process = Process.Start(psi) ?? throw new InvalidOperationException($"Could not start '{protoc}'.");
            var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
            var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(60));
            try
            {
                await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw new TimeoutException($"'{protoc}' did not finish within 60 s.");
            }

            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException(
                    $"protoc failed ({process.ExitCode}) on the upstream protos:\n{await stderr.ConfigureAwait(false)}{await stdout.ConfigureAwait(false)}");
            }

            var bytes = await File.ReadAllBytesAsync(output, cancellationToken).ConfigureAwait(false);
            return FileDescriptorSet.Parser.ParseFrom(bytes).File;
        }
        finally
        {
            temp.Delete(recursive: true);
        }
    }

    /// <summary>
    /// The bundled validate.proto predates the Envoy files importing it (protoc: "validate.StringRules has no
    /// field named ignore_empty"). A copy with that field declared is enough for protoc; the rules themselves
    /// carry no wire facts of the messages compared.
    /// </summary>
    private static void WriteValidateStub(string bundled, string stubDir)
    {
        if (!File.Exists(bundled))
        {
            throw new InvalidOperationException($"'{bundled}' not found: {InstallHint}.");
        }

        var text = File.ReadAllText(bundled);
        const string anchor = "message StringRules {";
        var at = text.IndexOf(anchor, StringComparison.Ordinal);
        if (at < 0)
        {
            throw new InvalidOperationException($"'{bundled}' has no StringRules message: the stub cannot be built.");
        }

        if (!text.Contains("ignore_empty", StringComparison.Ordinal))
        {
            text = text.Insert(at + anchor.Length, "\n  optional bool ignore_empty = 26;");
        }

        Directory.CreateDirectory(Path.Combine(stubDir, "validate"));
        File.WriteAllText(Path.Combine(stubDir, "validate", "validate.proto"), text);
    }

    private static (string Protoc, string Include) FindProtoc()
    {
        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES");
        if (string.IsNullOrEmpty(packages))
        {
            packages = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        }

        var tools = Path.Combine(packages, "grpc.tools", GrpcToolsVersion);
        var protoc = Path.Combine(tools, "tools", "linux_x64", "protoc");
        var include = Path.Combine(tools, "build", "native", "include");
        if (!File.Exists(protoc) || !Directory.Exists(include))
        {
            throw new InvalidOperationException(
                $"protoc not found at '{protoc}' (NuGet package Grpc.Tools {GrpcToolsVersion}): run `dotnet restore` or `scripts/test.sh`.");
        }

        if (!OperatingSystem.IsWindows())
        {
            var mode = File.GetUnixFileMode(protoc);
            if ((mode & UnixFileMode.UserExecute) == 0)
            {
                File.SetUnixFileMode(protoc, mode | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
            }
        }

        return (protoc, include);
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Mesh.Sdk.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"Mesh.Sdk.sln not found above '{AppContext.BaseDirectory}'.");
    }
}

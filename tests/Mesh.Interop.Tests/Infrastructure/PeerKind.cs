using System.Diagnostics;

namespace Mesh.Interop.Tests.Infrastructure;

/// <summary>An independent xDS client this suite drives: how to start it and whether it is installed.</summary>
internal sealed record PeerKind(string Name, string Executable, IReadOnlyList<string> LeadingArguments, string WorkingDirectory)
{
    public const string Node = "node";
    public const string Python = "python";

    private const string PythonPath = "/usr/bin/python3";

    private static readonly Lazy<(PeerKind? Peer, string? Problem)> NodePeer = new(ProbeNode);
    private static readonly Lazy<(PeerKind? Peer, string? Problem)> PythonPeer = new(ProbePython);

    /// <summary>
    /// The peer, or an exception whose message says what to install. A missing peer is a test
    /// failure, never a skip.
    /// </summary>
    public static PeerKind Get(string name)
    {
        var (peer, problem) = name switch
        {
            Node => NodePeer.Value,
            Python => PythonPeer.Value,
            _ => throw new ArgumentOutOfRangeException(nameof(name), name, "Unknown peer."),
        };
        return peer ?? throw new InvalidOperationException(problem);
    }

    /// <summary>Environment for a peer: the inline bootstrap, plus gRPC xDS traces when MESH_INTEROP_TRACE=1.</summary>
    public static Dictionary<string, string> Environment(string bootstrapJson)
    {
        var env = new Dictionary<string, string> { ["GRPC_XDS_BOOTSTRAP_CONFIG"] = bootstrapJson };
        if (System.Environment.GetEnvironmentVariable("MESH_INTEROP_TRACE") == "1")
        {
            env["GRPC_TRACE"] = "xds_client,xds_resolver";
            env["GRPC_VERBOSITY"] = "DEBUG";
        }

        return env;
    }

    private static (PeerKind?, string?) ProbeNode()
    {
        const string install = "Install it with scripts/test.sh, or: cd tests/peers/node && npm ci";
        var node = FindOnPath("node");
        if (node is null)
        {
            return (null, "Peer 'node' is missing: no 'node' executable on PATH (install Node.js 18+). " + install);
        }

        var xds = Path.Combine(RepoPaths.NodeDir, "node_modules", "@grpc", "grpc-js-xds", "package.json");
        if (!File.Exists(xds))
        {
            return (null, $"Peer 'node' is missing: '{xds}' not found. " + install);
        }

        return (new PeerKind(Node, node, [RepoPaths.NodeScript], RepoPaths.NodeDir), null);
    }

    private static (PeerKind?, string?) ProbePython()
    {
        const string install = "Install it with scripts/test.sh, or: apt-get install -y python3-grpcio python3-grpc-tools python3-protobuf";
        if (!File.Exists(PythonPath))
        {
            return (null, $"Peer 'python' is missing: '{PythonPath}' not found. " + install);
        }

        var psi = new ProcessStartInfo(PythonPath, ["-c", "import grpc, grpc_tools.protoc, google.protobuf; print(grpc.__version__)"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(30_000))
        {
            p.Kill(entireProcessTree: true);
            return (null, $"Peer 'python': '{PythonPath} -c \"import grpc\"' did not finish in 30 s.");
        }

        if (p.ExitCode != 0)
        {
            return (null, $"Peer 'python' is missing: {PythonPath} cannot import grpc/grpc_tools/google.protobuf: "
                + stderr.GetAwaiter().GetResult().Trim() + ". " + install);
        }

        _ = stdout.GetAwaiter().GetResult();
        return (new PeerKind(Python, PythonPath, ["-u", RepoPaths.PythonScript], Path.GetDirectoryName(RepoPaths.PythonScript)!), null);
    }

    private static string? FindOnPath(string name)
    {
        foreach (var dir in (System.Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator))
        {
            if (dir.Length == 0)
            {
                continue;
            }

            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}

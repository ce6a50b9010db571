using System.Text;
using Google.Protobuf;
using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Registry;
using Mesh.ControlPlane.Translation;
using Mesh.Fuzz;
using Microsoft.Extensions.Logging.Abstractions;
using SharpFuzz;

// Mesh.Fuzz TARGET              run under afl-fuzz (instrumented with sharpfuzz), input on stdin
// Mesh.Fuzz TARGET FILE...      replay files in-process and print each outcome
// Mesh.Fuzz seed-xds DIR YAML.. write xds and route seeds translated from Istio YAML files
if (args.Length == 0)
{
    Console.Error.WriteLine($"usage: Mesh.Fuzz TARGET [FILE...] | seed-xds DIR YAML...  (targets: {string.Join(", ", FuzzTargets.Names)})");
    return 2;
}

if (args[0] == "seed-xds")
{
    return Seeds.WriteXds(args[1], args[2..]);
}

var target = args[0];
if (!FuzzTargets.Names.Contains(target))
{
    Console.Error.WriteLine($"Mesh.Fuzz: unknown target '{target}' (known: {string.Join(", ", FuzzTargets.Names)})");
    return 2;
}

if (args.Length > 1)
{
    foreach (var file in args[1..])
    {
        var outcome = FuzzTargets.Run(target, File.ReadAllBytes(file));
        Console.WriteLine($"{file}: {(outcome.Accepted ? "accepted" : "refused: " + outcome.Error)}");
    }

    return 0;
}

Fuzzer.OutOfProcess.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    FuzzTargets.Run(target, buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
});
return 0;

/// <summary>Seeds for the binary targets, translated by the control plane from the repo's Istio samples.</summary>
internal static class Seeds
{
    public static int WriteXds(string directory, string[] yamlFiles)
    {
        var store = new ConfigStore("default", NullLogger.Instance);
        store.Apply(yamlFiles.Select(f => (Path.GetFullPath(f), (string?)File.ReadAllText(f))));
        using var registry = new ServiceRegistry(TimeProvider.System, TimeSpan.FromSeconds(10), "cluster.local", NullLogger.Instance);
        registry.UpdateConfig(store.Current);
        var snapshot = new XdsTranslator("cluster.local").Translate(store.Current, registry.Current, 1);
        Directory.CreateDirectory(Path.Combine(directory, "xds"));
        Directory.CreateDirectory(Path.Combine(directory, "route"));
        var written = 0;
        byte kind = 0;
        foreach (var type in ResourceTypes.All)
        {
            foreach (var resource in snapshot.All(type).Values)
            {
                var bytes = resource.Resource.Value.ToByteArray();
                var name = Sanitize(resource.Name);
                File.WriteAllBytes(Path.Combine(directory, "xds", $"{kind}-{name}.bin"), [kind, .. bytes]);
                written++;
                if (type == ResourceTypes.Route && bytes.Length < ushort.MaxValue)
                {
                    var routes = Envoy.Config.Route.V3.RouteConfiguration.Parser.ParseFrom(bytes);
                    var host = routes.VirtualHosts.Count > 0 && routes.VirtualHosts[0].Domains.Count > 0 ? routes.VirtualHosts[0].Domains[0] : resource.Name;
                    var request = Encoding.UTF8.GetBytes($"{host}\n/productpage\nGET\nend-user:jason\nx-test:1");
                    File.WriteAllBytes(Path.Combine(directory, "route", $"{name}.bin"),
                        [(byte)bytes.Length, (byte)(bytes.Length >> 8), .. bytes, .. request]);
                    written++;
                }
            }

            kind++;
        }

        Console.WriteLine($"wrote {written} seeds to {directory}");
        return 0;
    }

    private static string Sanitize(string name) => new(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' ? c : '_').ToArray());
}

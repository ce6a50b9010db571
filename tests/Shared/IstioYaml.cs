using System.Globalization;

namespace Mesh.Testing;

/// <summary>Istio YAML pieces and the atomic file write that tests hosting the real control plane share.</summary>
internal static class IstioYaml
{
    /// <summary>
    /// Writes <paramref name="content"/> to <paramref name="name"/> in <paramref name="directory"/> by writing a
    /// hidden temp file beside it and renaming it over: the control plane's watcher never sees a half-written file.
    /// </summary>
    public static void WriteAtomically(string directory, string name, string content)
    {
        var target = Path.Combine(directory, name);
        var temp = Path.Combine(directory, "." + name + ".tmp");
        File.WriteAllText(temp, content);
        File.Move(temp, target, overwrite: true);
    }

    /// <summary>A <c>---</c>-prefixed WorkloadEntry document at 127.0.0.1 with labels <c>app</c> and <c>version</c>.</summary>
    public static string WorkloadEntry(string name, string app, string version, string portName, int port) =>
        string.Create(CultureInfo.InvariantCulture, $"""
            ---
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata:
              name: {name}
              namespace: default
            spec:
              address: 127.0.0.1
              ports:
                {portName}: {port}
              labels:
                app: {app}
                version: {version}

            """);
}

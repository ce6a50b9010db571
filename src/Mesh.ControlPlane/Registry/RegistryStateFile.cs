using System.Globalization;
using System.Text.Json;

namespace Mesh.ControlPlane.Registry;

/// <summary>
/// The self-registrations a control plane keeps across restarts: one JSON file, written whole to a temporary
/// file beside it and renamed over it, so a crash mid-write leaves the previous content.
/// </summary>
internal static class RegistryStateFile
{
    /// <summary>The file's name in the configuration folder. The watcher reads only *.yaml / *.yml, and ignores this file's events.</summary>
    public const string FileName = ".mesh-registry.json";

    private const int FormatVersion = 1;

    /// <summary>Whether a path (relative or full) names the state file or its temporary file.</summary>
    public static bool IsStateFile(string? path)
    {
        var name = Path.GetFileName(path);
        return name is not null && (name == FileName || name == FileName + ".tmp");
    }

    public static void Write(string file, IReadOnlyList<SelfRegistration> registrations)
    {
        var temp = file + ".tmp";
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteNumber("version", FormatVersion);
            json.WriteStartArray("registrations");
            foreach (var r in registrations)
            {
                json.WriteStartObject();
                json.WriteString("nodeId", r.NodeId);
                json.WriteString("serviceHost", r.ServiceHost);
                json.WriteString("namespace", r.Namespace);
                json.WriteString("address", r.Address);
                json.WriteStartObject("ports");
                foreach (var (servicePort, workloadPort) in r.Ports)
                {
                    json.WriteNumber(servicePort.ToString(CultureInfo.InvariantCulture), workloadPort);
                }

                json.WriteEndObject();
                json.WriteStartObject("labels");
                foreach (var (key, value) in r.Labels)
                {
                    json.WriteString(key, value);
                }

                json.WriteEndObject();
                json.WriteStartObject("locality");
                json.WriteString("region", r.Locality.Region);
                json.WriteString("zone", r.Locality.Zone);
                json.WriteString("subZone", r.Locality.SubZone);
                json.WriteEndObject();
                if (r.ServiceAccount is not null)
                {
                    json.WriteString("serviceAccount", r.ServiceAccount);
                }

                if (r.WorkloadName is not null)
                {
                    json.WriteString("workloadName", r.WorkloadName);
                }

                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteEndObject();
            json.Flush();
            stream.Flush(flushToDisk: true);
        }

        File.Move(temp, file, overwrite: true);
    }

    /// <summary>Reads the file; a missing file is an empty registry, anything unreadable is reported in <paramref name="problem"/>.</summary>
    public static IReadOnlyList<SelfRegistration> Read(string file, out string? problem)
    {
        problem = null;
        if (!File.Exists(file))
        {
            return [];
        }

        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(file));
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("version", out var version) || version.ValueKind != JsonValueKind.Number
                || version.GetInt32() != FormatVersion)
            {
                problem = $"not a version {FormatVersion} registry state";
                return [];
            }

            var result = new List<SelfRegistration>();
            foreach (var item in root.GetProperty("registrations").EnumerateArray())
            {
                var ports = new Dictionary<uint, uint>();
                foreach (var port in item.GetProperty("ports").EnumerateObject())
                {
                    ports[uint.Parse(port.Name, NumberStyles.None, CultureInfo.InvariantCulture)] = port.Value.GetUInt32();
                }

                var labels = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var label in item.GetProperty("labels").EnumerateObject())
                {
                    labels[label.Name] = label.Value.GetString() ?? string.Empty;
                }

                var locality = item.GetProperty("locality");
                result.Add(new SelfRegistration(
                    Required(item, "nodeId"),
                    Required(item, "serviceHost"),
                    Required(item, "namespace"),
                    Required(item, "address"),
                    ports,
                    labels,
                    new EndpointLocality(Required(locality, "region"), Required(locality, "zone"), Required(locality, "subZone")),
                    item.TryGetProperty("serviceAccount", out var account) ? account.GetString() : null,
                    item.TryGetProperty("workloadName", out var workload) ? workload.GetString() : null));
            }

            return result;
        }
        catch (Exception ex) when (ex is JsonException or IOException or UnauthorizedAccessException or KeyNotFoundException or InvalidOperationException
            or FormatException or OverflowException)
        {
            problem = ex.Message;
            return [];
        }
    }

    private static string Required(JsonElement element, string name) =>
        element.GetProperty(name).GetString() is { Length: > 0 } value || name is "region" or "zone" or "subZone"
            ? element.GetProperty(name).GetString() ?? string.Empty
            : throw new FormatException($"'{name}' is missing or empty");
}

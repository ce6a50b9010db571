using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Configuration;

namespace Mesh.Sdk.Xds;

/// <summary>
/// Reads the xDS bootstrap. Sources, first match wins: the environment variable
/// <c>GRPC_XDS_BOOTSTRAP</c> (path of a JSON file), <c>GRPC_XDS_BOOTSTRAP_CONFIG</c> (inline JSON),
/// then the <c>Mesh</c> configuration section: <c>Mesh:BootstrapPath</c> (file), <c>Mesh:Bootstrap</c>
/// (inline JSON string, or a section with the JSON's own keys), or the short keys <c>Mesh:XdsServer</c>,
/// <c>Mesh:XdsServerFeatures</c>, <c>Mesh:XdsChannelCredentials</c>, <c>Mesh:Node:*</c>,
/// <c>Mesh:CertificateProviders:*</c>, <c>Mesh:ServerListenerResourceNameTemplate</c>,
/// <c>Mesh:ClientDefaultListenerResourceNameTemplate</c>.
/// </summary>
public static class XdsBootstrapLoader
{
    /// <summary>Environment variable holding the path of a bootstrap JSON file.</summary>
    public const string BootstrapPathVariable = "GRPC_XDS_BOOTSTRAP";

    /// <summary>Environment variable holding the bootstrap JSON itself.</summary>
    public const string BootstrapConfigVariable = "GRPC_XDS_BOOTSTRAP_CONFIG";

    /// <summary>The configuration section read when no environment variable is set.</summary>
    public const string SectionName = "Mesh";

    private static readonly string[] SupportedCredentials = ["insecure"];

    /// <summary>
    /// Loads the bootstrap from the environment or, failing that, <paramref name="configuration"/>.
    /// </summary>
    /// <param name="configuration">The application configuration, or <see langword="null"/>.</param>
    /// <param name="environment">Reads an environment variable; defaults to <see cref="Environment.GetEnvironmentVariable(string)"/>.</param>
    /// <returns>The bootstrap, or <see langword="null"/> when no source is configured.</returns>
    /// <exception cref="XdsBootstrapException">A source is present but invalid.</exception>
    public static XdsBootstrap? Load(IConfiguration? configuration, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        var path = environment(BootstrapPathVariable);
        if (!string.IsNullOrEmpty(path))
        {
            return ParseFile(path, $"{BootstrapPathVariable} ({path})");
        }

        var inline = environment(BootstrapConfigVariable);
        if (!string.IsNullOrEmpty(inline))
        {
            return Parse(inline, BootstrapConfigVariable);
        }

        return configuration is null ? null : FromConfiguration(configuration.GetSection(SectionName));
    }

    /// <summary>Parses bootstrap JSON.</summary>
    /// <param name="json">The JSON text.</param>
    /// <param name="source">Where the text came from, used in error messages.</param>
    /// <returns>The bootstrap.</returns>
    /// <exception cref="XdsBootstrapException">The JSON is malformed or a field is invalid.</exception>
    public static XdsBootstrap Parse(string json, string source)
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException ex)
        {
            throw new XdsBootstrapException($"{source}: not valid JSON: {ex.Message}", ex);
        }

        using (document)
        {
            return new Reader(source, static p => p).Read(document.RootElement);
        }
    }

    /// <summary>
    /// Reads the bootstrap from a <c>Mesh</c> configuration section.
    /// </summary>
    /// <param name="section">The section (normally <c>Mesh</c>).</param>
    /// <returns>The bootstrap, or <see langword="null"/> when the section configures no xDS server.</returns>
    /// <exception cref="XdsBootstrapException">The section is present but invalid.</exception>
    public static XdsBootstrap? FromConfiguration(IConfigurationSection section)
    {
        ArgumentNullException.ThrowIfNull(section);
        var prefix = section.Path;
        var file = section["BootstrapPath"];
        if (!string.IsNullOrEmpty(file))
        {
            return ParseFile(file, $"configuration '{prefix}:BootstrapPath' ({file})");
        }

        var bootstrap = section.GetSection("Bootstrap");
        if (!string.IsNullOrEmpty(bootstrap.Value))
        {
            return Parse(bootstrap.Value, $"configuration '{prefix}:Bootstrap'");
        }

        if (bootstrap.GetChildren().Any())
        {
            var node = ToJson(bootstrap);
            using var document = JsonDocument.Parse(node!.ToJsonString());
            return new Reader($"configuration '{bootstrap.Path}'", p => bootstrap.Path + ":" + p.Replace("[", ":", StringComparison.Ordinal).Replace("]", string.Empty, StringComparison.Ordinal).Replace('.', ':'))
                .Read(document.RootElement);
        }

        var server = section["XdsServer"];
        if (string.IsNullOrEmpty(server))
        {
            return null;
        }

        return FromShortKeys(section, server);
    }

    private static XdsBootstrap FromShortKeys(IConfigurationSection section, string server)
    {
        var root = new JsonObject();
        var features = new JsonArray();
        foreach (var feature in section.GetSection("XdsServerFeatures").GetChildren())
        {
            features.Add(feature.Value);
        }

        root["xds_servers"] = new JsonArray(new JsonObject
        {
            ["server_uri"] = server,
            ["channel_creds"] = new JsonArray(new JsonObject { ["type"] = section["XdsChannelCredentials"] ?? "insecure" }),
            ["server_features"] = features,
        });

        var nodeSection = section.GetSection("Node");
        var node = new JsonObject();
        if (nodeSection["Id"] is { } id)
        {
            node["id"] = id;
        }

        if (nodeSection["Cluster"] is { } cluster)
        {
            node["cluster"] = cluster;
        }

        var locality = nodeSection.GetSection("Locality");
        if (locality.GetChildren().Any())
        {
            node["locality"] = new JsonObject
            {
                ["region"] = locality["Region"] ?? string.Empty,
                ["zone"] = locality["Zone"] ?? string.Empty,
                ["sub_zone"] = locality["SubZone"] ?? string.Empty,
            };
        }

        var metadata = nodeSection.GetSection("Metadata");
        if (metadata.GetChildren().Any())
        {
            node["metadata"] = ToJson(metadata);
        }

        root["node"] = node;

        var providers = new JsonObject();
        foreach (var provider in section.GetSection("CertificateProviders").GetChildren())
        {
            var entry = new JsonObject();
            if (provider["PluginName"] is { } plugin)
            {
                entry["plugin_name"] = plugin;
            }

            var config = provider.GetSection("Config");
            if (config.GetChildren().Any())
            {
                entry["config"] = ToJson(config);
            }

            providers[provider.Key] = entry;
        }

        if (providers.Count > 0)
        {
            root["certificate_providers"] = providers;
        }

        if (section["ServerListenerResourceNameTemplate"] is { } serverTemplate)
        {
            root["server_listener_resource_name_template"] = serverTemplate;
        }

        if (section["ClientDefaultListenerResourceNameTemplate"] is { } clientTemplate)
        {
            root["client_default_listener_resource_name_template"] = clientTemplate;
        }

        var prefix = section.Path;
        using var document = JsonDocument.Parse(root.ToJsonString());
        return new Reader($"configuration '{prefix}'", p => prefix + ":" + MapShortKey(p)).Read(document.RootElement);
    }

    private static string MapShortKey(string jsonPath) => jsonPath switch
    {
        "xds_servers[0].server_uri" => "XdsServer",
        "xds_servers[0].channel_creds" or "xds_servers[0].channel_creds[0].type" => "XdsChannelCredentials",
        _ when jsonPath.StartsWith("xds_servers[0].server_features", StringComparison.Ordinal) => "XdsServerFeatures",
        _ when jsonPath.StartsWith("node.locality.", StringComparison.Ordinal) => "Node:Locality:" + Pascal(jsonPath["node.locality.".Length..]),
        _ when jsonPath.StartsWith("node.", StringComparison.Ordinal) => "Node:" + Pascal(jsonPath["node.".Length..]),
        _ when jsonPath.StartsWith("certificate_providers.", StringComparison.Ordinal) =>
            "CertificateProviders:" + jsonPath["certificate_providers.".Length..].Replace(".plugin_name", ":PluginName", StringComparison.Ordinal).Replace(".config", ":Config", StringComparison.Ordinal),
        _ => Pascal(jsonPath),
    };

    private static string Pascal(string snake)
    {
        var parts = snake.Split('_', StringSplitOptions.RemoveEmptyEntries);
        return string.Concat(parts.Select(static p => char.ToUpperInvariant(p[0]) + p[1..]));
    }

    private static XdsBootstrap ParseFile(string path, string source)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new XdsBootstrapException($"{source}: cannot read the file: {ex.Message}", ex);
        }

        return Parse(text, source);
    }

    /// <summary>Turns a configuration section into JSON: children keyed 0..n-1 become arrays, leaves strings.</summary>
    private static JsonNode? ToJson(IConfigurationSection section)
    {
        var children = section.GetChildren().ToList();
        if (children.Count == 0)
        {
            return section.Value is null ? null : JsonValue.Create(section.Value);
        }

        var isArray = true;
        for (var i = 0; i < children.Count && isArray; i++)
        {
            isArray = children.Any(c => c.Key == i.ToString(CultureInfo.InvariantCulture));
        }

        if (isArray)
        {
            var array = new JsonArray();
            foreach (var child in children.OrderBy(static c => int.Parse(c.Key, CultureInfo.InvariantCulture)))
            {
                array.Add(ToJson(child));
            }

            return array;
        }

        var obj = new JsonObject();
        foreach (var child in children)
        {
            obj[child.Key] = ToJson(child);
        }

        return obj;
    }

    private sealed class Reader(string source, Func<string, string> describe)
    {
        public XdsBootstrap Read(JsonElement root)
        {
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Error(string.Empty, "the bootstrap must be a JSON object");
            }

            var servers = ReadServers(root);
            var node = ReadNode(root);
            var providers = ReadCertificateProviders(root);
            var serverTemplate = OptionalString(root, "server_listener_resource_name_template", "server_listener_resource_name_template");
            var clientTemplate = OptionalString(root, "client_default_listener_resource_name_template", "client_default_listener_resource_name_template");
            return new XdsBootstrap(servers, node, source)
            {
                CertificateProviders = providers,
                ServerListenerResourceNameTemplate = serverTemplate,
                ClientDefaultListenerResourceNameTemplate = string.IsNullOrEmpty(clientTemplate) ? "%s" : clientTemplate,
            };
        }

        private List<XdsServerConfig> ReadServers(JsonElement root)
        {
            if (!root.TryGetProperty("xds_servers", out var servers) || servers.ValueKind == JsonValueKind.Null)
            {
                throw Error("xds_servers", "is required");
            }

            if (servers.ValueKind != JsonValueKind.Array)
            {
                throw Error("xds_servers", "must be an array");
            }

            if (servers.GetArrayLength() == 0)
            {
                throw Error("xds_servers", "must contain at least one server");
            }

            var result = new List<XdsServerConfig>();
            var index = 0;
            foreach (var server in servers.EnumerateArray())
            {
                var path = $"xds_servers[{index}]";
                if (server.ValueKind != JsonValueKind.Object)
                {
                    throw Error(path, "must be an object");
                }

                var uri = OptionalString(server, "server_uri", path + ".server_uri");
                if (string.IsNullOrWhiteSpace(uri))
                {
                    throw Error(path + ".server_uri", "is required");
                }

                if (!XdsServerAddress.TryParse(uri, out _, out var uriError))
                {
                    throw Error(path + ".server_uri", uriError!);
                }

                var credentials = ReadChannelCredentials(server, path + ".channel_creds");
                var features = new List<string>();
                if (server.TryGetProperty("server_features", out var featureArray) && featureArray.ValueKind != JsonValueKind.Null)
                {
                    if (featureArray.ValueKind != JsonValueKind.Array)
                    {
                        throw Error(path + ".server_features", "must be an array of strings");
                    }

                    var i = 0;
                    foreach (var feature in featureArray.EnumerateArray())
                    {
                        if (feature.ValueKind != JsonValueKind.String)
                        {
                            throw Error($"{path}.server_features[{i}]", "must be a string");
                        }

                        features.Add(feature.GetString()!);
                        i++;
                    }
                }

                result.Add(new XdsServerConfig(uri, credentials, features));
                index++;
            }

            return result;
        }

        private string ReadChannelCredentials(JsonElement server, string path)
        {
            if (!server.TryGetProperty("channel_creds", out var creds) || creds.ValueKind == JsonValueKind.Null)
            {
                throw Error(path, "is required (use [{\"type\": \"insecure\"}])");
            }

            if (creds.ValueKind != JsonValueKind.Array || creds.GetArrayLength() == 0)
            {
                throw Error(path, "must be a non-empty array (use [{\"type\": \"insecure\"}])");
            }

            var seen = new List<string>();
            var i = 0;
            foreach (var entry in creds.EnumerateArray())
            {
                if (entry.ValueKind != JsonValueKind.Object)
                {
                    throw Error($"{path}[{i}]", "must be an object");
                }

                var type = OptionalString(entry, "type", $"{path}[{i}].type");
                if (string.IsNullOrEmpty(type))
                {
                    throw Error($"{path}[{i}].type", "is required");
                }

                if (entry.TryGetProperty("config", out var config) && config.ValueKind is not (JsonValueKind.Object or JsonValueKind.Null))
                {
                    throw Error($"{path}[{i}].config", "must be an object");
                }

                if (SupportedCredentials.Contains(type, StringComparer.Ordinal))
                {
                    return type;
                }

                seen.Add(type);
                i++;
            }

            throw Error(path, $"no supported channel credentials type (found {string.Join(", ", seen.Select(static s => "'" + s + "'"))}); Mesh.Sdk supports only 'insecure' for the xDS channel at present");
        }

        private XdsNodeConfig ReadNode(JsonElement root)
        {
            if (!root.TryGetProperty("node", out var node) || node.ValueKind == JsonValueKind.Null)
            {
                return new XdsNodeConfig();
            }

            if (node.ValueKind != JsonValueKind.Object)
            {
                throw Error("node", "must be an object");
            }

            XdsLocality? locality = null;
            if (node.TryGetProperty("locality", out var loc) && loc.ValueKind != JsonValueKind.Null)
            {
                if (loc.ValueKind != JsonValueKind.Object)
                {
                    throw Error("node.locality", "must be an object");
                }

                locality = new XdsLocality(
                    OptionalString(loc, "region", "node.locality.region") ?? string.Empty,
                    OptionalString(loc, "zone", "node.locality.zone") ?? string.Empty,
                    OptionalString(loc, "sub_zone", "node.locality.sub_zone") ?? string.Empty);
            }

            var metadata = XdsNodeConfig.EmptyObject;
            if (node.TryGetProperty("metadata", out var meta) && meta.ValueKind != JsonValueKind.Null)
            {
                if (meta.ValueKind != JsonValueKind.Object)
                {
                    throw Error("node.metadata", "must be an object");
                }

                metadata = meta.Clone();
            }

            return new XdsNodeConfig
            {
                Id = OptionalString(node, "id", "node.id") ?? string.Empty,
                Cluster = OptionalString(node, "cluster", "node.cluster") ?? string.Empty,
                Locality = locality,
                Metadata = metadata,
            };
        }

        private Dictionary<string, XdsCertificateProviderConfig> ReadCertificateProviders(JsonElement root)
        {
            var result = new Dictionary<string, XdsCertificateProviderConfig>(StringComparer.Ordinal);
            if (!root.TryGetProperty("certificate_providers", out var providers) || providers.ValueKind == JsonValueKind.Null)
            {
                return result;
            }

            if (providers.ValueKind != JsonValueKind.Object)
            {
                throw Error("certificate_providers", "must be an object keyed by instance name");
            }

            foreach (var instance in providers.EnumerateObject())
            {
                var path = "certificate_providers." + instance.Name;
                if (instance.Value.ValueKind != JsonValueKind.Object)
                {
                    throw Error(path, "must be an object");
                }

                var plugin = OptionalString(instance.Value, "plugin_name", path + ".plugin_name");
                if (string.IsNullOrEmpty(plugin))
                {
                    throw Error(path + ".plugin_name", "is required");
                }

                var config = XdsNodeConfig.EmptyObject;
                if (instance.Value.TryGetProperty("config", out var cfg) && cfg.ValueKind != JsonValueKind.Null)
                {
                    if (cfg.ValueKind != JsonValueKind.Object)
                    {
                        throw Error(path + ".config", "must be an object");
                    }

                    config = cfg.Clone();
                }

                result[instance.Name] = new XdsCertificateProviderConfig(plugin, config);
            }

            return result;
        }

        private string? OptionalString(JsonElement obj, string property, string path)
        {
            if (!obj.TryGetProperty(property, out var value) || value.ValueKind == JsonValueKind.Null)
            {
                return null;
            }

            if (value.ValueKind != JsonValueKind.String)
            {
                throw Error(path, $"must be a string, found {value.ValueKind.ToString().ToLowerInvariant()}");
            }

            return value.GetString();
        }

        private XdsBootstrapException Error(string path, string reason) =>
            new(path.Length == 0 ? $"{source}: {reason}" : $"{source}: {describe(path)} {reason}");
    }
}

using YamlDotNet.RepresentationModel;

namespace Mesh.ControlPlane.Config;

/// <summary>
/// The fields of Istio's API for every kind the control plane reads. Istio rejects a resource with a field its API does
/// not have; so does the control plane, naming the field, where it is and the closest known name (a misspelled
/// <c>subst:</c> would otherwise be dropped and quietly change routing). Free-form values (labels, header maps,
/// EnvoyFilter patch values) are not checked below their own level.
/// </summary>
internal static partial class IstioFields
{
    private static readonly string[] DocumentFields = ["apiVersion", "kind", "metadata", "spec", "status"];

    private static readonly Dictionary<string, ObjectType> Kinds = Load();

    /// <summary>
    /// Throws a <see cref="ConfigException"/> at the first field of <paramref name="document"/> that <paramref name="kind"/>
    /// does not have: <c>unknown field 'subst' in spec.http[0].route[0].destination; did you mean 'subset'?</c>.
    /// </summary>
    public static void Check(YamlMappingNode document, string kind)
    {
        foreach (var (key, value) in document.Children)
        {
            var name = (key as YamlScalarNode)?.Value ?? string.Empty;
            if (!DocumentFields.Contains(name, StringComparer.Ordinal))
            {
                throw Unknown(key, name, "the document", DocumentFields);
            }

            if (name == "spec" && Kinds.TryGetValue(kind, out var spec))
            {
                Walk(value, spec, "spec");
            }
        }
    }

    /// <summary>The error for a field <paramref name="name"/> that is not among <paramref name="known"/>, at <paramref name="node"/>.</summary>
    public static ConfigException Unknown(YamlNode node, string name, string where, IReadOnlyCollection<string> known)
    {
        var hint = Suggest.Closest(name, known) is { } likely
            ? $"; did you mean '{likely}'?"
            : $" (known: {string.Join(", ", known.Order(StringComparer.Ordinal))})";
        return new ConfigException($"unknown field '{name}' in {where}{hint}", (int)node.Start.Line, (int)node.Start.Column);
    }

    private static void Walk(YamlNode node, ObjectType type, string path)
    {
        switch (node)
        {
            case YamlSequenceNode items:
                for (var i = 0; i < items.Children.Count; i++)
                {
                    Walk(items.Children[i], type, $"{path}[{i}]");
                }

                break;
            case YamlMappingNode map:
                foreach (var (key, value) in map.Children)
                {
                    var name = (key as YamlScalarNode)?.Value ?? string.Empty;
                    if (!type.Fields.TryGetValue(name, out var field))
                    {
                        throw Unknown(key, name, path, type.Fields.Keys);
                    }

                    if (field.Type is { } child)
                    {
                        if (field.IsMap)
                        {
                            WalkMap(value, child, $"{path}.{name}");
                        }
                        else
                        {
                            Walk(value, child, $"{path}.{name}");
                        }
                    }
                }

                break;
        }
    }

    private static void WalkMap(YamlNode node, ObjectType valueType, string path)
    {
        if (node is YamlMappingNode map)
        {
            foreach (var (key, value) in map.Children)
            {
                Walk(value, valueType, $"{path}.{(key as YamlScalarNode)?.Value}");
            }
        }
    }

    private static Dictionary<string, ObjectType> Load()
    {
        var types = new Dictionary<string, ObjectType>(StringComparer.Ordinal);
        var kinds = new Dictionary<string, ObjectType>(StringComparer.Ordinal);
        ObjectType TypeOf(string id)
        {
            if (!types.TryGetValue(id, out var t))
            {
                types[id] = t = new ObjectType(new Dictionary<string, Field>(StringComparer.Ordinal));
            }

            return t;
        }

        foreach (var raw in Table.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0)
            {
                continue;
            }

            var colon = line.IndexOf(": ", StringComparison.Ordinal);
            if (colon < 0)
            {
                // "Kind=T12"
                var eq = line.IndexOf('=', StringComparison.Ordinal);
                kinds[line[..eq]] = TypeOf(line[(eq + 1)..]);
                continue;
            }

            var fields = TypeOf(line[..colon]).Fields;
            foreach (var entry in line[(colon + 2)..].Split(", "))
            {
                var eq = entry.IndexOf('=', StringComparison.Ordinal);
                if (eq < 0)
                {
                    fields[entry] = new Field(null, false);
                }
                else if (entry[eq + 1] == '{')
                {
                    fields[entry[..eq]] = new Field(TypeOf(entry[(eq + 2)..^1]), true);
                }
                else
                {
                    fields[entry[..eq]] = new Field(TypeOf(entry[(eq + 1)..]), false);
                }
            }
        }

        return kinds;
    }

    private sealed record ObjectType(Dictionary<string, Field> Fields);

    private readonly record struct Field(ObjectType? Type, bool IsMap);
}

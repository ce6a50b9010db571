using System.Reflection;
using Google.Protobuf.Reflection;

namespace Mesh.Xds;

/// <summary>
/// The proto files compiled into this assembly (the xDS wire model), e.g. to resolve <c>google.protobuf.Any</c>
/// payloads when formatting resources as JSON.
/// </summary>
public static class XdsWireModel
{
    private static readonly Lazy<IReadOnlyList<FileDescriptor>> LazyFiles = new(LoadFiles);
    private static readonly Lazy<TypeRegistry> LazyRegistry = new(() => TypeRegistry.FromFiles([.. LazyFiles.Value]));

    /// <summary>Gets every proto file of the wire model, ordered by file name.</summary>
    /// <value>The file descriptors generated into this assembly (not the Google.Protobuf well-known types).</value>
    public static IReadOnlyList<FileDescriptor> Files => LazyFiles.Value;

    /// <summary>Gets a type registry holding every message of the wire model and its dependencies.</summary>
    /// <value>A registry for <c>JsonFormatter</c>/<c>JsonParser</c> settings.</value>
    public static TypeRegistry TypeRegistry => LazyRegistry.Value;

    private static IReadOnlyList<FileDescriptor> LoadFiles()
    {
        // Each generated file has a static "<Name>Reflection" class exposing its FileDescriptor.
        var files = new List<FileDescriptor>();
        foreach (var type in typeof(XdsWireModel).Assembly.GetTypes())
        {
            if (!type.IsClass || !type.IsAbstract || !type.IsSealed || !type.Name.EndsWith("Reflection", StringComparison.Ordinal))
            {
                continue;
            }

            var property = type.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static);
            if (property?.PropertyType == typeof(FileDescriptor) && property.GetValue(null) is FileDescriptor file)
            {
                files.Add(file);
            }
        }

        files.Sort(static (a, b) => string.CompareOrdinal(a.Name, b.Name));
        return files;
    }
}

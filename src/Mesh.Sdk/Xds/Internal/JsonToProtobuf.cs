using System.Text.Json;
using Google.Protobuf.WellKnownTypes;

namespace Mesh.Sdk.Xds.Internal;

/// <summary>Converts bootstrap JSON (node metadata) to <see cref="Struct"/>.</summary>
internal static class JsonToProtobuf
{
    public static Struct ToStruct(JsonElement element)
    {
        var result = new Struct();
        if (element.ValueKind != JsonValueKind.Object)
        {
            return result;
        }

        foreach (var property in element.EnumerateObject())
        {
            result.Fields[property.Name] = ToValue(property.Value);
        }

        return result;
    }

    public static Value ToValue(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => Value.ForStruct(ToStruct(element)),
        JsonValueKind.Array => Value.ForList(element.EnumerateArray().Select(ToValue).ToArray()),
        JsonValueKind.String => Value.ForString(element.GetString()!),
        JsonValueKind.Number => Value.ForNumber(element.GetDouble()),
        JsonValueKind.True => Value.ForBool(true),
        JsonValueKind.False => Value.ForBool(false),
        _ => Value.ForNull(),
    };
}

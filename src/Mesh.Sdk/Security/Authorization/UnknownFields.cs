using Google.Protobuf;

namespace Mesh.Sdk.Security.Authorization;

/// <summary>
/// Whether a message carries fields the SDK's proto subset does not define. An RBAC policy's CEL <c>condition</c> or a
/// filter's <c>matcher</c> tree would otherwise be dropped silently and the rest evaluated without it, deciding
/// differently from Envoy; such config is refused instead.
/// </summary>
internal static class UnknownFields
{
    public static bool In<T>(T message)
        where T : IMessage<T>, new()
    {
        var parser = new MessageParser<T>(static () => new T()).WithDiscardUnknownFields(true);
        return parser.ParseFrom(message.ToByteString()).CalculateSize() != message.CalculateSize();
    }
}

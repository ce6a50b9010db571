using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Envoy.Config.Core.V3;

namespace Mesh.Sdk.Security.Authorization;

/// <summary>
/// A compiled <c>envoy.config.core.v3.CidrRange</c>: the address masked to its prefix length. An IPv4 address
/// matches IPv4 ranges only and an IPv6 address IPv6 ranges only, as in Envoy, except that an IPv4-mapped IPv6
/// address (<c>::ffff:10.0.0.1</c>, what a dual-stack socket reports for an IPv4 peer) is read as its IPv4 address.
/// </summary>
internal sealed class CidrMatch
{
    private readonly byte[] _prefix;
    private readonly int _length;
    private readonly AddressFamily _family;

    private CidrMatch(byte[] prefix, int length, AddressFamily family)
    {
        _prefix = prefix;
        _length = length;
        _family = family;
    }

    /// <summary>The range as written, for diagnostics (<c>10.0.0.0/8</c>).</summary>
    public override string ToString() => $"{new IPAddress(_prefix)}/{_length.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Compiles a wire range; an unparsable address or a prefix longer than the family allows is an error.</summary>
    public static bool TryCompile(CidrRange range, out CidrMatch? match, out string? error)
    {
        match = null;
        if (!IPAddress.TryParse(range.AddressPrefix, out var address))
        {
            error = $"'{range.AddressPrefix}' is not an IP address";
            return false;
        }

        address = Normalize(address);
        var bytes = address.GetAddressBytes();
        var max = bytes.Length * 8;
        var length = range.PrefixLen ?? 0u;
        if (length > max)
        {
            error = $"prefix length {length.ToString(CultureInfo.InvariantCulture)} of '{range.AddressPrefix}' is longer than {max.ToString(CultureInfo.InvariantCulture)}";
            return false;
        }

        Mask(bytes, (int)length);
        match = new CidrMatch(bytes, (int)length, address.AddressFamily);
        error = null;
        return true;
    }

    /// <summary>Whether <paramref name="address"/> lies in the range; an unknown address matches nothing.</summary>
    public bool Matches(IPAddress? address)
    {
        if (address is null)
        {
            return false;
        }

        Span<byte> buffer = stackalloc byte[16];
        if (!address.TryWriteBytes(buffer, out var written))
        {
            return false;
        }

        ReadOnlySpan<byte> bytes = buffer[..written];
        var family = address.AddressFamily;
        if (address.IsIPv4MappedToIPv6)
        {
            bytes = bytes[12..];
            family = AddressFamily.InterNetwork;
        }

        if (family != _family || bytes.Length != _prefix.Length)
        {
            return false;
        }

        var full = _length / 8;
        if (!bytes[..full].SequenceEqual(_prefix.AsSpan(0, full)))
        {
            return false;
        }

        var rest = _length % 8;
        if (rest == 0)
        {
            return true;
        }

        var mask = (byte)(0xFF << (8 - rest));
        return (bytes[full] & mask) == _prefix[full];
    }

    private static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

    private static void Mask(byte[] bytes, int length)
    {
        for (var i = 0; i < bytes.Length; i++)
        {
            var bits = Math.Clamp(length - (i * 8), 0, 8);
            bytes[i] &= (byte)(0xFF << (8 - bits));
        }
    }
}

using System.Globalization;
using Mesh.Sdk.Xds.Internal;

namespace Mesh.Sdk.Xds;

/// <summary>Parses <c>server_uri</c> values: <c>host:port</c>, <c>dns:///host:port</c>, <c>unix:///path</c>.</summary>
internal static class XdsServerAddress
{
    private const int DefaultPort = 443;

    public static bool TryParse(string uri, out XdsServerAddressInfo? address, out string? error)
    {
        address = null;
        error = null;
        if (uri.StartsWith("unix:", StringComparison.Ordinal))
        {
            // unix:///abs/path and unix:relative/path are gRPC's two spellings.
            var path = uri.StartsWith("unix://", StringComparison.Ordinal) ? uri["unix://".Length..] : uri["unix:".Length..];
            if (path.Length == 0)
            {
                error = $"'{uri}' names no socket path (use unix:///path/to/socket)";
                return false;
            }

            address = new XdsServerAddressInfo(null, 0, path);
            return true;
        }

        var target = uri;
        if (target.StartsWith("dns:", StringComparison.Ordinal))
        {
            target = target["dns:".Length..];
            if (target.StartsWith("//", StringComparison.Ordinal))
            {
                // dns://authority/host:port: the DNS authority is not used.
                var slash = target.IndexOf('/', 2);
                target = slash < 0 ? string.Empty : target[(slash + 1)..];
            }
        }
        else if (target.Contains("://", StringComparison.Ordinal))
        {
            error = $"'{uri}' has an unsupported scheme (use host:port, dns:///host:port or unix:///path)";
            return false;
        }

        string host;
        var port = DefaultPort;
        if (target.StartsWith('['))
        {
            var close = target.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                error = $"'{uri}' has an unterminated IPv6 literal";
                return false;
            }

            host = target[1..close];
            var rest = target[(close + 1)..];
            if (rest.Length > 0 && (!rest.StartsWith(':') || !TryPort(rest[1..], out port)))
            {
                error = $"'{uri}' has an invalid port";
                return false;
            }
        }
        else
        {
            var colon = target.LastIndexOf(':');
            if (colon >= 0 && target.IndexOf(':') != colon)
            {
                error = $"'{uri}': write IPv6 addresses in brackets, [::1]:15010";
                return false;
            }

            host = colon < 0 ? target : target[..colon];
            if (colon >= 0 && !TryPort(target[(colon + 1)..], out port))
            {
                error = $"'{uri}' has an invalid port (expected 1-65535)";
                return false;
            }
        }

        if (host.Length == 0)
        {
            error = $"'{uri}' names no host";
            return false;
        }

        address = new XdsServerAddressInfo(host, port, null);
        return true;
    }

    private static bool TryPort(string text, out int port) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port is > 0 and <= 65535;
}

namespace Mesh.Sdk.Routing;

/// <summary>Authority helpers: port detection that understands bracketed IPv6 literals.</summary>
internal static class RouteHost
{
    /// <summary>The index of the <c>:</c> that starts the port, or -1 when the authority has no port.</summary>
    public static int PortIndex(ReadOnlySpan<char> authority)
    {
        if (authority.Length > 0 && authority[0] == '[')
        {
            var close = authority.IndexOf(']');
            return close >= 0 && close + 1 < authority.Length && authority[close + 1] == ':' ? close + 1 : -1;
        }

        var colon = authority.LastIndexOf(':');
        // More than one colon without brackets is a bare IPv6 literal, which has no port.
        return colon >= 0 && authority[..colon].IndexOf(':') < 0 ? colon : -1;
    }

    /// <summary>
    /// The authority a request to <paramref name="uri"/> is routed by when it sets no <c>Host</c>: the IDN host, with
    /// <c>:port</c> unless the port is the scheme's default (what <c>HttpClient</c> sends as <c>Host</c>).
    /// </summary>
    public static string AuthorityOf(Uri uri)
        => uri.IsDefaultPort ? uri.IdnHost : string.Concat(uri.IdnHost, ":", uri.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>The authority without its port.</summary>
    public static ReadOnlySpan<char> WithoutPort(ReadOnlySpan<char> authority)
    {
        var port = PortIndex(authority);
        return port < 0 ? authority : authority[..port];
    }
}

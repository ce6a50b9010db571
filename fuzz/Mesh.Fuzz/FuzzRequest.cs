using System.Diagnostics.CodeAnalysis;
using System.Net;
using Mesh.Sdk.Routing;

namespace Mesh.Fuzz;

/// <summary>A request built from fuzz input: authority, path, method, then <c>name:value</c> headers, one per line.</summary>
internal readonly struct FuzzRequest : IRouteRequest
{
    private readonly Dictionary<string, string> _headers;

    public FuzzRequest(string authority, string pathAndQuery, string method, IEnumerable<KeyValuePair<string, string>> headers)
    {
        Authority = authority;
        PathAndQuery = pathAndQuery;
        Method = method;
        _headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in headers)
        {
            _headers[name] = _headers.TryGetValue(name, out var existing) ? existing + "," + value : value;
        }
    }

    public string Authority { get; }

    public string PathAndQuery { get; }

    public string Method { get; }

    public string Scheme => "http";

    public IPAddress? SourceAddress => IPAddress.Loopback;

    public bool TryGetHeader(string name, [NotNullWhen(true)] out string? value) => _headers.TryGetValue(name, out value);

    public static FuzzRequest Parse(string text)
    {
        var lines = text.Split('\n');
        var headers = new List<KeyValuePair<string, string>>();
        for (var i = 3; i < lines.Length; i++)
        {
            var colon = lines[i].IndexOf(':', 1 < lines[i].Length ? 1 : 0);
            if (colon > 0)
            {
                headers.Add(new(lines[i][..colon], lines[i][(colon + 1)..]));
            }
        }

        return new FuzzRequest(
            lines.Length > 0 ? lines[0] : string.Empty,
            lines.Length > 1 ? lines[1] : "/",
            lines.Length > 2 ? lines[2] : "GET",
            headers);
    }
}

using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Mesh.Sdk.Telemetry.AccessLog;

/// <summary>
/// A compiled access log format: Envoy's substitution format string as text (<c>[%START_TIME%] "%REQ(:METHOD)% ..."</c>)
/// or as a JSON object whose string values hold command operators. Supported operators: <c>START_TIME</c>,
/// <c>REQ(X)</c> / <c>REQ(X?Y)</c> (with <c>:METHOD</c>, <c>:PATH</c>, <c>:AUTHORITY</c>, <c>:SCHEME</c>) and
/// <c>RESP(X)</c> with an optional <c>:maxlength</c>, <c>PROTOCOL</c>, <c>RESPONSE_CODE</c>, <c>RESPONSE_FLAGS</c>,
/// <c>BYTES_RECEIVED</c>, <c>BYTES_SENT</c>, <c>DURATION</c>, <c>UPSTREAM_HOST</c>, <c>UPSTREAM_CLUSTER</c>,
/// <c>UPSTREAM_LOCAL_ADDRESS</c>, <c>DOWNSTREAM_REMOTE_ADDRESS</c>, <c>DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT</c>,
/// <c>DOWNSTREAM_LOCAL_ADDRESS</c>, <c>REQUESTED_SERVER_NAME</c>, <c>ROUTE_NAME</c>; and, always <c>-</c> here as no
/// such detail is kept, <c>RESPONSE_CODE_DETAILS</c>, <c>CONNECTION_TERMINATION_DETAILS</c>,
/// <c>UPSTREAM_TRANSPORT_FAILURE_REASON</c>. Any other operator is written as <c>-</c> and listed in <see cref="Unknown"/>.
/// </summary>
internal sealed class AccessLogFormat
{
    /// <summary>Istio's default text format (the mesh config's <c>accessLogFormat</c> when empty).</summary>
    public const string IstioDefault =
        "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% "
        + "%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% "
        + "%DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" "
        + "\"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" %UPSTREAM_CLUSTER% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% "
        + "%DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

    private static readonly HashSet<string> AlwaysEmpty = new(StringComparer.Ordinal)
    {
        "RESPONSE_CODE_DETAILS", "CONNECTION_TERMINATION_DETAILS", "UPSTREAM_TRANSPORT_FAILURE_REASON",
    };

    private static readonly HashSet<string> Known = new(StringComparer.Ordinal)
    {
        "START_TIME", "PROTOCOL", "RESPONSE_CODE", "RESPONSE_FLAGS", "BYTES_RECEIVED", "BYTES_SENT", "DURATION", "UPSTREAM_HOST",
        "UPSTREAM_CLUSTER", "UPSTREAM_LOCAL_ADDRESS", "DOWNSTREAM_REMOTE_ADDRESS", "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT",
        "DOWNSTREAM_LOCAL_ADDRESS", "REQUESTED_SERVER_NAME", "ROUTE_NAME", "RESPONSE_CODE_DETAILS", "CONNECTION_TERMINATION_DETAILS",
        "UPSTREAM_TRANSPORT_FAILURE_REASON", "REQ", "RESP",
    };

    private readonly Segment[]? _text;
    private readonly (string Key, Segment[] Value)[]? _json;
    private readonly bool _omitEmpty;

    private AccessLogFormat(Segment[]? text, (string, Segment[])[]? json, bool omitEmpty, IReadOnlyList<string> unknown)
    {
        _text = text;
        _json = json;
        _omitEmpty = omitEmpty;
        Unknown = unknown;
    }

    /// <summary>The operators of the format this SDK does not know (written as <c>-</c>).</summary>
    public IReadOnlyList<string> Unknown { get; }

    public static AccessLogFormat Text(string format)
    {
        var unknown = new List<string>();
        return new AccessLogFormat(Parse(format.Length == 0 ? IstioDefault : format, unknown), null, omitEmpty: false, unknown);
    }

    public static AccessLogFormat Json(IEnumerable<KeyValuePair<string, string>> fields, bool omitEmpty)
    {
        var unknown = new List<string>();
        var json = fields.Select(f => (f.Key, Parse(f.Value, unknown))).ToArray();
        return new AccessLogFormat(null, json, omitEmpty, unknown);
    }

    /// <summary>The line for <paramref name="entry"/>, with its trailing newline.</summary>
    public string Format(AccessLogEntry entry)
    {
        if (_text is not null)
        {
            var sb = new StringBuilder(256);
            foreach (var segment in _text)
            {
                sb.Append(segment.Render(entry) ?? "-");
            }

            var line = sb.ToString();
            return line.EndsWith('\n') ? line : line + "\n";
        }

        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            foreach (var (key, segments) in _json!)
            {
                // A value that is exactly one operator keeps its type (numbers stay numbers), as Envoy's JSON formatter does.
                if (segments is [{ IsNumeric: true } only] && only.Render(entry) is { } number && long.TryParse(number, NumberStyles.Integer, CultureInfo.InvariantCulture, out var n))
                {
                    writer.WriteNumber(key, n);
                    continue;
                }

                string? value;
                if (segments is [var single])
                {
                    value = single.Render(entry);
                }
                else
                {
                    var sb = new StringBuilder();
                    foreach (var segment in segments)
                    {
                        sb.Append(segment.Render(entry) ?? "-");
                    }

                    value = sb.ToString();
                }

                if (value is null)
                {
                    if (!_omitEmpty)
                    {
                        writer.WriteNull(key);
                    }
                }
                else
                {
                    writer.WriteString(key, value);
                }
            }

            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.GetBuffer(), 0, (int)stream.Length) + "\n";
    }

    private static Segment[] Parse(string format, List<string> unknown)
    {
        var segments = new List<Segment>();
        var literal = new StringBuilder();
        var i = 0;
        while (i < format.Length)
        {
            var c = format[i];
            if (c != '%')
            {
                literal.Append(c);
                i++;
                continue;
            }

            if (i + 1 < format.Length && format[i + 1] == '%')
            {
                literal.Append('%');
                i += 2;
                continue;
            }

            var end = CommandEnd(format, i + 1);
            var command = end < 0 ? string.Empty : format.Substring(i + 1, end - i - 1);
            if (!IsCommand(command))
            {
                // Not an operator (a lone %): kept as text.
                literal.Append('%');
                i++;
                continue;
            }

            if (literal.Length > 0)
            {
                segments.Add(Segment.Literal(literal.ToString()));
                literal.Clear();
            }

            segments.Add(Segment.Command(command, unknown));
            i = end + 1;
        }

        if (literal.Length > 0)
        {
            segments.Add(Segment.Literal(literal.ToString()));
        }

        return [.. segments];
    }

    /// <summary>
    /// The index of the <c>%</c> closing the operator that starts at <paramref name="start"/>: a name, an optional
    /// <c>(argument)</c> (which may hold <c>%</c>, as START_TIME's strftime format does) and an optional <c>:length</c>; -1 when none.
    /// </summary>
    private static int CommandEnd(string format, int start)
    {
        var i = start;
        while (i < format.Length && (char.IsAsciiLetterUpper(format[i]) || char.IsAsciiDigit(format[i]) || format[i] == '_'))
        {
            i++;
        }

        if (i < format.Length && format[i] == '(')
        {
            var close = format.IndexOf(')', i);
            if (close < 0)
            {
                return -1;
            }

            i = close + 1;
            if (i < format.Length && format[i] == ':')
            {
                i++;
                while (i < format.Length && char.IsAsciiDigit(format[i]))
                {
                    i++;
                }
            }
        }

        return i < format.Length && format[i] == '%' ? i : -1;
    }

    private static bool IsCommand(string command)
        => command.Length > 0 && (char.IsAsciiLetterUpper(command[0]) || command[0] == '_') && !command.Contains(' ', StringComparison.Ordinal);

    private sealed class Segment
    {
        private readonly string? _literal;
        private readonly string _name = string.Empty;
        private readonly string? _arg;
        private readonly string? _alt;
        private readonly string? _startFormat;
        private readonly int _maxLength;
        private readonly bool _unknown;

        private Segment(string literal) => _literal = literal;

        private Segment(string name, string? arg, string? alt, string? startFormat, int maxLength, bool unknown)
        {
            _name = name;
            _arg = arg;
            _alt = alt;
            _startFormat = startFormat;
            _maxLength = maxLength;
            _unknown = unknown;
        }

        public bool IsNumeric => _literal is null && _name is "RESPONSE_CODE" or "BYTES_RECEIVED" or "BYTES_SENT" or "DURATION";

        public static Segment Literal(string text) => new(text);

        public static Segment Command(string command, List<string> unknown)
        {
            // NAME, NAME(arg), NAME(arg?alt), NAME(arg):maxlen
            var name = command;
            string? arg = null;
            string? alt = null;
            var maxLength = 0;
            var open = command.IndexOf('(', StringComparison.Ordinal);
            if (open > 0)
            {
                var close = command.LastIndexOf(')');
                name = command[..open];
                if (close > open)
                {
                    arg = command[(open + 1)..close];
                    if (close + 1 < command.Length && command[close + 1] == ':')
                    {
                        _ = int.TryParse(command[(close + 2)..], NumberStyles.None, CultureInfo.InvariantCulture, out maxLength);
                    }
                }

                var question = arg?.IndexOf('?', StringComparison.Ordinal) ?? -1;
                if (question >= 0)
                {
                    alt = arg![(question + 1)..];
                    arg = arg[..question];
                }
            }

            var isKnown = Known.Contains(name);
            if (!isKnown && !unknown.Contains(command))
            {
                unknown.Add(command);
            }

            return new Segment(name, arg, alt, name == "START_TIME" ? arg : null, maxLength, !isKnown);
        }

        public string? Render(AccessLogEntry e)
        {
            if (_literal is not null)
            {
                return _literal;
            }

            if (_unknown || AlwaysEmpty.Contains(_name))
            {
                return null;
            }

            var value = _name switch
            {
                "START_TIME" => e.StartTime.UtcDateTime.ToString(_startFormat is { Length: > 0 } ? ToDotNet(_startFormat) : "yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
                "PROTOCOL" => e.Protocol,
                "RESPONSE_CODE" => e.ResponseCode.ToString(CultureInfo.InvariantCulture),
                "RESPONSE_FLAGS" => e.ResponseFlags,
                "BYTES_RECEIVED" => e.BytesReceived.ToString(CultureInfo.InvariantCulture),
                "BYTES_SENT" => e.BytesSent.ToString(CultureInfo.InvariantCulture),
                "DURATION" => e.DurationMilliseconds.ToString(CultureInfo.InvariantCulture),
                "UPSTREAM_HOST" => e.UpstreamHost,
                "UPSTREAM_CLUSTER" => e.UpstreamCluster,
                "UPSTREAM_LOCAL_ADDRESS" => e.UpstreamLocalAddress,
                "DOWNSTREAM_REMOTE_ADDRESS" => e.DownstreamRemoteAddress,
                "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" => WithoutPort(e.DownstreamRemoteAddress),
                "DOWNSTREAM_LOCAL_ADDRESS" => e.DownstreamLocalAddress,
                "REQUESTED_SERVER_NAME" => e.RequestedServerName,
                "ROUTE_NAME" => e.RouteName,
                "REQ" => Header(e, _arg, isRequest: true) ?? Header(e, _alt, isRequest: true),
                "RESP" => Header(e, _arg, isRequest: false) ?? Header(e, _alt, isRequest: false),
                _ => null,
            };
            if (string.IsNullOrEmpty(value))
            {
                return null;
            }

            return _maxLength > 0 && value.Length > _maxLength ? value[.._maxLength] : value;
        }

        private static string? Header(AccessLogEntry e, string? name, bool isRequest)
        {
            if (string.IsNullOrEmpty(name))
            {
                return null;
            }

            if (isRequest)
            {
                switch (name.ToUpperInvariant())
                {
                    case ":METHOD": return e.Method;
                    case ":PATH": return e.Path;
                    case ":AUTHORITY": return e.Authority;
                }
            }

            return isRequest ? e.RequestHeader(name) : e.ResponseHeader(name);
        }

        private static string? WithoutPort(string? address)
        {
            if (address is null)
            {
                return null;
            }

            var colon = address.LastIndexOf(':');
            return colon > 0 && !address.EndsWith(']') ? address[..colon].Trim('[', ']') : address;
        }

        /// <summary>The common strftime specifiers of Envoy's START_TIME format in .NET terms.</summary>
        private static string ToDotNet(string strftime) => strftime
            .Replace("%Y", "yyyy", StringComparison.Ordinal).Replace("%m", "MM", StringComparison.Ordinal).Replace("%d", "dd", StringComparison.Ordinal)
            .Replace("%H", "HH", StringComparison.Ordinal).Replace("%M", "mm", StringComparison.Ordinal).Replace("%E3S", "ss.fff", StringComparison.Ordinal)
            .Replace("%S", "ss", StringComparison.Ordinal).Replace("%z", "zzz", StringComparison.Ordinal);
    }
}

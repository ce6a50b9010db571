using System.Collections.Concurrent;
using Envoy.Config.Accesslog.V3;
using Envoy.Extensions.AccessLoggers.File.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf;
using Mesh.Xds;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using EnvoyAccessLog = Envoy.Config.Accesslog.V3.AccessLog;

namespace Mesh.Sdk.Telemetry.AccessLog;

/// <summary>One file access logger: where lines go (<c>/dev/stdout</c>, <c>/dev/stderr</c> or a file) and their format.</summary>
internal sealed record AccessLogSink(string Path, AccessLogFormat Format);

/// <summary>
/// The inbound HttpConnectionManager's file access logs (<c>access_log</c>, field 13, as istiod writes them for the mesh
/// config's <c>accessLogFile</c> or a Telemetry resource's <c>accessLogging</c>): one line per request to each logger,
/// to the console for <c>/dev/stdout</c> and <c>/dev/stderr</c>, else appended to the file. Unknown format operators
/// are written as <c>-</c> and reported once per operator.
/// </summary>
internal sealed partial class MeshAccessLog(ILogger<MeshAccessLog>? logger = null) : IDisposable
{
    private readonly ILogger _logger = (ILogger?)logger ?? NullLogger.Instance;
    private readonly ConcurrentDictionary<string, FileWriter> _files = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, bool> _reported = new(StringComparer.Ordinal);
    private volatile AccessLogSink[] _sinks = [];
    private object? _last;
    private volatile bool _fromXds;

    /// <summary>Whether any logger is configured.</summary>
    public bool Enabled => _sinks.Length > 0;

    /// <summary>Puts <paramref name="sinks"/> in force.</summary>
    public void Apply(IReadOnlyList<AccessLogSink> sinks) => Apply(sinks, fromXds: false);

    private void Apply(IReadOnlyList<AccessLogSink> sinks, bool fromXds)
    {
        foreach (var sink in sinks)
        {
            foreach (var op in sink.Format.Unknown)
            {
                if (_reported.TryAdd(op, true))
                {
                    Log.UnknownOperator(_logger, op, sink.Path);
                }
            }
        }

        _sinks = [.. sinks];
        _fromXds = fromXds;
    }

    /// <summary>Follows the access logs of an inbound HttpConnectionManager; a configuration that does not compile is logged and the last good one stays.</summary>
    public void OnInbound(HttpConnectionManager? hcm, string where)
    {
        var logs = hcm?.AccessLog;
        // A listener without access logs ends only the loggers an earlier listener set, never ones applied directly.
        if (logs is null || Equals(logs, Interlocked.Exchange(ref _last, logs)) || (logs.Count == 0 && (_sinks.Length == 0 || !_fromXds)))
        {
            return;
        }

        try
        {
            Apply(Compile(logs, where, _logger), fromXds: true);
        }
        catch (AccessLogConfigException ex)
        {
            Log.Rejected(_logger, where, ex.Message);
        }
    }

    /// <summary>Writes the line of <paramref name="entry"/> to every logger.</summary>
    public void Write(AccessLogEntry entry)
    {
        foreach (var sink in _sinks)
        {
            var line = sink.Format.Format(entry);
            switch (sink.Path)
            {
                case "/dev/stdout":
                    Console.Out.Write(line);
                    break;
                case "/dev/stderr":
                    Console.Error.Write(line);
                    break;
                default:
                    _files.GetOrAdd(sink.Path, static path => new FileWriter(path)).Write(line);
                    break;
            }
        }
    }

    /// <summary>The file loggers of <paramref name="logs"/> (other loggers, such as OpenTelemetry's, are not written by the SDK).</summary>
    public static List<AccessLogSink> Compile(IEnumerable<EnvoyAccessLog> logs, string where, ILogger? logger = null)
    {
        var sinks = new List<AccessLogSink>();
        var i = 0;
        foreach (var log in logs)
        {
            var at = $"{where} access_log[{i++}] '{log.Name}'";
            if (log.TypedConfig is not { } any || any.TypeUrl != XdsTypeUrls.FileAccessLog)
            {
                if (logger is not null)
                {
                    Log.Skipped(logger, at, log.TypedConfig?.TypeUrl ?? "none");
                }

                continue;
            }

            FileAccessLog file;
            try
            {
                file = FileAccessLog.Parser.ParseFrom(any.Value);
            }
            catch (InvalidProtocolBufferException ex)
            {
                throw new AccessLogConfigException($"{at}: FileAccessLog cannot be decoded: {ex.Message}");
            }

            if (string.IsNullOrEmpty(file.Path))
            {
                throw new AccessLogConfigException($"{at}: FileAccessLog has no path");
            }

            if (log.Filter is not null && logger is not null)
            {
                Log.FilterIgnored(logger, at);
            }

            var format = file.LogFormat switch
            {
                null => AccessLogFormat.Text(string.Empty),
                { FormatCase: Envoy.Config.Core.V3.SubstitutionFormatString.FormatOneofCase.TextFormat } f => AccessLogFormat.Text(f.TextFormat),
                { FormatCase: Envoy.Config.Core.V3.SubstitutionFormatString.FormatOneofCase.JsonFormat } f
                    => AccessLogFormat.Json(f.JsonFormat.Fields.Select(static kv => new KeyValuePair<string, string>(kv.Key, kv.Value.StringValue)), f.OmitEmptyValues),
                { FormatCase: Envoy.Config.Core.V3.SubstitutionFormatString.FormatOneofCase.TextFormatSource } f
                    => AccessLogFormat.Text(f.TextFormatSource.InlineString),
                _ => AccessLogFormat.Text(string.Empty),
            };
            sinks.Add(new AccessLogSink(file.Path, format));
        }

        return sinks;
    }

    public void Dispose()
    {
        foreach (var file in _files.Values)
        {
            file.Dispose();
        }

        _files.Clear();
    }

    private sealed class FileWriter(string path) : IDisposable
    {
        private readonly Lock _gate = new();
        private StreamWriter? _writer;

        public void Write(string line)
        {
            lock (_gate)
            {
                _writer ??= new StreamWriter(new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete)) { AutoFlush = true };
                _writer.Write(line);
            }
        }

        public void Dispose()
        {
            lock (_gate)
            {
                _writer?.Dispose();
                _writer = null;
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1510, LogLevel.Warning, "Access log operator '%{Operator}%' of logger '{Path}' is not supported: written as '-'.")]
        public static partial void UnknownOperator(ILogger logger, string @operator, string path);

        [LoggerMessage(1511, LogLevel.Warning, "Access log configuration of {Where} not applied, the last good one stays in force: {Reason}")]
        public static partial void Rejected(ILogger logger, string where, string reason);

        [LoggerMessage(1512, LogLevel.Information, "{Where}: access logger type '{TypeUrl}' is not written by the SDK.")]
        public static partial void Skipped(ILogger logger, string where, string typeUrl);

        [LoggerMessage(1513, LogLevel.Warning, "{Where}: the access log filter is not evaluated by the SDK; every request is logged.")]
        public static partial void FilterIgnored(ILogger logger, string where);
    }
}

/// <summary>An access log configuration the SDK cannot apply: what is wrong and where.</summary>
internal sealed class AccessLogConfigException(string message) : Exception(message);

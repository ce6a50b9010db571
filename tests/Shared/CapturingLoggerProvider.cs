using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Mesh.Testing;

/// <summary>A warning or error the control plane logged; <see cref="Line"/> is the formatted log line.</summary>
internal sealed record CapturedLogEntry(string Category, int EventId, LogLevel Level, string Line)
{
    public override string ToString() => Line;
}

/// <summary>Keeps log lines (control plane, mesh client) in memory so a failing test can show them. Shared by the test projects that host real processes.</summary>
internal sealed class CapturingLoggerProvider : ILoggerProvider
{
    private const int MaxLines = 400;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly ConcurrentQueue<CapturedLogEntry> _warnings = new();
    private readonly DateTime _started = DateTime.UtcNow;

    public ILogger CreateLogger(string categoryName) => new CapturingLogger(this, categoryName);

    /// <summary>Warnings and errors logged so far (e.g. a peer's NACK), never trimmed.</summary>
    public IReadOnlyList<CapturedLogEntry> Warnings => [.. _warnings];

    public string Dump()
    {
        var sb = new StringBuilder();
        foreach (var line in _lines)
        {
            sb.AppendLine(line);
        }

        return sb.ToString();
    }

    public void Dispose()
    {
    }

    private void Add(string line)
    {
        _lines.Enqueue(line);
        while (_lines.Count > MaxLines && _lines.TryDequeue(out _))
        {
        }
    }

    private sealed class CapturingLogger(CapturingLoggerProvider owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel))
            {
                return;
            }

            var elapsed = (DateTime.UtcNow - owner._started).TotalSeconds.ToString("F3", CultureInfo.InvariantCulture);
            var shortCategory = category[(category.LastIndexOf('.') + 1)..];
            var line = $"{elapsed}s {logLevel} {shortCategory}[{eventId.Id}] {formatter(state, exception)}";
            if (exception is not null)
            {
                line += " | " + exception.GetType().Name + ": " + exception.Message;
            }

            owner.Add(line);
            if (logLevel >= LogLevel.Warning)
            {
                owner._warnings.Enqueue(new CapturedLogEntry(category, eventId.Id, logLevel, line));
            }
        }
    }
}

using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Mesh.Interop.Tests.Infrastructure;

/// <summary>Keeps the control plane's log lines in memory so a failing test can show them.</summary>
internal sealed class CapturingLoggerProvider : ILoggerProvider
{
    private const int MaxLines = 400;
    private readonly ConcurrentQueue<string> _lines = new();
    private readonly ConcurrentQueue<string> _warnings = new();
    private readonly DateTime _started = DateTime.UtcNow;

    public ILogger CreateLogger(string categoryName) => new CapturingLogger(this, categoryName);

    /// <summary>Warnings and errors logged so far (e.g. a peer's NACK), never trimmed.</summary>
    public IReadOnlyList<string> Warnings => [.. _warnings];

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
                owner._warnings.Enqueue(line);
            }
        }
    }
}

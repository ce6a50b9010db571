using Microsoft.Extensions.Logging;

namespace Mesh.ControlPlane.Tests;

/// <summary>Records every log line with its level, event id and exception; usable as a logger and a provider.</summary>
internal sealed class RecordingLogger : ILogger, ILoggerProvider
{
    private readonly List<(LogLevel Level, int EventId, string Message, Exception? Exception)> _lines = [];

    public IReadOnlyList<(LogLevel Level, int EventId, string Message, Exception? Exception)> Lines
    {
        get
        {
            lock (_lines)
            {
                return [.. _lines];
            }
        }
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_lines)
        {
            _lines.Add((logLevel, eventId.Id, formatter(state, exception), exception));
        }
    }

    public ILogger CreateLogger(string categoryName) => this;

    public void Dispose()
    {
    }
}

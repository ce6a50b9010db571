using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.Xds.Internal;

/// <summary>
/// The logger factory of the ADS channels: grpc-dotnet's Information lines ("Call failed with gRPC error status",
/// "Error reading message", with the stack trace) are written at Debug, because the xDS client logs each failed
/// attempt itself in one line. Warnings and errors, and every other category, pass through unchanged.
/// </summary>
internal sealed class AdsChannelLoggerFactory(ILoggerFactory inner) : ILoggerFactory
{
    private const string GrpcClientPrefix = "Grpc.Net.Client";

    public ILogger CreateLogger(string categoryName)
    {
        var logger = inner.CreateLogger(categoryName);
        return categoryName.StartsWith(GrpcClientPrefix, StringComparison.Ordinal) ? new Demoted(logger) : logger;
    }

    public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

    public void Dispose()
    {
        // The inner factory belongs to the application.
    }

    private sealed class Demoted(ILogger inner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(Map(logLevel));

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            inner.Log(Map(logLevel), eventId, state, exception, formatter);

        private static LogLevel Map(LogLevel logLevel) => logLevel == LogLevel.Information ? LogLevel.Debug : logLevel;
    }
}

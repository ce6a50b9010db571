using Microsoft.Extensions.Logging;

namespace Mesh.ControlPlane.Xds;

/// <summary>
/// The logger factory the embedded gRPC host logs through: the control plane's own, except that grpc-dotnet's
/// "Error reading message." (EventId 14, <c>ErrorReadingMessage</c>), which it writes at Information level with the
/// full stack trace whenever a client resets or drops its stream, is left out when the cause is the client going
/// away (an <see cref="IOException"/> or a cancellation). A client closing its ADS stream is normal; the stream
/// logs one line for it (<c>ADS stream N of node 'x' closed.</c>). The host's "Hosting failed to start" with its stack
/// trace is written at Debug when the cause is a port in use: <see cref="MeshControlPlane.StartAsync"/> throws it to
/// the caller, which says in one line which port and which flag to pass. Everything else passes through unchanged.
/// </summary>
internal sealed class ClientCloseLogFilter(ILoggerFactory inner) : ILoggerFactory
{
    /// <summary>The category grpc-dotnet's server call handlers log under.</summary>
    internal const string GrpcServerCallHandler = "Grpc.AspNetCore.Server.ServerCallHandler";

    /// <summary>The category the generic host logs its start-up failure under.</summary>
    internal const string Host = "Microsoft.Extensions.Hosting.Internal.Host";

    private const int ErrorReadingMessage = 14;
    private const int HostingFailedToStart = 11;

    public ILogger CreateLogger(string categoryName)
    {
        var logger = inner.CreateLogger(categoryName);
        return categoryName switch
        {
            GrpcServerCallHandler => new Filtered(logger),
            Host => new PortInUseAtDebug(logger),
            _ => logger,
        };
    }

    /// <summary>Whether a bind failed because another process holds the port.</summary>
    internal static bool IsPortInUse(Exception? exception)
    {
        for (; exception is not null; exception = exception.InnerException)
        {
            if (exception is Microsoft.AspNetCore.Connections.AddressInUseException
                or System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.AddressAlreadyInUse })
            {
                return true;
            }
        }

        return false;
    }

    public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

    public void Dispose()
    {
        // The inner factory belongs to whoever configured the control plane.
    }

    /// <summary>Whether an exception means only that the client went away (reset, disconnect, cancellation).</summary>
    internal static bool IsClientGone(Exception? exception) => exception switch
    {
        null => false,
        IOException or OperationCanceledException => true,
        Grpc.Core.RpcException { StatusCode: Grpc.Core.StatusCode.Cancelled } => true,
        System.Threading.Channels.ChannelClosedException { InnerException: var inner } => IsClientGone(inner),
        _ => false,
    };

    private sealed class Filtered(ILogger inner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (eventId.Id == ErrorReadingMessage && IsClientGone(exception))
            {
                return;
            }

            inner.Log(logLevel, eventId, state, exception, formatter);
        }
    }

    private sealed class PortInUseAtDebug(ILogger inner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var level = eventId.Id == HostingFailedToStart && IsPortInUse(exception) ? LogLevel.Debug : logLevel;
            if (inner.IsEnabled(level))
            {
                inner.Log(level, eventId, state, exception, formatter);
            }
        }
    }
}

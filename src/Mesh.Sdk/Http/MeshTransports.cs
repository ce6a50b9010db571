using System.Collections.Concurrent;
using Mesh.Sdk.LoadBalancing;
using Mesh.Sdk.Resilience;
using Mesh.Sdk.Resources;

namespace Mesh.Sdk.Http;

/// <summary>
/// One <see cref="SocketsHttpHandler"/> per cluster, configured from the cluster's connection-pool settings
/// (<c>MaxConnectionsPerServer</c>, <c>PooledConnectionIdleTimeout</c>/<c>Lifetime</c>, <c>ConnectTimeout</c>).
/// Shared by every meshed <c>HttpClient</c> of the process, so connections are pooled per cluster whatever client
/// sends. A handler whose settings changed, or whose cluster left the snapshot, is disposed after a grace period
/// so requests still using it finish.
/// </summary>
internal sealed class MeshTransports : IDisposable
{
    /// <summary>How long a replaced handler keeps serving requests that already hold it.</summary>
    public static readonly TimeSpan RetireDelay = TimeSpan.FromSeconds(60);

    private readonly ConcurrentDictionary<string, Transport> _transports = new(StringComparer.Ordinal);
    private readonly MeshRuntime _runtime;
    private readonly Func<ConnectionPoolSettings, HttpMessageHandler> _handlerFactory;
    private int _activeFaults;

    public MeshTransports(MeshRuntime runtime)
        : this(runtime, CreateHandler)
    {
    }

    /// <summary>Creates the transports with another per-cluster handler than <see cref="SocketsHttpHandler"/> (benchmarks, tests).</summary>
    internal MeshTransports(MeshRuntime runtime, Func<ConnectionPoolSettings, HttpMessageHandler> handlerFactory)
    {
        _runtime = runtime;
        _handlerFactory = handlerFactory;
        runtime.Updated += OnUpdated;
    }

    /// <summary>Faults (delays and aborts) in progress, for <c>max_active_faults</c>.</summary>
    public ref int ActiveFaults => ref _activeFaults;

    /// <summary>The invoker of a cluster, created on first use and replaced when its pool settings change.</summary>
    public HttpMessageInvoker Get(ClusterRuntime cluster)
    {
        var settings = cluster.ConnectionPool;
        if (_transports.TryGetValue(cluster.Name, out var transport) && transport.Settings == settings)
        {
            return transport.Invoker;
        }

        return Replace(cluster.Name, settings);
    }

    private HttpMessageInvoker Replace(string name, ConnectionPoolSettings settings)
    {
        var created = new Transport(settings, new HttpMessageInvoker(_handlerFactory(settings), disposeHandler: true));
        while (true)
        {
            if (_transports.TryGetValue(name, out var existing))
            {
                if (existing.Settings == settings)
                {
                    created.Invoker.Dispose();
                    return existing.Invoker;
                }

                if (_transports.TryUpdate(name, created, existing))
                {
                    Retire(existing);
                    return created.Invoker;
                }
            }
            else if (_transports.TryAdd(name, created))
            {
                return created.Invoker;
            }
        }
    }

    internal static SocketsHttpHandler CreateHandler(ConnectionPoolSettings settings) => new()
    {
        MaxConnectionsPerServer = (int)Math.Min(Math.Max(settings.MaxConnections, 1u), int.MaxValue),
        PooledConnectionIdleTimeout = settings.IdleTimeout,
        PooledConnectionLifetime = settings.MaxConnectionDuration ?? Timeout.InfiniteTimeSpan,
        ConnectTimeout = settings.ConnectTimeout,
        AllowAutoRedirect = false,
        UseCookies = false,
        UseProxy = false,
        AutomaticDecompression = System.Net.DecompressionMethods.None,
        EnableMultipleHttp2Connections = true,
    };

    private void OnUpdated(MeshSnapshot snapshot)
    {
        foreach (var (name, transport) in _transports)
        {
            if (!snapshot.Clusters.ContainsKey(name) && _transports.TryRemove(new KeyValuePair<string, Transport>(name, transport)))
            {
                Retire(transport);
            }
        }
    }

    private void Retire(Transport transport)
    {
        transport.RetireTimer = _runtime.TimeProvider.CreateTimer(
            static state => ((Transport)state!).Invoker.Dispose(), transport, RetireDelay, Timeout.InfiniteTimeSpan);
    }

    public void Dispose()
    {
        _runtime.Updated -= OnUpdated;
        foreach (var transport in _transports.Values)
        {
            transport.RetireTimer?.Dispose();
            transport.Invoker.Dispose();
        }

        _transports.Clear();
    }

    private sealed class Transport(ConnectionPoolSettings settings, HttpMessageInvoker invoker)
    {
        public ConnectionPoolSettings Settings { get; } = settings;

        public HttpMessageInvoker Invoker { get; } = invoker;

        public ITimer? RetireTimer { get; set; }
    }
}

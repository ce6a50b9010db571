using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Mesh.Sdk.LoadBalancing;
using Mesh.Sdk.Resilience;
using Mesh.Sdk.Resources;
using Mesh.Sdk.Routing;
using Mesh.Sdk.Security;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Sdk.Http;

/// <summary>
/// One connection pool per cluster endpoint: a <see cref="SocketsHttpHandler"/> whose <c>ConnectCallback</c>
/// dials the endpoint's address, configured from the cluster's connection-pool settings
/// (<c>MaxConnectionsPerServer</c>, <c>PooledConnectionIdleTimeout</c>/<c>Lifetime</c>, <c>ConnectTimeout</c>).
/// A request therefore keeps its own URI (<c>http://reviews:9080/...</c>) and <c>Host</c>, the original authority
/// Envoy sends upstream too; the pool decides where the bytes go. Shared by every meshed <c>HttpClient</c> of the
/// process. Pools of a cluster whose settings changed, of a cluster that left the snapshot, or of an endpoint
/// that left the cluster's EDS are disposed after a grace period so requests still using them finish.
/// An endpoint whose transport is Istio mutual TLS gets a pool whose <c>ConnectCallback</c> also runs the TLS handshake
/// (<see cref="UpstreamMutualTls"/>) with the workload certificate of the moment; the request URI stays <c>http://</c>.
/// A pool serves one transport: an endpoint whose transport changed (CDS, or its EDS metadata) gets a new pool.
/// </summary>
internal sealed partial class MeshTransports : IDisposable
{
    /// <summary>How long a replaced or removed pool keeps serving requests that already hold it.</summary>
    public static readonly TimeSpan RetireDelay = TimeSpan.FromSeconds(60);

    private readonly ConcurrentDictionary<string, ClusterPools> _clusters = new(StringComparer.Ordinal);
    private const int MaxCachedAuthorities = 4096;

    private readonly ConcurrentDictionary<(string IdnHost, int Port), string> _authorities = new();
    private readonly ConcurrentDictionary<string, bool> _reportedNoSecurity = new(StringComparer.Ordinal);
    private readonly MeshRuntime _runtime;
    private readonly Func<ConnectionPoolSettings, MeshEndpoint?, string, HttpMessageHandler> _handlerFactory;
    private readonly UpstreamMutualTls? _mutualTls;
    private readonly ILogger _logger;
    private int _activeFaults;

    public MeshTransports(MeshRuntime runtime)
        : this(runtime, certificates: null, logger: null)
    {
    }

    /// <summary>Creates the transports.</summary>
    /// <param name="runtime">The mesh.</param>
    /// <param name="certificates">The workload certificate source when <c>Mesh:Security:Enabled</c>; without it, endpoints that require Istio mutual TLS are refused.</param>
    /// <param name="logger">The logger.</param>
    public MeshTransports(MeshRuntime runtime, WorkloadCertificateSource? certificates, ILogger<MeshTransports>? logger)
    {
        _runtime = runtime;
        _mutualTls = certificates is null ? null : new UpstreamMutualTls(certificates, runtime.TimeProvider);
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _handlerFactory = (settings, endpoint, cluster) => CreateHandler(settings, endpoint, cluster, _mutualTls);
        runtime.Updated += OnUpdated;
    }

    /// <summary>Creates the transports with another per-endpoint handler than <see cref="SocketsHttpHandler"/> (benchmarks, tests).</summary>
    internal MeshTransports(MeshRuntime runtime, Func<ConnectionPoolSettings, MeshEndpoint?, HttpMessageHandler> handlerFactory)
    {
        _runtime = runtime;
        _handlerFactory = (settings, endpoint, _) => handlerFactory(settings, endpoint);
        _logger = NullLogger.Instance;
        runtime.Updated += OnUpdated;
    }

    /// <summary>The mTLS originator, or <see langword="null"/> when the workload has no certificate source (security disabled).</summary>
    internal UpstreamMutualTls? MutualTls => _mutualTls;

    /// <summary>Faults (delays and aborts) in progress, for <c>max_active_faults</c>.</summary>
    public ref int ActiveFaults => ref _activeFaults;

    /// <summary>
    /// The authority of a meshed request URI (<c>reviews:9080</c>; the host alone on the scheme's default port),
    /// built once per host and port instead of by <see cref="Uri.Authority"/> per request. The host is the URI's
    /// <see cref="Uri.IdnHost"/> (ASCII, as xDS domains are written).
    /// </summary>
    public string AuthorityOf(Uri uri)
    {
        var key = (uri.IdnHost, uri.IsDefaultPort ? -1 : uri.Port);
        if (_authorities.TryGetValue(key, out var authority))
        {
            return authority;
        }

        authority = RouteHost.AuthorityOf(uri);
        if (_authorities.Count < MaxCachedAuthorities)
        {
            _authorities.TryAdd(key, authority);
        }

        return authority;
    }

    /// <summary>Endpoint pools currently serving (not retired), for diagnostics and tests.</summary>
    internal int PoolCount
    {
        get
        {
            var count = 0;
            foreach (var pools in _clusters.Values)
            {
                count += pools.Endpoints.Count;
            }

            return count;
        }
    }

    /// <summary>The invoker that sends to <paramref name="endpoint"/> of <paramref name="cluster"/>, created on first use.</summary>
    public HttpMessageInvoker Get(ClusterRuntime cluster, MeshEndpoint endpoint)
    {
        if (_clusters.TryGetValue(cluster.Name, out var pools) && pools.Settings == cluster.ConnectionPool
            && pools.Endpoints.TryGetValue(endpoint.Key, out var pool) && pool.Transport.Equals(endpoint.Transport))
        {
            return pool.Invoker;
        }

        return GetSlow(cluster, endpoint);
    }

    /// <summary>
    /// The cluster's pool that dials whatever authority the request URI names (<c>http://10.0.0.1:9080/...</c>),
    /// for callers that address the endpoint in the URI themselves. Prefer <see cref="Get(ClusterRuntime, MeshEndpoint)"/>,
    /// which keeps the request's URI and <c>Host</c>.
    /// </summary>
    public HttpMessageInvoker Get(ClusterRuntime cluster)
    {
        var pools = PoolsOf(cluster);
        if (pools.Direct is { } direct)
        {
            return direct;
        }

        var created = new HttpMessageInvoker(_handlerFactory(pools.Settings, null, cluster.Name), disposeHandler: true);
        var winner = Interlocked.CompareExchange(ref pools.Direct, created, null);
        if (winner is not null)
        {
            created.Dispose();
            return winner;
        }

        return created;
    }

    private ClusterPools PoolsOf(ClusterRuntime cluster)
    {
        var settings = cluster.ConnectionPool;
        while (true)
        {
            if (_clusters.TryGetValue(cluster.Name, out var existing))
            {
                if (existing.Settings == settings)
                {
                    return existing;
                }

                var replacement = new ClusterPools(settings);
                if (_clusters.TryUpdate(cluster.Name, replacement, existing))
                {
                    RetireAll(existing);
                    return replacement;
                }
            }
            else
            {
                var created = new ClusterPools(settings);
                if (_clusters.TryAdd(cluster.Name, created))
                {
                    return created;
                }
            }
        }
    }

    private HttpMessageInvoker GetSlow(ClusterRuntime cluster, MeshEndpoint endpoint)
    {
        var pools = PoolsOf(cluster);
        while (true)
        {
            if (pools.Endpoints.TryGetValue(endpoint.Key, out var pool))
            {
                if (pool.Transport.Equals(endpoint.Transport))
                {
                    return pool.Invoker;
                }

                // The endpoint's transport changed (auto-mTLS metadata, or the cluster's TLS settings): new connections
                // use the new one; requests holding the old pool finish on it.
                if (pools.Endpoints.TryRemove(new KeyValuePair<string, EndpointPool>(endpoint.Key, pool)))
                {
                    Retire(pool);
                }

                continue;
            }

            ReportIfMutualWithoutCertificates(cluster.Name, endpoint);
            var fresh = new EndpointPool(new HttpMessageInvoker(_handlerFactory(pools.Settings, endpoint, cluster.Name), disposeHandler: true), endpoint.Transport);
            var winner = pools.Endpoints.GetOrAdd(endpoint.Key, fresh);
            if (!ReferenceEquals(winner, fresh))
            {
                fresh.Invoker.Dispose();
                continue;
            }

            return winner.Invoker;
        }
    }

    /// <summary>Logs once per cluster that it requires Istio mutual TLS while this workload has no certificate.</summary>
    internal void ReportIfMutualWithoutCertificates(string clusterName, MeshEndpoint endpoint)
    {
        if (_mutualTls is null && endpoint.Transport.Kind == UpstreamTransport.IstioMutual && _reportedNoSecurity.TryAdd(clusterName, true))
        {
            Log.MutualTlsWithoutSecurity(_logger, clusterName);
        }
    }

    /// <summary>The refusal of a mutual-TLS endpoint when the workload has no certificate source.</summary>
    internal static UpstreamTlsException SecurityDisabled(string clusterName, string endpointKey)
        => new($"Cluster '{clusterName}' requires Istio mutual TLS (DestinationRule tls.mode ISTIO_MUTUAL, or auto-mTLS toward a workload with a mesh certificate), "
            + $"but this workload has no certificate: set Mesh:Security:Enabled=true. The connection to endpoint '{endpointKey}' was not made.");

    /// <summary>
    /// A pool for one endpoint: every connection dials the endpoint, whatever the request's URI says. Without an
    /// endpoint, connections dial the URI's authority.
    /// </summary>
    internal static SocketsHttpHandler CreateHandler(ConnectionPoolSettings settings, MeshEndpoint? endpoint)
        => CreateHandler(settings, endpoint, string.Empty, null);

    /// <summary>
    /// A pool for one endpoint of <paramref name="clusterName"/>; when the endpoint's transport is Istio mutual TLS,
    /// every connection runs the handshake through <paramref name="mutualTls"/> (or is refused when there is none).
    /// </summary>
    internal static SocketsHttpHandler CreateHandler(ConnectionPoolSettings settings, MeshEndpoint? endpoint, string clusterName, UpstreamMutualTls? mutualTls)
    {
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = (int)Math.Min(Math.Max(settings.MaxConnections, 1u), int.MaxValue),
            PooledConnectionIdleTimeout = settings.IdleTimeout,
            PooledConnectionLifetime = settings.MaxConnectionDuration ?? Timeout.InfiniteTimeSpan,
            ConnectTimeout = settings.ConnectTimeout,
            AllowAutoRedirect = false,
            UseCookies = false,
            UseProxy = false,
            AutomaticDecompression = DecompressionMethods.None,
            EnableMultipleHttp2Connections = true,
        };
        if (endpoint is not null)
        {
            EndPoint target = IPAddress.TryParse(endpoint.Host, out var address)
                ? new IPEndPoint(address, endpoint.Port)
                : new DnsEndPoint(endpoint.Host, endpoint.Port);
            if (endpoint.Transport.Kind == UpstreamTransport.IstioMutual)
            {
                var transport = endpoint.Transport;
                var key = endpoint.Key;
                var state = endpoint.State;
                handler.ConnectCallback = mutualTls is null
                    ? (_, _) => ValueTask.FromException<Stream>(SecurityDisabled(clusterName, key))
                    : async (context, cancellationToken) =>
                    {
                        var stream = await ConnectAsync(target, cancellationToken).ConfigureAwait(false);
                        var secured = await mutualTls.AuthenticateAsync(stream, clusterName, key, transport, WantsHttp2(context.InitialRequestMessage), cancellationToken).ConfigureAwait(false);

                        // The identity the server proved: the caller's destination_principal in Istio's metrics.
                        state.PeerPrincipal = Mesh.Sdk.Telemetry.WorkloadLabels.PrincipalOf(secured);
                        return secured;
                    };
            }
            else
            {
                handler.ConnectCallback = (_, cancellationToken) => ConnectAsync(target, cancellationToken);
            }
        }

        return handler;
    }

    /// <summary>
    /// Whether SocketsHttpHandler speaks HTTP/2 on an <c>http://</c> connection for this request (prior knowledge:
    /// version 2.0 with a policy other than <see cref="HttpVersionPolicy.RequestVersionOrLower"/>), so ALPN offers <c>h2</c>.
    /// </summary>
    internal static bool WantsHttp2(HttpRequestMessage request)
        => request.Version.Major == 2 && request.VersionPolicy != HttpVersionPolicy.RequestVersionOrLower;

    private static async ValueTask<Stream> ConnectAsync(EndPoint target, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(target, cancellationToken).ConfigureAwait(false);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private void OnUpdated(MeshSnapshot snapshot)
    {
        foreach (var (name, pools) in _clusters)
        {
            if (!snapshot.Clusters.ContainsKey(name) || !_runtime.Clusters.TryGetCluster(name, out var cluster))
            {
                if (_clusters.TryRemove(new KeyValuePair<string, ClusterPools>(name, pools)))
                {
                    RetireAll(pools);
                }

                continue;
            }

            var endpoints = cluster.LoadBalancer.Endpoints;
            foreach (var (key, pool) in pools.Endpoints)
            {
                if (!endpoints.TryGetState(key, out _) && pools.Endpoints.TryRemove(new KeyValuePair<string, EndpointPool>(key, pool)))
                {
                    Retire(pool);
                }
            }
        }
    }

    private void RetireAll(ClusterPools pools)
    {
        if (pools.Direct is { } direct)
        {
            Retire(new EndpointPool(direct, EndpointTransport.Plaintext));
        }

        foreach (var pool in pools.Endpoints.Values)
        {
            Retire(pool);
        }
    }

    private void Retire(EndpointPool pool)
    {
        pool.RetireTimer = _runtime.TimeProvider.CreateTimer(
            static state => ((EndpointPool)state!).Invoker.Dispose(), pool, RetireDelay, Timeout.InfiniteTimeSpan);
    }

    public void Dispose()
    {
        _runtime.Updated -= OnUpdated;
        foreach (var pools in _clusters.Values)
        {
            pools.Direct?.Dispose();
            foreach (var pool in pools.Endpoints.Values)
            {
                pool.RetireTimer?.Dispose();
                pool.Invoker.Dispose();
            }
        }

        _clusters.Clear();
    }

    private sealed class ClusterPools(ConnectionPoolSettings settings)
    {
        public ConnectionPoolSettings Settings { get; } = settings;

        public ConcurrentDictionary<string, EndpointPool> Endpoints { get; } = new(StringComparer.Ordinal);

        /// <summary>The pool dialing the request URI's authority; created on first use.</summary>
        public HttpMessageInvoker? Direct;
    }

    private sealed class EndpointPool(HttpMessageInvoker invoker, EndpointTransport transport)
    {
        public HttpMessageInvoker Invoker { get; } = invoker;

        /// <summary>The transport the pool's connections use.</summary>
        public EndpointTransport Transport { get; } = transport;

        public ITimer? RetireTimer { get; set; }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 602, Level = LogLevel.Warning, Message = "Cluster '{ClusterName}' requires Istio mutual TLS, but Mesh:Security:Enabled is off, so this workload has no certificate: its requests to that cluster fail until security is enabled.")]
        public static partial void MutualTlsWithoutSecurity(ILogger logger, string clusterName);
    }
}

using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Google.Protobuf;
using Mesh.Xds;

namespace Mesh.Sdk.Resilience;

/// <summary>
/// Connection-pool settings of a cluster for the HTTP layer to apply to its <c>SocketsHttpHandler</c>:
/// <see cref="ConnectTimeout"/> → <c>ConnectTimeout</c>, <see cref="IdleTimeout"/> →
/// <c>PooledConnectionIdleTimeout</c>, <see cref="MaxConnectionDuration"/> → <c>PooledConnectionLifetime</c>,
/// <see cref="MaxConnections"/> → <c>MaxConnectionsPerServer</c> (Envoy's limit is per cluster; the
/// circuit breaker enforces that). <see cref="MaxRequestsPerConnection"/> has no handler property: the HTTP
/// layer closes a connection after that many requests (<c>Connection: close</c>).
/// </summary>
/// <param name="ConnectTimeout"><c>connect_timeout</c>; Envoy's default 5 s.</param>
/// <param name="IdleTimeout"><c>common_http_protocol_options.idle_timeout</c>; Envoy's default 1 h; <see cref="Timeout.InfiniteTimeSpan"/> when set to 0 (disabled).</param>
/// <param name="MaxConnectionDuration"><c>common_http_protocol_options.max_connection_duration</c>; <see langword="null"/> for unlimited.</param>
/// <param name="MaxRequestsPerConnection"><c>common_http_protocol_options.max_requests_per_connection</c>; <see langword="null"/> for unlimited.</param>
/// <param name="MaxConnections"><c>circuit_breakers</c> DEFAULT <c>max_connections</c>; default 1024.</param>
/// <param name="Http2MaxConcurrentStreams"><c>explicit_http_config.http2_protocol_options.max_concurrent_streams</c> when HTTP/2 is configured explicitly; otherwise <see langword="null"/>.</param>
internal sealed record ConnectionPoolSettings(
    TimeSpan ConnectTimeout,
    TimeSpan IdleTimeout,
    TimeSpan? MaxConnectionDuration,
    uint? MaxRequestsPerConnection,
    uint MaxConnections,
    uint? Http2MaxConcurrentStreams)
{
    /// <summary>The <c>typed_extension_protocol_options</c> key of the upstream HTTP protocol options.</summary>
    public const string HttpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

    /// <summary>The type URL of <c>envoy.extensions.upstreams.http.v3.HttpProtocolOptions</c>.</summary>
    public const string HttpProtocolOptionsTypeUrl = XdsTypeUrls.Prefix + HttpProtocolOptionsKey;

    /// <summary>Envoy's default connect timeout.</summary>
    public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Envoy's default upstream idle timeout.</summary>
    public static readonly TimeSpan DefaultIdleTimeout = TimeSpan.FromHours(1);

    /// <summary>
    /// Compiles the settings of a cluster. The upstream HTTP protocol options are decoded by field number
    /// (<c>common_http_protocol_options = 1</c>, <c>explicit_http_config = 3</c> →
    /// <c>http2_protocol_options = 2</c>), the only parts of that message the SDK uses.
    /// </summary>
    /// <exception cref="NotSupportedException">The options do not decode; the message names the cluster.</exception>
    public static ConnectionPoolSettings FromCluster(Cluster cluster)
    {
        ArgumentNullException.ThrowIfNull(cluster);
        var connectTimeout = cluster.ConnectTimeout?.ToTimeSpan() ?? DefaultConnectTimeout;
        if (connectTimeout <= TimeSpan.Zero)
        {
            throw new NotSupportedException($"Cluster '{cluster.Name}': connect_timeout {connectTimeout} must be greater than 0.");
        }

        HttpProtocolOptions? common = null;
        Http2ProtocolOptions? http2 = null;
        if (cluster.TypedExtensionProtocolOptions.TryGetValue(HttpProtocolOptionsKey, out var any) && any is not null)
        {
            if (any.TypeUrl != HttpProtocolOptionsTypeUrl)
            {
                throw new NotSupportedException($"Cluster '{cluster.Name}': typed_extension_protocol_options['{HttpProtocolOptionsKey}'] has type '{any.TypeUrl}', expected '{HttpProtocolOptionsTypeUrl}'.");
            }

            try
            {
                (common, http2) = Decode(any.Value);
            }
            catch (InvalidProtocolBufferException ex)
            {
                throw new NotSupportedException($"Cluster '{cluster.Name}': typed_extension_protocol_options['{HttpProtocolOptionsKey}'] does not decode: {ex.Message}", ex);
            }
        }

        var idle = common?.IdleTimeout is { } i ? (i.ToTimeSpan() == TimeSpan.Zero ? Timeout.InfiniteTimeSpan : i.ToTimeSpan()) : DefaultIdleTimeout;
        var maxDuration = common?.MaxConnectionDuration?.ToTimeSpan() is { } d && d > TimeSpan.Zero ? d : (TimeSpan?)null;
        var perConnection = common?.MaxRequestsPerConnection is { } m && m > 0 ? m : (uint?)null;
        var maxConnections = cluster.CircuitBreakers?.Thresholds.FirstOrDefault(static t => t.Priority == RoutingPriority.Default)?.MaxConnections
            ?? CircuitBreakerThresholds.DefaultLimit;
        return new ConnectionPoolSettings(connectTimeout, idle, maxDuration, perConnection, maxConnections, http2?.MaxConcurrentStreams);
    }

    private static (HttpProtocolOptions? Common, Http2ProtocolOptions? Http2) Decode(ByteString bytes)
    {
        HttpProtocolOptions? common = null;
        Http2ProtocolOptions? http2 = null;
        var input = new CodedInputStream(bytes.ToByteArray());
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (tag == WireTag(1))
            {
                common = HttpProtocolOptions.Parser.ParseFrom(input.ReadBytes());
            }
            else if (tag == WireTag(3))
            {
                var explicitConfig = new CodedInputStream(input.ReadBytes().ToByteArray());
                uint inner;
                while ((inner = explicitConfig.ReadTag()) != 0)
                {
                    if (inner == WireTag(2))
                    {
                        http2 = Http2ProtocolOptions.Parser.ParseFrom(explicitConfig.ReadBytes());
                    }
                    else
                    {
                        explicitConfig.SkipLastField();
                    }
                }
            }
            else
            {
                input.SkipLastField();
            }
        }

        return (common, http2);
    }

    private static uint WireTag(int field) => WireFormat.MakeTag(field, WireFormat.WireType.LengthDelimited);
}

using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.Resilience;

namespace Mesh.Sdk.Tests.Resilience;

public sealed class ConnectionPoolSettingsTests
{
    [Fact]
    public void FromCluster_DefaultsToEnvoyValues()
    {
        var settings = ConnectionPoolSettings.FromCluster(new Cluster { Name = "c" });

        Assert.Equal(new ConnectionPoolSettings(TimeSpan.FromSeconds(5), TimeSpan.FromHours(1), null, null, 1024, null), settings);
    }

    [Fact]
    public void FromCluster_ReadsConnectTimeoutUpstreamHttpOptionsAndMaxConnections()
    {
        var common = new HttpProtocolOptions
        {
            IdleTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(90)),
            MaxRequestsPerConnection = 3,
            MaxConnectionDuration = Duration.FromTimeSpan(TimeSpan.FromMinutes(10)),
        };
        var http2 = new Http2ProtocolOptions { MaxConcurrentStreams = 64 };

        // envoy.extensions.upstreams.http.v3.HttpProtocolOptions { common_http_protocol_options = 1; explicit_http_config = 3 { http2_protocol_options = 2 } }
        var explicitConfig = ByteString.CopyFrom(Field(2, http2.ToByteArray()));
        var message = Field(1, common.ToByteArray()).Concat(Field(3, explicitConfig.ToByteArray())).ToArray();
        var cluster = new Cluster { Name = "c", ConnectTimeout = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(250)) };
        cluster.TypedExtensionProtocolOptions.Add(ConnectionPoolSettings.HttpProtocolOptionsKey, new Any { TypeUrl = ConnectionPoolSettings.HttpProtocolOptionsTypeUrl, Value = ByteString.CopyFrom(message) });
        cluster.CircuitBreakers = new CircuitBreakers();
        cluster.CircuitBreakers.Thresholds.Add(new CircuitBreakers.Types.Thresholds { MaxConnections = 7 });

        var settings = ConnectionPoolSettings.FromCluster(cluster);

        Assert.Equal(new ConnectionPoolSettings(TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(90), TimeSpan.FromMinutes(10), 3u, 7u, 64u), settings);
    }

    [Fact]
    public void FromCluster_RejectsAWrongTypeUnderTheKey()
    {
        var cluster = new Cluster { Name = "c" };
        cluster.TypedExtensionProtocolOptions.Add(ConnectionPoolSettings.HttpProtocolOptionsKey, Any.Pack(new HttpProtocolOptions()));

        var ex = Assert.Throws<NotSupportedException>(() => ConnectionPoolSettings.FromCluster(cluster));

        Assert.Contains("has type 'type.googleapis.com/envoy.config.core.v3.HttpProtocolOptions'", ex.Message);
    }

    private static byte[] Field(int number, byte[] payload)
    {
        using var stream = new MemoryStream();
        var output = new CodedOutputStream(stream);
        output.WriteTag(number, WireFormat.WireType.LengthDelimited);
        output.WriteBytes(ByteString.CopyFrom(payload));
        output.Flush();
        return stream.ToArray();
    }
}

using System.Globalization;
using Envoy.Config.Listener.V3;
using Envoy.Config.Trace.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf;
using Mesh.Xds;
using EnvoyCustomTag = Envoy.Type.Tracing.V3.CustomTag;

namespace Mesh.Sdk.Telemetry.Tracing;

/// <summary>A tracing configuration the SDK cannot apply: what is wrong and where.</summary>
internal sealed class TracingConfigException(string message) : Exception(message);

/// <summary>
/// Compiles an HttpConnectionManager's <c>tracing</c> (field 7) as istiod writes it into a <see cref="TracingPolicy"/>:
/// the provider (<c>envoy.tracers.zipkin</c> with <c>ZipkinConfig</c>, or <c>envoy.tracers.opentelemetry</c> with
/// <c>OpenTelemetryConfig</c> over a gRPC or HTTP service), the collector's mesh host and port (the host of
/// <c>collector_hostname</c> / the service's authority or URI, the port of the <c>outbound|port||host</c> cluster),
/// the sampling percentages and the custom tags (literal, environment, request header; metadata tags take their default).
/// </summary>
internal static class TracingPolicyCompiler
{
    /// <summary>The policy of <paramref name="tracing"/>; <see langword="null"/> when the HCM has no tracing or no provider.</summary>
    /// <exception cref="TracingConfigException">The provider or its config is not one the SDK speaks, or is incomplete.</exception>
    public static TracingPolicy? Compile(HttpConnectionManager.Types.Tracing? tracing, string where)
    {
        if (tracing?.Provider is not { } provider || provider.TypedConfig is not { } any)
        {
            return null;
        }

        where = $"{where} tracing.provider '{provider.Name}'";
        TracingPolicy policy;
        if (any.TypeUrl == XdsTypeUrls.ZipkinConfig)
        {
            var zipkin = Unpack(any, ZipkinConfig.Parser, where);
            if (zipkin.CollectorEndpointVersion is not (ZipkinConfig.Types.CollectorEndpointVersion.HttpJson or ZipkinConfig.Types.CollectorEndpointVersion.DeprecatedAndUnavailableDoNotUse))
            {
                throw new TracingConfigException($"{where}: collector_endpoint_version {zipkin.CollectorEndpointVersion} is not supported (only HTTP_JSON)");
            }

            var (host, port) = Cluster(zipkin.CollectorCluster, where + " collector_cluster");
            policy = new TracingPolicy
            {
                Provider = TraceProviderKind.Zipkin,
                CollectorHost = zipkin.CollectorHostname is { Length: > 0 } hostname ? hostname : host,
                CollectorPort = port,
                CollectorPath = zipkin.CollectorEndpoint is { Length: > 0 } path ? (path.StartsWith('/') ? path : "/" + path) : "/api/v2/spans",
                TraceId128Bit = zipkin.TraceId128Bit,
            };
        }
        else if (any.TypeUrl == XdsTypeUrls.OpenTelemetryConfig)
        {
            var otel = Unpack(any, OpenTelemetryConfig.Parser, where);
            if (otel.HttpService?.HttpUri is { } uri)
            {
                var (host, port) = Cluster(uri.Cluster, where + " http_service.http_uri.cluster");
                var text = uri.Uri;
                if (Uri.TryCreate(text, UriKind.Absolute, out var absolute) && absolute.Scheme is "http" or "https")
                {
                    text = absolute.Host + absolute.PathAndQuery;
                }

                var slash = text.IndexOf('/', StringComparison.Ordinal);
                policy = new TracingPolicy
                {
                    Provider = TraceProviderKind.OtlpHttp,
                    CollectorHost = slash > 0 ? text[..slash] : text.Length > 0 ? text : host,
                    CollectorPort = port,
                    CollectorPath = slash > 0 ? text[slash..] : "/v1/traces",
                    ServiceName = otel.ServiceName,
                };
            }
            else if (otel.GrpcService?.EnvoyGrpc is { } grpc)
            {
                var (host, port) = Cluster(grpc.ClusterName, where + " grpc_service.envoy_grpc.cluster_name");
                policy = new TracingPolicy
                {
                    Provider = TraceProviderKind.OtlpGrpc,
                    CollectorHost = grpc.Authority is { Length: > 0 } authority ? authority : host,
                    CollectorPort = port,
                    ServiceName = otel.ServiceName,
                };
            }
            else
            {
                throw new TracingConfigException($"{where}: OpenTelemetryConfig has neither grpc_service.envoy_grpc nor http_service.http_uri");
            }
        }
        else
        {
            throw new TracingConfigException($"{where}: typed_config '{any.TypeUrl}' is not a tracer the SDK exports to (ZipkinConfig or OpenTelemetryConfig)");
        }

        return policy with
        {
            RandomSampling = Percent(tracing.RandomSampling, where + " random_sampling"),
            ClientSampling = Percent(tracing.ClientSampling, where + " client_sampling"),
            OverallSampling = Percent(tracing.OverallSampling, where + " overall_sampling"),
            CustomTags = Tags(tracing.CustomTags),
        };
    }

    /// <summary>The first HttpConnectionManager of <paramref name="listener"/>'s filter chains, or <see langword="null"/>.</summary>
    public static HttpConnectionManager? InboundManager(Listener listener)
    {
        foreach (var chain in listener.FilterChains.Append(listener.DefaultFilterChain))
        {
            foreach (var filter in chain?.Filters ?? [])
            {
                if (filter.TypedConfig is { } any && any.TypeUrl == XdsTypeUrls.HttpConnectionManager)
                {
                    try
                    {
                        return HttpConnectionManager.Parser.ParseFrom(any.Value);
                    }
                    catch (InvalidProtocolBufferException)
                    {
                        return null;
                    }
                }
            }
        }

        return null;
    }

    /// <summary>The tracing of the first HttpConnectionManager of <paramref name="listener"/>'s filter chains that has one.</summary>
    public static HttpConnectionManager.Types.Tracing? InboundTracing(Listener listener)
    {
        foreach (var chain in listener.FilterChains.Append(listener.DefaultFilterChain))
        {
            if (chain is null)
            {
                continue;
            }

            foreach (var filter in chain.Filters)
            {
                if (filter.TypedConfig is { } any && any.TypeUrl == XdsTypeUrls.HttpConnectionManager
                    && HttpConnectionManager.Parser.ParseFrom(any.Value) is { Tracing: { } tracing })
                {
                    return tracing;
                }
            }
        }

        return null;
    }

    private static T Unpack<T>(Google.Protobuf.WellKnownTypes.Any any, MessageParser<T> parser, string where)
        where T : IMessage<T>
    {
        try
        {
            return parser.ParseFrom(any.Value);
        }
        catch (InvalidProtocolBufferException ex)
        {
            throw new TracingConfigException($"{where}: typed_config cannot be decoded: {ex.Message}");
        }
    }

    /// <summary>The host and port of an Istio cluster name <c>outbound|port|subset|host</c>.</summary>
    private static (string Host, int Port) Cluster(string cluster, string where)
    {
        var parts = cluster.Split('|');
        if (parts.Length != 4 || parts[3].Length == 0 || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is <= 0 or > 65535)
        {
            throw new TracingConfigException($"{where} '{cluster}' is not an Istio outbound cluster name (outbound|<port>|<subset>|<host>)");
        }

        return (parts[3], port);
    }

    /// <summary>Envoy's default for an absent Percent is 100 %.</summary>
    private static double Percent(Envoy.Type.V3.Percent? percent, string where)
    {
        if (percent is null)
        {
            return 100;
        }

        if (percent.Value is < 0 or > 100 || double.IsNaN(percent.Value))
        {
            throw new TracingConfigException($"{where}: {percent.Value.ToString(CultureInfo.InvariantCulture)} is not a percentage (0-100)");
        }

        return percent.Value;
    }

    private static List<CustomTag> Tags(IEnumerable<EnvoyCustomTag> tags)
    {
        var result = new List<CustomTag>();
        foreach (var tag in tags)
        {
            switch (tag.TypeCase)
            {
                case EnvoyCustomTag.TypeOneofCase.Literal:
                    result.Add(new CustomTag(tag.Tag, CustomTagKind.Literal, tag.Literal.Value));
                    break;
                case EnvoyCustomTag.TypeOneofCase.Environment:
                    result.Add(new CustomTag(tag.Tag, CustomTagKind.Environment, tag.Environment.Name, tag.Environment.DefaultValue));
                    break;
                case EnvoyCustomTag.TypeOneofCase.RequestHeader:
                    result.Add(new CustomTag(tag.Tag, CustomTagKind.RequestHeader, tag.RequestHeader.Name, tag.RequestHeader.DefaultValue));
                    break;
                case EnvoyCustomTag.TypeOneofCase.Metadata when tag.Metadata.DefaultValue.Length > 0:
                    // Route/host metadata is not kept per request: the tag takes its default.
                    result.Add(new CustomTag(tag.Tag, CustomTagKind.Literal, tag.Metadata.DefaultValue));
                    break;
            }
        }

        return result;
    }
}

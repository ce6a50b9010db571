using Envoy.Config.Core.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Trace.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.Telemetry.Tracing;
using Mesh.Xds;
using EnvoyCustomTag = Envoy.Type.Tracing.V3.CustomTag;
using EnvoyPercent = Envoy.Type.V3.Percent;
using HcmTracing = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager.Types.Tracing;

namespace Mesh.Sdk.Tests.Telemetry.Tracing;

public sealed class TracingPolicyCompilerTests
{
    /// <summary>The tracing istiod writes for Istio's <c>zipkin</c> extension provider (service zipkin.istio-system, port 9411) at 1 % sampling.</summary>
    private static HcmTracing IstioZipkin(double sampling = 1) => new()
    {
        Provider = new Envoy.Config.Trace.V3.Tracing.Types.Http
        {
            Name = XdsExtensionNames.ZipkinTracer,
            TypedConfig = Any.Pack(new ZipkinConfig
            {
                CollectorCluster = "outbound|9411||zipkin.istio-system.svc.cluster.local",
                CollectorEndpoint = "/api/v2/spans",
                CollectorHostname = "zipkin.istio-system.svc.cluster.local",
                CollectorEndpointVersion = ZipkinConfig.Types.CollectorEndpointVersion.HttpJson,
                TraceId128Bit = true,
                SharedSpanContext = false,
            }),
        },
        ClientSampling = new EnvoyPercent { Value = 100 },
        RandomSampling = new EnvoyPercent { Value = sampling },
        OverallSampling = new EnvoyPercent { Value = 100 },
        CustomTags =
        {
            new EnvoyCustomTag { Tag = "istio.canonical_service", Literal = new EnvoyCustomTag.Types.Literal { Value = "front" } },
            new EnvoyCustomTag { Tag = "pod", Environment = new EnvoyCustomTag.Types.Environment { Name = "POD_NAME", DefaultValue = "none" } },
            new EnvoyCustomTag { Tag = "user", RequestHeader = new EnvoyCustomTag.Types.Header { Name = "end-user", DefaultValue = "anonymous" } },
        },
    };

    [Fact]
    public void Compile_IstiosZipkinProvider_CollectorAtTheServiceHostAndClusterPort_SamplingAndTags()
    {
        var policy = TracingPolicyCompiler.Compile(IstioZipkin(), "listener 'web:9080'");

        Assert.NotNull(policy);
        Assert.Equal(TraceProviderKind.Zipkin, policy.Provider);
        Assert.Equal(new Uri("http://zipkin.istio-system.svc.cluster.local:9411/api/v2/spans"), policy.CollectorUri);
        Assert.True(policy.TraceId128Bit);
        Assert.Equal(1, policy.RandomSampling);
        Assert.Equal(100, policy.ClientSampling);
        Assert.Equal(100, policy.OverallSampling);
        Assert.Equal(
            [
                new CustomTag("istio.canonical_service", CustomTagKind.Literal, "front"),
                new CustomTag("pod", CustomTagKind.Environment, "POD_NAME", "none"),
                new CustomTag("user", CustomTagKind.RequestHeader, "end-user", "anonymous"),
            ],
            policy.CustomTags);
    }

    [Fact]
    public void Compile_AbsentPercents_AreEnvoysHundred_AndNoTracingIsNull()
    {
        var tracing = IstioZipkin();
        tracing.RandomSampling = null;
        tracing.ClientSampling = null;
        tracing.OverallSampling = null;

        var policy = TracingPolicyCompiler.Compile(tracing, "l")!;
        Assert.Equal(100, policy.RandomSampling);
        Assert.Equal(100, policy.OverallSampling);
        Assert.Null(TracingPolicyCompiler.Compile(null, "l"));
        Assert.Null(TracingPolicyCompiler.Compile(new HcmTracing(), "l"));
    }

    [Fact]
    public void Compile_OpenTelemetryGrpcAndHttp_AsIstiodWritesThem()
    {
        var grpc = new HcmTracing
        {
            Provider = new Envoy.Config.Trace.V3.Tracing.Types.Http
            {
                Name = XdsExtensionNames.OpenTelemetryTracer,
                TypedConfig = Any.Pack(new OpenTelemetryConfig
                {
                    ServiceName = "front.default",
                    GrpcService = new GrpcService { EnvoyGrpc = new GrpcService.Types.EnvoyGrpc { ClusterName = "outbound|4317||otel.observability.svc.cluster.local", Authority = "otel.observability.svc.cluster.local" } },
                }),
            },
        };
        var g = TracingPolicyCompiler.Compile(grpc, "l")!;
        Assert.Equal(TraceProviderKind.OtlpGrpc, g.Provider);
        Assert.Equal(new Uri("http://otel.observability.svc.cluster.local:4317"), g.CollectorUri);
        Assert.Equal("front.default", g.ServiceName);

        var http = new HcmTracing
        {
            Provider = new Envoy.Config.Trace.V3.Tracing.Types.Http
            {
                Name = XdsExtensionNames.OpenTelemetryTracer,
                TypedConfig = Any.Pack(new OpenTelemetryConfig
                {
                    ServiceName = "front.default",
                    HttpService = new HttpService { HttpUri = new HttpUri { Uri = "otel.observability.svc.cluster.local/v1/traces", Cluster = "outbound|4318||otel.observability.svc.cluster.local" } },
                }),
            },
        };
        var h = TracingPolicyCompiler.Compile(http, "l")!;
        Assert.Equal(TraceProviderKind.OtlpHttp, h.Provider);
        Assert.Equal(new Uri("http://otel.observability.svc.cluster.local:4318/v1/traces"), h.CollectorUri);
        Assert.False(g.SameExporter(h));
    }

    [Fact]
    public void Compile_BadInput_NamesWhereAndWhy()
    {
        var badCluster = IstioZipkin();
        badCluster.Provider.TypedConfig = Any.Pack(new ZipkinConfig { CollectorCluster = "zipkin", CollectorEndpoint = "/api/v2/spans" });
        var ex = Assert.Throws<TracingConfigException>(() => TracingPolicyCompiler.Compile(badCluster, "listener 'web:9080'"));
        Assert.Contains("listener 'web:9080'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("collector_cluster 'zipkin' is not an Istio outbound cluster name", ex.Message, StringComparison.Ordinal);

        var proto = IstioZipkin();
        proto.Provider.TypedConfig = Any.Pack(new ZipkinConfig { CollectorCluster = "outbound|9411||z", CollectorEndpointVersion = ZipkinConfig.Types.CollectorEndpointVersion.HttpProto });
        Assert.Contains("only HTTP_JSON", Assert.Throws<TracingConfigException>(() => TracingPolicyCompiler.Compile(proto, "l")).Message, StringComparison.Ordinal);

        var percent = IstioZipkin(sampling: 150);
        Assert.Contains("random_sampling: 150 is not a percentage", Assert.Throws<TracingConfigException>(() => TracingPolicyCompiler.Compile(percent, "l")).Message, StringComparison.Ordinal);

        var other = IstioZipkin();
        other.Provider.TypedConfig = Any.Pack(new Duration());
        Assert.Contains("is not a tracer the SDK exports to", Assert.Throws<TracingConfigException>(() => TracingPolicyCompiler.Compile(other, "l")).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void InboundTracing_IsTheFirstHttpConnectionManagersTracing()
    {
        var hcm = new HttpConnectionManager { StatPrefix = "inbound_0.0.0.0_9080", Tracing = IstioZipkin(sampling: 42) };
        var listener = new Listener
        {
            Name = "xds.istio.io/grpc/lds/inbound/10.0.0.1:9080",
            FilterChains = { new FilterChain { Filters = { new Filter { Name = "envoy.filters.network.http_connection_manager", TypedConfig = Any.Pack(hcm) } } } },
        };

        var tracing = TracingPolicyCompiler.InboundTracing(listener);
        Assert.Equal(42, TracingPolicyCompiler.Compile(tracing, "l")!.RandomSampling);
        Assert.Null(TracingPolicyCompiler.InboundTracing(new Listener { Name = "empty" }));
    }
}

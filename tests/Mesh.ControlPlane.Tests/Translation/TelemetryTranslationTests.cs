using Envoy.Config.Accesslog.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Trace.V3;
using Envoy.Extensions.AccessLoggers.File.V3;
using Envoy.Extensions.AccessLoggers.Filters.Cel.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Registry;
using Mesh.ControlPlane.Translation;
using Mesh.Xds;
using Microsoft.Extensions.Logging.Abstractions;
using HcmTracing = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager.Types.Tracing;

namespace Mesh.ControlPlane.Tests.Translation;

/// <summary>
/// The mesh config and Telemetry resources, written as Istio's docs write them, through the real config store and
/// translator: the tracing and access log istiod puts into a sidecar's HCMs, on Mesh.Sdk nodes' listeners.
/// </summary>
public sealed class TelemetryTranslationTests
{
    private const string Reviews = "reviews.default.svc.cluster.local:9080";
    private const string Inbound = "xds.istio.io/grpc/lds/inbound/0.0.0.0:41300";
    private const string ZipkinCluster = "outbound|9411||zipkin.istio-system.svc.cluster.local";

    /// <summary>Istio's "distributed tracing" setup: a zipkin provider, the default sampling of the proxy config, and its service.</summary>
    internal const string MeshConfig = """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: istio
          namespace: istio-system
        data:
          mesh: |-
            accessLogFile: /dev/stdout
            enableTracing: true
            defaultConfig:
              discoveryAddress: istiod.istio-system.svc:15012
              tracing:
                sampling: 10
            extensionProviders:
            - name: zipkin
              zipkin:
                service: zipkin.istio-system.svc.cluster.local
                port: 9411
                maxTagLength: 256
            - name: otel
              opentelemetry:
                service: otel-collector.istio-system.svc.cluster.local
                port: 4317
            rootNamespace: istio-system
        ---
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata:
          name: zipkin
          namespace: istio-system
        spec:
          hosts: [zipkin.istio-system.svc.cluster.local]
          ports:
          - {number: 9411, name: http-query, protocol: HTTP}
          resolution: STATIC
          endpoints:
          - address: 127.0.0.1
        ---
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata:
          name: otel-collector
          namespace: istio-system
        spec:
          hosts: [otel-collector.istio-system.svc.cluster.local]
          ports:
          - {number: 4317, name: grpc-otlp, protocol: GRPC}
          resolution: STATIC
          endpoints:
          - address: 127.0.0.1
        """;

    internal const string MeshDefault100 = """
        apiVersion: telemetry.istio.io/v1
        kind: Telemetry
        metadata:
          name: mesh-default
          namespace: istio-system
        spec:
          tracing:
          - providers:
            - name: zipkin
            randomSamplingPercentage: 100.00
        """;

    internal const string Namespace1 = """
        apiVersion: telemetry.istio.io/v1
        kind: Telemetry
        metadata:
          name: namespace-override
          namespace: default
        spec:
          tracing:
          - randomSamplingPercentage: 1
        """;

    internal const string WorkloadTag = """
        apiVersion: telemetry.istio.io/v1
        kind: Telemetry
        metadata:
          name: reviews-tags
          namespace: default
        spec:
          selector:
            matchLabels:
              app: reviews
          tracing:
          - customTags:
              cluster_name:
                literal:
                  value: east
              user:
                header:
                  name: x-user
                  defaultValue: anonymous
              pod:
                environment:
                  name: POD_NAME
        """;

    private static ClientScope Sdk(string ns, params (string Key, string Value)[] labels) =>
        new(ns, labels.ToDictionary(l => l.Key, l => l.Value)) { SniffsTls = true, IsSdk = true, NodeCluster = "front.default" };

    private static XdsSnapshot Translate(params (string Name, string Yaml)[] files)
    {
        var store = new ConfigStore("default", NullLogger.Instance);
        store.Apply(files.Select(f => ("/cfg/" + f.Name, (string?)f.Yaml)));
        Assert.Empty(store.LastErrors.Select(e => e.ToString()));
        using var registry = new ServiceRegistry(TimeProvider.System, TimeSpan.FromSeconds(10), "cluster.local", NullLogger.Instance);
        registry.UpdateConfig(store.Current);
        return new XdsTranslator("cluster.local").Translate(store.Current, registry.Current, 7);
    }

    private static (string, string)[] Bookinfo(params (string, string)[] more) =>
        [("reviews.yaml", TestYaml.All), ("mesh.yaml", MeshConfig), .. more];

    private static HttpConnectionManager Outbound(XdsSnapshot snapshot, ClientScope client) =>
        snapshot.Find(ResourceTypes.Listener, Reviews, client)!.Resource.Unpack<Listener>().ApiListener.ApiListener_.Unpack<HttpConnectionManager>();

    private static List<HttpConnectionManager> InboundHcms(XdsSnapshot snapshot, ClientScope client) =>
        snapshot.Find(ResourceTypes.Listener, Inbound, client)!.Resource.Unpack<Listener>().FilterChains
            .Select(c => Assert.Single(c.Filters).TypedConfig.Unpack<HttpConnectionManager>()).ToList();

    private static Dictionary<string, string> Literals(HcmTracing tracing) =>
        tracing.CustomTags.Where(t => t.Literal is not null).ToDictionary(t => t.Tag, t => t.Literal.Value);

    [Fact]
    public void RootTelemetry_ZipkinProvider_WritesIstiodsTracerSamplingAndTags()
    {
        var snapshot = Translate(Bookinfo(("telemetry.yaml", MeshDefault100)));
        var client = Sdk("bookinfo", ("app", "front"), ("service.istio.io/canonical-name", "front"), ("service.istio.io/canonical-revision", "v1"));

        var tracing = Outbound(snapshot, client).Tracing;

        Assert.Equal(XdsExtensionNames.ZipkinTracer, tracing.Provider.Name);
        Assert.Equal(XdsTypeUrls.ZipkinConfig, tracing.Provider.TypedConfig.TypeUrl);
        var zipkin = tracing.Provider.TypedConfig.Unpack<ZipkinConfig>();
        Assert.Equal(ZipkinCluster, zipkin.CollectorCluster);
        Assert.Equal("/api/v2/spans", zipkin.CollectorEndpoint);
        Assert.Equal("zipkin.istio-system.svc.cluster.local", zipkin.CollectorHostname);
        Assert.Equal(ZipkinConfig.Types.CollectorEndpointVersion.HttpJson, zipkin.CollectorEndpointVersion);
        Assert.True(zipkin.TraceId128Bit);
        Assert.False(zipkin.SharedSpanContext);
        Assert.Equal((100d, 100d, 100d), (tracing.RandomSampling.Value, tracing.ClientSampling.Value, tracing.OverallSampling.Value));
        Assert.Equal(256u, tracing.MaxPathTagLength);
        Assert.Null(tracing.SpawnUpstreamSpan);

        // Istio's own tags, sorted by tag, as istiod writes them for a sidecar.
        Assert.Equal(
            ["istio.authorization.dry_run.allow_policy.name", "istio.authorization.dry_run.allow_policy.result",
             "istio.authorization.dry_run.deny_policy.name", "istio.authorization.dry_run.deny_policy.result",
             "istio.canonical_revision", "istio.canonical_service", "istio.cluster_id", "istio.mesh_id", "istio.namespace"],
            tracing.CustomTags.Select(t => t.Tag));
        Assert.Equal(
            new Dictionary<string, string>
            {
                ["istio.canonical_revision"] = "v1", ["istio.canonical_service"] = "front", ["istio.cluster_id"] = "unknown",
                ["istio.mesh_id"] = "unknown", ["istio.namespace"] = "bookinfo",
            },
            Literals(tracing));
        var dryRun = tracing.CustomTags[0].Metadata;
        Assert.NotNull(dryRun.Kind.Request);
        Assert.Equal("envoy.filters.http.rbac", dryRun.MetadataKey.Key);
        Assert.Equal("istio_dry_run_allow_shadow_effective_policy_id", Assert.Single(dryRun.MetadataKey.Path).Key);
    }

    [Fact]
    public void NamespaceTelemetry_OverridesTheRootSampling_AndInheritsItsProvider()
    {
        var snapshot = Translate(Bookinfo(("telemetry.yaml", MeshDefault100 + "\n---\n" + Namespace1)));

        var inDefault = Outbound(snapshot, Sdk("default", ("app", "productpage"))).Tracing;
        var elsewhere = Outbound(snapshot, Sdk("other", ("app", "productpage"))).Tracing;

        Assert.Equal((XdsExtensionNames.ZipkinTracer, 1d), (inDefault.Provider.Name, inDefault.RandomSampling.Value));
        Assert.Equal((XdsExtensionNames.ZipkinTracer, 100d), (elsewhere.Provider.Name, elsewhere.RandomSampling.Value));
    }

    [Fact]
    public void WorkloadTelemetry_AddsCustomTags_ForSelectedWorkloadsOnly()
    {
        var snapshot = Translate(Bookinfo(("telemetry.yaml", MeshDefault100 + "\n---\n" + Namespace1 + "\n---\n" + WorkloadTag)));

        var reviews = Outbound(snapshot, Sdk("default", ("app", "reviews"))).Tracing;
        var ratings = Outbound(snapshot, Sdk("default", ("app", "ratings"))).Tracing;

        Assert.Equal(1d, reviews.RandomSampling.Value);
        Assert.Equal("east", reviews.CustomTags.Single(t => t.Tag == "cluster_name").Literal.Value);
        var user = reviews.CustomTags.Single(t => t.Tag == "user").RequestHeader;
        Assert.Equal(("x-user", "anonymous"), (user.Name, user.DefaultValue));
        Assert.Equal("POD_NAME", reviews.CustomTags.Single(t => t.Tag == "pod").Environment.Name);
        Assert.Equal(reviews.CustomTags.Select(t => t.Tag).Order(StringComparer.Ordinal), reviews.CustomTags.Select(t => t.Tag));
        Assert.DoesNotContain(ratings.CustomTags, t => t.Tag == "cluster_name");
    }

    [Fact]
    public void ServerMode_DisableSpanReporting_LeavesTheInboundHcmUntraced_AndTheOutboundTraced()
    {
        var snapshot = Translate(Bookinfo(("telemetry.yaml", MeshDefault100 + """

            ---
            apiVersion: telemetry.istio.io/v1
            kind: Telemetry
            metadata: {name: no-server-spans, namespace: default}
            spec:
              tracing:
              - match: {mode: SERVER}
                disableSpanReporting: true
            """)));
        var client = Sdk("default", ("app", "reviews"));

        Assert.NotNull(Outbound(snapshot, client).Tracing);
        var inbound = InboundHcms(snapshot, client);
        Assert.Equal(2, inbound.Count);
        Assert.All(inbound, hcm => Assert.Null(hcm.Tracing));
        Assert.All(InboundHcms(snapshot, Sdk("other")), hcm => Assert.NotNull(hcm.Tracing));
    }

    [Fact]
    public void InboundHcm_GetsTheServerSide_OnEveryFilterChain()
    {
        var snapshot = Translate(Bookinfo(("telemetry.yaml", MeshDefault100)));

        var inbound = InboundHcms(snapshot, Sdk("default", ("app", "reviews")));

        Assert.Equal(2, inbound.Count); // PERMISSIVE for Mesh.Sdk: an mTLS and a plaintext chain
        Assert.All(inbound, hcm =>
        {
            Assert.Equal(ZipkinCluster, hcm.Tracing.Provider.TypedConfig.Unpack<ZipkinConfig>().CollectorCluster);
            Assert.Equal(100d, hcm.Tracing.RandomSampling.Value);
        });
    }

    [Fact]
    public void GrpcNodes_GetNoTracingOrAccessLog()
    {
        var snapshot = Translate(Bookinfo(("telemetry.yaml", MeshDefault100)));
        var grpc = new ClientScope("default", new Dictionary<string, string> { ["app"] = "reviews" });

        var outbound = Outbound(snapshot, grpc);
        var inbound = InboundHcms(snapshot, grpc);

        Assert.Null(outbound.Tracing);
        Assert.Empty(outbound.AccessLog);
        Assert.All(inbound, hcm => Assert.Null(hcm.Tracing));
        Assert.Equal(snapshot.Find(ResourceTypes.Listener, Reviews, ClientScope.None)!.Hash, snapshot.Find(ResourceTypes.Listener, Reviews, grpc)!.Hash);
    }

    [Fact]
    public void NoMeshConfigAndNoTelemetry_LeavesSdkListenersAsBefore()
    {
        var snapshot = Translate(("reviews.yaml", TestYaml.All));

        var hcm = Outbound(snapshot, Sdk("default"));

        Assert.Null(hcm.Tracing);
        Assert.Empty(hcm.AccessLog);
    }

    [Fact]
    public void MeshConfigWithoutTelemetry_LegacyTracing_UsesDefaultConfigSamplingAndNoProvider()
    {
        var snapshot = Translate(Bookinfo());

        var tracing = Outbound(snapshot, Sdk("default")).Tracing;

        // istiod's enableTracing path: sampling from defaultConfig.tracing.sampling, Istio's tags, no tracer.
        Assert.Null(tracing.Provider);
        Assert.Equal(10d, tracing.RandomSampling.Value);
        Assert.Contains(tracing.CustomTags, t => t.Tag == "istio.canonical_service");
    }

    [Fact]
    public void DefaultSampling_IsOnePercent_WhenNeitherTelemetryNorProxyConfigSetsOne()
    {
        var snapshot = Translate(("reviews.yaml", TestYaml.All), ("mesh.yaml", MeshConfig.Replace("sampling: 10", "maxPathTagLength: 99", StringComparison.Ordinal)),
            ("telemetry.yaml", MeshDefault100.Replace("randomSamplingPercentage: 100.00", "disableSpanReporting: false", StringComparison.Ordinal)));

        var tracing = Outbound(snapshot, Sdk("default")).Tracing;

        Assert.Equal(TelemetryListeners.DefaultTraceSampling, tracing.RandomSampling.Value);
        Assert.Equal(256u, tracing.MaxPathTagLength); // the provider's maxTagLength wins over the proxy config's
    }

    [Fact]
    public void OpenTelemetryProvider_GrpcService_ToTheProvidersCluster_WithTheNodeClusterAsServiceName()
    {
        var snapshot = Translate(Bookinfo(("telemetry.yaml", """
            apiVersion: telemetry.istio.io/v1
            kind: Telemetry
            metadata: {name: mesh-default, namespace: istio-system}
            spec:
              tracing:
              - providers: [{name: otel}]
            """)));

        var tracing = Outbound(snapshot, Sdk("default")).Tracing;

        Assert.Equal(XdsExtensionNames.OpenTelemetryTracer, tracing.Provider.Name);
        var otel = tracing.Provider.TypedConfig.Unpack<OpenTelemetryConfig>();
        Assert.Equal("front.default", otel.ServiceName);
        Assert.Equal("outbound|4317||otel-collector.istio-system.svc.cluster.local", otel.GrpcService.EnvoyGrpc.ClusterName);
        Assert.Equal("otel-collector.istio-system.svc.cluster.local", otel.GrpcService.EnvoyGrpc.Authority);
        Assert.Null(otel.HttpService);
        Assert.Equal(10d, tracing.RandomSampling.Value); // no randomSamplingPercentage: defaultConfig.tracing.sampling
    }

    [Fact]
    public void OpenTelemetryProvider_Http_JoinsHostAndPath_WithTimeoutAndHeaders()
    {
        var mesh = MeshConfig.Replace("""
                    service: otel-collector.istio-system.svc.cluster.local
                    port: 4317
            """, """
                    service: otel-collector.istio-system.svc.cluster.local
                    port: 4317
                    http:
                      path: /v1/traces
                      timeout: 3s
                      headers:
                      - name: x-api-key
                        value: secret
            """, StringComparison.Ordinal);
        Assert.NotEqual(MeshConfig, mesh);
        var snapshot = Translate(("reviews.yaml", TestYaml.All), ("mesh.yaml", mesh), ("telemetry.yaml", """
            apiVersion: telemetry.istio.io/v1
            kind: Telemetry
            metadata: {name: mesh-default, namespace: istio-system}
            spec:
              tracing:
              - providers: [{name: otel}]
            """));

        var otel = Outbound(snapshot, Sdk("default")).Tracing.Provider.TypedConfig.Unpack<OpenTelemetryConfig>();

        Assert.Null(otel.GrpcService);
        Assert.Equal("otel-collector.istio-system.svc.cluster.local/v1/traces", otel.HttpService.HttpUri.Uri);
        Assert.Equal("outbound|4317||otel-collector.istio-system.svc.cluster.local", otel.HttpService.HttpUri.Cluster);
        Assert.Equal(TimeSpan.FromSeconds(3), otel.HttpService.HttpUri.Timeout.ToTimeSpan());
        var header = Assert.Single(otel.HttpService.RequestHeadersToAdd);
        Assert.Equal(("x-api-key", "secret"), (header.Header.Key, header.Header.Value));
        Assert.Equal(Envoy.Config.Core.V3.HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExistsOrAdd, header.AppendAction);
    }

    [Fact]
    public void ProviderServiceNotInTheMesh_NoTracing_AndAWarningNamingTheProvider()
    {
        var snapshot = Translate(("reviews.yaml", TestYaml.All),
            ("mesh.yaml", MeshConfig[..MeshConfig.IndexOf("---", StringComparison.Ordinal)]), ("telemetry.yaml", MeshDefault100));

        Assert.Null(Outbound(snapshot, Sdk("default")).Tracing);
        var warning = Assert.Single(snapshot.Telemetry.Warnings);
        Assert.Contains("tracing provider 'zipkin'", warning, StringComparison.Ordinal);
        Assert.Contains("'zipkin.istio-system.svc.cluster.local' is not a host of the mesh", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void ProviderPortWithoutCluster_StillConfigured_AndWarned()
    {
        var snapshot = Translate(("reviews.yaml", TestYaml.All), ("mesh.yaml", MeshConfig.Replace("port: 9411", "port: 9412", StringComparison.Ordinal)),
            ("telemetry.yaml", MeshDefault100));

        Assert.Equal("outbound|9412||zipkin.istio-system.svc.cluster.local",
            Outbound(snapshot, Sdk("default")).Tracing.Provider.TypedConfig.Unpack<ZipkinConfig>().CollectorCluster);
        Assert.Contains(snapshot.Telemetry.Warnings, w => w.Contains("cluster 'outbound|9412||zipkin.istio-system.svc.cluster.local' does not exist", StringComparison.Ordinal));
    }

    // ---- access log ----

    private static FileAccessLog File(AccessLog log)
    {
        Assert.Equal(XdsExtensionNames.FileAccessLog, log.Name);
        Assert.Equal(XdsTypeUrls.FileAccessLog, log.TypedConfig.TypeUrl);
        return log.TypedConfig.Unpack<FileAccessLog>();
    }

    [Fact]
    public void AccessLogFile_WritesTheFileLoggerWithIstiosDefaultTextFormat()
    {
        var snapshot = Translate(Bookinfo());

        var log = Assert.Single(Outbound(snapshot, Sdk("default")).AccessLog);

        var file = File(log);
        Assert.Equal("/dev/stdout", file.Path);
        Assert.Equal(TelemetryListeners.EnvoyTextLogFormat, file.LogFormat.TextFormatSource.InlineString);
        Assert.StartsWith("[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS%",
            file.LogFormat.TextFormatSource.InlineString, StringComparison.Ordinal);
        Assert.Null(log.Filter);
        Assert.All(InboundHcms(snapshot, Sdk("default")), hcm => Assert.Single(hcm.AccessLog));
    }

    [Fact]
    public void AccessLogEncodingJson_WritesIstiosJsonFields_OrTheGivenFormat()
    {
        var json = Translate(("reviews.yaml", TestYaml.All), ("mesh.yaml", MeshConfig.Replace("accessLogFile: /dev/stdout", "accessLogFile: /tmp/access.log\n    accessLogEncoding: JSON", StringComparison.Ordinal)));
        var custom = Translate(("reviews.yaml", TestYaml.All), ("mesh.yaml", MeshConfig.Replace("accessLogFile: /dev/stdout",
            "accessLogFile: /dev/stdout\n    accessLogEncoding: TEXT\n    accessLogFormat: '%REQ(:METHOD)% %RESPONSE_CODE%'", StringComparison.Ordinal)));

        var jsonFile = File(Assert.Single(Outbound(json, Sdk("default")).AccessLog));
        var customFile = File(Assert.Single(Outbound(custom, Sdk("default")).AccessLog));

        Assert.Equal("/tmp/access.log", jsonFile.Path);
        Assert.Equal(24, jsonFile.LogFormat.JsonFormat.Fields.Count);
        Assert.Equal("%RESPONSE_FLAGS%", jsonFile.LogFormat.JsonFormat.Fields["response_flags"].StringValue);
        Assert.Equal("%UPSTREAM_CLUSTER_RAW%", jsonFile.LogFormat.JsonFormat.Fields["upstream_cluster"].StringValue);
        Assert.NotNull(jsonFile.LogFormat.JsonFormatOptions);
        Assert.Equal("%REQ(:METHOD)% %RESPONSE_CODE%\n", customFile.LogFormat.TextFormatSource.InlineString);
    }

    [Fact]
    public void TelemetryAccessLogging_EnvoyProviderWithFilter_WritesTheCelFilter_AndDisabledRemovesIt()
    {
        var snapshot = Translate(("reviews.yaml", TestYaml.All), ("mesh.yaml", MeshConfig.Replace("    accessLogFile: /dev/stdout\n", string.Empty, StringComparison.Ordinal)),
            ("telemetry.yaml", """
                apiVersion: telemetry.istio.io/v1
                kind: Telemetry
                metadata: {name: mesh-default, namespace: istio-system}
                spec:
                  accessLogging:
                  - providers: [{name: envoy}]
                    filter:
                      expression: response.code >= 400
                ---
                apiVersion: telemetry.istio.io/v1
                kind: Telemetry
                metadata: {name: quiet-servers, namespace: default}
                spec:
                  accessLogging:
                  - match: {mode: SERVER}
                    disabled: true
                """));

        var outbound = Assert.Single(Outbound(snapshot, Sdk("default")).AccessLog);
        var file = File(outbound);
        Assert.Equal("/dev/stdout", file.Path);
        Assert.Equal(TelemetryListeners.EnvoyTextLogFormat, file.LogFormat.TextFormatSource.InlineString);
        Assert.Equal(XdsExtensionNames.CelAccessLogFilter, outbound.Filter.ExtensionFilter.Name);
        Assert.Equal("response.code >= 400", outbound.Filter.ExtensionFilter.TypedConfig.Unpack<ExpressionFilter>().Expression);

        Assert.All(InboundHcms(snapshot, Sdk("default")), hcm => Assert.Empty(hcm.AccessLog));
        Assert.All(InboundHcms(snapshot, Sdk("other")), hcm => Assert.Single(hcm.AccessLog));
    }

    [Fact]
    public void MeshConfigSample_LoadsWithoutErrors_AndTracesEveryRequestToZipkin()
    {
        var root = AppContext.BaseDirectory;
        while (!System.IO.File.Exists(Path.Combine(root, "Mesh.Sdk.sln")))
        {
            root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("repository root not found above " + AppContext.BaseDirectory);
        }

        var folder = Path.Combine(root, "samples", "mesh-config");
        var snapshot = Translate(Directory.GetFiles(folder, "*.yaml").Order(StringComparer.Ordinal)
            .Select(f => (Path.GetFileName(f), System.IO.File.ReadAllText(f))).ToArray());

        var reviews = Outbound(snapshot, Sdk("default", ("app", "reviews"))).Tracing;
        Assert.Equal(ZipkinCluster, reviews.Provider.TypedConfig.Unpack<ZipkinConfig>().CollectorCluster);
        Assert.Equal(100d, reviews.RandomSampling.Value);
        Assert.Equal("sample", reviews.CustomTags.Single(t => t.Tag == "environment").Literal.Value);
        Assert.Empty(snapshot.Telemetry.Warnings);
        Assert.Equal("/dev/stdout", File(Assert.Single(Outbound(snapshot, Sdk("default")).AccessLog)).Path);
    }

    [Fact]
    public void Routes_CarryIstiodsDecoratorOperation_TheSpanName()
    {
        var withVs = Translate(("reviews.yaml", TestYaml.All));
        var withoutVs = Translate(("reviews.yaml", TestYaml.All.Replace("\n---\n" + TestYaml.ReviewsVirtualService, string.Empty, StringComparison.Ordinal)));

        var routes = withVs.Find(ResourceTypes.Route, "outbound|9080||reviews.default.svc.cluster.local", ClientScope.None)!
            .Resource.Unpack<Envoy.Config.Route.V3.RouteConfiguration>().VirtualHosts.Single().Routes;
        var fallback = withoutVs.Find(ResourceTypes.Route, "outbound|9080||reviews.default.svc.cluster.local", ClientScope.None)!
            .Resource.Unpack<Envoy.Config.Route.V3.RouteConfiguration>().VirtualHosts.Single().Routes.Single();

        // One cluster: its host and port and the matched prefix; weighted clusters: the VirtualService's name and the port.
        Assert.Equal(["reviews.default.svc.cluster.local:9080/reviews*", "reviews:9080/*"], routes.Select(r => r.Decorator.Operation));
        Assert.Equal("reviews.default.svc.cluster.local:9080/*", fallback.Decorator.Operation);
    }
}

using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Tests.Translation;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.ControlPlane.Tests.Config;

/// <summary>The mesh config and Telemetry resources through the real config store: what is read, and bad input reported at file:line.</summary>
public sealed class TelemetryConfigTests
{
    private static ConfigStore Store(params (string Name, string Yaml)[] files)
    {
        var store = new ConfigStore("default", NullLogger.Instance);
        store.Apply(files.Select(f => ("/cfg/" + f.Name, (string?)f.Yaml)));
        return store;
    }

    [Fact]
    public void MeshConfig_IsReadFromTheIstioConfigMap_WithIstiodsBuiltInProvidersKept()
    {
        var store = Store(("mesh.yaml", TelemetryTranslationTests.MeshConfig));

        Assert.Empty(store.LastErrors);
        var settings = store.Current.TelemetrySettings;
        Assert.Equal(["prometheus", "stackdriver", "envoy", "zipkin", "otel"], settings.ExtensionProviders.Select(p => p.Name));
        var zipkin = settings.Provider("ZIPKIN")!.Zipkin!;
        Assert.Equal(("zipkin.istio-system.svc.cluster.local", 9411u, 256u), (zipkin.Service, zipkin.Port, zipkin.MaxTagLength));
        Assert.Equal(10d, settings.DefaultSampling);
        Assert.True(settings.EnableTracing);
        Assert.Equal("/dev/stdout", settings.AccessLogFile);
        Assert.Equal("TEXT", settings.AccessLogEncoding);
    }

    [Fact]
    public void Telemetry_IsReadWithItsScopeAndEntries()
    {
        var store = Store(("mesh.yaml", TelemetryTranslationTests.MeshConfig),
            ("t.yaml", TelemetryTranslationTests.MeshDefault100 + "\n---\n" + TelemetryTranslationTests.WorkloadTag));

        Assert.Empty(store.LastErrors);
        var root = store.Current.Telemetries.Single(t => t.Name == "mesh-default");
        Assert.Equal(("istio-system", null), (root.Namespace, root.Selector));
        Assert.Equal(100d, Assert.Single(root.Tracing).RandomSamplingPercentage);
        Assert.Equal("zipkin", Assert.Single(root.Tracing[0].Providers).Name);
        var workload = store.Current.Telemetries.Single(t => t.Name == "reviews-tags");
        Assert.Equal("reviews", workload.Selector!["app"]);
        Assert.Equal("east", workload.Tracing[0].CustomTags!["cluster_name"].Literal);
    }

    [Fact]
    public void Telemetry_MetricsOverrides_AreRead()
    {
        var store = Store(("t.yaml", """
            apiVersion: telemetry.istio.io/v1alpha1
            kind: Telemetry
            metadata: {name: mesh-default, namespace: istio-system}
            spec:
              metrics:
              - providers: [{name: prometheus}]
                overrides:
                - match: {metric: REQUEST_COUNT, mode: CLIENT}
                  tagOverrides:
                    request_host: {value: request.host}
                    response_flags: {operation: REMOVE}
                - match: {metric: REQUEST_DURATION}
                  disabled: true
            """));

        Assert.Empty(store.LastErrors);
        var metrics = Assert.Single(Assert.Single(store.Current.Telemetries).Metrics);
        Assert.Equal(("REQUEST_COUNT", WorkloadMode.Client), (metrics.Overrides[0].Metric, metrics.Overrides[0].Mode));
        Assert.Equal(new TagOverride("UPSERT", "request.host"), metrics.Overrides[0].TagOverrides["request_host"]);
        Assert.Equal(new TagOverride("REMOVE", null), metrics.Overrides[0].TagOverrides["response_flags"]);
        Assert.Equal((true, WorkloadMode.ClientAndServer), (metrics.Overrides[1].Disabled, metrics.Overrides[1].Mode));
    }

    public static TheoryData<string, string, int, string> BadTelemetry() => new()
    {
        {
            "unknown provider",
            """
            apiVersion: telemetry.istio.io/v1
            kind: Telemetry
            metadata: {name: t, namespace: istio-system}
            spec:
              tracing:
              - providers:
                - name: jaeger
            """,
            7, "names provider 'jaeger', which the mesh config does not define"
        },
        {
            "percentage",
            """
            apiVersion: telemetry.istio.io/v1
            kind: Telemetry
            metadata: {name: t, namespace: istio-system}
            spec:
              tracing:
              - randomSamplingPercentage: 150
            """,
            6, "'spec.tracing[].randomSamplingPercentage' must be a percentage from 0 to 100, got '150'"
        },
        {
            "unknown field",
            """
            apiVersion: telemetry.istio.io/v1
            kind: Telemetry
            metadata: {name: t, namespace: default}
            spec:
              tracing:
              - randomSamplingPercentage: 10
                samplingRate: 5
            """,
            7, "unknown field 'samplingRate' in spec.tracing[0] (known: customTags, disableContextPropagation, disableSpanReporting, enableIstioTags, match, providers, randomSamplingPercentage, useRequestIdForTraceSampling)"
        },
        {
            "selector and targetRefs",
            """
            apiVersion: telemetry.istio.io/v1
            kind: Telemetry
            metadata: {name: t, namespace: default}
            spec:
              selector:
                matchLabels: {app: reviews}
              targetRefs:
              - {kind: Service, name: reviews}
              tracing:
              - randomSamplingPercentage: 10
            """,
            8, "'spec.selector' and 'spec.targetRefs' cannot both be set"
        },
        {
            "mesh config field",
            """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: istio, namespace: istio-system}
            data:
              mesh: |-
                enableTracing: true
                extensionProviders:
                - name: zipkin
                  zipkin:
                    service: zipkin.istio-system.svc.cluster.local
                    port: 9411
                    collector: v2
            """,
            12, "unknown field 'collector' in data.mesh.extensionProviders[].zipkin"
        },
        {
            "default provider",
            """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: istio, namespace: istio-system}
            data:
              mesh: |-
                defaultProviders:
                  tracing: [zipkin]
            """,
            7, "'data.mesh.defaultProviders.tracing' names provider 'zipkin', which 'data.mesh.extensionProviders' does not define"
        },
    };

    [Theory]
    [MemberData(nameof(BadTelemetry))]
    public void BadInput_IsRejectedAtFileAndLine_AndTheLastGoodContentStays(string what, string yaml, int line, string reason)
    {
        var store = Store(("mesh.yaml", TelemetryTranslationTests.MeshConfig), ("t.yaml", TelemetryTranslationTests.MeshDefault100));
        Assert.Empty(store.LastErrors);
        var file = yaml.Contains("kind: ConfigMap", StringComparison.Ordinal) ? "/cfg/mesh.yaml" : "/cfg/t.yaml";
        var generation = store.Current.Generation;

        Assert.False(store.Apply(file, yaml), what);

        var error = Assert.Single(store.LastErrors);
        Assert.Equal((file, line), (error.File, error.Line));
        Assert.Contains(reason, error.Reason, StringComparison.Ordinal);
        Assert.Equal(generation, store.Current.Generation);
        Assert.Equal(100d, store.Current.Telemetries.Single(t => t.Name == "mesh-default").Tracing[0].RandomSamplingPercentage);
        Assert.NotNull(store.Current.TelemetrySettings.Provider("zipkin"));
    }

    [Fact]
    public void UnknownProvider_IsAcceptedOnceTheMeshConfigDefinesIt_InTheSameBatch()
    {
        var store = Store(("a-telemetry.yaml", TelemetryTranslationTests.MeshDefault100), ("z-mesh.yaml", TelemetryTranslationTests.MeshConfig));

        Assert.Empty(store.LastErrors);
        Assert.Single(store.Current.Telemetries);
    }

    [Fact]
    public void OtherConfigMap_IsNotTheMeshConfig_AndIsReportedWithItsLine()
    {
        var parsed = IstioYamlParser.Parse("""
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: istio-sidecar-injector, namespace: istio-system}
            data:
              config: "{}"
            """, "default");

        Assert.Empty(parsed.Resources);
        var unapplied = Assert.Single(parsed.Unapplied);
        Assert.Equal((1, true), (unapplied.Line, unapplied.Severe));
        Assert.Contains("not the mesh config", unapplied.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void MeshConfig_UnknownTopLevelKey_IsAWarningAtItsFileLine_IstiosKeysAreNot()
    {
        var parsed = IstioYamlParser.Parse("""
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: istio, namespace: istio-system}
            data:
              mesh: |-
                trustDomain: cluster.local
                outboundTrafficPolicy: {mode: REGISTRY_ONLY}
                enableTracin: true
            """, "default");

        Assert.IsType<MeshConfigMap>(Assert.Single(parsed.Resources));
        var warning = Assert.Single(parsed.Warnings);
        Assert.StartsWith("8:", warning, StringComparison.Ordinal);
        Assert.Contains("'data.mesh.enableTracin' is not a field of Istio's mesh config (did you mean 'enableTracing'?); it is ignored", warning, StringComparison.Ordinal);
    }
}

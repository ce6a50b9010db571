using Mesh.ControlPlane.Config;
using Microsoft.Extensions.Logging;

namespace Mesh.ControlPlane.Tests.Config;

/// <summary>
/// Configuration mistakes as a user meets them: every message reads <c>file:line:column: severity: message</c>, unknown
/// fields and kinds name the closest known one, and what is reported is reported once.
/// </summary>
public sealed class ConfigDiagnosticsTests
{
    private const string Reviews = """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: reviews
        spec:
          hosts: [reviews]
          http:
          - route:
            - destination:
                host: reviews
                subset: v1
        """;

    [Fact]
    public void UnknownField_RejectsTheFile_NamingFieldPathAndClosestName_AndTheLastGoodVersionStays()
    {
        var logger = new RecordingLogger();
        var store = new ConfigStore("default", logger);
        Assert.True(store.Apply("/cfg/vs.yaml", Reviews));

        Assert.False(store.Apply("/cfg/vs.yaml", Reviews.Replace("subset: v1", "subst: v2", StringComparison.Ordinal)));

        const string Error = "/cfg/vs.yaml:11:9: error: unknown field 'subst' in spec.http[0].route[0].destination; did you mean 'subset'?";
        Assert.Equal(Error, Assert.Single(store.LastErrors).ToString());
        var line = Assert.Single(logger.Lines, l => l.Level == LogLevel.Error);
        Assert.Equal(Error + "; the file is rejected and its previous content stays in force.", line.Message);
        Assert.Null(line.Exception);
        Assert.Equal("v1", Assert.Single(store.Current.VirtualServices).Http[0].Route[0].Destination.Subset);
    }

    [Fact]
    public void RejectedNewFile_SaysNothingInItIsApplied()
    {
        var logger = new RecordingLogger();
        var store = new ConfigStore("default", logger);

        Assert.False(store.Apply("/cfg/new.yaml", "kind: [\n"));

        var line = Assert.Single(logger.Lines);
        Assert.Equal(LogLevel.Error, line.Level);
        Assert.Matches(@"^/cfg/new\.yaml:\d+:\d+: error: YAML syntax error: .+; the file is rejected and nothing in it is applied\.$", line.Message);
        Assert.DoesNotContain("False", line.Message, StringComparison.Ordinal);
        Assert.Empty(store.Current.VirtualServices);
    }

    [Theory]
    [InlineData("""
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: reviews}
        spec:
          host: reviews
          trafficPolicy:
            loadBalancer: {simpel: ROUND_ROBIN}
        """, "7:20: error: unknown field 'simpel' in spec.trafficPolicy.loadBalancer; did you mean 'simple'?")]
    [InlineData("""
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: reviews}
        spec:
          host: reviews
          subsets:
          - name: v1
            lables: {version: v1}
        """, "8:5: error: unknown field 'lables' in spec.subsets[0]; did you mean 'labels'?")]
    [InlineData("""
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: reviews}
        spec:
          hosts: [reviews]
          resolutoin: STATIC
        """, "6:3: error: unknown field 'resolutoin' in spec; did you mean 'resolution'?")]
    [InlineData("""
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: reviews-1}
        spec:
          adress: 10.0.0.1
        """, "5:3: error: unknown field 'adress' in spec; did you mean 'address'?")]
    [InlineData("""
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {name: default}
        spec:
          mtls: {mdoe: STRICT}
        """, "5:10: error: unknown field 'mdoe' in spec.mtls; did you mean 'mode'?")]
    [InlineData("""
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: deny}
        spec:
          action: DENY
          rules:
          - to:
            - operation: {method: [POST]}
        """, "8:19: error: unknown field 'method' in spec.rules[0].to[0].operation; did you mean 'methods'?")]
    [InlineData("""
        apiVersion: telemetry.istio.io/v1
        kind: Telemetry
        metadata: {name: mesh-default, namespace: istio-system}
        spec:
          tracing:
          - randomSamplingPercantage: 10
        """, "6:5: error: unknown field 'randomSamplingPercantage' in spec.tracing[0]; did you mean 'randomSamplingPercentage'?")]
    [InlineData("""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: reviews}
        sepc:
          hosts: [reviews]
        """, "4:1: error: unknown field 'sepc' in the document; did you mean 'spec'?")]
    public void UnknownField_OfEveryKind_IsRejectedWithItsPathAndTheClosestName(string yaml, string error)
    {
        var store = new ConfigStore("default", new RecordingLogger());

        Assert.False(store.Apply("/cfg/x.yaml", yaml));

        Assert.Equal("/cfg/x.yaml:" + error, Assert.Single(store.LastErrors).ToString());
    }

    [Fact]
    public void MisspelledKind_IsAWarningNamingTheLikelyKind()
    {
        var logger = new RecordingLogger();
        var store = new ConfigStore("default", logger);

        store.Apply("/cfg/vs.yaml", Reviews.Replace("kind: VirtualService", "kind: VirtualSevice", StringComparison.Ordinal));

        var line = Assert.Single(logger.Lines, l => l.Level >= LogLevel.Information && l.Message.Contains("VirtualSevice", StringComparison.Ordinal));
        Assert.Equal(LogLevel.Warning, line.Level);
        Assert.Equal("/cfg/vs.yaml:1:1: warning: VirtualSevice 'default/reviews' (networking.istio.io/v1) accepted but not applied by the embedded control plane: "
            + "unknown kind 'VirtualSevice'; did you mean 'VirtualService'?", line.Message);
        Assert.Empty(store.Current.VirtualServices);
    }

    [Fact]
    public void DuplicateResources_EachReportedOnceAgainstTheDefinitionInForce()
    {
        var logger = new RecordingLogger();
        var store = new ConfigStore("default", logger);
        var t0 = new DateTimeOffset(2025, 1, 1, 12, 0, 0, TimeSpan.Zero);

        // Three definitions: b.yaml beats a.yaml, then c.yaml (the newest) beats both; both losers are named against c.yaml.
        store.Apply(
        [
            new ConfigFileChange("/cfg/a.yaml", Reviews, t0),
            new ConfigFileChange("/cfg/b.yaml", Reviews, t0.AddSeconds(1)),
            new ConfigFileChange("/cfg/c.yaml", Reviews.Replace("subset: v1", "subset: v3", StringComparison.Ordinal), t0.AddSeconds(2)),
        ]);
        store.Apply("/cfg/se.yaml", TestYaml.ReviewsServiceEntry, t0);
        store.Apply("/cfg/se.yaml", TestYaml.ReviewsServiceEntry.Replace("9080", "9090", StringComparison.Ordinal), t0);

        var duplicates = logger.Lines.Where(l => l.EventId == 1005).Select(l => l.Message).ToArray();
        Assert.Equal(
        [
            "/cfg/a.yaml:1:1: warning: VirtualService 'default/reviews' is ignored: /cfg/c.yaml:1:1 defines it too and is in force (the most recently modified file wins; on equal times the later path).",
            "/cfg/b.yaml:1:1: warning: VirtualService 'default/reviews' is ignored: /cfg/c.yaml:1:1 defines it too and is in force (the most recently modified file wins; on equal times the later path).",
        ], duplicates);
        Assert.Equal(("/cfg/c.yaml", "v3"), (store.Current.VirtualServices[0].Source.File, store.Current.VirtualServices[0].Http[0].Route[0].Destination.Subset));
    }

    [Fact]
    public void NotesAndWarnings_ReadFileLineColumnSeverity()
    {
        var logger = new RecordingLogger();
        var store = new ConfigStore("default", logger);

        store.Apply("/cfg/dr.yaml", """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: reviews}
            spec:
              host: reviews
              trafficPolicy:
                loadBalancer:
                  simple: ROUND_ROBIN
                  warmupDurationSecs: 30s
            """);

        var note = Assert.Single(logger.Lines, l => l.EventId == 1006);
        Assert.Equal(LogLevel.Information, note.Level);
        Assert.Equal("/cfg/dr.yaml:8:7: info: DestinationRule 'default/reviews': 'spec.trafficPolicy.loadBalancer.warmupDurationSecs' is parsed but not applied (no slow start).", note.Message);
    }

    [Fact]
    public void RepositorySamples_LoadWithoutErrors()
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Mesh.Sdk.sln")))
        {
            root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("repository root not found above " + AppContext.BaseDirectory);
        }

        var files = Directory.EnumerateFiles(Path.Combine(root, "samples"), "*.yaml", SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToArray();
        var store = new ConfigStore("default", new RecordingLogger());

        store.Apply(files.Select(f => (f, (string?)File.ReadAllText(f))));

        Assert.True(files.Length >= 20, $"only {files.Length} sample files");
        Assert.Empty(store.LastErrors);
    }
}

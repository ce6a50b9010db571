using Mesh.ControlPlane.Config;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Mesh.ControlPlane.Tests.Config;

public class ConfigStoreTests
{
    // Weights are relative (50 and 20 would be fine, as in Istio); a total of 0 is what Istio's validation refuses.
    private const string BrokenWeights = """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: reviews
        spec:
          hosts: [reviews]
          http:
          - route:
            - destination: {host: reviews, subset: v1}
              weight: 0
            - destination: {host: reviews, subset: v2}
              weight: 0
        """;

    [Fact]
    public void Apply_BrokenFileKeepsLastGoodContentAndReportsFileAndLine()
    {
        var store = new ConfigStore("default", NullLogger.Instance);
        Assert.True(store.Apply("/cfg/reviews.yaml", TestYaml.ReviewsVirtualService));
        Assert.True(store.Apply("/cfg/se.yaml", TestYaml.ReviewsServiceEntry));
        var generation = store.Current.Generation;

        Assert.False(store.Apply("/cfg/reviews.yaml", BrokenWeights));

        var error = Assert.Single(store.LastErrors);
        Assert.Equal("/cfg/reviews.yaml", error.File);
        Assert.Equal(9, error.Line); // the first destination of the route list
        Assert.Contains("weights total 0", error.Reason, StringComparison.Ordinal);
        Assert.Equal(generation, store.Current.Generation);
        var vs = Assert.Single(store.Current.VirtualServices);
        Assert.Equal([80u, 20u], vs.Http[1].Route.Select(r => r.Weight));
        Assert.Single(store.Current.ServiceEntries);

        Assert.True(store.Apply("/cfg/reviews.yaml", TestYaml.ReviewsVirtualService.Replace("weight: 80", "weight: 60").Replace("weight: 20", "weight: 40")));
        Assert.Empty(store.LastErrors);
        Assert.Equal([60u, 40u], store.Current.VirtualServices[0].Http[1].Route.Select(r => r.Weight));
    }

    [Fact]
    public void Apply_UnknownRedirectCode_WarnsOnceWithFileAndLine_AndKeepsTheRest()
    {
        var logger = new RecordingLogger();
        var store = new ConfigStore("default", logger);
        var yaml = """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: reviews}
            spec:
              hosts: [reviews]
              http:
              - match: [{uri: {prefix: /old}}]
                redirect: {uri: /new, redirectCode: 317}
              - route: [{destination: {host: reviews}}]
            """;

        Assert.True(store.Apply("/cfg/reviews.yaml", yaml));
        Assert.Empty(store.LastErrors);
        Assert.Equal(2, Assert.Single(store.Current.VirtualServices).Http.Count);
        var warning = Assert.Single(logger.Lines, l => l.EventId == 1008);
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.StartsWith("/cfg/reviews.yaml:8:41: warning: VirtualService 'default/reviews': 'spec.http[].redirect.redirectCode' 317 is not a redirect code Envoy supports",
            warning.Message, StringComparison.Ordinal);

        // Reloading the same content says nothing again.
        Assert.True(store.Apply("/cfg/reviews.yaml", yaml + "\n"));
        Assert.Single(logger.Lines, l => l.EventId == 1008);
    }

    [Fact]
    public void Apply_RemovalDropsResources_AndOnEqualTimesTheLaterPathWins()
    {
        var store = new ConfigStore("default", NullLogger.Instance);
        store.Apply([("/cfg/a.yaml", TestYaml.ReviewsServiceEntry), ("/cfg/b.yaml", TestYaml.ReviewsServiceEntry.Replace("9080", "9090"))]);

        // No write times: as if applied in path order, so b.yaml's definition is the one in force.
        Assert.Equal(9090u, Assert.Single(store.Current.ServiceEntries).Ports[0].Number);
        Assert.Equal("/cfg/b.yaml", store.Current.ServiceEntries[0].Source.File);

        store.Apply("/cfg/b.yaml", null);
        Assert.Equal(9080u, Assert.Single(store.Current.ServiceEntries).Ports[0].Number);
    }

    [Fact]
    public void Apply_DuplicateResource_TheMostRecentlyModifiedFileWins_AndTheWarningNamesBoth()
    {
        var logger = new ListLogger();
        var store = new ConfigStore("default", logger);
        var t0 = new DateTimeOffset(2025, 1, 1, 12, 0, 0, TimeSpan.Zero);

        // z.yaml sorts after a.yaml but was written first: a.yaml, the newer file, wins.
        store.Apply([new ConfigFileChange("/cfg/z.yaml", ReviewsTo("v1"), t0), new ConfigFileChange("/cfg/a.yaml", ReviewsTo("v2"), t0.AddSeconds(1))]);

        var vs = Assert.Single(store.Current.VirtualServices);
        Assert.Equal(("/cfg/a.yaml", "v2"), (vs.Source.File, vs.Http[0].Route[0].Destination.Subset));
        var warning = Assert.Single(logger.Warnings, w => w.Contains(" is ignored: ", StringComparison.Ordinal)); // besides the undefined subsets (no DestinationRule here)
        Assert.Equal("/cfg/z.yaml:1:1: warning: VirtualService 'default/reviews' is ignored: /cfg/a.yaml:1:1 defines it too and is in force (the most recently modified file wins; on equal times the later path).", warning);

        // A change elsewhere does not repeat it.
        Assert.True(store.Apply("/cfg/se.yaml", TestYaml.ReviewsServiceEntry, t0));
        Assert.Single(logger.Warnings, w => w.Contains(" is ignored: ", StringComparison.Ordinal));

        // Writing z.yaml again makes it the newest: its definition takes over, and the new loser is named.
        Assert.True(store.Apply("/cfg/z.yaml", ReviewsTo("v3"), t0.AddSeconds(2)));
        vs = Assert.Single(store.Current.VirtualServices);
        Assert.Equal(("/cfg/z.yaml", "v3"), (vs.Source.File, vs.Http[0].Route[0].Destination.Subset));
        Assert.Equal("/cfg/a.yaml:1:1: warning: VirtualService 'default/reviews' is ignored: /cfg/z.yaml:1:1 defines it too and is in force (the most recently modified file wins; on equal times the later path).",
            logger.Warnings.Last(w => w.Contains(" is ignored: ", StringComparison.Ordinal)));

        // Removing the newest file brings the other definition back.
        Assert.True(store.Apply("/cfg/z.yaml", null));
        Assert.Equal("v2", Assert.Single(store.Current.VirtualServices).Http[0].Route[0].Destination.Subset);
    }

    [Fact]
    public void Watcher_BookinfoFilesCopiedInTurn_TheLastWrittenDefinitionIsUsed()
    {
        using var dir = new TempDir();
        var t0 = new DateTime(2025, 1, 1, 12, 0, 0, DateTimeKind.Utc);
        var allV1 = dir.Write("virtual-service-all-v1.yaml", ReviewsTo("v1"));
        var testV2 = dir.Write("virtual-service-reviews-test-v2.yaml", JasonToV2);
        File.SetLastWriteTimeUtc(allV1, t0);
        File.SetLastWriteTimeUtc(testV2, t0.AddMinutes(1));
        var time = new FakeTimeProvider();
        var store = new ConfigStore("default", NullLogger.Instance);
        using var watcher = new ConfigDirectoryWatcher(dir.Path, store, time, TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(5), NullLogger.Instance);
        watcher.Start();

        // reviews-test-v2 was copied last: its VirtualService "reviews" (jason → v2, the rest → v1) is in force.
        var vs = Assert.Single(store.Current.VirtualServices);
        Assert.Equal((testV2, 2), (vs.Source.File, vs.Http.Count));

        // all-v1 copied again (same content, newer time): it wins on the next scan.
        File.SetLastWriteTimeUtc(allV1, t0.AddMinutes(2));
        time.Advance(TimeSpan.FromSeconds(5));
        vs = Assert.Single(store.Current.VirtualServices);
        Assert.Equal((allV1, 1), (vs.Source.File, vs.Http.Count));
    }

    private static string ReviewsTo(string subset) => $$"""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: reviews
        spec:
          hosts: [reviews]
          http:
          - route:
            - destination: {host: reviews, subset: {{subset}}}
        """;

    private const string JasonToV2 = """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: reviews
        spec:
          hosts: [reviews]
          http:
          - match:
            - headers:
                end-user: {exact: jason}
            route:
            - destination: {host: reviews, subset: v2}
          - route:
            - destination: {host: reviews, subset: v1}
        """;

    private sealed class ListLogger : ILogger
    {
        private readonly List<string> _warnings = [];

        public IReadOnlyList<string> Warnings
        {
            get
            {
                lock (_warnings)
                {
                    return [.. _warnings];
                }
            }
        }

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel >= LogLevel.Warning)
            {
                lock (_warnings)
                {
                    _warnings.Add(formatter(state, exception));
                }
            }
        }
    }

    [Fact]
    public void Watcher_LoadsDirectoryAndReloadsChangedFile()
    {
        using var dir = new TempDir();
        dir.Write("reviews.yaml", TestYaml.All);
        dir.Write("notes.txt", "not yaml: [");
        var time = new FakeTimeProvider();
        var store = new ConfigStore("default", NullLogger.Instance);
        using var watcher = new ConfigDirectoryWatcher(dir.Path, store, time, TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(5), NullLogger.Instance);
        watcher.Start();
        Assert.Single(store.Current.VirtualServices);
        Assert.Equal(2, store.Current.WorkloadEntries.Count);

        var broken = dir.Write("broken.yml", "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: x}\nspec:\n  hosts: [a\n");
        dir.Write("reviews.yaml", TestYaml.ReviewsServiceEntry);
        time.Advance(TimeSpan.FromSeconds(5)); // the poll picks up changes even without file-system events

        Assert.Empty(store.Current.VirtualServices);
        Assert.Single(store.Current.ServiceEntries);
        var error = Assert.Single(store.LastErrors);
        Assert.Equal(broken, error.File);
        Assert.Equal(6, error.Line);
    }

    [Fact]
    public void Apply_NonRe2Regex_IsRefusedWithFileLineAndTranslatorMessage_LastGoodStays()
    {
        var store = new ConfigStore("default", NullLogger.Instance);
        Assert.True(store.Apply("/cfg/reviews.yaml", TestYaml.ReviewsVirtualService));
        var generation = store.Current.Generation;

        Assert.False(store.Apply("/cfg/reviews.yaml", """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: reviews}
            spec:
              hosts: [reviews]
              http:
              - match:
                - headers:
                    end-user: {regex: '(?!jason).*'}
                route: [{destination: {host: reviews, subset: v2}}]
            """));

        var error = Assert.Single(store.LastErrors);
        Assert.Equal(("/cfg/reviews.yaml", 9), (error.File, error.Line));
        Assert.StartsWith("invalid regex in 'spec.http[].match[].headers.end-user.regex': regex '(?!jason).*' ", error.Reason, StringComparison.Ordinal);
        Assert.Contains("lookahead '(?!' at offset 0", error.Reason, StringComparison.Ordinal);
        Assert.Equal(generation, store.Current.Generation);
    }

    [Fact]
    public void Apply_RouteToAnUndefinedSubset_WarnsOnceWithFileAndLine_AsIstioctlsIst0101()
    {
        const string Rule = """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: reviews}
            spec:
              host: reviews
              subsets:
              - name: v1
                labels: {version: v1}
            """;
        const string ToV4 = """
            # reviews, all to v4
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: reviews}
            spec:
              hosts: [reviews]
              http:
              - route:
                - destination: {host: reviews, subset: v4}
            """;
        var logger = new RecordingLogger();
        var store = new ConfigStore("default", logger);
        store.Apply("/cfg/dr.yaml", Rule);

        store.Apply("/cfg/vs.yaml", ToV4);

        var warning = Assert.Single(logger.Lines, l => l.EventId == 1009);
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Equal("/cfg/vs.yaml:2:1: warning: VirtualService 'default/reviews' routes to subset 'v4' of 'reviews.default.svc.cluster.local', which no DestinationRule defines (IST0101); "
            + "requests routed there get 503 (NC) until a DestinationRule defines it.", warning.Message);

        // Not repeated while it lasts; gone once defined; reported again when it comes back.
        store.Apply("/cfg/se.yaml", TestYaml.ReviewsServiceEntry);
        Assert.Single(logger.Lines, l => l.EventId == 1009);
        store.Apply("/cfg/dr.yaml", Rule + "\n  - name: v4\n    labels: {version: v4}\n");
        Assert.Single(logger.Lines, l => l.EventId == 1009);
        store.Apply("/cfg/dr.yaml", Rule);
        Assert.Equal(2, logger.Lines.Count(l => l.EventId == 1009));
        Assert.Empty(store.LastErrors);
    }
}

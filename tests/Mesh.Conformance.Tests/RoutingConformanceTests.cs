using Envoy.Config.Route.V3;
using Google.Protobuf;
using Mesh.Sdk.Routing;

namespace Mesh.Conformance.Tests;

/// <summary>
/// The routing conformance table: every <see cref="IstioRows"/> row through the control plane and the SDK, every
/// <see cref="EnvoyRows"/> row through the SDK, checked with the route explainer. A failure prints the row, the
/// sentence it rests on, the configuration each half saw and the explanation.
/// </summary>
public class RoutingConformanceTests
{
    public static TheoryData<string> IstioIds => [.. IstioRows.All.Select(static r => r.Id)];

    public static TheoryData<string> EnvoyIds => [.. EnvoyRows.All.Select(static r => r.Id)];

    [Theory]
    [MemberData(nameof(IstioIds))]
    public void Istio(string row)
    {
        var r = IstioRows.All.Single(x => x.Id == row);
        string yaml = r.Http;
        RouteConfiguration? wire = null;
        try
        {
            var table = Pipeline.FromIstio(r, out yaml, out wire);
            Check(r, table, yaml, wire);
        }
        catch (ConformanceException e)
        {
            Assert.Fail(Report(r, e.Message, yaml, wire, null));
        }
    }

    [Theory]
    [MemberData(nameof(EnvoyIds))]
    public void Envoy(string row)
    {
        var r = EnvoyRows.All.Single(x => x.Id == row);
        RouteConfiguration? wire = null;
        try
        {
            var table = Pipeline.FromEnvoy(r, out wire);
            Check(r, table, null, wire);
        }
        catch (ConformanceException e)
        {
            Assert.Fail(Report(r, e.Message, null, wire, null));
        }
    }

    [Fact]
    public void Rows_HaveUniqueIdsAndASource()
    {
        var rows = IstioRows.All.Cast<ConformanceRow>().Concat(EnvoyRows.All).Concat(RequestRows.All).ToList();
        Assert.Equal(rows.Count, rows.Select(r => r.TestName).Distinct().Count());
        Assert.All(rows, r => Assert.Matches("^\".+\" \\(.+\\)$", r.Source));
        Assert.True(rows.Count >= 80, $"{rows.Count} rows");
    }

    private static void Check(ConformanceRow row, CompiledRouteTable table, string? yaml, RouteConfiguration wire)
    {
        var explanation = Pipeline.Explain(table, row.Request);
        var (expected, actual) = row.Expect.Compare(explanation);
        if (expected != actual)
        {
            Assert.Fail(Report(row, $"expected:\n{expected}actual:\n{actual}", yaml, wire, explanation));
        }
    }

    private static string Format(RouteConfiguration wire)
    {
        try
        {
            return JsonFormatter.Default.Format(wire);
        }
        catch (InvalidOperationException)
        {
            // An Any whose type this process has no descriptor for (retry host predicates): print without them.
            var copy = wire.Clone();
            foreach (var route in copy.VirtualHosts.SelectMany(h => h.Routes))
            {
                route.Route_?.RetryPolicy?.RetryHostPredicate.Clear();
                route.TypedPerFilterConfig.Clear();
            }

            return JsonFormatter.Default.Format(copy) + "\n(retry host predicates and typed_per_filter_config left out)";
        }
    }

    private static string Report(ConformanceRow row, string problem, string? yaml, RouteConfiguration? wire, RouteExplanation? explanation)
    {
        var text = $"Row {row.TestName} ({row.Field}: {row.Behaviour})\nsource: {row.Source}\nrequest: {row.Request}\n{problem}\n";
        if (yaml is not null)
        {
            text += $"--- YAML\n{yaml}\n";
        }

        if (wire is not null)
        {
            text += $"--- RouteConfiguration\n{Format(wire)}\n";
        }

        if (explanation is not null)
        {
            text += $"--- explanation\n{explanation}";
        }

        return text;
    }
}

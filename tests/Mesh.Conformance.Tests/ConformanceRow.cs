using System.Globalization;
using System.Text;
using Envoy.Config.Route.V3;
using Mesh.Sdk.Routing;

namespace Mesh.Conformance.Tests;

/// <summary>A request of a conformance row: <c>GET reviews:9080/</c> unless told otherwise.</summary>
/// <param name="PathAndQuery">The <c>:path</c>.</param>
/// <param name="Headers">Request headers (a name given twice is sent twice).</param>
internal sealed record Req(string PathAndQuery, params (string Name, string Value)[] Headers)
{
    /// <summary>The method.</summary>
    public string Method { get; init; } = "GET";

    /// <summary>The authority.</summary>
    public string Authority { get; init; } = "reviews:9080";

    public override string ToString()
    {
        var text = new StringBuilder().Append(Method).Append(' ').Append(Authority).Append(PathAndQuery);
        foreach (var (name, value) in Headers)
        {
            text.Append(CultureInfo.InvariantCulture, $" {name}: {value}");
        }

        return text.ToString();
    }
}

/// <summary>
/// What a row expects; only the facts set are checked. Clusters of the <c>reviews</c> service are written by subset
/// (<c>v2</c>; <c>default</c> for the service itself); other cluster names are written in full.
/// </summary>
internal sealed record Expect
{
    public RouteExplanationOutcome Outcome { get; init; } = RouteExplanationOutcome.Forward;

    /// <summary>The matched route's name.</summary>
    public string? Route { get; init; }

    /// <summary>The chosen cluster (for weighted clusters use <see cref="Weights"/>).</summary>
    public string? Cluster { get; init; }

    /// <summary>The reason the first route tried did not match (Outcome NoRoute, or a later route matched).</summary>
    public string? FirstReason { get; init; }

    /// <summary>Weighted shares, for example <c>v1 25 %, v2 75 %</c>.</summary>
    public string? Weights { get; init; }

    /// <summary>The local answer's status (redirect, direct response, 404).</summary>
    public int? Status { get; init; }

    /// <summary>The redirect's location.</summary>
    public string? Location { get; init; }

    /// <summary>The direct response's body.</summary>
    public string? Body { get; init; }

    /// <summary>The <c>:path</c> sent upstream.</summary>
    public string? UpstreamPath { get; init; }

    /// <summary>The authority sent upstream.</summary>
    public string? UpstreamAuthority { get; init; }

    /// <summary>The route timeout, or <c>none</c>.</summary>
    public string? Timeout { get; init; }

    /// <summary>The retry policy as printed, or <c>none</c>.</summary>
    public string? Retry { get; init; }

    /// <summary>The fault as printed, or <c>none</c>.</summary>
    public string? Fault { get; init; }

    /// <summary>The mirrors as printed (<c>v2 (50 %)</c>), or <c>none</c>.</summary>
    public string? Mirror { get; init; }

    /// <summary>Request header operations as printed, or <c>none</c>.</summary>
    public string? RequestHeaders { get; init; }

    /// <summary>Response header operations as printed, or <c>none</c>.</summary>
    public string? ResponseHeaders { get; init; }

    /// <summary>Hash policies as printed, or <c>none</c>.</summary>
    public string? Hash { get; init; }

    public static Expect NoRoute(string? firstReason = null) => new() { Outcome = RouteExplanationOutcome.NoRoute, Status = 404, FirstReason = firstReason };

    /// <summary>The facts this expectation names, with the explanation's values in the same shape.</summary>
    public (string Expected, string Actual) Compare(RouteExplanation e)
    {
        var expected = new StringBuilder();
        var actual = new StringBuilder();
        void Fact(string name, object? want, string? have)
        {
            if (want is not null)
            {
                expected.Append(name).Append(": ").Append(Convert.ToString(want, CultureInfo.InvariantCulture)).Append('\n');
                actual.Append(name).Append(": ").Append(have ?? "(null)").Append('\n');
            }
        }

        Fact("outcome", Outcome, e.Outcome.ToString());
        Fact("route", Route, e.Route);
        Fact("cluster", Cluster, e.Cluster is null ? null : Short(e.Cluster));
        Fact("first reason", FirstReason, e.Routes.Count > 0 ? e.Routes[0].Reason : null);
        Fact("weights", Weights, string.Join(", ", e.WeightedClusters.Select(w => $"{Short(w.Cluster)} {RouteExplanation.Format(w.Percent)}")));
        Fact("status", Status, e.Status?.ToString(CultureInfo.InvariantCulture));
        Fact("location", Location, e.RedirectLocation);
        Fact("body", Body, e.DirectResponseBody);
        Fact("upstream path", UpstreamPath, e.UpstreamPathAndQuery);
        Fact("upstream authority", UpstreamAuthority, e.UpstreamAuthority ?? "(kept)");
        Fact("timeout", Timeout, e.Timeout is { } t ? RouteExplanation.Format(t) : "none");
        Fact("retry", Retry, e.Retry?.ToString() ?? "none");
        Fact("fault", Fault, e.Fault is { } f ? Short(f.ToString()) : "none");
        Fact("mirror", Mirror, e.Mirrors.Count == 0 ? "none" : Short(string.Join(", ", e.Mirrors)));
        Fact("request headers", RequestHeaders, e.RequestHeaderOperations.Count == 0 ? "none" : string.Join("; ", e.RequestHeaderOperations));
        Fact("response headers", ResponseHeaders, e.ResponseHeaderOperations.Count == 0 ? "none" : string.Join("; ", e.ResponseHeaderOperations));
        Fact("hash", Hash, e.HashPolicies.Count == 0 ? "none" : string.Join(", ", e.HashPolicies));
        return (expected.ToString(), actual.ToString());
    }

    /// <summary>The short form of the reviews service's clusters: <c>outbound|9080|v2|reviews…</c> → <c>v2</c>.</summary>
    public static string Short(string text)
    {
        foreach (var subset in new[] { "v1", "v2", "v3" })
        {
            text = text.Replace($"outbound|9080|{subset}|{Pipeline.Fqdn}", subset, StringComparison.Ordinal);
        }

        return text.Replace($"outbound|9080||{Pipeline.Fqdn}", "default", StringComparison.Ordinal);
    }
}

/// <summary>One row of the conformance table.</summary>
/// <param name="Id">The row's id (the test case name).</param>
/// <param name="Field">The Istio or Envoy field under test.</param>
/// <param name="Behaviour">The behaviour checked, in a few words.</param>
/// <param name="Source">The sentence of Istio's or Envoy's documentation the row rests on, with where it is from.</param>
/// <param name="Request">The request explained.</param>
/// <param name="Expect">The outcome.</param>
internal abstract record ConformanceRow(string Id, string Field, string Behaviour, string Source, Req Request, Expect Expect)
{
    /// <summary>The name of the test that runs the row, as the docs table shows it.</summary>
    public abstract string TestName { get; }
}

/// <summary>A row given as Istio YAML: run through the control plane's translation, then the SDK.</summary>
/// <param name="Http">The VirtualService's <c>http:</c> list (YAML at column 0), routing to host <c>reviews</c>.</param>
internal sealed record IstioRow(string Id, string Field, string Behaviour, string Source, string Http, Req Request, Expect Expect)
    : ConformanceRow(Id, Field, Behaviour, Source, Request, Expect)
{
    /// <summary>A <c>trafficPolicy:</c> for the DestinationRule (YAML at column 0), when the row needs one.</summary>
    public string? TrafficPolicy { get; init; }

    public override string TestName => $"Istio({Id})";
}

/// <summary>A row given as a hand-built xDS route: run through the SDK alone.</summary>
/// <param name="Build">Builds the route, in one virtual host for every authority.</param>
internal sealed record EnvoyRow(string Id, string Field, string Behaviour, string Source, Func<Route[]> Build, Req Request, Expect Expect)
    : ConformanceRow(Id, Field, Behaviour, Source, Request, Expect)
{
    public override string TestName => $"Envoy({Id})";
}

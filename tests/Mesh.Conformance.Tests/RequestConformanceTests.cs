using System.Globalization;
using System.Text;
using Mesh.Sdk.FunctionalTests.Infrastructure;
using Mesh.Sdk.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace Mesh.Conformance.Tests;

/// <summary>
/// <see cref="RequestRows"/> through the real request path: the real control plane, a client with <c>AddMesh()</c>
/// and Kestrel backends on loopback. Each row first asks the explainer, then sends the request and compares what
/// happened (status, answering version, attempts, headers) with the row.
/// </summary>
public sealed class RequestConformanceTests(ReviewsFixture fixture) : IClassFixture<ReviewsFixture>
{
    public static TheoryData<string> RequestIds => [.. RequestRows.All.Select(static r => r.Id)];

    [Theory]
    [MemberData(nameof(RequestIds))]
    public async Task Request(string row)
    {
        var r = RequestRows.All.Single(x => x.Id == row);
        var mesh = fixture.Mesh;
        await mesh.ApplyAsync(r.Http);
        r.Arrange?.Invoke(mesh);
        var explanation = mesh.Client.GetRequiredService<MeshRouteExplainer>()
            .Explain(r.Request.Authority, r.Request.PathAndQuery, r.Request.Method, r.Request.Headers.Select(h => KeyValuePair.Create(h.Name, h.Value)));

        using var request = new HttpRequestMessage(new HttpMethod(r.Request.Method), $"http://{r.Request.Authority}{r.Request.PathAndQuery}");
        foreach (var (name, value) in r.Request.Headers)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        var (response, reply) = await mesh.SendAsync(request);
        var body = reply is null ? await response.Content.ReadAsStringAsync() : null;
        var seen = mesh.Backends.SelectMany(b => b.Seen).ToList();
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

        Fact("status", r.Outcome.Status, ((int)response.StatusCode).ToString(CultureInfo.InvariantCulture));
        Fact("version", r.Outcome.Version, reply?.Version);
        Fact("attempts", r.Outcome.Attempts, mesh.Backends.Sum(b => b.Count).ToString(CultureInfo.InvariantCulture));
        if (r.Outcome.BackendHeaders is { } backendHeaders)
        {
            Fact("backend headers", backendHeaders, seen.Count == 0 ? null : Headers(backendHeaders, n => seen[^1].Headers.TryGetValue(n, out var v) ? v : null));
        }

        if (r.Outcome.ResponseHeaders is { } responseHeaders)
        {
            Fact("response headers", responseHeaders, Headers(responseHeaders, n => response.Headers.TryGetValues(n, out var v) ? string.Join(",", v) : null));
        }

        Fact("backend path", r.Outcome.BackendPath, reply?.Path);
        Fact("location", r.Outcome.Location, response.Headers.Location?.ToString());
        Fact("body", r.Outcome.Body, body);
        Assert.True(expected.ToString() == actual.ToString(),
            $"Row {r.TestName} ({r.Field}: {r.Behaviour})\nsource: {r.Source}\nrequest: {r.Request}\nexpected:\n{expected}actual:\n{actual}--- explanation\n{explanation}\n{mesh.Dump()}");
    }

    /// <summary>Reads the headers an expectation names (<c>a=1; b=(absent)</c>) in the same form.</summary>
    private static string Headers(string expected, Func<string, string?> lookup)
    {
        var parts = new List<string>();
        foreach (var item in expected.Split("; ", StringSplitOptions.RemoveEmptyEntries))
        {
            var name = item[..item.IndexOf('=', StringComparison.Ordinal)];
            parts.Add($"{name}={lookup(name) ?? "(absent)"}");
        }

        return string.Join("; ", parts);
    }
}

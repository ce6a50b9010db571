using System.Net;
using Mesh.Sdk.FunctionalTests.Infrastructure;
using Mesh.Sdk.Routing;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace Mesh.Sdk.FunctionalTests.Http;

/// <summary>
/// <see cref="MeshRouteExplainer"/> in a meshed app (real control plane, <c>AddMesh()</c>, Kestrel backends): what it
/// says a request does is what the request then does.
/// </summary>
public sealed class MeshRouteExplainerTests(ReviewsFixture fixture, ITestOutputHelper output) : IClassFixture<ReviewsFixture>
{
    private MeshHarness Mesh => fixture.Mesh;

    private const string Rules = """
        - name: jason
          match:
          - headers:
              end-user:
                exact: jason
          route:
          - destination:
              host: reviews.default.svc.cluster.local
              subset: v2
        - name: api
          match:
          - uri:
              prefix: /api
          rewrite:
            uri: /v3
          timeout: 3s
          retries:
            attempts: 3
            retryOn: 5xx
          route:
          - destination:
              host: reviews.default.svc.cluster.local
              subset: v3
        - name: rest
          route:
          - destination:
              host: reviews.default.svc.cluster.local
              subset: v1
        """;

    [Fact]
    public async Task Explain_NamesTheRouteAndClusterTheRequestThenTakes()
    {
        await Mesh.ApplyAsync(Rules);
        var explainer = Mesh.Client.GetRequiredService<MeshRouteExplainer>();
        var cases = new (string Path, (string, string)[] Headers, string Route, string Version)[]
        {
            ("/reviews/0", [("end-user", "jason")], "jason", "v2"),
            ("/api/items?page=2", [], "api", "v3"),
            ("/reviews/0", [("end-user", "bob")], "rest", "v1"),
        };

        foreach (var (path, headers, route, version) in cases)
        {
            var explanation = explainer.Explain(MeshHarness.Service + ":" + MeshHarness.ServicePort, path, "GET", headers.Select(h => KeyValuePair.Create(h.Item1, h.Item2)));
            output.WriteLine(explanation.ToString());
            Assert.Equal((RouteExplanationOutcome.Forward, route, $"outbound|9080|{version}|{MeshHarness.Fqdn}"), (explanation.Outcome, explanation.Route, explanation.Cluster));

            Mesh.ResetBackends();
            var (response, reply) = await Mesh.GetAsync(path, headers);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(version, reply!.Version);
            if (explanation.UpstreamPathAndQuery != path)
            {
                // The rewrite the explanation shows is the path the backend saw.
                Assert.Equal(explanation.UpstreamPathAndQuery, reply.Path);
            }
        }

        var rest = explainer.Explain("reviews:9080", "/other", headers: [KeyValuePair.Create("end-user", "bob")]);
        Assert.Equal(
            [
                "header 'x-harness-sentinel' exact \"1\": header missing",
                "header 'end-user' exact \"jason\": value is \"bob\"",
                "path prefix '/api': path is '/other'",
                null,
            ],
            rest.Routes.Select(r => r.Reason));
        var api = explainer.Explain("reviews:9080", "/api/items?page=2");
        Assert.Equal(("/v3/items?page=2", (TimeSpan?)TimeSpan.FromSeconds(3), "3 retries on 5xx"),
            (api.UpstreamPathAndQuery, api.Timeout, $"{api.Retry!.NumRetries} retries on {string.Join(",", api.Retry.RetryOn)}"));
    }

    [Fact]
    public async Task Explain_HttpRequestMessage_AndHostsOutsideTheMesh()
    {
        await Mesh.ApplyAsync(Rules);
        var explainer = Mesh.Client.GetRequiredService<MeshRouteExplainer>();
        using var request = new HttpRequestMessage(HttpMethod.Get, MeshHarness.BaseUrl + "/reviews/1");
        request.Headers.Add("end-user", "jason");

        var explanation = await explainer.ExplainAsync(request);

        Assert.Equal((MeshHarness.Listener, "jason", $"outbound|9080|v2|{MeshHarness.Fqdn}"), (explanation.Listener, explanation.Route, explanation.Cluster));
        var literal = explainer.Explain("127.0.0.1:8080", "/");
        Assert.Equal((RouteExplanationOutcome.NotInMesh, (string?)null), (literal.Outcome, literal.Listener));
        Assert.Contains("passes through", literal.ToString(), StringComparison.Ordinal);
    }
}

using Mesh.ControlPlane;
using Mesh.Sdk.Resources;
using Mesh.Sdk.Routing;
using Mesh.Sdk.Tests.Routing;
using Mesh.Sdk.Xds;

namespace Mesh.Sdk.Tests.Xds;

/// <summary>Our client against the real embedded control plane on 127.0.0.1, in both protocols.</summary>
public sealed class XdsClientControlPlaneTests : IDisposable
{
    private const string Listener = "reviews.default.svc.cluster.local:9080";
    private const string ClusterV1 = "outbound|9080|v1|reviews.default.svc.cluster.local";
    private const string ClusterV2 = "outbound|9080|v2|reviews.default.svc.cluster.local";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private readonly string _configDirectory = Directory.CreateTempSubdirectory("mesh-sdk-xds-").FullName;

    private const string Services = """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata:
          name: reviews
        spec:
          hosts: [reviews.default.svc.cluster.local]
          ports:
          - number: 9080
            name: http
            protocol: HTTP
          resolution: STATIC
          workloadSelector:
            labels:
              app: reviews
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata:
          name: reviews-v1
        spec:
          address: 127.0.0.1
          ports:
            http: 19081
          labels:
            app: reviews
            version: v1
        ---
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata:
          name: reviews-v2
        spec:
          address: 127.0.0.2
          ports:
            http: 19082
          labels:
            app: reviews
            version: v2
        ---
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: reviews
        spec:
          host: reviews
          subsets:
          - name: v1
            labels:
              version: v1
          - name: v2
            labels:
              version: v2
        """;

    private static string VirtualService(int v1Weight) => $"""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: reviews
        spec:
          hosts: [reviews]
          http:
          - match:
            - headers:
                end-user:
                  exact: jason
            route:
            - destination:
                host: reviews
                subset: v2
          - route:
            - destination:
                host: reviews
                subset: v1
              weight: {v1Weight}
            - destination:
                host: reviews
                subset: v2
              weight: {100 - v1Weight}
        """;

    [Theory]
    [InlineData(XdsProtocol.Sotw)]
    [InlineData(XdsProtocol.Delta)]
    public async Task Client_GetsFullSnapshot_AndFollowsYamlChange(XdsProtocol protocol)
    {
        File.WriteAllText(Path.Combine(_configDirectory, "services.yaml"), Services);
        File.WriteAllText(Path.Combine(_configDirectory, "reviews-vs.yaml"), VirtualService(80));
        await using var controlPlane = new MeshControlPlane(new MeshControlPlaneOptions { ConfigDirectory = _configDirectory, XdsAddress = "127.0.0.1", XdsPort = 0 });
        using (var start = new CancellationTokenSource(Timeout))
        {
            await controlPlane.StartAsync(start.Token);
        }

        Assert.Empty(controlPlane.ConfigErrors);
        var bootstrap = XdsBootstrapLoader.Parse(
            $$"""
            {"xds_servers": [{"server_uri": "127.0.0.1:{{controlPlane.XdsPort}}", "channel_creds": [{"type": "insecure"}]}],
             "node": {"id": "sidecar~127.0.0.9~productpage.default~default.svc.cluster.local", "locality": {"region": "r1", "zone": "z1"},
                      "metadata": {"GENERATOR": "grpc", "NAMESPACE": "default"} } }
            """,
            "test");
        await using var client = XdsClient.Create(bootstrap, new XdsClientOptions { Protocol = protocol }, TimeProvider.System);
        Assert.Equal(protocol, client.Protocol);
        client.AddListener(Listener);
        client.Start();

        var snapshot = await client.Snapshots.WaitForListenerAsync(Listener, Timeout);
        Assert.True(snapshot.TryGetRouteConfiguration(Listener, out var routes));
        Assert.Equal(new[] { (ClusterV1, 80u), (ClusterV2, 20u) }, WeightsOf(snapshot));
        Assert.True(snapshot.TryGetEndpoints(ClusterV1, out var v1));
        Assert.True(snapshot.TryGetEndpoints(ClusterV2, out var v2));
        Assert.Equal(("127.0.0.1", 19081u), Single(v1));
        Assert.Equal(("127.0.0.2", 19082u), Single(v2));

        File.WriteAllText(Path.Combine(_configDirectory, "reviews-vs.yaml"), VirtualService(30));
        controlPlane.ReloadConfig();
        var changed = await client.Snapshots.WaitAsync(s => WeightsOf(s).SequenceEqual(new[] { (ClusterV1, 30u), (ClusterV2, 70u) }), Timeout);
        Assert.True(changed.Version > snapshot.Version);
        Assert.True(changed.IsComplete(Listener));
    }

    [Fact]
    public async Task Client_AcceptsIstioRedirectWithoutLeadingSlashAndRe2Regex_FromTheControlPlane()
    {
        // istiod's own redirect case (uri "example.org", no leading '/') and an RE2-only regex: the control plane
        // accepts both, and the SDK must not NACK the route configuration it sends for them.
        File.WriteAllText(Path.Combine(_configDirectory, "services.yaml"), Services);
        File.WriteAllText(Path.Combine(_configDirectory, "reviews-vs.yaml"), """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: reviews
            spec:
              hosts: [reviews]
              http:
              - match:
                - uri: {prefix: /old}
                  headers:
                    x-lang: {regex: '\p{Greek}+'}
                redirect: {uri: example.org}
              - route:
                - destination: {host: reviews, subset: v1}
            """);
        await using var controlPlane = new MeshControlPlane(new MeshControlPlaneOptions { ConfigDirectory = _configDirectory, XdsAddress = "127.0.0.1", XdsPort = 0 });
        using (var start = new CancellationTokenSource(Timeout))
        {
            await controlPlane.StartAsync(start.Token);
        }

        Assert.Empty(controlPlane.ConfigErrors);
        var bootstrap = XdsBootstrapLoader.Parse(
            $$"""
            {"xds_servers": [{"server_uri": "127.0.0.1:{{controlPlane.XdsPort}}", "channel_creds": [{"type": "insecure"}]}],
             "node": {"id": "sidecar~127.0.0.9~productpage.default~default.svc.cluster.local", "locality": {"region": "r1", "zone": "z1"},
                      "metadata": {"GENERATOR": "grpc", "NAMESPACE": "default"} } }
            """,
            "test");
        await using var client = XdsClient.Create(bootstrap, new XdsClientOptions(), TimeProvider.System);
        client.AddListener(Listener);
        client.Start();

        var snapshot = await client.Snapshots.WaitAsync(s => s.TryGetRouteConfiguration(Listener, out _), Timeout);
        Assert.True(snapshot.TryGetRouteConfiguration(Listener, out var routes));
        Assert.Empty(RouteTableCompiler.Validate(routes));
        var table = RouteTableCompiler.Compile(routes, null, new Random(1));
        var request = new TestRequest("reviews.default.svc.cluster.local:9080", "/old?x=1", headers: [("x-lang", "αβγ")]);
        var result = table.Match(in request);
        Assert.Equal(RouteActionKind.Redirect, result.Route!.Action);
        Assert.Equal("http://reviews.default.svc.cluster.local:9080/example.org?x=1", result.Route.BuildRedirectLocation(in request));
        var latin = new TestRequest("reviews.default.svc.cluster.local:9080", "/old?x=1", headers: [("x-lang", "abc")]);
        Assert.Equal(ClusterV1, table.ClusterFor(latin));
    }

    private static (string, uint)[] WeightsOf(MeshSnapshot snapshot)
    {
        if (!snapshot.TryGetRouteConfiguration(Listener, out var routes))
        {
            return [];
        }

        var weighted = routes.VirtualHosts.SelectMany(v => v.Routes)
            .Select(r => r.Route_?.WeightedClusters)
            .FirstOrDefault(w => w is not null && w.Clusters.Count == 2);
        return weighted is null ? [] : weighted.Clusters.Select(c => (c.Name, c.Weight ?? 0u)).ToArray();
    }

    private static (string, uint) Single(Envoy.Config.Endpoint.V3.ClusterLoadAssignment assignment)
    {
        var endpoint = Assert.Single(assignment.Endpoints.SelectMany(l => l.LbEndpoints));
        var address = endpoint.Endpoint.Address.SocketAddress;
        return (address.Address, address.PortValue);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_configDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

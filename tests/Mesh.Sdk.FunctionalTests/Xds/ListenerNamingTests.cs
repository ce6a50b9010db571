using System.Globalization;
using System.Net;
using Grpc.Net.Client;
using Mesh.Sdk.Grpc;
using Mesh.Sdk.FunctionalTests.Grpc.Greeter;
using Mesh.Sdk.FunctionalTests.Grpc.Infrastructure;
using Mesh.Sdk.FunctionalTests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Mesh.Sdk.FunctionalTests.Xds;

/// <summary>
/// Listener names (gRFC A27, A47) against an xDS server that is not Mesh.ControlPlane and knows only its own names
/// (<see cref="OwnNamesAdsServer"/>). The embedded control plane answers the same written names: every
/// <c>xds:///service:9080</c> test of <c>GrpcMeshTests</c> goes through them.
/// </summary>
public sealed class ListenerNamingTests
{
    private static string Bootstrap(int port, string? template = null) =>
        "{\"xds_servers\":[{\"server_uri\":\"127.0.0.1:" + port.ToString(CultureInfo.InvariantCulture)
        + "\",\"channel_creds\":[{\"type\":\"insecure\"}],\"server_features\":[\"xds_v3\"]}],"
        + (template is null ? string.Empty : "\"client_default_listener_resource_name_template\":\"" + template + "\",")
        + "\"node\":{\"id\":\"naming-test\",\"locality\":{\"region\":\"r1\"}}}";

    [Theory]
    [InlineData(null, "echo:9090")]
    [InlineData("xdstp://xds.example.com/envoy.config.listener.v3.Listener/%s", "xdstp://xds.example.com/envoy.config.listener.v3.Listener/echo:9090")]
    [InlineData("own-names/%s", "own-names/echo:9090")]
    public async Task XdsTarget_IsSubscribedAsWrittenThroughTheTemplate_AndAServerKnowingOnlyThatNameServesIt(string? template, string listener)
    {
        await using var workload = await GreeterWorkload.StartAsync("echo-1", "echo", "v1");
        await using var server = await OwnNamesAdsServer.StartAsync(listener, workload.Port);
        await using var client = MeshHarness.CreateClient(server.Port, configure: o => o.BootstrapConfig = Bootstrap(server.Port, template));
        using var channel = GrpcChannel.ForAddress("xds:///echo:9090", new GrpcChannelOptions().UseMesh(client));

        var reply = await new Greeter.GreeterClient(channel).SayHelloAsync(new HelloRequest { Name = "naming" }, deadline: DateTime.UtcNow.AddSeconds(20));

        Assert.Equal("echo-1", reply.Workload);
        Assert.Equal([listener], server.RequestedListeners);
    }

    [Fact]
    public async Task HttpHost_WithExpandHostNamesOff_IsSubscribedAsWritten_AndServedByAServerKnowingOnlyThatName()
    {
        await using var backend = await Backend.StartAsync("web", "web-1", "v1", CancellationToken.None);
        await using var server = await OwnNamesAdsServer.StartAsync("web:8080", backend.Port);
        await using var client = MeshHarness.CreateClient(server.Port, configure: o =>
        {
            o.BootstrapConfig = Bootstrap(server.Port);
            o.Xds.ExpandHostNames = false;
        });
        var http = client.GetRequiredService<IHttpClientFactory>().CreateClient("functional");

        using var response = await http.GetAsync("http://web:8080/hello");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(1, backend.Count);
        Assert.Equal(["web:8080"], server.RequestedListeners);
    }

    [Fact]
    public async Task HttpHost_ByDefault_IsExpandedAsIstiodNamesIt_ThenGoesThroughTheTemplate()
    {
        await using var backend = await Backend.StartAsync("web", "web-1", "v1", CancellationToken.None);
        const string Listener = "own-names/web.default.svc.cluster.local:8080";
        await using var server = await OwnNamesAdsServer.StartAsync(Listener, backend.Port);
        await using var client = MeshHarness.CreateClient(server.Port, configure: o => o.BootstrapConfig = Bootstrap(server.Port, "own-names/%s"));
        var http = client.GetRequiredService<IHttpClientFactory>().CreateClient("functional");

        using var response = await http.GetAsync("http://web:8080/hello");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal([Listener], server.RequestedListeners);
    }

    [Theory]
    [InlineData("%s", "echo:9090", "echo:9090")]
    [InlineData("xdstp://a.example/envoy.config.listener.v3.Listener/%s", "echo:9090", "xdstp://a.example/envoy.config.listener.v3.Listener/echo:9090")]
    [InlineData("xdstp://a.example/envoy.config.listener.v3.Listener/%s", "my svc/ä?:1", "xdstp://a.example/envoy.config.listener.v3.Listener/my%20svc/%C3%A4%3F:1")]
    [InlineData("prefix-%s", "my svc", "prefix-my svc")]
    public void ListenerTemplate_PercentEncodesOnlyXdstpNames(string template, string name, string expected)
        => Assert.Equal(expected, MeshRuntime.ApplyListenerTemplate(template, name));
}

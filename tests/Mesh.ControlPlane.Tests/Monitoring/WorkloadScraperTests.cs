using Envoy.Config.Core.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.ControlPlane.Monitoring;
using Mesh.ControlPlane.Registry;
using Mesh.ControlPlane.Xds;

namespace Mesh.ControlPlane.Tests.Monitoring;

public sealed class WorkloadScraperTests
{
    private static Node Node(params (string Key, Value Value)[] extra)
    {
        var node = new Node { Id = "sidecar~127.0.0.1~web-1.default~default.svc.cluster.local", Metadata = new Struct() };
        node.Metadata.Fields["MESH_SERVICE"] = Value.ForString("web");
        node.Metadata.Fields["INSTANCE_IPS"] = Value.ForString("127.0.0.1");
        var ports = new Struct();
        ports.Fields["9080"] = Value.ForNumber(41234);
        ports.Fields["9443"] = Value.ForNumber(41235);
        node.Metadata.Fields["MESH_PORTS"] = Value.ForStruct(ports);
        foreach (var (key, value) in extra)
        {
            node.Metadata.Fields[key] = value;
        }

        return node;
    }

    [Fact]
    public void TargetOf_RegisteredMetricsPortAndPath_WinOverTheAppPort()
    {
        var registration = NodeInfo.From(Node(("MESH_METRICS_PORT", Value.ForNumber(15020)), ("MESH_METRICS_PATH", Value.ForString("/stats/prometheus"))),
            "default", "cluster.local").Registration!;
        Assert.Equal(15020, registration.MetricsPort);
        Assert.Equal("/stats/prometheus", registration.MetricsPath);
        Assert.Equal(new Uri("http://127.0.0.1:15020/stats/prometheus"), WorkloadScraper.TargetOf(registration));
    }

    [Fact]
    public void TargetOf_WithoutMetricsPort_IsTheFirstServicePortsWorkloadPort_AtMetrics()
    {
        var registration = NodeInfo.From(Node(("MESH_METRICS_PORT", Value.ForString("not a port")), ("MESH_METRICS_PATH", Value.ForString("relative"))),
            "default", "cluster.local").Registration!;
        Assert.Null(registration.MetricsPort);
        Assert.Null(registration.MetricsPath);
        Assert.Equal(new Uri("http://127.0.0.1:41234/metrics"), WorkloadScraper.TargetOf(registration));
    }

    [Fact]
    public void TargetOf_IPv6Address_IsBracketed()
    {
        var registration = new SelfRegistration("n", "web.default.svc.cluster.local", "default", "::1", new Dictionary<uint, uint> { [80] = 8080 },
            new Dictionary<string, string>(), EndpointLocality.None, null, null);
        Assert.Equal(new Uri("http://[::1]:8080/metrics"), WorkloadScraper.TargetOf(registration));
    }
}

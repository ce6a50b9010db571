using Mesh.Sdk.Xds;
using Mesh.Sdk.Xds.Internal;
using Microsoft.Extensions.Configuration;

namespace Mesh.Sdk.Tests.Xds;

public sealed class XdsBootstrapLoaderTests
{
    private const string Full = """
        {
          "xds_servers": [
            {"server_uri": "127.0.0.1:15010", "channel_creds": [{"type": "google_default"}, {"type": "insecure"}], "server_features": ["xds_v3", "ignore_resource_deletion", "delta"]},
            {"server_uri": "unix:///var/run/xds.sock", "channel_creds": [{"type": "insecure"}]}
          ],
          "node": {
            "id": "sidecar~10.1.2.3~reviews-v1.default~default.svc.cluster.local",
            "cluster": "reviews",
            "locality": {"region": "eu", "zone": "eu-1a", "sub_zone": "rack7"},
            "metadata": {"GENERATOR": "grpc", "NAMESPACE": "default", "LABELS": {"version": "v1"}, "REPLICAS": 3, "CANARY": false}
          },
          "certificate_providers": {
            "default": {"plugin_name": "file_watcher", "config": {"certificate_file": "/certs/cert.pem", "private_key_file": "/certs/key.pem", "ca_certificate_file": "/certs/ca.pem", "refresh_interval": "600s"}}
          },
          "server_listener_resource_name_template": "xds.istio.io/grpc/lds/inbound/%s"
        }
        """;

    [Fact]
    public void Parse_ReadsEveryField()
    {
        var bootstrap = XdsBootstrapLoader.Parse(Full, "test");
        Assert.Equal(2, bootstrap.Servers.Count);
        var server = bootstrap.Servers[0];
        Assert.Equal("127.0.0.1:15010", server.ServerUri);
        Assert.Equal("insecure", server.ChannelCredentials);
        Assert.True(server.HasFeature(XdsServerConfig.IgnoreResourceDeletionFeature));
        Assert.True(server.HasFeature(XdsServerConfig.DeltaFeature));
        Assert.Equal("unix:///var/run/xds.sock", bootstrap.Servers[1].ServerUri);
        Assert.Equal("sidecar~10.1.2.3~reviews-v1.default~default.svc.cluster.local", bootstrap.Node.Id);
        Assert.Equal("reviews", bootstrap.Node.Cluster);
        Assert.Equal(new XdsLocality("eu", "eu-1a", "rack7"), bootstrap.Node.Locality);
        Assert.Equal("grpc", bootstrap.Node.Metadata.GetProperty("GENERATOR").GetString());
        var provider = bootstrap.CertificateProviders["default"];
        Assert.Equal("file_watcher", provider.PluginName);
        Assert.Equal("/certs/ca.pem", provider.Config.GetProperty("ca_certificate_file").GetString());
        Assert.Equal("xds.istio.io/grpc/lds/inbound/%s", bootstrap.ServerListenerResourceNameTemplate);
        Assert.Equal("%s", bootstrap.ClientDefaultListenerResourceNameTemplate);
        Assert.Equal("test", bootstrap.Source);
    }

    [Fact]
    public void NodeMetadata_BecomesProtobufStruct_KeepingJsonTypes()
    {
        var bootstrap = XdsBootstrapLoader.Parse(Full, "test");
        var metadata = JsonToProtobuf.ToStruct(bootstrap.Node.Metadata);
        Assert.Equal("grpc", metadata.Fields["GENERATOR"].StringValue);
        Assert.Equal("v1", metadata.Fields["LABELS"].StructValue.Fields["version"].StringValue);
        Assert.Equal(3, metadata.Fields["REPLICAS"].NumberValue);
        Assert.False(metadata.Fields["CANARY"].BoolValue);
    }

    [Theory]
    [InlineData("""{}""", "xds_servers is required")]
    [InlineData("""{"xds_servers": {}}""", "xds_servers must be an array")]
    [InlineData("""{"xds_servers": []}""", "xds_servers must contain at least one server")]
    [InlineData("""{"xds_servers": [{"channel_creds": [{"type": "insecure"}]}]}""", "xds_servers[0].server_uri is required")]
    [InlineData("""{"xds_servers": [{"server_uri": 15010, "channel_creds": [{"type": "insecure"}]}]}""", "xds_servers[0].server_uri must be a string, found number")]
    [InlineData("""{"xds_servers": [{"server_uri": "cp:99999", "channel_creds": [{"type": "insecure"}]}]}""", "xds_servers[0].server_uri 'cp:99999' has an invalid port")]
    [InlineData("""{"xds_servers": [{"server_uri": "https://cp:443", "channel_creds": [{"type": "insecure"}]}]}""", "xds_servers[0].server_uri 'https://cp:443' has an unsupported scheme")]
    [InlineData("""{"xds_servers": [{"server_uri": "cp:1"}]}""", "xds_servers[0].channel_creds is required")]
    [InlineData("""{"xds_servers": [{"server_uri": "cp:1", "channel_creds": [{"type": "tls"}, {"type": "google_default"}]}]}""", "xds_servers[0].channel_creds no supported channel credentials type (found 'tls', 'google_default'); Mesh.Sdk supports only 'insecure'")]
    [InlineData("""{"xds_servers": [{"server_uri": "cp:1", "channel_creds": [{"config": {}}]}]}""", "xds_servers[0].channel_creds[0].type is required")]
    [InlineData("""{"xds_servers": [{"server_uri": "cp:1", "channel_creds": [{"type": "insecure"}], "server_features": ["a", 2]}]}""", "xds_servers[0].server_features[1] must be a string")]
    [InlineData("""{"xds_servers": [{"server_uri": "cp:1", "channel_creds": [{"type": "insecure"}]}], "node": {"locality": "eu"}}""", "node.locality must be an object")]
    [InlineData("""{"xds_servers": [{"server_uri": "cp:1", "channel_creds": [{"type": "insecure"}]}], "node": {"metadata": [1]}}""", "node.metadata must be an object")]
    [InlineData("""{"xds_servers": [{"server_uri": "cp:1", "channel_creds": [{"type": "insecure"}]}], "certificate_providers": {"default": {"config": {}}}}""", "certificate_providers.default.plugin_name is required")]
    [InlineData("""{"xds_servers": [{"server_uri": "cp:1", "channel_creds": [{"type": "insecure"}]}], "certificate_providers": {"default": {"plugin_name": "file_watcher", "config": "x"}}}""", "certificate_providers.default.config must be an object")]
    [InlineData("""{"xds_servers": [""", "not valid JSON")]
    [InlineData("""[1]""", "the bootstrap must be a JSON object")]
    public void Parse_Error_NamesSourceAndField(string json, string expected)
    {
        var ex = Assert.Throws<XdsBootstrapException>(() => XdsBootstrapLoader.Parse(json, "GRPC_XDS_BOOTSTRAP_CONFIG"));
        Assert.StartsWith("GRPC_XDS_BOOTSTRAP_CONFIG: ", ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_FromFileVariable_NamesVariableAndPathInErrors()
    {
        var path = Path.Combine(Path.GetTempPath(), $"mesh-bootstrap-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, """{"xds_servers": [{"channel_creds": [{"type": "insecure"}]}]}""");
        try
        {
            var ex = Assert.Throws<XdsBootstrapException>(() => XdsBootstrapLoader.Load(null, Env(("GRPC_XDS_BOOTSTRAP", path))));
            Assert.Equal($"GRPC_XDS_BOOTSTRAP ({path}): xds_servers[0].server_uri is required", ex.Message);

            File.WriteAllText(path, """{"xds_servers": [{"server_uri": "dns:///istiod.istio-system.svc:15010", "channel_creds": [{"type": "insecure"}]}]}""");
            var bootstrap = XdsBootstrapLoader.Load(null, Env(("GRPC_XDS_BOOTSTRAP", path), ("GRPC_XDS_BOOTSTRAP_CONFIG", "{ignored")))!;
            Assert.Equal("dns:///istiod.istio-system.svc:15010", bootstrap.Servers[0].ServerUri);
            Assert.Equal($"GRPC_XDS_BOOTSTRAP ({path})", bootstrap.Source);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Load_MissingFile_IsReportedWithPath()
    {
        var ex = Assert.Throws<XdsBootstrapException>(() => XdsBootstrapLoader.Load(null, Env(("GRPC_XDS_BOOTSTRAP", "/nonexistent/b.json"))));
        Assert.StartsWith("GRPC_XDS_BOOTSTRAP (/nonexistent/b.json): cannot read the file", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_InlineVariable_WinsOverConfiguration()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Mesh:XdsServer"] = "10.0.0.1:1" }).Build();
        var bootstrap = XdsBootstrapLoader.Load(configuration, Env(("GRPC_XDS_BOOTSTRAP_CONFIG", """{"xds_servers":[{"server_uri":"127.0.0.1:2","channel_creds":[{"type":"insecure"}]}]}""")))!;
        Assert.Equal("127.0.0.1:2", bootstrap.Servers[0].ServerUri);
        Assert.Equal("GRPC_XDS_BOOTSTRAP_CONFIG", bootstrap.Source);
    }

    [Fact]
    public void Load_NothingConfigured_ReturnsNull()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["Mesh:Other"] = "x" }).Build();
        Assert.Null(XdsBootstrapLoader.Load(configuration, Env()));
        Assert.Null(XdsBootstrapLoader.Load(null, Env()));
    }

    [Fact]
    public void Configuration_ShortKeys_BuildBootstrap()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Mesh:XdsServer"] = "127.0.0.1:15010",
            ["Mesh:XdsServerFeatures:0"] = "delta",
            ["Mesh:Node:Id"] = "sidecar~127.0.0.1~app.default~default.svc.cluster.local",
            ["Mesh:Node:Cluster"] = "app",
            ["Mesh:Node:Locality:Region"] = "r1",
            ["Mesh:Node:Locality:Zone"] = "z1",
            ["Mesh:Node:Metadata:GENERATOR"] = "grpc",
            ["Mesh:Node:Metadata:LABELS:app"] = "reviews",
            ["Mesh:CertificateProviders:default:PluginName"] = "file_watcher",
            ["Mesh:CertificateProviders:default:Config:certificate_file"] = "/c.pem",
            ["Mesh:ServerListenerResourceNameTemplate"] = "xds.istio.io/grpc/lds/inbound/%s",
        }).Build();
        var bootstrap = XdsBootstrapLoader.Load(configuration, Env())!;
        Assert.Equal("configuration 'Mesh'", bootstrap.Source);
        Assert.Equal("127.0.0.1:15010", bootstrap.Servers[0].ServerUri);
        Assert.Equal("insecure", bootstrap.Servers[0].ChannelCredentials);
        Assert.Equal(["delta"], bootstrap.Servers[0].ServerFeatures);
        Assert.Equal("sidecar~127.0.0.1~app.default~default.svc.cluster.local", bootstrap.Node.Id);
        Assert.Equal(new XdsLocality("r1", "z1", string.Empty), bootstrap.Node.Locality);
        Assert.Equal("reviews", bootstrap.Node.Metadata.GetProperty("LABELS").GetProperty("app").GetString());
        Assert.Equal("/c.pem", bootstrap.CertificateProviders["default"].Config.GetProperty("certificate_file").GetString());
        Assert.Equal("xds.istio.io/grpc/lds/inbound/%s", bootstrap.ServerListenerResourceNameTemplate);
    }

    [Theory]
    [InlineData("Mesh:XdsServer", "cp:0", "configuration 'Mesh': Mesh:XdsServer 'cp:0' has an invalid port")]
    [InlineData("Mesh:XdsChannelCredentials", "tls", "configuration 'Mesh': Mesh:XdsChannelCredentials no supported channel credentials type (found 'tls')")]
    public void Configuration_ShortKeyErrors_NameTheKey(string key, string value, string expected)
    {
        var values = new Dictionary<string, string?> { ["Mesh:XdsServer"] = "cp:1", [key] = value };
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        var ex = Assert.Throws<XdsBootstrapException>(() => XdsBootstrapLoader.Load(configuration, Env()));
        Assert.StartsWith(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Configuration_BootstrapSection_UsesJsonKeys_AndNamesConfigKeysInErrors()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Mesh:Bootstrap:xds_servers:0:server_uri"] = "127.0.0.1:15010",
            ["Mesh:Bootstrap:xds_servers:0:channel_creds:0:type"] = "insecure",
            ["Mesh:Bootstrap:node:id"] = "n1",
        }).Build();
        var bootstrap = XdsBootstrapLoader.Load(configuration, Env())!;
        Assert.Equal("n1", bootstrap.Node.Id);
        Assert.Equal("127.0.0.1:15010", bootstrap.Servers[0].ServerUri);

        var broken = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Mesh:Bootstrap:xds_servers:0:channel_creds:0:type"] = "insecure",
        }).Build();
        var ex = Assert.Throws<XdsBootstrapException>(() => XdsBootstrapLoader.Load(broken, Env()));
        Assert.Equal("configuration 'Mesh:Bootstrap': Mesh:Bootstrap:xds_servers:0:server_uri is required", ex.Message);
    }

    [Fact]
    public void Configuration_BootstrapString_IsInlineJson()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Mesh:Bootstrap"] = """{"xds_servers":[{"server_uri":"[::1]:15010","channel_creds":[{"type":"insecure"}]}]}""",
        }).Build();
        var bootstrap = XdsBootstrapLoader.Load(configuration, Env())!;
        Assert.Equal("[::1]:15010", bootstrap.Servers[0].ServerUri);
        Assert.Equal("configuration 'Mesh:Bootstrap'", bootstrap.Source);
    }

    [Theory]
    [InlineData("127.0.0.1:15010", "http://127.0.0.1:15010/", null)]
    [InlineData("istiod.istio-system.svc:15010", "http://istiod.istio-system.svc:15010/", null)]
    [InlineData("dns:///istiod:15012", "http://istiod:15012/", null)]
    [InlineData("dns://8.8.8.8/istiod:15012", "http://istiod:15012/", null)]
    [InlineData("[::1]:15010", "http://[::1]:15010/", null)]
    [InlineData("istiod", "http://istiod:443/", null)]
    [InlineData("unix:///var/run/xds.sock", "http://localhost/", "/var/run/xds.sock")]
    [InlineData("unix:relative.sock", "http://localhost/", "relative.sock")]
    public void ServerAddress_Parses(string uri, string http, string? unixPath)
    {
        Assert.True(XdsServerAddress.TryParse(uri, out var address, out var error), error);
        Assert.Equal(http, address!.HttpAddress.ToString());
        Assert.Equal(unixPath, address.UnixPath);
    }

    private static Func<string, string?> Env(params (string Name, string Value)[] values) =>
        name => values.FirstOrDefault(v => v.Name == name).Value;
}

using Mesh.Sdk.Security;
using Mesh.Sdk.Xds;

namespace Mesh.Sdk.Tests.Security;

public sealed class WorkloadCertificatesTests
{
    [Fact]
    public void BootstrapFileWatcher_DefaultInstance_GivesItsFilesAndRefresh()
    {
        var bootstrap = XdsBootstrapLoader.Parse(
            """
            {"xds_servers": [{"server_uri": "127.0.0.1:15010", "channel_creds": [{"type": "insecure"}]}],
             "node": {"id": "n", "locality": {}},
             "certificate_providers": {
               "other": {"plugin_name": "file_watcher", "config": {"certificate_file": "/x/c", "private_key_file": "/x/k", "ca_certificate_file": "/x/r"}},
               "default": {"plugin_name": "file_watcher", "config": {
                 "certificate_file": "/var/lib/istio/data/cert-chain.pem", "private_key_file": "/var/lib/istio/data/key.pem",
                 "ca_certificate_file": "/var/lib/istio/data/root-cert.pem", "refresh_interval": "900s"}}}}
            """,
            "test");

        var provider = WorkloadCertificates.FileWatcherProvider(bootstrap);

        Assert.Equal(("/var/lib/istio/data/cert-chain.pem", "/var/lib/istio/data/key.pem", "/var/lib/istio/data/root-cert.pem", (TimeSpan?)TimeSpan.FromSeconds(900)), provider);
    }

    [Fact]
    public void BootstrapFileWatcher_MissingFile_IsAnErrorNamingTheField()
    {
        var bootstrap = XdsBootstrapLoader.Parse(
            """
            {"xds_servers": [{"server_uri": "127.0.0.1:15010", "channel_creds": [{"type": "insecure"}]}], "node": {"id": "n", "locality": {}},
             "certificate_providers": {"default": {"plugin_name": "file_watcher", "config": {"certificate_file": "/c", "private_key_file": "/k"}}}}
            """,
            "test");

        var ex = Assert.Throws<XdsBootstrapException>(() => WorkloadCertificates.FileWatcherProvider(bootstrap));

        Assert.Equal("test: certificate_providers.default.config.ca_certificate_file is required by the file_watcher plugin.", ex.Message);
    }

    [Fact]
    public void NoProvider_NoDirectory_IsTheCaClientForTheServiceAccountAndNamespace()
    {
        var bootstrap = XdsBootstrapLoader.Parse(
            """{"xds_servers": [{"server_uri": "127.0.0.1:15010", "channel_creds": [{"type": "insecure"}]}], "node": {"id": "n", "locality": {}}}""", "test");
        var options = new MeshOptions { ServiceAccount = "bookinfo-reviews" };
        options.Security.TrustDomain = "example.org";

        var source = WorkloadCertificates.Create(options, bootstrap, "shop", TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        var withoutAccount = WorkloadCertificates.Create(new MeshOptions(), bootstrap, "default", TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);

        var ca = Assert.IsType<CaCertificateSource>(source);
        Assert.Equal("spiffe://example.org/ns/shop/sa/bookinfo-reviews", ca.Identity.ToString());
        Assert.Equal("CA '127.0.0.1:15010'", ca.Description);
        Assert.Equal("spiffe://cluster.local/ns/default/sa/default", Assert.IsType<CaCertificateSource>(withoutAccount).Identity.ToString());
    }
}

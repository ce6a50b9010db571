using System.Security.Cryptography.X509Certificates;
using Mesh.ControlPlane;
using Mesh.Sdk.Security;
using Mesh.Sdk.Tests.Xds.Fakes;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.Tests.Security;

/// <summary><c>AddMesh()</c> against the real control plane on 127.0.0.1: the workload gets its certificate from the CA.</summary>
public sealed class WorkloadCertificateEndToEndTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "mesh-e2e-" + Guid.NewGuid().ToString("N")[..12]);

    public WorkloadCertificateEndToEndTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task AddMesh_SecurityEnabled_GetsACertificateForItsSpiffeIdFromTheControlPlaneCa()
    {
        await using var controlPlane = new MeshControlPlane(new MeshControlPlaneOptions { XdsAddress = "127.0.0.1", XdsPort = 0, CaDirectory = Path.Combine(_dir, "ca") });
        await controlPlane.StartAsync();
        using var logs = new ListLoggerProvider();

        await using var app = await StartAppAsync(controlPlane, logs, new()
        {
            ["Mesh:ServiceAccount"] = "bookinfo-reviews",
            ["Mesh:Namespace"] = "shop",
            ["Mesh:Security:Enabled"] = "true",
        });
        var source = app.Services.GetRequiredService<WorkloadCertificateSource>();
        var cert = await source.WaitForCertificateAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal("spiffe://cluster.local/ns/shop/sa/bookinfo-reviews", cert.Identity!.ToString());
        Assert.True(cert.Certificate.HasPrivateKey);
        Assert.Equal(controlPlane.RootCertificatePem!.Trim(), cert.Roots[0].ExportCertificatePem().Trim());
        Assert.True(ChainsTo(cert.Certificate, cert.Roots[0]));
        Assert.Equal(TimeSpan.FromHours(24) + TimeSpan.FromMinutes(2), cert.NotAfter - cert.NotBefore); // asked 24 h, backdated 2 min
        Assert.Contains(logs.Entries, e => e.EventId == 8000 && e.Message.StartsWith("Workload certificate for 'spiffe://cluster.local/ns/shop/sa/bookinfo-reviews' issued by CA '127.0.0.1:", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Warning);
    }

    [Fact]
    public async Task AddMesh_TokenFile_IsPresentedToTheCa_WhenLoopbackIsNotTrusted()
    {
        await using var controlPlane = new MeshControlPlane(new MeshControlPlaneOptions { XdsAddress = "127.0.0.1", XdsPort = 0, TrustLoopbackCallers = false });
        await controlPlane.StartAsync();
        var tokenFile = Path.Combine(_dir, "token");
        File.WriteAllText(tokenFile, controlPlane.IssueJoinToken("ratings", "default") + "\n");
        using var logs = new ListLoggerProvider();

        await using var app = await StartAppAsync(controlPlane, logs, new()
        {
            ["Mesh:ServiceAccount"] = "ratings",
            ["Mesh:Security:Enabled"] = "true",
            ["Mesh:Security:TokenFile"] = tokenFile,
            ["Mesh:Security:CaAddress"] = $"127.0.0.1:{controlPlane.XdsPort}",
        });
        var cert = await app.Services.GetRequiredService<WorkloadCertificateSource>().WaitForCertificateAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal("spiffe://cluster.local/ns/default/sa/ratings", cert.Identity!.ToString());
    }

    [Fact]
    public async Task AddMesh_SecurityOff_CreatesNoCertificateSourceAndLogsNothingAboutIt()
    {
        await using var controlPlane = new MeshControlPlane(new MeshControlPlaneOptions { XdsAddress = "127.0.0.1", XdsPort = 0 });
        await controlPlane.StartAsync();
        using var logs = new ListLoggerProvider();

        await using (var app = await StartAppAsync(controlPlane, logs, new() { ["Mesh:ServiceAccount"] = "reviews" }))
        {
            await Task.Delay(200);
        }

        Assert.DoesNotContain(logs.Entries, e => e.Category.StartsWith("Mesh.Sdk.Security", StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Warning);
    }

    [Fact]
    public async Task ContainerDisposedSynchronously_StopsTheSourceWithoutThrowing()
    {
        await using var controlPlane = new MeshControlPlane(new MeshControlPlaneOptions { XdsAddress = "127.0.0.1", XdsPort = 0 });
        await controlPlane.StartAsync();
        using var logs = new ListLoggerProvider();
        var app = await StartAppAsync(controlPlane, logs, new() { ["Mesh:ServiceAccount"] = "reviews", ["Mesh:Security:Enabled"] = "true" });
        var source = app.Services.GetRequiredService<WorkloadCertificateSource>();
        await source.WaitForCertificateAsync(CancellationToken.None).WaitAsync(Timeout);

        app.Services.Dispose();

        Assert.Throws<ObjectDisposedException>(source.Start);
    }

    private static bool ChainsTo(X509Certificate2 leaf, X509Certificate2 root)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(root);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(leaf);
    }

    private static async Task<App> StartAppAsync(MeshControlPlane controlPlane, ListLoggerProvider logs, Dictionary<string, string?> settings)
    {
        settings["Mesh:BootstrapConfig"] =
            $$$"""
            {"xds_servers": [{"server_uri": "127.0.0.1:{{{controlPlane.XdsPort}}}", "channel_creds": [{"type": "insecure"}]}],
             "node": {"id": "sidecar~127.0.0.1~w.default~default.svc.cluster.local", "locality": {} } }
            """;
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddLogging(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(logs));
        services.AddMesh();
        var provider = services.BuildServiceProvider();
        var app = new App(provider);
        foreach (var hosted in provider.GetServices<IHostedService>())
        {
            await hosted.StartAsync(CancellationToken.None);
            app.Started.Add(hosted);
        }

        return app;
    }

    private sealed class App(ServiceProvider services) : IAsyncDisposable
    {
        public ServiceProvider Services { get; } = services;

        public List<IHostedService> Started { get; } = [];

        public async ValueTask DisposeAsync()
        {
            for (var i = Started.Count - 1; i >= 0; i--)
            {
                await Started[i].StopAsync(CancellationToken.None);
            }

            await Services.DisposeAsync();
        }
    }
}

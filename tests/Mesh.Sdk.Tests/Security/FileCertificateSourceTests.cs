using Mesh.Sdk.Security;
using Mesh.Sdk.Tests.Xds.Fakes;
using Mesh.Xds.Security;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Mesh.Sdk.Tests.Security;

public sealed class FileCertificateSourceTests : IDisposable
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "mesh-certs-" + Guid.NewGuid().ToString("N")[..12]);

    public FileCertificateSourceTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Files_LoadedAtStart_ReloadedWhenTheyChange_BadSetKeepsTheLastGood()
    {
        var time = new FakeTimeProvider(T0);
        using var ca = new TestCa(T0);
        Write(ca.Issue("spiffe://cluster.local/ns/default/sa/reviews", T0, TimeSpan.FromHours(24)), ca.RootPem);
        using var logs = new ListLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(logs));
        await using var source = new FileCertificateSource(
            Path.Combine(_dir, "cert-chain.pem"), Path.Combine(_dir, "key.pem"), Path.Combine(_dir, "root-cert.pem"),
            TimeSpan.FromMinutes(1), time, loggerFactory.CreateLogger<FileCertificateSource>());

        source.Start();
        var first = await source.WaitForCertificateAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(new SpiffeId("cluster.local", "default", "reviews"), first.Identity);
        Assert.True(first.Certificate.HasPrivateKey);
        Assert.Equal("CN=Test Root", Assert.Single(first.Roots).Subject);

        // A renewed set (what the agent writes at rotation): picked up on notification or at the next refresh.
        Write(ca.Issue("spiffe://cluster.local/ns/default/sa/reviews", T0.AddHours(12), TimeSpan.FromHours(24)), ca.RootPem);
        await AdvanceUntilAsync(time, source, () => !ReferenceEquals(source.Current, first), "the rewritten files to load");
        var second = source.Current!;
        Assert.Equal(T0.AddHours(36), second.NotAfter);
        Assert.Contains(logs.Entries, e => e.EventId == 8011);

        // A key that is not the certificate's (a half-finished rewrite): skipped, the last good one stays.
        var (otherChain, otherKey) = ca.Issue("spiffe://cluster.local/ns/default/sa/other", T0, TimeSpan.FromHours(24));
        File.WriteAllText(Path.Combine(_dir, "key.pem"), otherKey);
        await AdvanceUntilAsync(time, source, () => logs.Entries.Any(e => e.EventId == 8013), "the failed reload to be reported");
        Assert.Same(second, source.Current);

        // The rest of the set arrives: loaded.
        File.WriteAllText(Path.Combine(_dir, "cert-chain.pem"), otherChain);
        await AdvanceUntilAsync(time, source, () => source.Current?.Identity?.ServiceAccount == "other", "the completed set to load");
    }

    [Fact]
    public async Task MissingFiles_NoCertificate_UntilTheyAppear()
    {
        var time = new FakeTimeProvider(T0);
        using var ca = new TestCa(T0);
        using var logs = new ListLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(logs));
        await using var source = new FileCertificateSource(
            Path.Combine(_dir, "cert-chain.pem"), Path.Combine(_dir, "key.pem"), Path.Combine(_dir, "root-cert.pem"),
            TimeSpan.FromMinutes(1), time, loggerFactory.CreateLogger<FileCertificateSource>());

        source.Start();
        await Eventually.TrueAsync(() => source.Waits >= 1, "the first attempt");
        Assert.Null(source.Current);
        Assert.Contains(logs.Entries, e => e.EventId == 8012 && e.Level == LogLevel.Warning);

        Write(ca.Issue("spiffe://cluster.local/ns/shop/sa/cart", T0, TimeSpan.FromHours(1)), ca.RootPem);
        await AdvanceUntilAsync(time, source, () => source.Current is not null, "the files to load once written");
        Assert.Equal("spiffe://cluster.local/ns/shop/sa/cart", source.Current!.Identity!.ToString());
    }

    private void Write((string Chain, string Key) issued, string roots)
    {
        File.WriteAllText(Path.Combine(_dir, "root-cert.pem"), roots);
        File.WriteAllText(Path.Combine(_dir, "key.pem"), issued.Key);
        File.WriteAllText(Path.Combine(_dir, "cert-chain.pem"), issued.Chain);
    }

    /// <summary>Moves the fake clock a refresh interval at a time (each step once the loop waits) until the condition holds.</summary>
    private static async Task AdvanceUntilAsync(FakeTimeProvider time, WorkloadCertificateSource source, Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail("timed out waiting for " + what);
            }

            var waits = source.Waits;
            time.Advance(TimeSpan.FromMinutes(1));
            var settle = DateTime.UtcNow.AddSeconds(1);
            while (source.Waits == waits && DateTime.UtcNow < settle)
            {
                await Task.Delay(5);
            }
        }
    }
}

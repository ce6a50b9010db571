using Grpc.Core;
using Mesh.Sdk.Security;
using Mesh.Sdk.Tests.Xds.Fakes;
using Mesh.Sdk.Xds.Internal;
using Mesh.Xds.Security;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Mesh.Sdk.Tests.Security;

public sealed class CaCertificateSourceTests
{
    private static readonly DateTimeOffset T0 = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly SpiffeId Reviews = new("cluster.local", "default", "reviews");

    [Fact]
    public async Task Rotation_AtHalfLife_KeepsTheOldCertificateUntilTheNewOneArrives()
    {
        var time = new FakeTimeProvider(T0);
        using var ca = new TestCa(T0);
        var renewal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var asked = new List<TimeSpan>();
        var client = new FakeCaClient(async (call, csr, validity, ct) =>
        {
            lock (asked)
            {
                asked.Add(validity);
            }

            if (call == 2)
            {
                await renewal.Task.WaitAsync(ct);
            }

            return [ca.Sign(csr, time.GetUtcNow(), validity), ca.RootPem];
        });
        using var logs = new ListLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(logs));
        await using var source = new CaCertificateSource(client, Reviews, TimeSpan.FromHours(1), 0.5, time, loggerFactory.CreateLogger<CaCertificateSource>());
        var changes = new List<WorkloadCertificate>();
        source.Changed += c =>
        {
            lock (changes)
            {
                changes.Add(c);
            }
        };

        source.Start();
        var first = await source.WaitForCertificateAsync(CancellationToken.None);
        await Eventually.TrueAsync(() => source.Waits == 1, "the wait for the renewal");

        Assert.Equal(Reviews, first.Identity);
        Assert.Equal((T0, T0.AddHours(1)), (first.NotBefore, first.NotAfter));
        Assert.True(first.Certificate.HasPrivateKey);
        Assert.Equal("CN=Test Root", Assert.Single(first.Roots).Subject);
        Assert.Empty(first.Intermediates);

        time.Advance(TimeSpan.FromMinutes(30) - TimeSpan.FromSeconds(1));
        await Task.Delay(100);
        Assert.Equal(1, client.Calls);

        time.Advance(TimeSpan.FromSeconds(1));
        await Eventually.TrueAsync(() => client.Calls == 2, "the renewal request at half the lifetime");
        Assert.Same(first, source.Current); // the renewal is in flight: the old certificate still serves

        renewal.SetResult();
        await Eventually.TrueAsync(() => !ReferenceEquals(source.Current, first), "the renewed certificate");
        var second = source.Current!;
        Assert.Equal((T0.AddMinutes(30), T0.AddMinutes(90)), (second.NotBefore, second.NotAfter));
        Assert.NotEqual(first.Certificate.GetPublicKeyString(), second.Certificate.GetPublicKeyString()); // a new key each time
        Assert.Equal([TimeSpan.FromHours(1), TimeSpan.FromHours(1)], asked);
        Assert.Equal([first, second], changes);
        Assert.Equal([8000, 8001], logs.Entries.Where(e => e.Category.EndsWith("CaCertificateSource", StringComparison.Ordinal)).Select(e => e.EventId));
    }

    [Fact]
    public async Task CaFailure_RetriesWithBackoff_ThenSucceeds()
    {
        var time = new FakeTimeProvider(T0);
        using var ca = new TestCa(T0);
        var callTimes = new List<TimeSpan>();
        var client = new FakeCaClient((call, csr, validity, ct) =>
        {
            lock (callTimes)
            {
                callTimes.Add(time.GetUtcNow() - T0);
            }

            return call <= 3
                ? Task.FromException<IReadOnlyList<string>>(new RpcException(new Status(StatusCode.Unavailable, "connection refused")))
                : Task.FromResult<IReadOnlyList<string>>([ca.Sign(csr, time.GetUtcNow(), validity), ca.RootPem]);
        });
        using var logs = new ListLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(logs));
        var backoff = new BackoffSettings(TimeSpan.FromSeconds(1), 2.0, 0, TimeSpan.FromSeconds(30));
        await using var source = new CaCertificateSource(client, Reviews, TimeSpan.FromHours(1), 0.5, time, loggerFactory.CreateLogger<CaCertificateSource>(),
            new Random(7), backoff);

        source.Start();
        await Eventually.TrueAsync(() => source.Waits == 1, "the back-off after the first request");
        time.Advance(TimeSpan.FromMilliseconds(999));
        await Task.Delay(100);
        Assert.Equal(1, client.Calls);
        time.Advance(TimeSpan.FromMilliseconds(1));
        await Eventually.TrueAsync(() => source.Waits == 2, "the first retry after 1 s, and its back-off");
        time.Advance(TimeSpan.FromSeconds(2));
        await Eventually.TrueAsync(() => source.Waits == 3, "the second retry after 2 s more, and its back-off");
        Assert.Null(source.Current);
        time.Advance(TimeSpan.FromSeconds(4));
        var issued = await source.WaitForCertificateAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal([TimeSpan.Zero, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(7)], callTimes);
        Assert.Equal(T0.AddSeconds(7), issued.NotBefore);
        var failures = logs.Entries.Where(e => e.EventId == 8002).Select(e => e.Message).ToList();
        Assert.Equal(3, failures.Count);
        Assert.Equal("No workload certificate for 'spiffe://cluster.local/ns/default/sa/reviews' yet: CA 'fake-ca:15010' failed: Unavailable: connection refused. Retrying in 00:00:01.", failures[0]);
        Assert.EndsWith("Retrying in 00:00:04.", failures[2], StringComparison.Ordinal);
    }

    [Fact]
    public async Task RenewalFailure_KeepsTheCurrentCertificate_AndRetries()
    {
        var time = new FakeTimeProvider(T0);
        using var ca = new TestCa(T0);
        var client = new FakeCaClient((call, csr, validity, ct) => call == 2
            ? Task.FromException<IReadOnlyList<string>>(new RpcException(new Status(StatusCode.PermissionDenied, "no")))
            : Task.FromResult<IReadOnlyList<string>>([ca.Sign(csr, time.GetUtcNow(), validity), ca.RootPem]));
        using var logs = new ListLoggerProvider();
        using var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(logs));
        await using var source = new CaCertificateSource(client, Reviews, TimeSpan.FromHours(1), 0.5, time, loggerFactory.CreateLogger<CaCertificateSource>(),
            new Random(7), new BackoffSettings(TimeSpan.FromSeconds(1), 2.0, 0, TimeSpan.FromSeconds(30)));

        source.Start();
        var first = await source.WaitForCertificateAsync(CancellationToken.None);
        await Eventually.TrueAsync(() => source.Waits == 1, "the wait for the renewal");
        time.Advance(TimeSpan.FromMinutes(30));
        await Eventually.TrueAsync(() => source.Waits == 2, "the failing renewal and its back-off");
        Assert.Same(first, source.Current);
        time.Advance(TimeSpan.FromSeconds(1));
        await Eventually.TrueAsync(() => !ReferenceEquals(source.Current, first), "the retried renewal");

        Assert.Equal(3, client.Calls);
        Assert.Equal(
            "Renewing the workload certificate for 'spiffe://cluster.local/ns/default/sa/reviews' at CA 'fake-ca:15010' failed: PermissionDenied: no. The current one stays in force until 2026-03-01T13:00:00.0000000+00:00; retrying in 00:00:01.",
            logs.Entries.Single(e => e.EventId == 8003).Message);
    }

    [Fact]
    public void Csr_NamesTheIdentityAsItsOnlyUriSan()
    {
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        var pem = CaCertificateSource.CreateCsr(key, Reviews);

        var csr = System.Security.Cryptography.X509Certificates.CertificateRequest.LoadSigningRequestPem(pem, System.Security.Cryptography.HashAlgorithmName.SHA256,
            System.Security.Cryptography.X509Certificates.CertificateRequestLoadOptions.UnsafeLoadCertificateExtensions);
        Assert.Equal(["spiffe://cluster.local/ns/default/sa/reviews"], UriSubjectAlternativeNames.Read(csr.CertificateExtensions));
    }
}

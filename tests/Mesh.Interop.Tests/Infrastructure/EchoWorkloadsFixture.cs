namespace Mesh.Interop.Tests.Infrastructure;

/// <summary>
/// The echo service's workloads, shared by the tests of a class: two v1 and one v2, each a real
/// Kestrel h2c server on 127.0.0.1 with an ephemeral port.
/// </summary>
public sealed class EchoWorkloadsFixture : IAsyncLifetime
{
    private readonly List<EchoWorkload> _workloads = [];

    internal IReadOnlyList<EchoWorkload> Workloads => _workloads;

    public async Task InitializeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        _workloads.Add(await EchoWorkload.StartAsync("echo-v1-0", "v1", cts.Token));
        _workloads.Add(await EchoWorkload.StartAsync("echo-v1-1", "v1", cts.Token));
        _workloads.Add(await EchoWorkload.StartAsync("echo-v2-0", "v2", cts.Token));
    }

    public async Task DisposeAsync()
    {
        foreach (var w in _workloads)
        {
            await w.DisposeAsync();
        }
    }
}

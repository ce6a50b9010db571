using Microsoft.Extensions.Hosting;

namespace Mesh.Sdk;

/// <summary>Starts the mesh runtime with the host (so options and bootstrap errors fail start-up) and stops it with the host.</summary>
internal sealed class MeshHostedService(MeshRuntime runtime) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        runtime.Start();
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => runtime.DisposeAsync().AsTask().WaitAsync(cancellationToken);
}

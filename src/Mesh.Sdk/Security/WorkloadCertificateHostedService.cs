using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Mesh.Sdk.Security;

/// <summary>
/// Starts the workload certificate source with the host when <see cref="MeshSecurityOptions.Enabled"/> (it is not
/// even created otherwise) and stops it with the host. Start does not wait for the first certificate: a CA that is
/// not there yet delays only TLS, not the app.
/// </summary>
internal sealed class WorkloadCertificateHostedService(IServiceProvider services, IOptions<MeshOptions> options) : IHostedService
{
    private WorkloadCertificateSource? _source;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.Value.Security.Enabled)
        {
            _source = services.GetRequiredService<WorkloadCertificateSource>();
            _source.Start();
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
        => _source is null ? Task.CompletedTask : _source.DisposeAsync().AsTask().WaitAsync(cancellationToken);
}

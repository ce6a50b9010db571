using Mesh.Sdk.Security.Inbound;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.AspNetCore.Security;

/// <summary>
/// Once the server bound (<see cref="StartedAsync"/>, after port discovery), watches the inbound listener
/// <c>xds.istio.io/grpc/lds/inbound/&lt;instance ip&gt;:&lt;port&gt;</c> of every port the server listens on, when
/// <c>Mesh:Security:Enabled</c>: the same address and ports the workload registers, which is how the control plane
/// finds the workload (and so the PeerAuthentication and AuthorizationPolicy that select it).
/// </summary>
internal sealed partial class MeshInboundService(MeshRuntime runtime, InboundPolicies policies, IServiceProvider services, ILogger<MeshInboundService> logger)
    : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken)
    {
        if (!runtime.Options.Security.Enabled)
        {
            return Task.CompletedTask;
        }

        var addresses = services.GetService<IServer>()?.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        var ports = new SortedSet<int>();
        foreach (var text in addresses)
        {
            try
            {
                var binding = BindingAddress.Parse(text);
                if (!binding.IsNamedPipe && !binding.IsUnixPipe && binding.Port is > 0 and <= 65535)
                {
                    ports.Add(binding.Port);
                }
            }
            catch (FormatException)
            {
            }
        }

        if (ports.Count == 0)
        {
            return Task.CompletedTask;
        }

        if (runtime.XdsClient is not { } client)
        {
            Log.NoClient(logger, string.Join(", ", ports));
            return Task.CompletedTask;
        }

        policies.Watch(client, runtime.InstanceAddress.ToString(), ports);
        return Task.CompletedTask;
    }

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private static partial class Log
    {
        [LoggerMessage(8220, LogLevel.Warning, "Ports {Ports} cannot follow their inbound listeners: the mesh has no xDS client (port discovery failed); they stay PERMISSIVE.")]
        public static partial void NoClient(ILogger logger, string ports);
    }
}

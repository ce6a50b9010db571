using System.Globalization;
using System.Net;
using Mesh.Sdk;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.AspNetCore;

/// <summary>
/// Tells the mesh runtime the ports the server is bound to, once it started (<see cref="StartedAsync"/> runs after
/// every hosted service's <c>StartAsync</c>, the web server's included), when the workload registers itself
/// (<see cref="MeshOptions.ServiceName"/>) and <see cref="MeshOptions.Ports"/> is empty.
/// </summary>
internal sealed partial class MeshPortDiscoveryService(MeshRuntime runtime, IServiceProvider services, ILogger<MeshPortDiscoveryService> logger)
    : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken)
    {
        if (!runtime.AwaitsPortDiscovery)
        {
            return Task.CompletedTask;
        }

        var options = runtime.Options;
        var service = options.ServiceName ?? string.Empty;
        var addresses = services.GetService<IServer>()?.Features.Get<IServerAddressesFeature>()?.Addresses;
        if (addresses is null || addresses.Count == 0)
        {
            var error = new InvalidOperationException(
                $"Mesh:ServiceName '{service}' is set and Mesh:Ports is empty, but the host has no server reporting bound addresses "
                + "to discover the ports from (IServerAddressesFeature): set Mesh:Ports, for example \"Ports\": { \"9080\": 8080 }.");
            runtime.FailPortDiscovery(error);
            throw error;
        }

        var discovered = Discover(addresses, options.ServicePort);
        if (discovered.Ports.Count == 0)
        {
            var error = new InvalidOperationException(
                $"Mesh:ServiceName '{service}' is set and Mesh:Ports is empty, but none of the server's addresses has a TCP port "
                + $"({string.Join(", ", addresses)}): set Mesh:Ports.");
            runtime.FailPortDiscovery(error);
            throw error;
        }

        foreach (var (servicePort, address) in discovered.Skipped)
        {
            Log.PortSkipped(logger, address, servicePort);
        }

        if (services.GetService<IServer>() is Security.MeshHealthServer { MetricsBoundPort: { } metricsPort })
        {
            runtime.BoundMetricsPort = metricsPort;
        }

        runtime.CompletePortDiscovery(discovered.Ports, discovered.Address);
        return Task.CompletedTask;
    }

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// Maps the server's bound addresses to service ports: the first distinct port is registered under
    /// <paramref name="servicePort"/> (default: its own number), every further one under its own number unless that
    /// service port is taken. The instance address is the one IP all addresses share (<c>localhost</c> → 127.0.0.1),
    /// or <see langword="null"/> when they are bound to a wildcard or to different addresses.
    /// </summary>
    internal static DiscoveredPorts Discover(IEnumerable<string> addresses, int? servicePort)
    {
        var ports = new Dictionary<int, int>();
        var skipped = new List<(int ServicePort, string Address)>();
        var seen = new HashSet<int>();
        IPAddress? shared = null;
        var sharedValid = true;
        foreach (var text in addresses)
        {
            BindingAddress binding;
            try
            {
                binding = BindingAddress.Parse(text);
            }
            catch (FormatException)
            {
                continue;
            }

            if (binding.IsNamedPipe || binding.IsUnixPipe || binding.Port is < 1 or > 65535)
            {
                continue;
            }

            var host = binding.Host.Trim('[', ']');
            IPAddress? ip = string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase) ? IPAddress.Loopback
                : IPAddress.TryParse(host, out var parsed) ? parsed : null;
            if (ip is null || ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any))
            {
                sharedValid = false;
            }
            else if (shared is null)
            {
                shared = ip;
            }
            else if (!shared.Equals(ip))
            {
                sharedValid = false;
            }

            if (!seen.Add(binding.Port))
            {
                continue;
            }

            var key = ports.Count == 0 ? servicePort ?? binding.Port : binding.Port;
            if (!ports.TryAdd(key, binding.Port))
            {
                skipped.Add((key, text));
            }
        }

        return new DiscoveredPorts(ports, sharedValid ? shared : null, skipped);
    }

    internal sealed record DiscoveredPorts(IReadOnlyDictionary<int, int> Ports, IPAddress? Address, IReadOnlyList<(int ServicePort, string Address)> Skipped);

    private static partial class Log
    {
        [LoggerMessage(2000, LogLevel.Warning, "Server address '{Address}' is not registered with the mesh: service port {ServicePort} is taken by another bound port; set Mesh:Ports to map it.")]
        public static partial void PortSkipped(ILogger logger, string address, int servicePort);
    }
}

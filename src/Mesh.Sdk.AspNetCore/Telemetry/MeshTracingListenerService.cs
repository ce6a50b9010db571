using Mesh.Sdk.Resources;
using Mesh.Sdk.Telemetry.AccessLog;
using Mesh.Sdk.Telemetry.Tracing;
using Mesh.Sdk.Xds.Internal;
using Mesh.Xds;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace Mesh.Sdk.AspNetCore.Telemetry;

/// <summary>
/// Once the server bound, watches the inbound listener (<c>xds.istio.io/grpc/lds/inbound/&lt;instance ip&gt;:&lt;port&gt;</c>)
/// of every port it listens on for its HttpConnectionManager's <c>tracing</c>, which governs the server spans
/// (<see cref="MeshTracer.OnInbound"/>), and its <c>access_log</c>, which governs the access log lines
/// (<see cref="MeshAccessLog"/>). Independent of <c>Mesh:Security:Enabled</c>: a workload without mTLS is traced too.
/// </summary>
internal sealed class MeshTracingListenerService(MeshRuntime runtime, IServiceProvider services) : IHostedLifecycleService, IDisposable
{
    private readonly List<IDisposable> _watches = [];

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken)
    {
        if (runtime.XdsClient is not { } client || services.GetService<MeshTracer>() is not { } tracer)
        {
            return Task.CompletedTask;
        }

        var accessLog = services.GetService<MeshAccessLog>();

        var ports = new SortedSet<int>();
        foreach (var text in services.GetService<IServer>()?.Features.Get<IServerAddressesFeature>()?.Addresses ?? [])
        {
            if (Uri.TryCreate(text.Replace("://+", "://0.0.0.0", StringComparison.Ordinal).Replace("://*", "://0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var uri)
                && uri.Port is > 0 and <= 65535)
            {
                ports.Add(uri.Port);
            }
        }

        var address = runtime.InstanceAddress.ToString();
        lock (_watches)
        {
            foreach (var port in ports)
            {
                _watches.Add(client.Watch(XdsResourceType.Listener, IstioNaming.InboundListenerName(port, address), new Watcher(tracer, accessLog)));
            }
        }

        return Task.CompletedTask;
    }

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
        lock (_watches)
        {
            foreach (var watch in _watches)
            {
                watch.Dispose();
            }

            _watches.Clear();
        }
    }

    private sealed class Watcher(MeshTracer tracer, MeshAccessLog? accessLog) : IXdsResourceWatcher
    {
        public void OnResourceChanged(XdsResourceType type, string name, object value)
        {
            if (value is ListenerResource resource)
            {
                tracer.OnInbound(resource.Listener);
                accessLog?.OnInbound(TracingPolicyCompiler.InboundManager(resource.Listener), $"inbound listener '{name}'");
            }
        }

        public void OnResourceDoesNotExist(XdsResourceType type, string name)
        {
        }

        public void OnResourceError(XdsResourceType type, string name, string error)
        {
        }
    }
}

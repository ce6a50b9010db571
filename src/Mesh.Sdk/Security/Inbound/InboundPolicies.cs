using System.Collections.Frozen;
using Envoy.Config.Listener.V3;
using Mesh.Sdk.Resources;
using Mesh.Sdk.Xds;
using Mesh.Sdk.Xds.Internal;
using Mesh.Xds;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.Security.Inbound;

/// <summary>
/// The inbound policy of every mesh port, one immutable table read with one volatile read per connection
/// (<see cref="Get"/>). <see cref="Watch"/> subscribes each port's inbound listener
/// (<c>xds.istio.io/grpc/lds/inbound/&lt;instance ip&gt;:&lt;port&gt;</c>) and swaps in its compiled policy; a listener
/// that does not compile is logged and the port's last good policy stays. A port whose listener has not arrived yet is
/// PERMISSIVE (<see cref="InboundPolicy.Default"/>).
/// </summary>
internal sealed partial class InboundPolicies : IDisposable
{
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly List<IDisposable> _watches = [];
    private FrozenDictionary<int, InboundPolicy> _byPort = FrozenDictionary<int, InboundPolicy>.Empty;

    private readonly TimeProvider _time;

    public InboundPolicies(ILogger<InboundPolicies> logger, TimeProvider? time = null)
    {
        _logger = logger;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>Raised after a port's policy changed, with the new policy.</summary>
    public event Action<InboundPolicy>? Changed;

    /// <summary>The policy of <paramref name="port"/> now (the default PERMISSIVE one until its listener arrived).</summary>
    public InboundPolicy Get(int port) => Volatile.Read(ref _byPort).TryGetValue(port, out var policy) ? policy : InboundPolicy.Default(port);

    /// <summary>The ports being watched and their policies now.</summary>
    public IReadOnlyDictionary<int, InboundPolicy> All => Volatile.Read(ref _byPort);

    /// <summary>Watches the inbound listener of each port at <paramref name="address"/> through <paramref name="client"/>.</summary>
    public void Watch(XdsClient client, string address, IEnumerable<int> ports)
    {
        ArgumentNullException.ThrowIfNull(client);
        foreach (var port in ports)
        {
            var name = IstioNaming.InboundListenerName(port, address);
            lock (_gate)
            {
                Set(InboundPolicy.Default(port), notify: false);
                Log.Watching(_logger, port, name);
                _watches.Add(client.Watch(XdsResourceType.Listener, name, new PortWatcher(this, port)));
            }
        }
    }

    /// <summary>Applies a listener received for <paramref name="port"/>; a listener that does not compile leaves the last good policy in force.</summary>
    internal void Apply(int port, Listener listener)
    {
        InboundPolicy policy;
        try
        {
            policy = InboundPolicyCompiler.Compile(listener, port, Get(port), _time);
        }
        catch (InboundPolicyException ex)
        {
            Log.ListenerRejected(_logger, listener.Name, port, ex.Message, Get(port).Mode.ToString().ToUpperInvariant());
            return;
        }

        var previous = Get(port);
        Set(policy, notify: true);
        if (previous.Mode != policy.Mode)
        {
            Log.ModeChanged(_logger, port, previous.Mode.ToString().ToUpperInvariant(), policy.Mode.ToString().ToUpperInvariant(), listener.Name);
        }
    }

    private void Set(InboundPolicy policy, bool notify)
    {
        lock (_gate)
        {
            var next = new Dictionary<int, InboundPolicy>(Volatile.Read(ref _byPort)) { [policy.Port] = policy };
            Volatile.Write(ref _byPort, next.ToFrozenDictionary());
        }

        if (notify)
        {
            Changed?.Invoke(policy);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var watch in _watches)
            {
                watch.Dispose();
            }

            _watches.Clear();
        }
    }

    private sealed class PortWatcher(InboundPolicies owner, int port) : IXdsResourceWatcher
    {
        public void OnResourceChanged(XdsResourceType type, string name, object value)
        {
            if (value is ListenerResource resource)
            {
                owner.Apply(port, resource.Listener);
            }
        }

        public void OnResourceDoesNotExist(XdsResourceType type, string name) =>
            Log.ListenerMissing(owner._logger, name, port, owner.Get(port).Mode.ToString().ToUpperInvariant());

        public void OnResourceError(XdsResourceType type, string name, string error) =>
            Log.ListenerRejected(owner._logger, name, port, error, owner.Get(port).Mode.ToString().ToUpperInvariant());
    }

    private static partial class Log
    {
        [LoggerMessage(8200, LogLevel.Debug, "Port {Port} follows inbound listener '{ListenerName}'; PERMISSIVE until it arrives.")]
        public static partial void Watching(ILogger logger, int port, string listenerName);

        [LoggerMessage(8201, LogLevel.Information, "Port {Port} is now {Mode} (was {Previous}), from inbound listener '{ListenerName}'.")]
        public static partial void ModeChanged(ILogger logger, int port, string previous, string mode, string listenerName);

        [LoggerMessage(8202, LogLevel.Error, "Inbound listener '{ListenerName}' for port {Port} is not applied: {Reason}. The port stays {Mode}.")]
        public static partial void ListenerRejected(ILogger logger, string listenerName, int port, string reason, string mode);

        [LoggerMessage(8203, LogLevel.Warning, "The control plane has no inbound listener '{ListenerName}' for port {Port}; the port stays {Mode}.")]
        public static partial void ListenerMissing(ILogger logger, string listenerName, int port, string mode);
    }
}

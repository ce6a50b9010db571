using System.Collections.Concurrent;
using System.Collections.Frozen;
using Grpc.Core;
using Grpc.Net.Client.Balancer;
using Mesh.Sdk.LoadBalancing;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.Grpc.Internal;

/// <summary>
/// The <c>mesh_xds</c> load balancer: one subchannel per endpoint address the <see cref="XdsResolver"/> pushes
/// (every endpoint of every cluster the listener's routes name), and a <see cref="MeshGrpcPicker"/> over the READY
/// ones. Subchannel states are tracked per address so the picker can tell "still connecting" from "unreachable".
/// </summary>
internal sealed class MeshGrpcLoadBalancer : SubchannelsLoadBalancer
{
    private readonly MeshRuntime _runtime;
    private readonly StateTrackingController _controller;
    private MeshGrpcTarget? _target;
    private IReadOnlyList<Subchannel>? _lastReady;
    private int _picked;
    private MeshGrpcPicker? _picker;
    private FrozenDictionary<string, Subchannel> _latestReady = FrozenDictionary<string, Subchannel>.Empty;

    private readonly Mesh.Sdk.Telemetry.MeshMetrics? _metrics;

    public MeshGrpcLoadBalancer(IChannelControlHelper controller, ILoggerFactory loggerFactory, MeshRuntime runtime, Mesh.Sdk.Telemetry.MeshMetrics? metrics = null)
        : this(new StateTrackingController(controller), loggerFactory, runtime, metrics)
    {
    }

    private MeshGrpcLoadBalancer(StateTrackingController controller, ILoggerFactory loggerFactory, MeshRuntime runtime, Mesh.Sdk.Telemetry.MeshMetrics? metrics)
        : base(controller, loggerFactory)
    {
        _controller = controller;
        _runtime = runtime;
        _metrics = metrics;
    }

    public override void UpdateChannelState(ChannelState state)
    {
        // The resolver puts its target on every address (channel-level attributes do not reach the balancer).
        if (state.Addresses is { Count: > 0 } addresses && addresses[0].Attributes.TryGetValue(MeshGrpcTarget.AttributeKey, out var target))
        {
            Volatile.Write(ref _target, target);
        }

        var published = _picked;
        base.UpdateChannelState(state);
        if (_picked == published && State == ConnectivityState.Ready && _lastReady is { } ready)
        {
            // Same addresses, so the base kept its picker; publish a fresh one anyway: calls queued for a cluster
            // that was not known yet are picked again against the routes and clusters of the new snapshot.
            Controller.UpdateState(new BalancerState(ConnectivityState.Ready, CreatePicker(ready)));
        }
    }

    protected override SubchannelPicker CreatePicker(IReadOnlyList<Subchannel> readySubchannels)
    {
        _lastReady = readySubchannels;
        _picked++;
        var target = Volatile.Read(ref _target);
        if (target is null)
        {
            return new FailurePicker(new Status(StatusCode.Unavailable, "Mesh.Sdk: the mesh_xds load balancer needs the xds resolver (use an xds:/// address)."));
        }

        var ready = new Dictionary<string, Subchannel>(readySubchannels.Count, StringComparer.Ordinal);
        foreach (var subchannel in readySubchannels)
        {
            if (subchannel.CurrentAddress is { } address)
            {
                ready[StateTrackingController.KeyOf(address)] = subchannel;
            }
        }

        var frozen = ready.ToFrozenDictionary(StringComparer.Ordinal);
        Volatile.Write(ref _latestReady, frozen);
        var picker = new MeshGrpcPicker(_runtime, target, frozen, _controller.StateOf, () => Volatile.Read(ref _latestReady)) { Metrics = _metrics };

        // Calls the previous picker queued are picked again on this one, which counts them as pending anew.
        Interlocked.Exchange(ref _picker, picker)?.Retire();
        return picker;
    }

    private sealed class FailurePicker(Status status) : SubchannelPicker
    {
        public override PickResult Pick(global::Grpc.Net.Client.Balancer.PickContext context) => PickResult.ForFailure(status);
    }

    /// <summary>Passes everything to the channel's controller and records each subchannel's last state by endpoint key.</summary>
    private sealed class StateTrackingController(IChannelControlHelper inner) : IChannelControlHelper
    {
        private readonly ConcurrentDictionary<string, ConnectivityState> _states = new(StringComparer.Ordinal);

        public static string KeyOf(BalancerAddress address) => MeshEndpoint.FormatKey(address.EndPoint.Host, address.EndPoint.Port);

        public ConnectivityState? StateOf(string key) => _states.TryGetValue(key, out var state) ? state : null;

        public Subchannel CreateSubchannel(SubchannelOptions options)
        {
            var subchannel = inner.CreateSubchannel(options);
            if (options.Addresses.Count > 0)
            {
                var key = KeyOf(options.Addresses[0]);
                _states[key] = ConnectivityState.Idle;
                subchannel.OnStateChanged(s => _states[key] = s.State);
            }

            return subchannel;
        }

        public void UpdateState(BalancerState state) => inner.UpdateState(state);

        public void RefreshResolver() => inner.RefreshResolver();
    }
}

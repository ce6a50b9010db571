using System.Threading.Channels;
using Envoy.Config.Core.V3;
using Envoy.Service.Discovery.V3;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Net.Client;

namespace Mesh.ControlPlane.Tests.Xds;

/// <summary>A raw ADS stream over real h2c: send requests, read responses with a deadline.</summary>
internal sealed class AdsTestClient<TRequest, TResponse> : IAsyncDisposable
{
    private readonly AsyncDuplexStreamingCall<TRequest, TResponse> _call;
    private readonly Channel<TResponse> _responses = Channel.CreateUnbounded<TResponse>();
    private readonly Task _pump;

    public AdsTestClient(AsyncDuplexStreamingCall<TRequest, TResponse> call)
    {
        _call = call;
        _pump = Task.Run(async () =>
        {
            try
            {
                while (await _call.ResponseStream.MoveNext(CancellationToken.None))
                {
                    _responses.Writer.TryWrite(_call.ResponseStream.Current);
                }

                _responses.Writer.TryComplete();
            }
            catch (Exception ex)
            {
                _responses.Writer.TryComplete(ex);
            }
        });
    }

    public Task SendAsync(TRequest request) => _call.RequestStream.WriteAsync(request);

    public async Task<TResponse> NextAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        try
        {
            return await _responses.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException("No ADS response within the deadline.");
        }
    }

    /// <summary>Returns the next response, or null when none arrives within <paramref name="wait"/>.</summary>
    public async Task<TResponse?> TryNextAsync(TimeSpan wait)
    {
        using var cts = new CancellationTokenSource(wait);
        try
        {
            return await _responses.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            return default;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _call.RequestStream.CompleteAsync();
        }
        catch (Exception ex) when (ex is InvalidOperationException or RpcException or IOException)
        {
        }

        _call.Dispose();
        try
        {
            await _pump;
        }
        catch (Exception ex) when (ex is RpcException or OperationCanceledException)
        {
        }
    }
}

internal static class Ads
{
    public static Node Node(string id, string ns = "default", Action<Struct>? metadata = null)
    {
        var node = new Node
        {
            Id = id,
            Locality = new Locality { Region = "r1", Zone = "z1" },
            Metadata = new Struct { Fields = { ["GENERATOR"] = Value.ForString("grpc"), ["NAMESPACE"] = Value.ForString(ns) } },
        };
        metadata?.Invoke(node.Metadata);
        return node;
    }

    public static AdsTestClient<DiscoveryRequest, DiscoveryResponse> Sotw(GrpcChannel channel) =>
        new(new AggregatedDiscoveryService.AggregatedDiscoveryServiceClient(channel).StreamAggregatedResources());

    public static AdsTestClient<DeltaDiscoveryRequest, DeltaDiscoveryResponse> Delta(GrpcChannel channel) =>
        new(new AggregatedDiscoveryService.AggregatedDiscoveryServiceClient(channel).DeltaAggregatedResources());

    public static DiscoveryRequest Request(string typeUrl, IEnumerable<string> names, Node? node = null) =>
        new() { TypeUrl = typeUrl, ResourceNames = { names }, Node = node };

    public static DiscoveryRequest Ack(DiscoveryResponse response, IEnumerable<string> names) =>
        new() { TypeUrl = response.TypeUrl, VersionInfo = response.VersionInfo, ResponseNonce = response.Nonce, ResourceNames = { names } };
}

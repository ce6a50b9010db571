using System.Threading.Channels;
using Envoy.Service.Discovery.V3;
using Mesh.Sdk.Xds.Internal;

namespace Mesh.Sdk.Tests.Xds.Fakes;

/// <summary>An in-memory ADS server: each stream the client opens shows up as a <see cref="FakeAdsCall{TRequest,TResponse}"/>.</summary>
internal sealed class FakeAdsTransport(TimeProvider timeProvider) : IAdsTransport
{
    private readonly Channel<FakeAdsCall<DiscoveryRequest, DiscoveryResponse>> _sotw = Channel.CreateUnbounded<FakeAdsCall<DiscoveryRequest, DiscoveryResponse>>();
    private readonly Channel<FakeAdsCall<DeltaDiscoveryRequest, DeltaDiscoveryResponse>> _delta = Channel.CreateUnbounded<FakeAdsCall<DeltaDiscoveryRequest, DeltaDiscoveryResponse>>();
    private readonly List<DateTimeOffset> _openTimes = [];

    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public string Target => "fake-ads";

    /// <summary>When set, new streams fail at once as if the server could not be reached.</summary>
    public bool Unreachable { get; set; }

    /// <summary>When set, every send on a new stream runs this first (it may block or throw, as a real write can).</summary>
    public Func<CancellationToken, Task>? BeforeSend { get; set; }

    public IReadOnlyList<DateTimeOffset> OpenTimes
    {
        get
        {
            lock (_openTimes)
            {
                return [.. _openTimes];
            }
        }
    }

    public IAdsCall<DiscoveryRequest, DiscoveryResponse> OpenSotw(CancellationToken cancellationToken)
    {
        var call = Open<DiscoveryRequest, DiscoveryResponse>();
        _sotw.Writer.TryWrite(call);
        return call;
    }

    public IAdsCall<DeltaDiscoveryRequest, DeltaDiscoveryResponse> OpenDelta(CancellationToken cancellationToken)
    {
        var call = Open<DeltaDiscoveryRequest, DeltaDiscoveryResponse>();
        _delta.Writer.TryWrite(call);
        return call;
    }

    private FakeAdsCall<TRequest, TResponse> Open<TRequest, TResponse>()
        where TRequest : class
        where TResponse : class
    {
        lock (_openTimes)
        {
            _openTimes.Add(timeProvider.GetUtcNow());
        }

        var call = new FakeAdsCall<TRequest, TResponse>(BeforeSend);
        if (Unreachable)
        {
            call.Fail();
        }

        return call;
    }

    public async Task<FakeAdsCall<DiscoveryRequest, DiscoveryResponse>> NextSotwCallAsync() =>
        await _sotw.Reader.ReadAsync().AsTask().WaitAsync(Timeout);

    public async Task<FakeAdsCall<DeltaDiscoveryRequest, DeltaDiscoveryResponse>> NextDeltaCallAsync() =>
        await _delta.Reader.ReadAsync().AsTask().WaitAsync(Timeout);

    public async Task WaitForOpenCountAsync(int count)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (OpenTimes.Count < count)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Expected {count} stream attempts, saw {OpenTimes.Count}.");
            }

            await Task.Delay(5);
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

internal sealed class FakeAdsCall<TRequest, TResponse>(Func<CancellationToken, Task>? beforeSend = null) : IAdsCall<TRequest, TResponse>
    where TRequest : class
    where TResponse : class
{
    private readonly Channel<TRequest> _requests = Channel.CreateUnbounded<TRequest>();
    private readonly Channel<Func<TResponse?>> _responses = Channel.CreateUnbounded<Func<TResponse?>>();

    public bool Disposed { get; private set; }

    public async Task SendAsync(TRequest request, CancellationToken cancellationToken)
    {
        if (beforeSend is not null)
        {
            await beforeSend(cancellationToken);
        }

        _requests.Writer.TryWrite(request);
    }

    public async Task<TResponse?> ReceiveAsync(CancellationToken cancellationToken)
    {
        var next = await _responses.Reader.ReadAsync(cancellationToken);
        return next();
    }

    public void Respond(TResponse response) => _responses.Writer.TryWrite(() => response);

    /// <summary>Ends the stream with an error, as a broken connection does.</summary>
    public void Fail() => _responses.Writer.TryWrite(static () => throw new IOException("connection reset by fake server"));

    /// <summary>The next request the client sent on this stream.</summary>
    public async Task<TRequest> NextRequestAsync() =>
        await _requests.Reader.ReadAsync().AsTask().WaitAsync(FakeAdsTransport.Timeout);

    /// <summary>
    /// Exactly <paramref name="count"/> requests, each awaited (bounded by the transport's timeout, so a slow machine
    /// does not lose one), then a check that no further request follows within the settling pause.
    /// </summary>
    public async Task<IReadOnlyList<TRequest>> NextRequestsAsync(int count)
    {
        var result = new List<TRequest>(count);
        for (var i = 0; i < count; i++)
        {
            result.Add(await NextRequestAsync());
        }

        result.AddRange(await DrainAsync());
        return result;
    }

    /// <summary>Requests the client has sent but the test has not read yet, after a short settling pause.</summary>
    public async Task<IReadOnlyList<TRequest>> DrainAsync(int settleMilliseconds = 100)
    {
        await Task.Delay(settleMilliseconds);
        var result = new List<TRequest>();
        while (_requests.Reader.TryRead(out var request))
        {
            result.Add(request);
        }

        return result;
    }

    public ValueTask DisposeAsync()
    {
        Disposed = true;
        return ValueTask.CompletedTask;
    }
}

using System.Collections.Concurrent;
using System.Net;
using Grpc.Core;
using Mesh.Sdk.FunctionalTests.Grpc.Greeter;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.FunctionalTests.Grpc.Infrastructure;

/// <summary>
/// One workload of a gRPC test service: a real Kestrel server on 127.0.0.1 (ephemeral port, HTTP/2 without TLS)
/// running <c>mesh.functional.Greeter</c> on Grpc.AspNetCore. It counts calls, answers with its name and version,
/// and fails or waits when the request or <see cref="FailAllWith"/> says so.
/// </summary>
internal sealed class GreeterWorkload : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, int> _callsByKey = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConcurrentQueue<HelloReply>> _seen = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConcurrentQueue<string>> _collected = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _firstChunks = new(StringComparer.Ordinal);
    private int _calls;
    private int _activeStreams;

    private GreeterWorkload(string name, string app, string version, WebApplication webApp)
    {
        Name = name;
        App = app;
        Version = version;
        _app = webApp;
    }

    public string Name { get; }

    /// <summary>The <c>app</c> label: which test services select this workload.</summary>
    public string App { get; }

    public string Version { get; }

    public int Port { get; private set; }

    /// <summary>Calls answered (successfully or not).</summary>
    public int Calls => Volatile.Read(ref _calls);

    /// <summary>When set, every call fails with this status.</summary>
    public StatusCode? FailAllWith { get; set; }

    /// <summary>Calls that carried <paramref name="failKey"/>.</summary>
    public int CallsWithKey(string failKey) => _callsByKey.TryGetValue(failKey, out var n) ? n : 0;

    public static async Task<GreeterWorkload> StartAsync(string name, string app, string version)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton<GreeterState>();
        var webApp = builder.Build();
        var workload = new GreeterWorkload(name, app, version, webApp);
        webApp.Services.GetRequiredService<GreeterState>().Workload = workload;
        webApp.MapGrpcService<GreeterService>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await webApp.StartAsync(cts.Token);
        var address = webApp.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        workload.Port = new Uri(address).Port;
        return workload;
    }

    /// <summary>What the workload saw of each call whose request had <see cref="HelloRequest.Name"/> <paramref name="name"/>.</summary>
    public IReadOnlyList<HelloReply> Seen(string name) => _seen.TryGetValue(name, out var seen) ? seen.ToArray() : [];

    /// <summary>Server-streaming calls in progress.</summary>
    public int ActiveStreams => Volatile.Read(ref _activeStreams);

    internal async Task<HelloReply> AnswerAsync(HelloRequest request, string method, ServerCallContext context)
    {
        Interlocked.Increment(ref _calls);
        var reply = Observe(request, method, context);
        if (FailAllWith is { } always)
        {
            throw new RpcException(new Status(always, $"workload '{Name}' fails every call"));
        }

        if (request.FailTimes > 0 && request.FailKey.Length > 0)
        {
            var seen = _callsByKey.AddOrUpdate(request.FailKey, 1, static (_, n) => n + 1);
            if (seen <= request.FailTimes)
            {
                if (request.RateLimited)
                {
                    context.ResponseTrailers.Add("x-envoy-ratelimited", "true");
                }

                throw new RpcException(new Status((StatusCode)request.FailCode, $"workload '{Name}' fails call {seen} of key '{request.FailKey}'"));
            }
        }

        if (request.DelayMs > 0)
        {
            await Task.Delay(request.DelayMs, context.CancellationToken);
        }

        await context.WriteResponseHeadersAsync(new Metadata { { "x-workload", Name }, { "x-backend-secret", "s3cr3t" } });
        context.ResponseTrailers.Add("x-trailer", "kept");
        context.ResponseTrailers.Add("x-backend-secret", "in-trailers");
        return reply;
    }

    internal async Task StreamAsync(HelloRequest request, IServerStreamWriter<HelloReply> stream, ServerCallContext context)
    {
        Interlocked.Increment(ref _calls);
        var reply = Observe(request, "StreamHello", context);
        Interlocked.Increment(ref _activeStreams);
        try
        {
            for (var i = 0; i < request.Count; i++)
            {
                if (request.DelayMs > 0)
                {
                    await Task.Delay(request.DelayMs, context.CancellationToken);
                }

                await stream.WriteAsync(reply, context.CancellationToken);
            }
        }
        finally
        {
            Interlocked.Decrement(ref _activeStreams);
        }
    }

    /// <summary>Completes when a Collect call of <paramref name="key"/> has received its first chunk.</summary>
    public Task FirstChunk(string key) => _firstChunks.GetOrAdd(key, static _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;

    /// <summary>What each Collect call of <paramref name="key"/> received: the chunk names joined by ',', one entry per call.</summary>
    public IReadOnlyList<string> Collected(string key) => _collected.TryGetValue(key, out var calls) ? calls.ToArray() : [];

    internal async Task<Collected> CollectAsync(IAsyncStreamReader<Chunk> requests, ServerCallContext context)
    {
        Interlocked.Increment(ref _calls);
        var names = new List<string>();
        long bytes = 0;
        Chunk? first = null;
        var failing = false;
        while (await requests.MoveNext(context.CancellationToken))
        {
            var chunk = requests.Current;
            names.Add(chunk.Name);
            bytes += chunk.Data.Length;
            if (first is null)
            {
                first = chunk;
                var call = _callsByKey.AddOrUpdate(chunk.Key, 1, static (_, n) => n + 1);
                failing = call <= chunk.FailTimes;
                _firstChunks.GetOrAdd(chunk.Key, static _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
                if (failing && !chunk.FailAtEnd)
                {
                    break;
                }
            }
        }

        var key = first?.Key ?? string.Empty;
        _collected.GetOrAdd(key, static _ => new ConcurrentQueue<string>()).Enqueue(string.Join(',', names));
        if (failing)
        {
            throw new RpcException(new Status((StatusCode)first!.FailCode, $"workload '{Name}' fails Collect call of key '{key}'"));
        }

        return new Collected { Workload = Name, Names = string.Join(',', names), Bytes = bytes };
    }

    private HelloReply Observe(HelloRequest request, string method, ServerCallContext context)
    {
        var reply = new HelloReply { Workload = Name, Version = Version, Method = method, Authority = context.Host, Path = context.Method };
        foreach (var header in context.RequestHeaders)
        {
            if (header.Key.StartsWith("x-", StringComparison.Ordinal) && !header.IsBinary)
            {
                reply.Headers[header.Key] = reply.Headers.TryGetValue(header.Key, out var existing) ? existing + "," + header.Value : header.Value;
            }
        }

        _seen.GetOrAdd(request.Name, static _ => new ConcurrentQueue<HelloReply>()).Enqueue(reply);
        return reply;
    }

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await _app.StopAsync(cts.Token);
        }
        finally
        {
            await _app.DisposeAsync();
        }
    }
}

/// <summary>Links the service instances DI creates to the workload hosting them.</summary>
internal sealed class GreeterState
{
    public GreeterWorkload? Workload { get; set; }
}

/// <summary>The Greeter implementation: both methods answer the same way and say which method ran.</summary>
internal sealed class GreeterService(GreeterState state) : Mesh.Sdk.FunctionalTests.Grpc.Greeter.Greeter.GreeterBase
{
    private GreeterWorkload Workload => state.Workload ?? throw new InvalidOperationException("Greeter workload not initialised.");

    public override Task<HelloReply> SayHello(HelloRequest request, ServerCallContext context) => Workload.AnswerAsync(request, "SayHello", context);

    public override Task<HelloReply> SayGoodbye(HelloRequest request, ServerCallContext context) => Workload.AnswerAsync(request, "SayGoodbye", context);

    public override Task StreamHello(HelloRequest request, IServerStreamWriter<HelloReply> responseStream, ServerCallContext context) => Workload.StreamAsync(request, responseStream, context);

    public override Task<Collected> Collect(IAsyncStreamReader<Chunk> requestStream, ServerCallContext context) => Workload.CollectAsync(requestStream, context);
}

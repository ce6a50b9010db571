using System.Net;
using Grpc.Core;
using Mesh.Interop.Tests.Echo;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.Interop.Tests.Infrastructure;

/// <summary>
/// One "workload" of the echo service: a real Kestrel server on 127.0.0.1 with an ephemeral
/// port, HTTP/2 without TLS (h2c), answering <c>mesh.test.Echo/Say</c> with its own version.
/// </summary>
internal sealed class EchoWorkload : IAsyncDisposable
{
    private readonly WebApplication _app;
    private int _calls;

    private EchoWorkload(string name, string version, WebApplication app)
    {
        Name = name;
        Version = version;
        _app = app;
    }

    public string Name { get; }

    public string Version { get; }

    public int Port { get; private set; }

    /// <summary>Number of calls this workload has answered.</summary>
    public int Calls => Volatile.Read(ref _calls);

    public static async Task<EchoWorkload> StartAsync(string name, string version, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
            k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton<EchoServiceState>();
        var app = builder.Build();
        var workload = new EchoWorkload(name, version, app);
        app.MapGrpcService<EchoService>();
        app.Services.GetRequiredService<EchoServiceState>().Workload = workload;
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>()
            .Addresses.Single();
        workload.Port = new Uri(address).Port;
        return workload;
    }

    internal void CountCall() => Interlocked.Increment(ref _calls);

    public async ValueTask DisposeAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await _app.StopAsync(cts.Token).ConfigureAwait(false);
        }
        finally
        {
            await _app.DisposeAsync().ConfigureAwait(false);
        }
    }
}

/// <summary>Links the DI-created service instances to the workload that hosts them.</summary>
internal sealed class EchoServiceState
{
    public EchoWorkload? Workload { get; set; }
}

/// <summary>The echo service: replies with the workload's version and the request headers.</summary>
internal sealed class EchoService(EchoServiceState state) : Mesh.Interop.Tests.Echo.Echo.EchoBase
{
    public override Task<SayReply> Say(SayRequest request, ServerCallContext context)
    {
        var workload = state.Workload ?? throw new InvalidOperationException("Echo workload not initialised.");
        workload.CountCall();
        var reply = new SayReply { Version = workload.Version, Workload = workload.Name, Message = request.Message };
        foreach (var entry in context.RequestHeaders)
        {
            if (!entry.IsBinary && !entry.Key.StartsWith(':'))
            {
                reply.Headers[entry.Key] = entry.Value;
            }
        }

        return Task.FromResult(reply);
    }
}

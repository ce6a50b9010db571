using System.Net;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Mesh.Sdk.FunctionalTests.Grpc.Greeter;
using Mesh.Xds.Security;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.FunctionalTests.Security;

/// <summary>
/// A real Kestrel workload on 127.0.0.1 with two ports: <see cref="TlsPort"/> requires mutual TLS (HTTP/1.1 and HTTP/2 by
/// ALPN; the client certificate must chain to <see cref="TrustedRoot"/>) and <see cref="PlainPort"/> is plaintext HTTP/1.1.
/// <c>GET /identity</c> answers <c>tls=… peer=… protocol=…</c>, and <c>Greeter.SayHello</c> answers with the caller's
/// SPIFFE id in <see cref="HelloReply.Workload"/> and the protocol in <see cref="HelloReply.Version"/>. The server
/// certificate can be swapped while running (<see cref="ServerCertificate"/>). <c>AllowAlternateSchemes</c> is on: mesh
/// clients send <c>:scheme http</c> over mTLS.
/// </summary>
internal sealed class MtlsWorkload : IAsyncDisposable
{
    private readonly WebApplication _app;
    private X509Certificate2 _serverCertificate;
    private int _requests;

    private MtlsWorkload(WebApplication app, X509Certificate2 serverCertificate, X509Certificate2 trustedRoot)
    {
        _app = app;
        _serverCertificate = serverCertificate;
        TrustedRoot = trustedRoot;
    }

    public int TlsPort { get; private set; }

    public int PlainPort { get; private set; }

    public X509Certificate2 TrustedRoot { get; }

    /// <summary>The certificate presented to new connections.</summary>
    public X509Certificate2 ServerCertificate
    {
        get => Volatile.Read(ref _serverCertificate);
        set => Volatile.Write(ref _serverCertificate, value);
    }

    /// <summary>Requests that reached the application (any port).</summary>
    public int Requests => Volatile.Read(ref _requests);

    /// <summary>The client SPIFFE ids of the TLS handshakes this workload accepted.</summary>
    public System.Collections.Concurrent.ConcurrentQueue<string> Handshakes { get; } = new();

    public static async Task<MtlsWorkload> StartAsync(X509Certificate2 serverCertificate, X509Certificate2 trustedRoot)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        MtlsWorkload? workload = null;
        builder.WebHost.ConfigureKestrel(k =>
        {
            // Mesh clients keep the request's own scheme (http) on mTLS connections, as a sidecar forwards it: HTTP/2
            // requests arrive with :scheme http over TLS, which Kestrel refuses unless told otherwise.
            k.AllowAlternateSchemes = true;
            k.Listen(IPAddress.Loopback, 0, o =>
            {
                o.Protocols = HttpProtocols.Http1AndHttp2;
                o.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificateSelector = (_, _) => workload!.ServerCertificate,
                    ClientCertificateMode = ClientCertificateMode.RequireCertificate,
                    CheckCertificateRevocation = false,
                    ClientCertificateValidation = (certificate, _, _) => workload!.Accepts(certificate),
                });
            });
            k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http1);
        });
        builder.Services.AddGrpc();
        var app = builder.Build();
        workload = new MtlsWorkload(app, serverCertificate, trustedRoot);
        app.Use((context, next) =>
        {
            Interlocked.Increment(ref workload._requests);
            return next(context);
        });
        app.MapGet("/identity", (HttpContext context) => $"tls={IsTls(context)} peer={PeerOf(context)} protocol={context.Request.Protocol}");
        app.MapGrpcService<IdentityGreeter>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await app.StartAsync(cts.Token);
        var addresses = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses;
        foreach (var address in addresses)
        {
            var uri = new Uri(address);
            if (uri.Scheme == "https")
            {
                workload.TlsPort = uri.Port;
            }
            else
            {
                workload.PlainPort = uri.Port;
            }
        }

        return workload;
    }

    /// <summary>Whether the connection is TLS (the request's scheme says what the client wrote: http).</summary>
    internal static bool IsTls(HttpContext context) => context.Features.Get<Microsoft.AspNetCore.Connections.Features.ITlsHandshakeFeature>() is not null;

    internal static string PeerOf(HttpContext context)
        => context.Connection.ClientCertificate is { } certificate && UriSubjectAlternativeNames.Read(certificate) is [var id, ..] ? id : "none";

    private bool Accepts(X509Certificate2 certificate)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(TrustedRoot);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (!chain.Build(certificate))
        {
            return false;
        }

        Handshakes.Enqueue(UriSubjectAlternativeNames.Read(certificate) is [var id, ..] ? id : "none");
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private sealed class IdentityGreeter : Greeter.GreeterBase
    {
        public override Task<HelloReply> SayHello(HelloRequest request, ServerCallContext context)
        {
            var http = context.GetHttpContext();
            return Task.FromResult(new HelloReply { Workload = PeerOf(http), Version = http.Request.Protocol, Method = IsTls(http) ? "tls" : "plain" });
        }
    }
}

using Grpc.Core;
using Grpc.Net.Client;
using Istio.V1.Auth;
using Mesh.Testing;
using Microsoft.Extensions.Logging;

namespace Mesh.ControlPlane.Tests.Security;

/// <summary>A real control plane on 127.0.0.1:0 with a temp folder, and a gRPC client of its CA.</summary>
internal sealed class CaHarness : IAsyncDisposable
{
    private readonly ILoggerFactory _loggerFactory;
    private GrpcChannel? _channel;

    private CaHarness(MeshControlPlane controlPlane, ILoggerFactory loggerFactory, CapturingLoggerProvider logs)
    {
        ControlPlane = controlPlane;
        _loggerFactory = loggerFactory;
        Logs = logs;
    }

    public MeshControlPlane ControlPlane { get; }

    public CapturingLoggerProvider Logs { get; }

    public IstioCertificateService.IstioCertificateServiceClient Client
    {
        get
        {
            _channel ??= GrpcChannel.ForAddress(ControlPlane.XdsUri!);
            return new IstioCertificateService.IstioCertificateServiceClient(_channel);
        }
    }

    public static async Task<CaHarness> StartAsync(Action<MeshControlPlaneOptions>? configure = null)
    {
        var logs = new CapturingLoggerProvider();
        var loggerFactory = LoggerFactory.Create(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(logs));
        var options = new MeshControlPlaneOptions { XdsAddress = "127.0.0.1", XdsPort = 0, LoggerFactory = loggerFactory };
        configure?.Invoke(options);
        var controlPlane = new MeshControlPlane(options);
        try
        {
            await controlPlane.StartAsync();
        }
        catch
        {
            await controlPlane.DisposeAsync();
            loggerFactory.Dispose();
            throw;
        }

        return new CaHarness(controlPlane, loggerFactory, logs);
    }

    public async Task<string[]> CreateAsync(string csr, string? token = null, long validitySeconds = 0)
    {
        var headers = new Metadata();
        if (token is not null)
        {
            headers.Add("authorization", "Bearer " + token);
        }

        var response = await Client.CreateCertificateAsync(new IstioCertificateRequest { Csr = csr, ValidityDuration = validitySeconds }, headers,
            deadline: DateTime.UtcNow.AddSeconds(20));
        return [.. response.CertChain];
    }

    public async ValueTask DisposeAsync()
    {
        _channel?.Dispose();
        await ControlPlane.DisposeAsync();
        _loggerFactory.Dispose();
    }
}

/// <summary>A temp folder deleted at the end.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mesh-ca-" + Guid.NewGuid().ToString("N")[..12]);

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public string Write(string name, string content)
    {
        System.IO.File.WriteAllText(File(name), content);
        return File(name);
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.FunctionalTests.Infrastructure;

/// <summary>What a backend saw of one request.</summary>
internal sealed record SeenRequest(string Method, string PathAndQuery, string Host, IReadOnlyDictionary<string, string> Headers, string Body);

/// <summary>What a backend received of one <c>/upload</c> request body: its length and SHA-256 (hex).</summary>
internal sealed record SeenUpload(long Bytes, string Sha256, IReadOnlyDictionary<string, string> Headers);

/// <summary>The JSON a backend answers with.</summary>
internal sealed record BackendReply(string Workload, string Version, string Method, string Path, string Host, Dictionary<string, string> Headers);

/// <summary>
/// One workload of a service: a real Kestrel server on 127.0.0.1 with an ephemeral port (HTTP/1.1 and h2c
/// prior knowledge), answering every path with JSON naming its workload and version and echoing the request
/// headers. It counts what it saw and can be told to answer with a status, delay, or fail the next N requests.
/// </summary>
internal sealed class Backend : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<SeenRequest> _seen = new();
    private int _count;
    private int _failRemaining;
    private int _failStatus = 503;
    private int _status;
    private long _delayTicks;
    private int _inFlight;
    private int _maxInFlight;
    private TaskCompletionSource? _gate;
    private int _holdBody;
    private (string Name, string Value)? _failHeader;
    private readonly ConcurrentQueue<SeenUpload> _uploads = new();
    private TaskCompletionSource _uploadStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private Backend(string service, string workload, string version, WebApplication app)
    {
        Service = service;
        Workload = workload;
        Version = version;
        _app = app;
    }

    public string Service { get; }

    public string Workload { get; }

    public string Version { get; }

    public int Port { get; private set; }

    /// <summary>Requests received.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>Requests being handled now.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>The most requests handled at once since the last <see cref="Reset"/>.</summary>
    public int MaxInFlight => Volatile.Read(ref _maxInFlight);

    /// <summary>Requests received, in order.</summary>
    public IReadOnlyList<SeenRequest> Seen => [.. _seen];

    public static async Task<Backend> StartAsync(string service, string workload, string version, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http1));
        var app = builder.Build();
        var backend = new Backend(service, workload, version, app);
        app.Run(backend.HandleAsync);
        await app.StartAsync(cancellationToken).ConfigureAwait(false);
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        backend.Port = new Uri(address).Port;
        return backend;
    }

    /// <summary>Bodies of <c>/upload</c> requests received, in order.</summary>
    public IReadOnlyList<SeenUpload> Uploads => [.. _uploads];

    /// <summary>Completes when an <c>/upload</c> request's first body bytes arrive (since the last <see cref="Reset"/>).</summary>
    public Task UploadStarted => Volatile.Read(ref _uploadStarted).Task;

    /// <summary>The next <paramref name="count"/> requests get <paramref name="status"/> (and the header, when given).</summary>
    public void FailNext(int count, int status = 503, (string Name, string Value)? header = null)
    {
        _failHeader = header;
        Volatile.Write(ref _failStatus, status);
        Volatile.Write(ref _failRemaining, count);
    }

    /// <summary>Every request gets <paramref name="status"/> (0 restores 200).</summary>
    public void AlwaysAnswer(int status) => Volatile.Write(ref _status, status);

    /// <summary>Every request waits <paramref name="delay"/> before the answer.</summary>
    public void Delay(TimeSpan delay) => Interlocked.Exchange(ref _delayTicks, delay.Ticks);

    /// <summary>
    /// From now on requests wait for <see cref="ReleaseHeld"/>: before the response when <paramref name="body"/> is
    /// false; with <paramref name="body"/> true the status, headers and a first body line (<c>first</c>) are sent
    /// and flushed, and the rest of the body (<c>second</c>) waits.
    /// </summary>
    public void Hold(bool body = false)
    {
        Volatile.Write(ref _holdBody, body ? 1 : 0);
        Volatile.Write(ref _gate, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
    }

    /// <summary>Lets every held request (and later ones) finish.</summary>
    public void ReleaseHeld() => Interlocked.Exchange(ref _gate, null)?.TrySetResult();

    /// <summary>Forgets counts and behaviours.</summary>
    public void Reset()
    {
        ReleaseHeld();
        Volatile.Write(ref _holdBody, 0);
        Volatile.Write(ref _maxInFlight, 0);
        Volatile.Write(ref _count, 0);
        Volatile.Write(ref _failRemaining, 0);
        Volatile.Write(ref _status, 0);
        Interlocked.Exchange(ref _delayTicks, 0);
        _failHeader = null;
        _seen.Clear();
        _uploads.Clear();
        Volatile.Write(ref _uploadStarted, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
    }

    private async Task HandleAsync(HttpContext context)
    {
        var inFlight = Interlocked.Increment(ref _inFlight);
        int max;
        while ((max = Volatile.Read(ref _maxInFlight)) < inFlight && Interlocked.CompareExchange(ref _maxInFlight, inFlight, max) != max)
        {
        }

        try
        {
            await HandleCoreAsync(context).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    private async Task HandleCoreAsync(HttpContext context)
    {
        Interlocked.Increment(ref _count);
        var request = context.Request;
        if (request.Path.StartsWithSegments("/upload", StringComparison.Ordinal))
        {
            await HandleUploadAsync(context).ConfigureAwait(false);
            return;
        }

        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in request.Headers)
        {
            headers[key] = value.ToString();
        }

        string body;
        using (var reader = new StreamReader(request.Body))
        {
            body = await reader.ReadToEndAsync(context.RequestAborted).ConfigureAwait(false);
        }

        var pathAndQuery = request.Path + request.QueryString;
        _seen.Enqueue(new SeenRequest(request.Method, pathAndQuery, request.Host.Value ?? string.Empty, headers, body));
        var delay = Interlocked.Read(ref _delayTicks);
        if (delay > 0)
        {
            try
            {
                await Task.Delay(TimeSpan.FromTicks(delay), context.RequestAborted).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        if (Volatile.Read(ref _gate) is { } gate)
        {
            try
            {
                if (Volatile.Read(ref _holdBody) == 1)
                {
                    context.Response.ContentType = "text/plain";
                    context.Response.Headers["x-backend-workload"] = Workload;
                    await context.Response.WriteAsync("first\n", context.RequestAborted).ConfigureAwait(false);
                    await context.Response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
                    await gate.Task.WaitAsync(context.RequestAborted).ConfigureAwait(false);
                    await context.Response.WriteAsync("second\n", context.RequestAborted).ConfigureAwait(false);
                    return;
                }

                await gate.Task.WaitAsync(context.RequestAborted).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }

        var status = Volatile.Read(ref _status);
        if (Interlocked.Decrement(ref _failRemaining) >= 0)
        {
            status = Volatile.Read(ref _failStatus);
            if (_failHeader is { } failHeader)
            {
                context.Response.Headers[failHeader.Name] = failHeader.Value;
            }
        }
        else
        {
            Interlocked.Exchange(ref _failRemaining, 0);
        }

        context.Response.StatusCode = status == 0 ? 200 : status;
        context.Response.Headers["x-backend-workload"] = Workload;
        context.Response.Headers["x-backend-version"] = Version;
        context.Response.ContentType = "application/json";
        var reply = new BackendReply(Workload, Version, request.Method, pathAndQuery, request.Host.Value ?? string.Empty, headers);
        await context.Response.WriteAsync(JsonSerializer.Serialize(reply, JsonOptions), context.RequestAborted).ConfigureAwait(false);
    }

    // Reads the body in pooled chunks (any size: Kestrel's 30 MB default limit is lifted), hashing as it goes, so a
    // large upload costs the server no memory of its size; then answers as usual (FailNext applies).
    private async Task HandleUploadAsync(HttpContext context)
    {
        context.Features.GetRequiredFeature<IHttpMaxRequestBodySizeFeature>().MaxRequestBodySize = null;
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in context.Request.Headers)
        {
            headers[key] = value.ToString();
        }

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        long total = 0;
        try
        {
            int read;
            while ((read = await context.Request.Body.ReadAsync(buffer, context.RequestAborted).ConfigureAwait(false)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                if (total == 0)
                {
                    Volatile.Read(ref _uploadStarted).TrySetResult();
                }

                total += read;
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or Microsoft.AspNetCore.Http.BadHttpRequestException)
        {
            _uploads.Enqueue(new SeenUpload(total, "aborted", headers));
            return;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        _uploads.Enqueue(new SeenUpload(total, Convert.ToHexString(hash.GetHashAndReset()), headers));
        var status = Volatile.Read(ref _status);
        if (Interlocked.Decrement(ref _failRemaining) >= 0)
        {
            status = Volatile.Read(ref _failStatus);
            if (_failHeader is { } failHeader)
            {
                context.Response.Headers[failHeader.Name] = failHeader.Value;
            }
        }
        else
        {
            Interlocked.Exchange(ref _failRemaining, 0);
        }

        context.Response.StatusCode = status == 0 ? 200 : status;
        context.Response.Headers["x-backend-workload"] = Workload;
        context.Response.ContentType = "text/plain";
        await context.Response.WriteAsync(total.ToString(System.Globalization.CultureInfo.InvariantCulture), context.RequestAborted).ConfigureAwait(false);
    }

    internal static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web);

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

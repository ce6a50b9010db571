using System.Diagnostics;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Mesh.Sdk.Telemetry.Tracing;

/// <summary>
/// The exporter of one <see cref="TracingPolicy"/>: an OpenTelemetry <see cref="TracerProvider"/> owned by the mesh,
/// whose resource names the workload (<c>service.name</c> = the policy's service name, else <c>&lt;app&gt;.&lt;namespace&gt;</c>,
/// which Zipkin shows as <c>localEndpoint.serviceName</c>), with a batch processor (200 ms delay, so spans reach the
/// collector within a second) over the Zipkin or OTLP exporter. The exporter's requests go through a meshed
/// <see cref="HttpClient"/>, so the collector's host resolves like any mesh host. The provider listens to no source:
/// only the spans <see cref="MeshTracer"/> hands it (this workload's) are exported. Disposing flushes.
/// </summary>
internal sealed class SpanExport : IDisposable
{
    private const int ScheduledDelayMilliseconds = 200;
    private readonly TracerProvider _provider;
    private readonly BatchActivityExportProcessor _processor;
    private readonly HttpClient _client;
    private int _disposed;

    public SpanExport(TracingPolicy policy, string defaultServiceName, Func<HttpClient> createClient)
    {
        Policy = policy;
        _client = createClient();
        // The Zipkin exporter is marked obsolete upstream in favour of OTLP; Istio's zipkin provider still speaks
        // Zipkin v2 JSON, which is what a Zipkin collector receives.
#pragma warning disable CS0618
        BaseExporter<Activity> exporter = policy.Provider switch
        {
            TraceProviderKind.Zipkin => new ZipkinExporter(
                new ZipkinExporterOptions { Endpoint = policy.CollectorUri, UseShortTraceIds = !policy.TraceId128Bit },
                _client),
            _ => new OtlpTraceExporter(new OtlpExporterOptions
            {
                Endpoint = policy.CollectorUri,
                Protocol = policy.Provider == TraceProviderKind.OtlpGrpc ? OtlpExportProtocol.Grpc : OtlpExportProtocol.HttpProtobuf,
                HttpClientFactory = () => _client,
            }),
        };
#pragma warning restore CS0618
        _processor = new BatchActivityExportProcessor(exporter, maxQueueSize: 4096, scheduledDelayMilliseconds: ScheduledDelayMilliseconds, exporterTimeoutMilliseconds: 10_000, maxExportBatchSize: 512);
        var serviceName = policy.ServiceName.Length > 0 ? policy.ServiceName : defaultServiceName;
        _provider = global::OpenTelemetry.Sdk.CreateTracerProviderBuilder()
            .SetResourceBuilder(ResourceBuilder.CreateEmpty().AddService(serviceName))
            .AddProcessor(_processor)
            .Build()!;
    }

    public TracingPolicy Policy { get; }

    /// <summary>Queues a finished, sampled span for export.</summary>
    public void OnEnd(Activity span)
    {
        if (Volatile.Read(ref _disposed) == 0)
        {
            _processor.OnEnd(span);
        }
    }

    /// <summary>Exports what is queued now; <see langword="false"/> when it did not finish in time.</summary>
    public bool Flush(int timeoutMilliseconds = 5000) => _provider.ForceFlush(timeoutMilliseconds);

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // Shutting down the provider flushes the queue, then the exporter.
        _provider.Dispose();
        _client.Dispose();
    }
}

/// <summary>
/// Lets the synchronous <see cref="HttpClient.Send(HttpRequestMessage)"/> of an exporter go through the mesh's
/// handler, which routes asynchronous sends only: the exporter sends from its own background thread, so waiting there
/// blocks nothing else.
/// </summary>
internal sealed class SynchronousSendHandler(HttpMessageHandler inner) : DelegatingHandler(inner)
{
    protected override HttpResponseMessage Send(HttpRequestMessage request, CancellationToken cancellationToken)
        => SendAsync(request, cancellationToken).GetAwaiter().GetResult();
}

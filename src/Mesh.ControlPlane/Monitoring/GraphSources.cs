using System.Globalization;
using System.Net;
using System.Text.Json;
using Mesh.ControlPlane.Registry;
using Microsoft.Extensions.Logging;

namespace Mesh.ControlPlane.Monitoring;

/// <summary>Where the service graph's traffic comes from.</summary>
internal interface IGraphSource
{
    Task<GraphInput> ReadAsync(CancellationToken cancellationToken);
}

/// <summary>The metric names the graph reads (the SDK's <c>MeshTelemetry</c> names).</summary>
internal static class IstioMetricNames
{
    public const string RequestsTotal = "istio_requests_total";
    public const string RequestDuration = "istio_request_duration_milliseconds";
    public const string RequestDurationBucket = RequestDuration + "_bucket";

    /// <summary>The labels an edge is grouped by.</summary>
    public static readonly string[] EdgeLabels =
    [
        "reporter", "source_workload", "source_workload_namespace", "source_app", "source_version", "destination_workload", "destination_workload_namespace",
        "destination_service_name", "destination_service_namespace", "destination_app", "destination_version", "response_code", "connection_security_policy",
    ];

    public static IReadOnlyList<KnownWorkload> Known(ServiceRegistry registry)
    {
        var known = new List<KnownWorkload>();
        foreach (var r in registry.Registrations)
        {
            var service = r.Labels.GetValueOrDefault("app") ?? r.ServiceHost.Split('.')[0];
            var version = r.Labels.GetValueOrDefault("version") ?? ServiceGraph.Unknown;
            known.Add(new KnownWorkload(r.Namespace, service, version, r.WorkloadName ?? r.ServiceHost.Split('.')[0]));
        }

        return known;
    }
}

/// <summary>
/// Scrapes every self-registered workload every <c>interval</c> (its <c>MESH_METRICS_PORT</c> when it registered one,
/// else its first app port, in plaintext, at its metrics path) and keeps each target's scrapes of the last window; the
/// graph's increases are the newest scrape minus the oldest one in the window (a series absent from the oldest counts
/// from 0; a counter that went down, a restarted workload, counts from 0 again), its rates those increases over the
/// time between the two scrapes.
/// </summary>
internal sealed partial class WorkloadScraper : IGraphSource, IAsyncDisposable
{
    private static readonly HashSet<string> s_names = new(StringComparer.Ordinal) { IstioMetricNames.RequestsTotal, IstioMetricNames.RequestDurationBucket };
    private readonly ServiceRegistry _registry;
    private readonly TimeProvider _time;
    private readonly TimeSpan _interval;
    private readonly TimeSpan _window;
    private readonly ILogger _logger;
    private readonly HttpClient _http;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, List<Scrape>> _history = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private Task? _loop;

    private sealed record Scrape(DateTimeOffset Time, List<MetricSample> Samples);

    public WorkloadScraper(ServiceRegistry registry, TimeProvider time, TimeSpan interval, TimeSpan window, ILogger logger)
    {
        _registry = registry;
        _time = time;
        _interval = interval;
        _window = window;
        _logger = logger;
        _http = new HttpClient { Timeout = TimeSpan.FromSeconds(Math.Clamp(interval.TotalSeconds, 1, 10)) };
    }

    /// <summary>How many scrape rounds have completed (tests wait on it).</summary>
    public long Rounds => Interlocked.Read(ref _rounds);

    private long _rounds;

    public void Start() => _loop = Task.Run(() => RunAsync(_stop.Token));

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(_interval, _time);
        do
        {
            try
            {
                await ScrapeAllAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // One failed round must not end the loop: the graph would silently stop moving.
                Log.RoundFailed(_logger, ex);
            }

            Interlocked.Increment(ref _rounds);
        }
        while (await WaitAsync(timer, cancellationToken).ConfigureAwait(false));
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken cancellationToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>The URL a registration is scraped at.</summary>
    internal static Uri? TargetOf(SelfRegistration registration)
    {
        var port = registration.MetricsPort ?? (registration.Ports.Count > 0 ? (int)registration.Ports.OrderBy(static p => p.Key).First().Value : 0);
        if (port == 0 || !IPAddress.TryParse(registration.Address, out var address))
        {
            return null;
        }

        var host = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]" : address.ToString();
        return new Uri(string.Create(CultureInfo.InvariantCulture, $"http://{host}:{port}{registration.MetricsPath ?? "/metrics"}"));
    }

    internal async Task ScrapeAllAsync(CancellationToken cancellationToken)
    {
        var targets = _registry.Registrations.Select(TargetOf).OfType<Uri>().Distinct().ToList();
        var results = await Task.WhenAll(targets.Select(t => ScrapeAsync(t, cancellationToken))).ConfigureAwait(false);
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            foreach (var key in _history.Keys.Where(k => !targets.Any(t => t.OriginalString == k)).ToList())
            {
                _history.Remove(key);
            }

            for (var i = 0; i < targets.Count; i++)
            {
                if (results[i] is not { } samples)
                {
                    continue;
                }

                if (!_history.TryGetValue(targets[i].OriginalString, out var scrapes))
                {
                    scrapes = [];
                    _history[targets[i].OriginalString] = scrapes;
                }

                scrapes.Add(new Scrape(now, samples));
                // Keep the newest scrape at or before the window's start as the baseline, and everything after it.
                while (scrapes.Count > 2 && scrapes[1].Time <= now - _window)
                {
                    scrapes.RemoveAt(0);
                }
            }
        }
    }

    private async Task<List<MetricSample>?> ScrapeAsync(Uri target, CancellationToken cancellationToken)
    {
        try
        {
            var text = await _http.GetStringAsync(target, cancellationToken).ConfigureAwait(false);
            return PrometheusTextParser.Parse(text, s_names);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            Log.ScrapeFailed(_logger, target, ex.Message);
            return null;
        }
    }

    public Task<GraphInput> ReadAsync(CancellationToken cancellationToken)
    {
        var requests = new List<SeriesIncrease>();
        var buckets = new List<SeriesIncrease>();
        var window = 0.0;
        lock (_gate)
        {
            foreach (var scrapes in _history.Values)
            {
                var newest = scrapes[^1];
                var oldest = scrapes[0];
                var seconds = (newest.Time - oldest.Time).TotalSeconds;
                window = Math.Max(window, seconds);
                var before = scrapes.Count > 1 ? oldest.Samples.ToDictionary(static s => s.Key, static s => s.Value, StringComparer.Ordinal) : null;
                foreach (var sample in newest.Samples)
                {
                    var previous = before?.GetValueOrDefault(sample.Key) ?? 0;
                    var increase = sample.Value >= previous ? sample.Value - previous : sample.Value;
                    if (before is null)
                    {
                        increase = 0; // one scrape: no window to measure in yet
                    }

                    var series = new SeriesIncrease(sample.Labels, increase, seconds > 0 ? increase / seconds : 0);
                    (sample.Name == IstioMetricNames.RequestsTotal ? requests : buckets).Add(series);
                }
            }
        }

        return Task.FromResult(new GraphInput("scrape", window, requests, buckets, IstioMetricNames.Known(_registry)));
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }

        _stop.Dispose();
        _http.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(8301, LogLevel.Debug, "Scraping '{Target}' failed: {Reason}")]
        public static partial void ScrapeFailed(ILogger logger, Uri target, string reason);

        [LoggerMessage(8303, LogLevel.Warning, "A round of scraping the workloads failed; the next round runs as scheduled.")]
        public static partial void RoundFailed(ILogger logger, Exception exception);
    }
}

/// <summary>
/// Reads the graph's traffic from a Prometheus server's HTTP API (<c>/api/v1/query</c>): <c>increase()</c> of
/// <c>istio_requests_total</c> and of the duration buckets over the window, summed by the edge labels.
/// </summary>
internal sealed class PrometheusGraphSource(Uri baseUrl, TimeSpan window, ServiceRegistry registry) : IGraphSource, IDisposable
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

    public static string RequestsQuery(TimeSpan window)
        => $"sum by ({string.Join(", ", IstioMetricNames.EdgeLabels)}) (increase({IstioMetricNames.RequestsTotal}[{Seconds(window)}s]))";

    public static string BucketsQuery(TimeSpan window)
        => $"sum by ({string.Join(", ", IstioMetricNames.EdgeLabels)}, le) (increase({IstioMetricNames.RequestDurationBucket}[{Seconds(window)}s]))";

    private static string Seconds(TimeSpan window) => ((long)Math.Max(1, window.TotalSeconds)).ToString(CultureInfo.InvariantCulture);

    public async Task<GraphInput> ReadAsync(CancellationToken cancellationToken)
    {
        var seconds = Math.Max(1, Math.Floor(window.TotalSeconds));
        var requests = await QueryAsync(RequestsQuery(window), seconds, cancellationToken).ConfigureAwait(false);
        var buckets = await QueryAsync(BucketsQuery(window), seconds, cancellationToken).ConfigureAwait(false);
        return new GraphInput("prometheus", seconds, requests, buckets, IstioMetricNames.Known(registry));
    }

    private async Task<List<SeriesIncrease>> QueryAsync(string query, double seconds, CancellationToken cancellationToken)
    {
        var url = new Uri(baseUrl, "api/v1/query?query=" + Uri.EscapeDataString(query));
        using var response = await _http.GetAsync(url, cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        using var document = JsonDocument.Parse(body);
        var root = document.RootElement;
        if (!response.IsSuccessStatusCode || root.GetProperty("status").GetString() != "success")
        {
            var error = root.TryGetProperty("error", out var e) ? e.GetString() : body;
            throw new InvalidOperationException($"Prometheus at '{baseUrl}' answered {(int)response.StatusCode} to '{query}': {error}");
        }

        var result = new List<SeriesIncrease>();
        foreach (var item in root.GetProperty("data").GetProperty("result").EnumerateArray())
        {
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var label in item.GetProperty("metric").EnumerateObject())
            {
                labels[label.Name] = label.Value.GetString() ?? string.Empty;
            }

            if (PrometheusTextParser.TryParseValue(item.GetProperty("value")[1].GetString(), out var value) && double.IsFinite(value))
            {
                result.Add(new SeriesIncrease(labels, value, value / seconds));
            }
        }

        return result;
    }

    public void Dispose() => _http.Dispose();
}

using Mesh.ControlPlane.Monitoring;

namespace Mesh.ControlPlane.Tests.Monitoring;

public sealed class PrometheusTextParserTests
{
    [Fact]
    public void Parse_KeepsTheAskedMetrics_WithLabelsValuesAndSeriesKeys()
    {
        const string text = """
            # HELP istio_requests_total Total requests.
            # TYPE istio_requests_total counter
            istio_requests_total{reporter="source",source_app="front",path="a\"b\\c\nd"} 12
            istio_requests_total{reporter="destination"} 3 1700000000000
            istio_request_duration_milliseconds_bucket{le="+Inf",reporter="source"} 7
            istio_request_duration_milliseconds_bucket{le="0.5"} 1e2
            istio_request_bytes_count{reporter="source"} 9
            istio_requests_total{reporter="broken} 1
            istio_requests_total{reporter="source"} notanumber
            """;
        var samples = PrometheusTextParser.Parse(text, new HashSet<string> { "istio_requests_total", "istio_request_duration_milliseconds_bucket" });

        Assert.Equal(4, samples.Count);
        Assert.Equal("front", samples[0].Labels["source_app"]);
        Assert.Equal("a\"b\\c\nd", samples[0].Labels["path"]);
        Assert.Equal(12, samples[0].Value);
        Assert.Equal("istio_requests_total{reporter=\"destination\"}", samples[1].Key);
        Assert.Equal(3, samples[1].Value);
        Assert.Equal("+Inf", samples[2].Labels["le"]);
        Assert.Equal(100, samples[3].Value);
    }

    [Fact]
    public void Parse_SampleWithoutLabels_HasEmptyLabels()
    {
        var sample = Assert.Single(PrometheusTextParser.Parse("istio_requests_total 5\n", new HashSet<string> { "istio_requests_total" }));
        Assert.Empty(sample.Labels);
        Assert.Equal("istio_requests_total", sample.Key);
        Assert.Equal(5, sample.Value);
    }
}

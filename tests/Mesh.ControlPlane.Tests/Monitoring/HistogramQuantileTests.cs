using Mesh.ControlPlane.Monitoring;

namespace Mesh.ControlPlane.Tests.Monitoring;

public sealed class HistogramQuantileTests
{
    private static readonly Dictionary<double, double> Buckets = new()
    {
        [0.5] = 0, [1] = 2, [5] = 8, [10] = 10, [double.PositiveInfinity] = 10,
    };

    [Fact]
    public void Compute_InterpolatesInsideTheRanksBucket_AsPromQL()
    {
        // rank 5 of 10 falls in (1, 5] holding observations 3..8: 1 + 4 * (5 - 2) / 6.
        Assert.Equal(3, HistogramQuantile.Compute(0.5, Buckets), 9);

        // rank 9.9 falls in (5, 10] holding 9..10: 5 + 5 * (9.9 - 8) / 2.
        Assert.Equal(9.75, HistogramQuantile.Compute(0.99, Buckets), 9);

        // The first bucket interpolates from 0: rank 0.2 of 2 in (0, 1].
        Assert.Equal(0.1, HistogramQuantile.Compute(0.1, new Dictionary<double, double> { [1] = 2, [double.PositiveInfinity] = 2 }), 9);
    }

    [Fact]
    public void Compute_RankInTheInfBucket_AnswersTheHighestFiniteBound()
        => Assert.Equal(1, HistogramQuantile.Compute(0.9, new Dictionary<double, double> { [1] = 5, [double.PositiveInfinity] = 10 }));

    [Fact]
    public void Compute_WithoutObservationsOrInfBucket_IsNaN_AndOutOfRangeQuantilesAreInfinite()
    {
        Assert.True(double.IsNaN(HistogramQuantile.Compute(0.5, new Dictionary<double, double> { [1] = 0, [double.PositiveInfinity] = 0 })));
        Assert.True(double.IsNaN(HistogramQuantile.Compute(0.5, new Dictionary<double, double> { [1] = 3, [5] = 4 })));
        Assert.True(double.IsNaN(HistogramQuantile.Compute(0.5, new Dictionary<double, double>())));
        Assert.Equal(double.NegativeInfinity, HistogramQuantile.Compute(-0.1, Buckets));
        Assert.Equal(double.PositiveInfinity, HistogramQuantile.Compute(1.1, Buckets));
    }

    [Fact]
    public void Compute_NonMonotonicCounts_AreMadeMonotonic()
        => Assert.Equal(3, HistogramQuantile.Compute(0.5, new Dictionary<double, double>
        {
            [0.5] = 0, [1] = 2, [5] = 8, [10] = 7, [double.PositiveInfinity] = 10,
        }), 9);
}

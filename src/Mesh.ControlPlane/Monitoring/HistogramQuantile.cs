namespace Mesh.ControlPlane.Monitoring;

/// <summary>
/// The φ-quantile of a histogram given as cumulative buckets, computed as PromQL's <c>histogram_quantile</c> does:
/// the rank's bucket is found and the value interpolated linearly inside it (from 0 for the first bucket); a rank in
/// the <c>+Inf</c> bucket answers the highest finite bound; no observations, or no <c>+Inf</c> bucket, answer NaN.
/// </summary>
internal static class HistogramQuantile
{
    /// <param name="quantile">φ, from 0 to 1.</param>
    /// <param name="buckets">Upper bound → cumulative count, in any order; must include <see cref="double.PositiveInfinity"/>.</param>
    public static double Compute(double quantile, IReadOnlyDictionary<double, double> buckets)
    {
        if (quantile < 0)
        {
            return double.NegativeInfinity;
        }

        if (quantile > 1)
        {
            return double.PositiveInfinity;
        }

        var sorted = buckets.OrderBy(static b => b.Key).ToList();
        if (sorted.Count < 2 || !double.IsPositiveInfinity(sorted[^1].Key))
        {
            return double.NaN;
        }

        // Counts scraped at slightly different moments can dip; PromQL makes them monotonic the same way.
        var counts = new double[sorted.Count];
        var max = double.NegativeInfinity;
        for (var i = 0; i < sorted.Count; i++)
        {
            max = Math.Max(max, sorted[i].Value);
            counts[i] = max;
        }

        var observations = counts[^1];
        if (observations == 0 || double.IsNaN(observations))
        {
            return double.NaN;
        }

        var rank = quantile * observations;
        var b = 0;
        while (b < counts.Length - 1 && counts[b] < rank)
        {
            b++;
        }

        if (b == counts.Length - 1)
        {
            return sorted[^2].Key;
        }

        if (b == 0 && sorted[0].Key <= 0)
        {
            return sorted[0].Key;
        }

        var start = 0.0;
        var end = sorted[b].Key;
        var count = counts[b];
        if (b > 0)
        {
            start = sorted[b - 1].Key;
            count -= counts[b - 1];
            rank -= counts[b - 1];
        }

        return start + ((end - start) * (rank / count));
    }
}

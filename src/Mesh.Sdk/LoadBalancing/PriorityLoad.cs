namespace Mesh.Sdk.LoadBalancing;

/// <summary>
/// How traffic splits across priorities, in percent, computed as Envoy does
/// (<c>LoadBalancerBase::recalculatePerPriorityState</c>): each priority's availability is
/// <c>min(100, overprovisioning_factor × healthy / total)</c>; load goes to the highest priority up to its
/// availability and the rest spills to the next; degraded hosts take what healthy ones cannot; a remainder
/// from rounding goes to the first priority with healthy (else degraded) hosts. With no availability at all,
/// priority 0 gets everything (<see cref="NoAvailability"/>).
/// </summary>
internal sealed class PriorityLoad
{
    private PriorityLoad(int[] healthy, int[] degraded, bool noAvailability)
    {
        Healthy = healthy;
        Degraded = degraded;
        NoAvailability = noAvailability;
    }

    /// <summary>Percent of requests sent to each priority's healthy hosts.</summary>
    public IReadOnlyList<int> Healthy { get; }

    /// <summary>Percent of requests sent to each priority's degraded hosts.</summary>
    public IReadOnlyList<int> Degraded { get; }

    /// <summary>No priority has a healthy or degraded host.</summary>
    public bool NoAvailability { get; }

    /// <summary>Computes the split.</summary>
    /// <param name="healthyAvailability">Per priority, <c>min(100, factor × healthy / total)</c>.</param>
    /// <param name="degradedAvailability">Per priority, <c>min(100, factor × degraded / total)</c>.</param>
    public static PriorityLoad Compute(ReadOnlySpan<int> healthyAvailability, ReadOnlySpan<int> degradedAvailability)
    {
        var count = healthyAvailability.Length;
        var healthy = new int[count];
        var degraded = new int[count];
        var total = 0;
        for (var i = 0; i < count; i++)
        {
            total += healthyAvailability[i] + degradedAvailability[i];
        }

        var normalizedTotal = Math.Min(100, total);
        if (normalizedTotal == 0)
        {
            if (count > 0)
            {
                healthy[0] = 100;
            }

            return new PriorityLoad(healthy, degraded, noAvailability: true);
        }

        var (firstHealthy, remaining) = Distribute(healthy, healthyAvailability, 100, normalizedTotal);
        var (firstDegraded, remainder) = Distribute(degraded, degradedAvailability, remaining, normalizedTotal);
        if (remainder > 0)
        {
            if (firstHealthy >= 0)
            {
                healthy[firstHealthy] += remainder;
            }
            else
            {
                degraded[firstDegraded] += remainder;
            }
        }

        return new PriorityLoad(healthy, degraded, noAvailability: false);
    }

    /// <summary>Availability of one priority: <c>min(100, factor × part / total)</c> with integer arithmetic as Envoy.</summary>
    public static int Availability(uint overprovisioningFactor, ulong part, ulong total)
        => total == 0 ? 0 : (int)Math.Min(100, overprovisioningFactor * part / total);

    private static (int First, int Remaining) Distribute(int[] load, ReadOnlySpan<int> availability, int totalLoad, int normalizedTotal)
    {
        var first = -1;
        for (var i = 0; i < availability.Length; i++)
        {
            if (first < 0 && availability[i] > 0)
            {
                first = i;
            }

            load[i] = Math.Min(totalLoad, availability[i] * 100 / normalizedTotal);
            totalLoad -= load[i];
        }

        return (first, totalLoad);
    }
}

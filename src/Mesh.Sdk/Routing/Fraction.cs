using Envoy.Type.V3;

namespace Mesh.Sdk.Routing;

/// <summary>
/// A compiled <c>FractionalPercent</c>: <see cref="Numerator"/> out of <see cref="Denominator"/> (100, 10 000 or
/// 1 000 000). A numerator above the denominator is clamped to it (always), as Envoy does.
/// </summary>
/// <param name="Numerator">Parts that are selected.</param>
/// <param name="Denominator">Parts in total.</param>
internal readonly record struct Fraction(uint Numerator, uint Denominator)
{
    /// <summary>Always selected.</summary>
    public static Fraction Always { get; } = new(100, 100);

    /// <summary>Never selected.</summary>
    public static Fraction Never { get; } = new(0, 100);

    /// <summary>Converts the wire value.</summary>
    public static Fraction From(FractionalPercent? percent)
    {
        if (percent is null)
        {
            return Never;
        }

        var denominator = DenominatorOf(percent.Denominator);
        return new Fraction(Math.Min(percent.Numerator, denominator), denominator);
    }

    /// <summary>The denominator a wire enum stands for.</summary>
    public static uint DenominatorOf(FractionalPercent.Types.DenominatorType denominator) => denominator switch
    {
        FractionalPercent.Types.DenominatorType.Hundred => 100,
        FractionalPercent.Types.DenominatorType.TenThousand => 10_000,
        _ => 1_000_000,
    };

    /// <summary>Whether a uniformly random draw falls within the fraction.</summary>
    public bool Sample(Random random)
        => Numerator >= Denominator || (Numerator != 0 && (uint)random.NextInt64(Denominator) < Numerator);

    /// <summary>The fraction as a percentage, for display.</summary>
    public double Percent => 100.0 * Numerator / Denominator;
}

namespace Bookinfo.Reviews;

/// <summary>What distinguishes v1, v2 and v3 of the reviews service.</summary>
internal sealed record ReviewsSettings(string Version, string WorkloadName, bool RatingsEnabled, string StarColor, TimeSpan RatingsTimeout)
{
    /// <summary>Reads <c>Bookinfo:Version</c> (v1, v2 or v3; default v1) and the workload name (<c>Mesh:WorkloadName</c>).</summary>
    public static ReviewsSettings From(IConfiguration configuration)
    {
        var version = configuration["Bookinfo:Version"] ?? "v1";
        var workload = configuration["Mesh:WorkloadName"] ?? "reviews-" + version;
        return version switch
        {
            "v1" => new ReviewsSettings(version, workload, RatingsEnabled: false, StarColor: "black", RatingsTimeout: TimeSpan.FromSeconds(10)),
            // The original's ratings timeouts: 10 s for the black-star version, 2.5 s for the red-star one.
            "v2" => new ReviewsSettings(version, workload, RatingsEnabled: true, StarColor: "black", RatingsTimeout: TimeSpan.FromSeconds(10)),
            "v3" => new ReviewsSettings(version, workload, RatingsEnabled: true, StarColor: "red", RatingsTimeout: TimeSpan.FromMilliseconds(2500)),
            _ => throw new InvalidOperationException($"Configuration 'Bookinfo:Version' is '{version}'; it must be v1, v2 or v3."),
        };
    }
}

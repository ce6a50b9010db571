namespace Bookinfo.Launcher;

/// <summary>One workload the launcher starts: a service at a version, built from a project folder.</summary>
internal sealed record WorkloadSpec(string Service, string Version, string ProjectFolder, string AssemblyName)
{
    /// <summary>The service port every bookinfo service is called on (http://reviews:9080).</summary>
    public const int ServicePort = 9080;

    /// <summary>The workloads in start order: backends first, productpage last.</summary>
    public static readonly IReadOnlyList<WorkloadSpec> All =
    [
        new("details", "v1", "details", "Bookinfo.Details"),
        new("ratings", "v1", "ratings", "Bookinfo.Ratings"),
        new("reviews", "v1", "reviews", "Bookinfo.Reviews"),
        new("reviews", "v2", "reviews", "Bookinfo.Reviews"),
        new("reviews", "v3", "reviews", "Bookinfo.Reviews"),
        new("productpage", "v1", "productpage", "Bookinfo.ProductPage"),
    ];

    /// <summary>productpage-v1, reviews-v2, ...</summary>
    public string Name => Service + "-" + Version;
}

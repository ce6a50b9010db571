namespace Mesh.ControlPlane.Tests;

/// <summary>Istio YAML used across tests: bookinfo's reviews with two versions.</summary>
internal static class TestYaml
{
    public const string ReviewsServiceEntry = """
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata:
          name: reviews
        spec:
          hosts: [reviews.default.svc.cluster.local]
          ports:
          - number: 9080
            name: http
            protocol: HTTP
          resolution: STATIC
          workloadSelector:
            labels:
              app: reviews
        """;

    public static string Workload(string name, string version, int port, string locality = "r1/z1") => $"""
        apiVersion: networking.istio.io/v1beta1
        kind: WorkloadEntry
        metadata:
          name: {name}
        spec:
          address: 127.0.0.1
          ports:
            http: {port}
          labels:
            app: reviews
            version: {version}
          locality: {locality}
          weight: 3
        """;

    public const string ReviewsDestinationRule = """
        apiVersion: networking.istio.io/v1alpha3
        kind: DestinationRule
        metadata:
          name: reviews
        spec:
          host: reviews
          trafficPolicy:
            loadBalancer:
              simple: LEAST_REQUEST
          subsets:
          - name: v1
            labels:
              version: v1
          - name: v2
            labels:
              version: v2
            trafficPolicy:
              loadBalancer:
                consistentHash:
                  httpHeaderName: x-user
                  minimumRingSize: 1024
        """;

    public const string ReviewsVirtualService = """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: reviews
        spec:
          hosts: [reviews]
          http:
          - name: jason
            match:
            - headers:
                end-user:
                  exact: jason
              uri:
                prefix: /reviews
            route:
            - destination:
                host: reviews
                subset: v2
          - route:
            - destination:
                host: reviews
                subset: v1
              weight: 80
            - destination:
                host: reviews
                subset: v2
              weight: 20
        """;

    public static string All => string.Join("\n---\n", ReviewsServiceEntry, Workload("reviews-v1", "v1", 19081), Workload("reviews-v2", "v2", 19082, "r1/z2"),
        ReviewsDestinationRule, ReviewsVirtualService);
}

/// <summary>A temporary directory removed at dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mesh-cp-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Write(string name, string content)
    {
        var file = System.IO.Path.Combine(Path, name);
        File.WriteAllText(file, content);
        return file;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

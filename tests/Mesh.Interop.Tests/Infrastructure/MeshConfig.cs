using System.Globalization;
using System.Text;
using Mesh.Testing;

namespace Mesh.Interop.Tests.Infrastructure;

/// <summary>
/// Writes the echo service's Istio configuration into a temporary folder the control plane watches:
/// a ServiceEntry, one WorkloadEntry per workload, a DestinationRule with subsets v1/v2
/// (<c>echo.yaml</c>) and a replaceable VirtualService (<c>virtualservice.yaml</c>).
/// </summary>
internal sealed class MeshConfig : IDisposable
{
    public const string Host = "echo.default.svc.cluster.local";
    public const int Port = 9080;

    public MeshConfig()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("mesh-interop-").FullName;
    }

    public string Directory { get; }

    public static string Target => $"xds:///{Host}:{Port}";

    public void WriteService(IEnumerable<EchoWorkload> workloads)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"""
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata:
              name: echo
              namespace: default
            spec:
              hosts:
              - {Host}
              location: MESH_INTERNAL
              ports:
              - number: {Port}
                name: grpc
                protocol: GRPC
              resolution: STATIC
              workloadSelector:
                labels:
                  app: echo
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata:
              name: echo
              namespace: default
            spec:
              host: {Host}
              subsets:
              - name: v1
                labels:
                  version: v1
              - name: v2
                labels:
                  version: v2

            """);
        foreach (var w in workloads)
        {
            sb.Append(IstioYaml.WorkloadEntry(w.Name, "echo", w.Version, "grpc", w.Port));
        }

        WriteAtomically("echo.yaml", sb.ToString());
    }

    /// <summary>A VirtualService splitting traffic by weight between subsets v1 and v2.</summary>
    public void WriteWeightedRoute(int v1Weight, int v2Weight) => WriteAtomically("virtualservice.yaml", $"""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: echo
          namespace: default
        spec:
          hosts:
          - {Host}
          http:
          - route:
            - destination:
                host: {Host}
                subset: v1
                port:
                  number: {Port}
              weight: {v1Weight}
            - destination:
                host: {Host}
                subset: v2
                port:
                  number: {Port}
              weight: {v2Weight}

        """);

    /// <summary>A VirtualService sending everything to one subset.</summary>
    public void WriteSingleRoute(string subset) => WriteAtomically("virtualservice.yaml", $"""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: echo
          namespace: default
        spec:
          hosts:
          - {Host}
          http:
          - route:
            - destination:
                host: {Host}
                subset: {subset}
                port:
                  number: {Port}

        """);

    /// <summary>A VirtualService sending requests with header <c>x-route: v2</c> to v2, all others to v1.</summary>
    public void WriteHeaderRoute() => WriteAtomically("virtualservice.yaml", $"""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata:
          name: echo
          namespace: default
        spec:
          hosts:
          - {Host}
          http:
          - name: to-v2
            match:
            - headers:
                x-route:
                  exact: v2
            route:
            - destination:
                host: {Host}
                subset: v2
                port:
                  number: {Port}
          - name: default
            route:
            - destination:
                host: {Host}
                subset: v1
                port:
                  number: {Port}

        """);

    /// <summary>Replaces the VirtualService file with <paramref name="content"/> as given (e.g. broken YAML).</summary>
    public void WriteRawRoute(string content) => WriteAtomically("virtualservice.yaml", content);

    /// <summary>The gRPC bootstrap JSON for a peer talking to the control plane at 127.0.0.1:<paramref name="xdsPort"/>.</summary>
    public static string Bootstrap(int xdsPort) =>
        "{\"xds_servers\":[{\"server_uri\":\"127.0.0.1:" + xdsPort.ToString(CultureInfo.InvariantCulture)
        + "\",\"channel_creds\":[{\"type\":\"insecure\"}],\"server_features\":[\"xds_v3\"]}],"
        + "\"node\":{\"id\":\"sidecar~127.0.0.1~echo-client.default~default.svc.cluster.local\","
        + "\"locality\":{\"region\":\"r1\",\"zone\":\"z1\"},"
        + "\"metadata\":{\"GENERATOR\":\"grpc\",\"NAMESPACE\":\"default\"}}}";

    /// <summary>The config files as written, for assertion messages.</summary>
    public string Dump()
    {
        var sb = new StringBuilder();
        foreach (var file in System.IO.Directory.GetFiles(Directory, "*.yaml").Order(StringComparer.Ordinal))
        {
            sb.Append("--- ").AppendLine(Path.GetFileName(file)).AppendLine(File.ReadAllText(file));
        }

        return sb.ToString();
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a temp folder left behind is harmless.
        }
    }

    private void WriteAtomically(string name, string content) => IstioYaml.WriteAtomically(Directory, name, content);
}

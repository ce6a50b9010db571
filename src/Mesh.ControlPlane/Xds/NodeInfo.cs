using System.Globalization;
using System.Net;
using Envoy.Config.Core.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.ControlPlane.Registry;

namespace Mesh.ControlPlane.Xds;

/// <summary>What the server needs from an ADS client's <see cref="Node"/>.</summary>
internal sealed record NodeInfo(string Id, string Namespace, SelfRegistration? Registration, string? RegistrationProblem)
{
    /// <summary>The node's <c>LABELS</c> (string values; other kinds as their JSON text).</summary>
    public IReadOnlyDictionary<string, string> Labels { get; init; } = Mesh.ControlPlane.Config.Empty.Labels;

    /// <summary>What per-client translation needs to know about this node.</summary>
    public Mesh.ControlPlane.Translation.ClientScope Scope => new(Namespace, Labels)
    {
        SniffsTls = UserAgentName == SdkUserAgentName,
        IsSdk = UserAgentName == SdkUserAgentName,
        NodeCluster = Cluster,
        MeshId = MeshId,
        ClusterId = ClusterId,
    };

    /// <summary>The node's <c>cluster</c>.</summary>
    public string Cluster { get; init; } = string.Empty;

    /// <summary>The node's <c>MESH_ID</c> metadata.</summary>
    public string? MeshId { get; init; }

    /// <summary>The node's <c>CLUSTER_ID</c> metadata.</summary>
    public string? ClusterId { get; init; }

    /// <summary>The client's version for <c>pilot_xds</c>: node metadata <c>ISTIO_VERSION</c>, else its <c>user_agent_version</c>, else <c>unknown</c>.</summary>
    public string ClientVersion { get; init; } = "unknown";

    /// <summary>The node's <c>user_agent_name</c>.</summary>
    public string? UserAgentName { get; init; }

    /// <summary>The <c>user_agent_name</c> Mesh.Sdk sends; it serves PERMISSIVE ports with TLS and plaintext told apart by the first bytes.</summary>
    public const string SdkUserAgentName = "Mesh.Sdk";

    public const string NamespaceKey = "NAMESPACE";
    public const string LabelsKey = "LABELS";
    public const string ServiceAccountKey = "SERVICE_ACCOUNT";
    public const string InstanceIpsKey = "INSTANCE_IPS";
    public const string WorkloadNameKey = "WORKLOAD_NAME";
    public const string ServiceKey = "MESH_SERVICE";
    public const string PortsKey = "MESH_PORTS";
    public const string MetricsPortKey = "MESH_METRICS_PORT";
    public const string MetricsPathKey = "MESH_METRICS_PATH";

    public static NodeInfo From(Node? node, string defaultNamespace, string domain)
    {
        var id = node?.Id ?? string.Empty;
        var fields = node?.Metadata?.Fields;
        var ns = String(fields, NamespaceKey) is { Length: > 0 } n ? n : defaultNamespace;
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (fields is not null && fields.TryGetValue(LabelsKey, out var labelsValue) && labelsValue.StructValue is { } labelStruct)
        {
            foreach (var (key, value) in labelStruct.Fields)
            {
                labels[key] = value.KindCase == Value.KindOneofCase.StringValue ? value.StringValue : value.ToString();
            }
        }

        var info = From(node, id, ns, labels, fields, domain);
        var version = String(fields, "ISTIO_VERSION") is { Length: > 0 } v ? v : node?.UserAgentVersion is { Length: > 0 } uav ? uav : "unknown";
        return info with
        {
            Labels = labels,
            UserAgentName = node?.UserAgentName,
            Cluster = node?.Cluster ?? string.Empty,
            MeshId = String(fields, "MESH_ID"),
            ClusterId = String(fields, "CLUSTER_ID"),
            ClientVersion = version,
        };
    }

    private static NodeInfo From(Node? node, string id, string ns, Dictionary<string, string> labels,
        Google.Protobuf.Collections.MapField<string, Value>? fields, string domain)
    {
        var service = String(fields, ServiceKey);
        if (string.IsNullOrEmpty(service))
        {
            return new NodeInfo(id, ns, null, null);
        }

        var ips = String(fields, InstanceIpsKey);
        var address = ips?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
        if (address is null || !IPAddress.TryParse(address, out _))
        {
            return new NodeInfo(id, ns, null, $"'{InstanceIpsKey}' must hold an IP address, got '{ips}'");
        }

        var ports = new Dictionary<uint, uint>();
        if (fields is not null && fields.TryGetValue(PortsKey, out var portsValue) && portsValue.StructValue is { } portStruct)
        {
            foreach (var (key, value) in portStruct.Fields)
            {
                if (!uint.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out var servicePort) || servicePort is 0 or > 65535
                    || ToPort(value) is not { } workloadPort)
                {
                    return new NodeInfo(id, ns, null, $"'{PortsKey}' entry '{key}' must map a service port to a workload port");
                }

                ports[servicePort] = workloadPort;
            }
        }

        if (ports.Count == 0)
        {
            return new NodeInfo(id, ns, null, $"'{PortsKey}' must map at least one service port to a workload port, e.g. {{\"9080\": 41234}}");
        }

        var locality = node!.Locality is { } l ? new EndpointLocality(l.Region, l.Zone, l.SubZone) : EndpointLocality.None;
        var host = HostNames.Candidates(service, ns, domain).First();
        var metricsPort = fields is not null && fields.TryGetValue(MetricsPortKey, out var metricsValue) ? ToPort(metricsValue) : null;
        var metricsPath = String(fields, MetricsPathKey) is { Length: > 1 } path && path[0] == '/' ? path : null;
        var registration = new SelfRegistration(id, host, ns, address, ports, labels, locality, String(fields, ServiceAccountKey), String(fields, WorkloadNameKey))
        {
            MetricsPort = (int?)metricsPort,
            MetricsPath = metricsPath,
        };
        return new NodeInfo(id, ns, registration, null);
    }

    private static uint? ToPort(Value value)
    {
        double number;
        if (value.KindCase == Value.KindOneofCase.NumberValue)
        {
            number = value.NumberValue;
        }
        else if (value.KindCase != Value.KindOneofCase.StringValue
            || !double.TryParse(value.StringValue, NumberStyles.None, CultureInfo.InvariantCulture, out number))
        {
            return null;
        }

        return number is >= 1 and <= 65535 && number == Math.Floor(number) ? (uint)number : null;
    }

    private static string? String(Google.Protobuf.Collections.MapField<string, Value>? fields, string key) =>
        fields is not null && fields.TryGetValue(key, out var v) && v.KindCase == Value.KindOneofCase.StringValue ? v.StringValue : null;
}

using System.Globalization;
using System.Net;
using Microsoft.Extensions.Options;

namespace Mesh.Sdk;

/// <summary>Checks <see cref="MeshOptions"/> at start; every failure names its configuration key.</summary>
/// <param name="portsDiscovered">
/// Whether the host discovers the workload ports from its server (Mesh.Sdk.AspNetCore), so <see cref="MeshOptions.Ports"/>
/// may be empty with <see cref="MeshOptions.ServiceName"/> set.
/// </param>
internal sealed class MeshOptionsValidator(bool portsDiscovered) : IValidateOptions<MeshOptions>
{
    public MeshOptionsValidator()
        : this(portsDiscovered: false)
    {
    }

    public ValidateOptionsResult Validate(string? name, MeshOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var failures = new List<string>();
        const string P = MeshOptions.SectionName + ":";
        if (options.ServiceName is not null && !IsDnsLabel(options.ServiceName))
        {
            failures.Add($"{P}ServiceName '{options.ServiceName}' must be a DNS label (lower-case letters, digits and '-', at most 63 characters, starting and ending with a letter or digit).");
        }

        if (options.Namespace is not null && !IsDnsLabel(options.Namespace))
        {
            failures.Add($"{P}Namespace '{options.Namespace}' must be a DNS label (lower-case letters, digits and '-', at most 63 characters).");
        }

        if (string.IsNullOrWhiteSpace(options.ClusterDomain) || options.ClusterDomain.StartsWith('.') || options.ClusterDomain.EndsWith('.')
            || options.ClusterDomain.Contains("..", StringComparison.Ordinal))
        {
            failures.Add($"{P}ClusterDomain '{options.ClusterDomain}' must be a DNS domain such as 'cluster.local'.");
        }

        if (options.ResolveTimeout <= TimeSpan.Zero || options.ResolveTimeout > TimeSpan.FromMinutes(10))
        {
            failures.Add($"{P}ResolveTimeout {options.ResolveTimeout} must be greater than 0 and at most 10 minutes.");
        }

        if (options.RequestBufferLimitBytes < 0)
        {
            failures.Add($"{P}RequestBufferLimitBytes {options.RequestBufferLimitBytes.ToString(CultureInfo.InvariantCulture)} must be 0 or more (bytes of a request body kept for retries; default {MeshOptions.DefaultRequestBufferLimitBytes.ToString(CultureInfo.InvariantCulture)}).");
        }

        foreach (var (servicePort, workloadPort) in options.Ports)
        {
            if (servicePort is < 1 or > 65535)
            {
                failures.Add($"{P}Ports key {servicePort.ToString(CultureInfo.InvariantCulture)} must be a service port from 1 to 65535.");
            }

            if (workloadPort is < 1 or > 65535)
            {
                failures.Add($"{P}Ports:{servicePort.ToString(CultureInfo.InvariantCulture)} = {workloadPort.ToString(CultureInfo.InvariantCulture)} must be a workload port from 1 to 65535.");
            }
        }

        if (options.ServiceName is not null && options.Ports.Count == 0 && !portsDiscovered)
        {
            failures.Add($"{P}Ports must map at least one service port to a workload port when {P}ServiceName is set, for example \"Ports\": {{ \"9080\": 8080 }} "
                + "(an ASP.NET Core app using builder.AddMesh() of Mesh.Sdk.AspNetCore may leave it empty: its ports are discovered from the server).");
        }

        if (options.ServicePort is { } servicePortOption)
        {
            if (servicePortOption is < 1 or > 65535)
            {
                failures.Add($"{P}ServicePort {servicePortOption.ToString(CultureInfo.InvariantCulture)} must be a port from 1 to 65535.");
            }

            if (options.ServiceName is null)
            {
                failures.Add($"{P}ServicePort is set but {P}ServiceName is not: name the service the port belongs to.");
            }
            else if (options.Ports.Count > 0)
            {
                failures.Add($"{P}ServicePort applies only when the ports are discovered from the server, but {P}Ports is set: map the service port there instead (for example \"Ports\": {{ \"{servicePortOption.ToString(CultureInfo.InvariantCulture)}\": 8080 }}) or remove {P}Ports.");
            }
            else if (!portsDiscovered)
            {
                failures.Add($"{P}ServicePort needs the ports to be discovered from the server (builder.AddMesh() of Mesh.Sdk.AspNetCore); without a server, set {P}Ports.");
            }
        }

        foreach (var header in options.PropagatedHeaders)
        {
            if (!Propagation.MeshPropagationContext.IsToken(header))
            {
                failures.Add($"{P}PropagatedHeaders entry '{header}' must be an HTTP header name (letters, digits and !#$%&'*+-.^_`|~).");
            }
        }

        if (options.ServiceName is null && options.Ports.Count > 0)
        {
            failures.Add($"{P}Ports is set but {P}ServiceName is not: name the service the ports belong to.");
        }

        foreach (var (key, value) in options.Labels)
        {
            if (string.IsNullOrEmpty(key) || key.Length > 63)
            {
                failures.Add($"{P}Labels key '{key}' must have 1 to 63 characters.");
            }

            if (value is null || value.Length > 63)
            {
                failures.Add($"{P}Labels:{key} value must have at most 63 characters.");
            }
        }

        if (options.InstanceIp is not null && !IPAddress.TryParse(options.InstanceIp, out _))
        {
            failures.Add($"{P}InstanceIp '{options.InstanceIp}' must be an IP address.");
        }

        if (options.ServiceAccount is not null && options.ServiceAccount.Length == 0)
        {
            failures.Add($"{P}ServiceAccount must not be empty when set.");
        }

        if (options.Xds.Listeners.Any(string.IsNullOrWhiteSpace))
        {
            failures.Add($"{P}Xds:Listeners must not contain empty names.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    internal static bool IsDnsLabel(string value)
    {
        if (value.Length is 0 or > 63 || value[0] == '-' || value[^1] == '-')
        {
            return false;
        }

        foreach (var c in value)
        {
            if (!(c is >= 'a' and <= 'z' or >= '0' and <= '9' or '-'))
            {
                return false;
            }
        }

        return true;
    }
}

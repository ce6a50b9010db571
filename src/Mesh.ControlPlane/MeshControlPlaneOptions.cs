using Microsoft.Extensions.Logging;

namespace Mesh.ControlPlane;

/// <summary>Settings of an embedded <see cref="MeshControlPlane"/>.</summary>
public sealed class MeshControlPlaneOptions
{
    /// <summary>Directory of Istio YAML files (*.yaml, *.yml, subdirectories included), watched for changes.</summary>
    /// <value>Default: none (serve only self-registered workloads).</value>
    public string? ConfigDirectory { get; set; }

    /// <summary>IP address the xDS server listens on (plaintext HTTP/2).</summary>
    /// <value>Default: <c>127.0.0.1</c>.</value>
    public string XdsAddress { get; set; } = "127.0.0.1";

    /// <summary>TCP port of the xDS server; 0 picks a free port (read it from <see cref="MeshControlPlane.XdsPort"/> after start).</summary>
    /// <value>Default: 15010, istiod's plaintext xDS port.</value>
    public int XdsPort { get; set; } = 15010;

    /// <summary>How long after a configuration or registry change the new snapshot is pushed; changes within it coalesce.</summary>
    /// <value>Default: 100 ms.</value>
    public TimeSpan PushDebounce { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// The longest a change waits for its push while further changes keep restarting <see cref="PushDebounce"/>:
    /// this long after the first change not yet pushed, the snapshot is pushed regardless.
    /// </summary>
    /// <value>Default: 1 s.</value>
    public TimeSpan PushMaxDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long a self-registered workload stays after its last ADS stream ends.</summary>
    /// <value>Default: 10 s.</value>
    public TimeSpan RegistrationGracePeriod { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Quiet time after a file-system event before the config directory is rescanned.</summary>
    /// <value>Default: 200 ms.</value>
    public TimeSpan ConfigDebounce { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Interval of the rescan that catches changes the file-system watcher missed.</summary>
    /// <value>Default: 5 s.</value>
    public TimeSpan ConfigPollInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Namespace of resources and nodes that do not name one.</summary>
    /// <value>Default: <c>default</c>.</value>
    public string DefaultNamespace { get; set; } = "default";

    /// <summary>Cluster DNS domain used to expand short host names.</summary>
    /// <value>Default: <c>cluster.local</c>.</value>
    public string ClusterDomain { get; set; } = "cluster.local";

    /// <summary>Where logs go.</summary>
    /// <value>Default: no logging.</value>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>Clock for debouncing, polling and registration expiry.</summary>
    /// <value>Default: <see cref="TimeProvider.System"/>.</value>
    public TimeProvider TimeProvider { get; set; } = TimeProvider.System;
}

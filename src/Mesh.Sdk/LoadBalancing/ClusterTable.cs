using System.Collections.Frozen;
using System.Diagnostics.CodeAnalysis;
using Mesh.Sdk.Resources;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Sdk.LoadBalancing;

/// <summary>
/// The compiled clusters of the current <see cref="MeshSnapshot"/>, rebuilt on every snapshot and read with
/// one volatile read per request. Unchanged clusters keep their runtime; changed ones are recompiled with
/// their endpoint state carried over; a cluster that fails to compile keeps its last good runtime.
/// </summary>
internal sealed partial class ClusterTable : IDisposable
{
    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private FrozenDictionary<string, ClusterRuntime> _clusters = FrozenDictionary<string, ClusterRuntime>.Empty;

    public ClusterTable(TimeProvider timeProvider, ILogger<ClusterTable>? logger = null)
    {
        _time = timeProvider;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>The clusters in force, by name.</summary>
    public IReadOnlyDictionary<string, ClusterRuntime> Clusters => Volatile.Read(ref _clusters);

    /// <summary>Finds a cluster's runtime.</summary>
    public bool TryGetCluster(string name, [NotNullWhen(true)] out ClusterRuntime? cluster)
        => Volatile.Read(ref _clusters).TryGetValue(name, out cluster);

    /// <summary>Applies a snapshot. Returns the errors (cluster name → reason) of clusters that kept their previous state or were left out.</summary>
    public IReadOnlyDictionary<string, string> Update(MeshSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var errors = new Dictionary<string, string>(StringComparer.Ordinal);
        lock (_gate)
        {
            var current = _clusters;
            var next = new Dictionary<string, ClusterRuntime>(StringComparer.Ordinal);
            foreach (var (name, resource) in snapshot.Clusters)
            {
                snapshot.TryGetEndpoints(name, out var assignment);
                current.TryGetValue(name, out var existing);
                try
                {
                    if (existing is not null && existing.Cluster.Equals(resource.Cluster))
                    {
                        if (assignment is not null && !ReferenceEquals(assignment, existing.Assignment) && !assignment.Equals(existing.Assignment))
                        {
                            existing.UpdateEndpoints(assignment);
                        }

                        next.Add(name, existing);
                        continue;
                    }

                    var runtime = ClusterRuntime.Create(resource.Cluster, assignment, _time, existing, _logger);
                    next.Add(name, runtime);
                }
                catch (Exception ex) when (ex is NotSupportedException or InvalidDataException)
                {
                    errors[name] = ex.Message;
                    Log.ClusterRejected(_logger, name, ex.Message, existing is not null);
                    if (existing is not null)
                    {
                        next.Add(name, existing);
                    }
                }
            }

            Volatile.Write(ref _clusters, next.ToFrozenDictionary(StringComparer.Ordinal));
            foreach (var (name, runtime) in current)
            {
                if (!next.TryGetValue(name, out var kept) || !ReferenceEquals(kept, runtime))
                {
                    runtime.Dispose();
                }
            }
        }

        return errors;
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var runtime in _clusters.Values)
            {
                runtime.Dispose();
            }

            _clusters = FrozenDictionary<string, ClusterRuntime>.Empty;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 600, Level = LogLevel.Warning, Message = "Cluster '{ClusterName}' was not applied: {Reason} (previous version kept: {KeptPrevious}).")]
        public static partial void ClusterRejected(ILogger logger, string clusterName, string reason, bool keptPrevious);
    }
}

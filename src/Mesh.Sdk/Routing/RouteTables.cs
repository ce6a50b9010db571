using System.Collections.Frozen;
using System.Diagnostics.CodeAnalysis;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Mesh.Sdk.Resources;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Sdk.Routing;

/// <summary>The compiled route tables of one snapshot, by listener name. Immutable.</summary>
internal sealed class RouteTableSet
{
    /// <summary>No tables.</summary>
    public static RouteTableSet Empty { get; } = new(0, FrozenDictionary<string, Entry>.Empty);

    private readonly FrozenDictionary<string, Entry> _entries;

    internal RouteTableSet(long snapshotVersion, FrozenDictionary<string, Entry> entries)
    {
        SnapshotVersion = snapshotVersion;
        _entries = entries;
    }

    /// <summary>The version of the snapshot the tables were built from.</summary>
    public long SnapshotVersion { get; }

    /// <summary>The listener names with a table.</summary>
    public IEnumerable<string> Listeners => _entries.Keys;

    /// <summary>The table of a listener (for example <c>reviews.default.svc.cluster.local:9080</c>).</summary>
    public bool TryGetTable(string listenerName, [NotNullWhen(true)] out CompiledRouteTable? table)
    {
        if (_entries.TryGetValue(listenerName, out var entry))
        {
            table = entry.Table;
            return true;
        }

        table = null;
        return false;
    }

    internal bool TryGetEntry(string listenerName, [NotNullWhen(true)] out Entry? entry) => _entries.TryGetValue(listenerName, out entry);

    /// <summary>A compiled table with the resources it was built from, to reuse it while they are unchanged.</summary>
    internal sealed record Entry(CompiledRouteTable Table, RouteConfiguration Source, HttpConnectionManager HttpConnectionManager);
}

/// <summary>
/// Keeps the compiled route tables current: <see cref="Update"/> is called once per published
/// <see cref="MeshSnapshot"/> and recompiles only listeners whose route configuration or connection manager
/// changed; requests read <see cref="Current"/> with one volatile read. A route configuration that fails to
/// compile leaves the listener's last good table in force.
/// </summary>
internal sealed partial class RouteTables
{
    private readonly ILogger _logger;
    private readonly Random _random;
    private volatile RouteTableSet _current = RouteTableSet.Empty;

    /// <summary>Creates an empty holder.</summary>
    /// <param name="logger">Receives compile failures.</param>
    /// <param name="random">The random source given to every table; <see cref="Random.Shared"/> by default.</param>
    public RouteTables(ILogger<RouteTables>? logger = null, Random? random = null)
    {
        _logger = (ILogger?)logger ?? NullLogger.Instance;
        _random = random ?? Random.Shared;
    }

    /// <summary>The tables in force.</summary>
    public RouteTableSet Current => _current;

    /// <summary>The table of a listener in the current set.</summary>
    public bool TryGetTable(string listenerName, [NotNullWhen(true)] out CompiledRouteTable? table)
        => _current.TryGetTable(listenerName, out table);

    /// <summary>Compiles the tables of <paramref name="snapshot"/> and publishes them; returns the errors found.</summary>
    /// <remarks>Not thread-safe against itself: call from the one snapshot subscriber.</remarks>
    public IReadOnlyList<RouteCompileError> Update(MeshSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var previous = _current;
        var entries = new Dictionary<string, RouteTableSet.Entry>(StringComparer.Ordinal);
        List<RouteCompileError>? errors = null;
        foreach (var (name, listener) in snapshot.Listeners)
        {
            if (!snapshot.TryGetRouteConfiguration(name, out var routes))
            {
                // Routes not received yet: keep serving the last table if there was one.
                if (previous.TryGetEntry(name, out var waiting))
                {
                    entries[name] = waiting;
                }

                continue;
            }

            var hcm = listener.HttpConnectionManager;
            if (previous.TryGetEntry(name, out var old) && ReferenceEquals(old.Source, routes) && ReferenceEquals(old.HttpConnectionManager, hcm))
            {
                entries[name] = old;
                continue;
            }

            if (RouteTableCompiler.TryCompile(routes, hcm.HttpFilters, _random, out var table, out var failures))
            {
                entries[name] = new RouteTableSet.Entry(table, routes, hcm);
                continue;
            }

            errors ??= [];
            errors.AddRange(failures);
            Log.CompileFailed(_logger, name, routes.Name, string.Join("; ", failures));
            if (old is not null)
            {
                entries[name] = old;
            }
        }

        _current = new RouteTableSet(snapshot.Version, entries.ToFrozenDictionary(StringComparer.Ordinal));
        return (IReadOnlyList<RouteCompileError>?)errors ?? [];
    }

    private static partial class Log
    {
        [LoggerMessage(300, LogLevel.Warning, "Route configuration '{RouteConfigName}' of listener '{ListenerName}' was not applied; the last good routes stay in force: {Errors}")]
        public static partial void CompileFailed(ILogger logger, string listenerName, string routeConfigName, string errors);
    }
}

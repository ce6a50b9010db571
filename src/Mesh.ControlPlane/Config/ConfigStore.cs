using Microsoft.Extensions.Logging;

namespace Mesh.ControlPlane.Config;

/// <summary>The effective configuration: the last good content of every file, merged.</summary>
internal sealed record MeshConfig(
    long Generation,
    IReadOnlyList<ServiceEntry> ServiceEntries,
    IReadOnlyList<WorkloadEntry> WorkloadEntries,
    IReadOnlyList<DestinationRule> DestinationRules,
    IReadOnlyList<VirtualService> VirtualServices)
{
    public static readonly MeshConfig Empty = new(0, [], [], [], []);

    /// <summary>PeerAuthentications in file order (the first one of a scope wins, as the oldest does in Istio).</summary>
    public IReadOnlyList<PeerAuthentication> PeerAuthentications { get; init; } = [];

    /// <summary>AuthorizationPolicies in file order.</summary>
    public IReadOnlyList<AuthorizationPolicy> AuthorizationPolicies { get; init; } = [];

    /// <summary>EnvoyFilters in file order (only their local rate limit patches).</summary>
    public IReadOnlyList<EnvoyFilter> EnvoyFilters { get; init; } = [];

    /// <summary>The mesh config (the <c>istio</c> ConfigMap of <c>istio-system</c>), or null when no file holds one.</summary>
    public MeshConfigMap? MeshConfigMap { get; init; }

    /// <summary>The telemetry settings of the mesh config, or istiod's defaults when there is none.</summary>
    public MeshTelemetrySettings TelemetrySettings => MeshConfigMap?.Settings ?? MeshTelemetrySettings.Default;

    /// <summary>Telemetry resources in file order (the first namespace-wide one of a namespace wins, as the oldest does in Istio).</summary>
    public IReadOnlyList<Telemetry> Telemetries { get; init; } = [];
}

/// <summary>New content of one file (null: the file is gone) and its last write time.</summary>
/// <param name="Path">The file.</param>
/// <param name="Content">The file's text, or null when it was removed.</param>
/// <param name="LastWriteUtc">The file's last write time; decides which file wins when two define the same resource.</param>
internal readonly record struct ConfigFileChange(string Path, string? Content, DateTimeOffset LastWriteUtc);

/// <summary>
/// Holds the parsed content per file. A file that fails to parse keeps its last good content in
/// force and records a <see cref="ConfigError"/>; other files are unaffected. When several files
/// define the same resource (kind/namespace/name), the one in the most recently modified file is used,
/// as if the files had been applied with <c>kubectl apply</c> in the order they were written: equal
/// times go to the later path (ordinal), and within one file to the later document.
/// </summary>
internal sealed partial class ConfigStore(string defaultNamespace, ILogger logger, string clusterDomain = "cluster.local")
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, GoodFile> _good = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ConfigError> _errors = new(StringComparer.Ordinal);

    // Per file, what was already reported as not applied, so a reload that still has it does not repeat it.
    private readonly Dictionary<string, HashSet<string>> _reported = new(StringComparer.Ordinal);
    private MeshConfig _current = MeshConfig.Empty;

    // Undefined subsets already reported (VirtualService source, host, subset), so each is reported once while it lasts.
    private HashSet<string> _reportedSubsets = new(StringComparer.Ordinal);

    // Duplicate definitions already reported (resource, ignored location, location in force), so each is reported once while it lasts.
    private HashSet<string> _reportedDuplicates = new(StringComparer.Ordinal);

    /// <summary>Raised (outside the lock) after the effective configuration changed.</summary>
    public event Action<MeshConfig>? Changed;

    public MeshConfig Current => Volatile.Read(ref _current);

    /// <summary>Errors of the files whose latest content was rejected, ordered by file.</summary>
    public IReadOnlyList<ConfigError> LastErrors
    {
        get
        {
            lock (_gate)
            {
                return _errors.Values.OrderBy(e => e.File, StringComparer.Ordinal).ToArray();
            }
        }
    }

    /// <summary>Applies new content (or removal, when content is null) of several files at once.</summary>
    /// <returns>True when the effective configuration changed.</returns>
    public bool Apply(IEnumerable<ConfigFileChange> changes)
    {
        MeshConfig? next = null;
        lock (_gate)
        {
            var changed = false;
            var previous = new Dictionary<string, GoodFile?>(StringComparer.Ordinal);
            foreach (var change in changes)
            {
                previous.TryAdd(change.Path, _good.GetValueOrDefault(change.Path));
                changed |= ApplyOne(change.Path, change.Content, change.LastWriteUtc);
            }

            RejectUnknownProviders(previous);
            changed = previous.Any(p => !ReferenceEquals(_good.GetValueOrDefault(p.Key), p.Value));

            if (changed)
            {
                next = Merge(_current.Generation + 1);
                ReportUndefinedSubsets(next);
                Volatile.Write(ref _current, next);
            }
        }

        if (next is not null)
        {
            Changed?.Invoke(next);
            return true;
        }

        return false;
    }

    /// <summary>Applies files with no known write time (all equal: the later path wins a duplicate).</summary>
    public bool Apply(IEnumerable<(string Path, string? Content)> changes)
        => Apply(changes.Select(static c => new ConfigFileChange(c.Path, c.Content, DateTimeOffset.MinValue)));

    public bool Apply(string path, string? content) => Apply([new ConfigFileChange(path, content, DateTimeOffset.MinValue)]);

    public bool Apply(string path, string? content, DateTimeOffset lastWriteUtc) => Apply([new ConfigFileChange(path, content, lastWriteUtc)]);

    private bool ApplyOne(string path, string? content, DateTimeOffset lastWriteUtc)
    {
        if (content is null)
        {
            _errors.Remove(path);
            _reported.Remove(path);
            if (_good.Remove(path))
            {
                Log.FileRemoved(logger, path);
                return true;
            }

            return false;
        }

        ParsedFile parsed;
        try
        {
            parsed = IstioYamlParser.Parse(content, defaultNamespace);
        }
        catch (ConfigException ex)
        {
            var error = new ConfigError(path, ex.Line, ex.Column, ex.Message);
            _errors[path] = error;
            LogRejected(path, ex.Line, ex.Column, ex.Message, _good.ContainsKey(path));
            return false;
        }

        _errors.Remove(path);
        ReportUnapplied(path, parsed);

        var resources = parsed.Resources.Select(r => r with { Source = r.Source with { File = path } }).ToArray();
        _good[path] = new GoodFile(resources, lastWriteUtc);
        Log.FileLoaded(logger, path, resources.Length);
        return true;
    }

    /// <summary>
    /// Logs the documents and fields of a loaded file that have no effect, each once: a reload of the file that
    /// still holds them (an edit elsewhere, a touch) does not repeat them; removing and restoring them does.
    /// </summary>
    private void ReportUnapplied(string path, ParsedFile parsed)
    {
        var previous = _reported.GetValueOrDefault(path);
        var now = new HashSet<string>(StringComparer.Ordinal);
        foreach (var u in parsed.Unapplied)
        {
            if (now.Add(u.Key) && previous?.Contains(u.Key) != true)
            {
                var name = u.Name is null ? "(no metadata.name)" : $"'{u.Namespace}/{u.Name}'";
                var reason = Sentence(u.Reason);
                if (u.Severe)
                {
                    Log.ResourceNotAppliedWarning(logger, path, u.Line, u.Column, u.Kind, name, u.ApiVersion, reason);
                }
                else
                {
                    Log.ResourceNotApplied(logger, path, u.Line, u.Column, u.Kind, name, u.ApiVersion, reason);
                }
            }
        }

        foreach (var note in parsed.Notes)
        {
            // Notes read "line:column: message"; the message alone identifies them across edits that move lines.
            var (location, message) = SplitLocation(note);
            if (now.Add("note: " + message) && previous?.Contains("note: " + message) != true)
            {
                Log.FieldNotApplied(logger, path, location, Sentence(message));
            }
        }

        foreach (var warning in parsed.Warnings)
        {
            var (location, message) = SplitLocation(warning);
            if (now.Add("warning: " + message) && previous?.Contains("warning: " + message) != true)
            {
                Log.PartLeftOut(logger, path, location, Sentence(message));
            }
        }

        _reported[path] = now;
    }

    private static (string Location, string Message) SplitLocation(string text)
    {
        var colon = text.IndexOf(": ", StringComparison.Ordinal);
        return colon < 0 ? ("1:1", text) : (text[..colon], text[(colon + 2)..]);
    }

    /// <summary>A reason as the end of a sentence: a full stop unless it already ends with one (or a question mark).</summary>
    private static string Sentence(string reason) => reason.EndsWith('.') || reason.EndsWith('?') ? reason : reason + ".";

    private void LogRejected(string path, int line, int column, string reason, bool keptPrevious)
    {
        if (keptPrevious)
        {
            Log.FileRejectedPreviousKept(logger, path, line, column, reason);
        }
        else
        {
            Log.FileRejected(logger, path, line, column, reason);
        }
    }

    private MeshConfig Merge(long generation)
    {
        var files = _good.OrderBy(p => p.Key, StringComparer.Ordinal).ToArray();

        // The winner of every key: the latest write time, then the later path, then the later document.
        var winners = new Dictionary<string, (IstioResource Resource, DateTimeOffset Written)>(StringComparer.Ordinal);
        foreach (var (_, file) in files)
        {
            foreach (var r in file.Resources)
            {
                // Files come in path order and documents in file order, so on equal times the later one wins.
                if (!winners.TryGetValue(r.Key, out var current) || file.LastWriteUtc >= current.Written)
                {
                    winners[r.Key] = (r, file.LastWriteUtc);
                }
            }
        }

        // Every losing definition is reported against the one finally in force, once while the duplicate lasts.
        var duplicates = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (_, file) in files)
        {
            foreach (var r in file.Resources)
            {
                var used = winners[r.Key].Resource;
                if (ReferenceEquals(used, r))
                {
                    continue;
                }

                var report = $"{r.Key}|{r.Source}|{used.Source}";
                if (duplicates.Add(report) && !_reportedDuplicates.Contains(report))
                {
                    Log.DuplicateResource(logger, r.Source.File, r.Source.Line, r.Source.Column, r.Kind, r.Namespace, r.Name, used.Source.ToString());
                }
            }
        }

        _reportedDuplicates = duplicates;

        // Resources keep the order of their files (path order) and of their documents.
        var all = new List<IstioResource>();
        foreach (var (_, file) in files)
        {
            foreach (var r in file.Resources)
            {
                if (ReferenceEquals(winners[r.Key].Resource, r))
                {
                    all.Add(r);
                }
            }
        }

        // The mesh config: as any other resource, the most recently written one wins.
        var meshConfigs = all.OfType<MeshConfigMap>().ToArray();
        return new MeshConfig(
            generation,
            all.OfType<ServiceEntry>().ToArray(),
            all.OfType<WorkloadEntry>().ToArray(),
            all.OfType<DestinationRule>().ToArray(),
            all.OfType<VirtualService>().ToArray())
        {
            PeerAuthentications = all.OfType<PeerAuthentication>().ToArray(),
            AuthorizationPolicies = all.OfType<AuthorizationPolicy>().ToArray(),
            EnvoyFilters = all.OfType<EnvoyFilter>().ToArray(),
            MeshConfigMap = meshConfigs.Length > 0 ? meshConfigs[^1] : null,
            Telemetries = all.OfType<Telemetry>().ToArray(),
        };
    }

    /// <summary>
    /// A Telemetry that names a provider the mesh config does not define is rejected with its file, as bad input is:
    /// the file's previous good content stays in force. Checked after a whole batch is applied, so the mesh config
    /// and the Telemetry resources may arrive together in any order.
    /// </summary>
    private void RejectUnknownProviders(Dictionary<string, GoodFile?> previous)
    {
        var settings = CurrentMeshSettings();
        foreach (var (path, before) in previous)
        {
            if (!_good.TryGetValue(path, out var file) || ReferenceEquals(file, before))
            {
                continue;
            }

            foreach (var telemetry in file.Resources.OfType<Telemetry>())
            {
                var unknown = telemetry.Tracing.SelectMany(static t => t.Providers)
                    .Concat(telemetry.AccessLogging.SelectMany(static a => a.Providers))
                    .Concat(telemetry.Metrics.SelectMany(static m => m.Providers))
                    .FirstOrDefault(p => settings.Provider(p.Name) is null);
                if (unknown is null)
                {
                    continue;
                }

                var reason = $"Telemetry '{telemetry.Namespace}/{telemetry.Name}' names provider '{unknown.Name}', which the mesh config does not define "
                    + $"(defined: {string.Join(", ", settings.ExtensionProviders.Select(static p => p.Name))}); add it to 'extensionProviders' of the "
                    + $"'{MeshConfigMap.ConfigMapNamespace}/{MeshConfigMap.ConfigMapName}' ConfigMap";
                _errors[path] = new ConfigError(path, unknown.Line, unknown.Column, reason);
                if (before is null)
                {
                    _good.Remove(path);
                }
                else
                {
                    _good[path] = before;
                }

                LogRejected(path, unknown.Line, unknown.Column, reason, before is not null);
                break;
            }
        }
    }

    /// <summary>The mesh config of the good files as <see cref="Merge"/> picks it (latest write time, then later path, then later document).</summary>
    private MeshTelemetrySettings CurrentMeshSettings()
    {
        MeshConfigMap? winner = null;
        var written = DateTimeOffset.MinValue;
        foreach (var (_, file) in _good.OrderBy(static p => p.Key, StringComparer.Ordinal))
        {
            foreach (var m in file.Resources.OfType<MeshConfigMap>())
            {
                if (winner is null || file.LastWriteUtc >= written)
                {
                    winner = m;
                    written = file.LastWriteUtc;
                }
            }
        }

        return winner?.Settings ?? MeshTelemetrySettings.Default;
    }

    /// <summary>
    /// istioctl analyze's IST0101 for subsets: a VirtualService route whose destination names a subset that no
    /// DestinationRule of that host defines. Clients get 503 (NC) for it, as Envoy answers a cluster it does not
    /// know; the warning says so when the rule loads, once while it stays undefined.
    /// </summary>
    private void ReportUndefinedSubsets(MeshConfig config)
    {
        var defined = new HashSet<(string Host, string Subset)>();
        foreach (var rule in config.DestinationRules)
        {
            var host = Registry.HostNames.ToFqdn(rule.Host, rule.Namespace, clusterDomain);
            foreach (var subset in rule.Subsets)
            {
                defined.Add((host, subset.Name));
            }
        }

        var now = new HashSet<string>(StringComparer.Ordinal);
        foreach (var vs in config.VirtualServices)
        {
            foreach (var route in vs.Http)
            {
                foreach (var destination in route.Route)
                {
                    if (destination.Destination.Subset is not { Length: > 0 } subset)
                    {
                        continue;
                    }

                    var host = Registry.HostNames.ToFqdn(destination.Destination.Host, vs.Namespace, clusterDomain);
                    if (defined.Contains((host, subset)))
                    {
                        continue;
                    }

                    var key = $"{vs.Source}|{vs.Key}|{host}|{subset}";
                    if (now.Add(key) && !_reportedSubsets.Contains(key))
                    {
                        Log.UndefinedSubset(logger, vs.Source.File, vs.Source.Line, vs.Source.Column, vs.Namespace, vs.Name, host, subset);
                    }
                }
            }
        }

        _reportedSubsets = now;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1009, Level = LogLevel.Warning, Message = "{File}:{Line}:{Column}: warning: VirtualService '{Namespace}/{Name}' routes to subset '{Subset}' of '{Host}', which no DestinationRule defines (IST0101); requests routed there get 503 (NC) until a DestinationRule defines it.")]
        public static partial void UndefinedSubset(ILogger logger, string file, int line, int column, string @namespace, string name, string host, string subset);

        [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Loaded '{File}': {Count} resources.")]
        public static partial void FileLoaded(ILogger logger, string file, int count);

        [LoggerMessage(EventId = 1002, Level = LogLevel.Error, Message = "{File}:{Line}:{Column}: error: {Reason}; the file is rejected and nothing in it is applied.")]
        public static partial void FileRejected(ILogger logger, string file, int line, int column, string reason);

        [LoggerMessage(EventId = 1010, Level = LogLevel.Error, Message = "{File}:{Line}:{Column}: error: {Reason}; the file is rejected and its previous content stays in force.")]
        public static partial void FileRejectedPreviousKept(ILogger logger, string file, int line, int column, string reason);

        [LoggerMessage(EventId = 1003, Level = LogLevel.Information, Message = "Removed '{File}'.")]
        public static partial void FileRemoved(ILogger logger, string file);

        [LoggerMessage(EventId = 1004, Level = LogLevel.Information, Message = "{File}:{Line}:{Column}: info: {Kind} {Name} ({ApiVersion}) accepted but not applied by the embedded control plane: {Reason}")]
        public static partial void ResourceNotApplied(ILogger logger, string file, int line, int column, string kind, string name, string apiVersion, string reason);

        [LoggerMessage(EventId = 1007, Level = LogLevel.Warning, Message = "{File}:{Line}:{Column}: warning: {Kind} {Name} ({ApiVersion}) accepted but not applied by the embedded control plane: {Reason}")]
        public static partial void ResourceNotAppliedWarning(ILogger logger, string file, int line, int column, string kind, string name, string apiVersion, string reason);

        [LoggerMessage(EventId = 1006, Level = LogLevel.Information, Message = "{File}:{Location}: info: {Message}")]
        public static partial void FieldNotApplied(ILogger logger, string file, string location, string message);

        [LoggerMessage(EventId = 1008, Level = LogLevel.Warning, Message = "{File}:{Location}: warning: {Message}")]
        public static partial void PartLeftOut(ILogger logger, string file, string location, string message);

        [LoggerMessage(EventId = 1005, Level = LogLevel.Warning, Message = "{File}:{Line}:{Column}: warning: {Kind} '{Namespace}/{Name}' is ignored: {Used} defines it too and is in force (the most recently modified file wins; on equal times the later path).")]
        public static partial void DuplicateResource(ILogger logger, string file, int line, int column, string kind, string @namespace, string name, string used);
    }

    private sealed record GoodFile(IReadOnlyList<IstioResource> Resources, DateTimeOffset LastWriteUtc);
}

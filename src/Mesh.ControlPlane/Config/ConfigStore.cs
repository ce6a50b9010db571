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
}

/// <summary>
/// Holds the parsed content per file. A file that fails to parse keeps its last good content in
/// force and records a <see cref="ConfigError"/>; other files are unaffected.
/// </summary>
internal sealed partial class ConfigStore(string defaultNamespace, ILogger logger)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, IReadOnlyList<IstioResource>> _good = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ConfigError> _errors = new(StringComparer.Ordinal);
    private MeshConfig _current = MeshConfig.Empty;

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
    public bool Apply(IEnumerable<(string Path, string? Content)> changes)
    {
        MeshConfig? next = null;
        lock (_gate)
        {
            var changed = false;
            foreach (var (path, content) in changes)
            {
                changed |= ApplyOne(path, content);
            }

            if (changed)
            {
                next = Merge(_current.Generation + 1);
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

    public bool Apply(string path, string? content) => Apply([(path, content)]);

    private bool ApplyOne(string path, string? content)
    {
        if (content is null)
        {
            _errors.Remove(path);
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
            Log.FileRejected(logger, path, ex.Line, ex.Column, ex.Message, _good.ContainsKey(path));
            return false;
        }

        _errors.Remove(path);
        foreach (var note in parsed.Notes)
        {
            Log.FieldNotApplied(logger, path, note);
        }

        foreach (var ignored in parsed.Ignored)
        {
            Log.KindIgnored(logger, path, ignored);
        }

        var resources = parsed.Resources.Select(r => r with { Source = new SourceLocation(path, r.Source.Line) }).ToArray();
        _good[path] = resources;
        Log.FileLoaded(logger, path, resources.Length);
        return true;
    }

    private MeshConfig Merge(long generation)
    {
        var seen = new Dictionary<string, SourceLocation>(StringComparer.Ordinal);
        var all = new List<IstioResource>();
        foreach (var (path, resources) in _good.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            foreach (var r in resources)
            {
                if (seen.TryGetValue(r.Key, out var first))
                {
                    Log.DuplicateResource(logger, r.Key, r.Source.ToString(), first.ToString());
                    continue;
                }

                seen[r.Key] = r.Source;
                all.Add(r);
            }
        }

        return new MeshConfig(
            generation,
            all.OfType<ServiceEntry>().ToArray(),
            all.OfType<WorkloadEntry>().ToArray(),
            all.OfType<DestinationRule>().ToArray(),
            all.OfType<VirtualService>().ToArray());
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Loaded '{File}': {Count} resources.")]
        public static partial void FileLoaded(ILogger logger, string file, int count);

        [LoggerMessage(EventId = 1002, Level = LogLevel.Error, Message = "{File}:{Line}:{Column}: {Reason} (file rejected; previous good content kept: {KeptPrevious}).")]
        public static partial void FileRejected(ILogger logger, string file, int line, int column, string reason, bool keptPrevious);

        [LoggerMessage(EventId = 1003, Level = LogLevel.Information, Message = "Removed '{File}'.")]
        public static partial void FileRemoved(ILogger logger, string file);

        [LoggerMessage(EventId = 1004, Level = LogLevel.Debug, Message = "'{File}': ignoring unsupported resource {Resource}.")]
        public static partial void KindIgnored(ILogger logger, string file, string resource);

        [LoggerMessage(EventId = 1006, Level = LogLevel.Debug, Message = "'{File}' {Note}.")]
        public static partial void FieldNotApplied(ILogger logger, string file, string note);

        [LoggerMessage(EventId = 1005, Level = LogLevel.Warning, Message = "Resource '{Key}' at {Location} duplicates the one at {First}; the first one is used.")]
        public static partial void DuplicateResource(ILogger logger, string key, string location, string first);
    }
}

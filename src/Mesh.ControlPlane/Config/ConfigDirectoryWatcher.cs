using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging;

namespace Mesh.ControlPlane.Config;

/// <summary>
/// Feeds a <see cref="ConfigStore"/> from a directory of *.yaml / *.yml files: an initial scan, then
/// a <see cref="FileSystemWatcher"/> (debounced) plus a slow poll for file systems that do not notify.
/// Every rescan compares content hashes and write times, so only changed files are re-parsed; a file whose
/// content is unchanged but whose write time moved (touched, copied over again) is re-applied, as its time
/// decides which file wins when two define the same resource.
/// </summary>
internal sealed partial class ConfigDirectoryWatcher : IDisposable
{
    private readonly string _directory;
    private readonly ConfigStore _store;
    private readonly TimeProvider _time;
    private readonly TimeSpan _debounce;
    private readonly ILogger _logger;
    private readonly Lock _scanGate = new();
    private readonly Dictionary<string, (string Hash, DateTime Written)> _seen = new(StringComparer.Ordinal);
    private readonly ITimer _debounceTimer;
    private readonly ITimer _pollTimer;
    private readonly TimeSpan _pollInterval;
    private FileSystemWatcher? _watcher;
    private bool _disposed;

    public ConfigDirectoryWatcher(string directory, ConfigStore store, TimeProvider time, TimeSpan debounce, TimeSpan pollInterval, ILogger logger)
    {
        _directory = Path.GetFullPath(directory);
        _store = store;
        _time = time;
        _debounce = debounce;
        _pollInterval = pollInterval;
        _logger = logger;
        _debounceTimer = time.CreateTimer(static s => ((ConfigDirectoryWatcher)s!).ScanFromTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _pollTimer = time.CreateTimer(static s => ((ConfigDirectoryWatcher)s!).ScanFromTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public string Directory => _directory;

    /// <summary>Scans once, synchronously, then starts watching.</summary>
    public void Start()
    {
        if (!System.IO.Directory.Exists(_directory))
        {
            throw new DirectoryNotFoundException($"Config directory '{_directory}' does not exist.");
        }

        Scan();
        _watcher = new FileSystemWatcher(_directory)
        {
            IncludeSubdirectories = true,
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.DirectoryName,
        };
        _watcher.Changed += OnFsEvent;
        _watcher.Created += OnFsEvent;
        _watcher.Deleted += OnFsEvent;
        _watcher.Renamed += OnFsEvent;
        _watcher.Error += (_, e) => Log.WatcherError(_logger, _directory, e.GetException().Message);
        _watcher.EnableRaisingEvents = true;
        _pollTimer.Change(_pollInterval, _pollInterval);
    }

    private void OnFsEvent(object sender, FileSystemEventArgs e)
    {
        // The registry's state file changes with every registration; it holds no configuration.
        if (!_disposed && !Registry.RegistryStateFile.IsStateFile(e.Name))
        {
            _debounceTimer.Change(_debounce, Timeout.InfiniteTimeSpan);
        }
    }

    // A timer callback that throws takes the whole process down: whatever goes wrong in one scan is
    // logged, the config in force stays, and the next event or poll tries again.
    private void ScanFromTimer()
    {
        try
        {
            Scan();
        }
        catch (Exception ex)
        {
            Log.ScanCrashed(_logger, _directory, ex);
        }
    }

    /// <summary>Rescans the directory and applies what changed. Safe to call from any thread.</summary>
    public void Scan()
    {
        lock (_scanGate)
        {
            if (_disposed)
            {
                return;
            }

            var changes = new List<ConfigFileChange>();
            var present = new HashSet<string>(StringComparer.Ordinal);
            IEnumerable<string> files;
            try
            {
                files = System.IO.Directory.EnumerateFiles(_directory, "*", SearchOption.AllDirectories)
                    .Where(static f => f.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".yml", StringComparison.OrdinalIgnoreCase))
                    .Order(StringComparer.Ordinal)
                    .ToList();
            }
            catch (IOException ex)
            {
                Log.ScanFailed(_logger, _directory, ex.Message);
                return;
            }

            foreach (var file in files)
            {
                string content;
                DateTime written;
                try
                {
                    written = File.GetLastWriteTimeUtc(file);
                    content = File.ReadAllText(file);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    // Being written or briefly locked: keep what we had and look again on the next event or poll.
                    Log.ReadFailed(_logger, file, ex.Message);
                    if (_seen.ContainsKey(file))
                    {
                        present.Add(file);
                    }

                    continue;
                }

                present.Add(file);
                var hash = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(content)));
                if (!_seen.TryGetValue(file, out var old) || old.Hash != hash || old.Written != written)
                {
                    _seen[file] = (hash, written);
                    changes.Add(new ConfigFileChange(file, content, new DateTimeOffset(written, TimeSpan.Zero)));
                }
            }

            foreach (var gone in _seen.Keys.Where(k => !present.Contains(k)).ToList())
            {
                _seen.Remove(gone);
                changes.Add(new ConfigFileChange(gone, null, default));
            }

            if (changes.Count > 0)
            {
                _store.Apply(changes);
            }
        }
    }

    public void Dispose()
    {
        lock (_scanGate)
        {
            _disposed = true;
        }

        _watcher?.Dispose();
        _debounceTimer.Dispose();
        _pollTimer.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1101, Level = LogLevel.Warning, Message = "Watching '{Directory}' failed: {Reason}; the periodic poll still picks up changes.")]
        public static partial void WatcherError(ILogger logger, string directory, string reason);

        [LoggerMessage(EventId = 1102, Level = LogLevel.Warning, Message = "Listing '{Directory}' failed: {Reason}.")]
        public static partial void ScanFailed(ILogger logger, string directory, string reason);

        [LoggerMessage(EventId = 1103, Level = LogLevel.Debug, Message = "Reading '{File}' failed: {Reason}; retrying on the next change.")]
        public static partial void ReadFailed(ILogger logger, string file, string reason);

        [LoggerMessage(EventId = 1104, Level = LogLevel.Error, Message = "Applying changes in '{Directory}' failed; the configuration in force is kept.")]
        public static partial void ScanCrashed(ILogger logger, string directory, Exception exception);
    }
}

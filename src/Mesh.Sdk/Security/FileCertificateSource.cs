using System.Security.Cryptography;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.Security;

/// <summary>
/// Reads the workload certificate from files another party keeps current (Istio's agent, cert-manager, SPIRE): the
/// chain (leaf first), its key and the roots. Read at start, again on a file-system notification in their folders
/// and at least every refresh interval; a set that does not load (half written, key not matching) is skipped and
/// the last good certificate stays.
/// </summary>
internal sealed partial class FileCertificateSource : WorkloadCertificateSource
{
    /// <summary>The file names of the <c>file_watcher</c> layout Istio's agent writes.</summary>
    public const string CertChainFileName = "cert-chain.pem";

    /// <summary>The key file.</summary>
    public const string KeyFileName = "key.pem";

    /// <summary>The roots file.</summary>
    public const string RootCertFileName = "root-cert.pem";

    /// <summary>How long after a file-system notification the files are read.</summary>
    internal static readonly TimeSpan SettleDelay = TimeSpan.FromMilliseconds(100);

    private readonly string _certFile;
    private readonly string _keyFile;
    private readonly string _rootFile;
    private readonly TimeSpan _refresh;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly List<FileSystemWatcher> _watchers = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private byte[]? _loadedHash;
    private string? _lastError;

    public FileCertificateSource(string certFile, string keyFile, string rootFile, TimeSpan refresh, TimeProvider time, ILogger<FileCertificateSource> logger)
    {
        _certFile = Path.GetFullPath(certFile);
        _keyFile = Path.GetFullPath(keyFile);
        _rootFile = Path.GetFullPath(rootFile);
        _refresh = refresh;
        _time = time;
        _logger = logger;
    }

    public override string Description => $"files '{_certFile}', '{_keyFile}', '{_rootFile}'";

    protected override async Task RunAsync(CancellationToken stopping)
    {
        Watch();
        while (!stopping.IsCancellationRequested)
        {
            var changed = Volatile.Read(ref _changed);
            Load();
            using (var iteration = CancellationTokenSource.CreateLinkedTokenSource(stopping))
            {
                await Task.WhenAny(Wait(_refresh, _time, iteration.Token), changed.Task).ConfigureAwait(false);
                await iteration.CancelAsync().ConfigureAwait(false);
            }

            stopping.ThrowIfCancellationRequested();
            if (changed.Task.IsCompleted)
            {
                Interlocked.CompareExchange(ref _changed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), changed);
                // Writers replace the three files one by one: let them finish before reading.
                await Wait(SettleDelay, _time, stopping).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Reads the files; publishes when their content changed and loads.</summary>
    internal void Load()
    {
        byte[] cert, key, roots;
        try
        {
            cert = File.ReadAllBytes(_certFile);
            key = File.ReadAllBytes(_keyFile);
            roots = File.ReadAllBytes(_rootFile);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Fail(ex.Message);
            return;
        }

        var hash = SHA256.HashData([.. cert, .. key, .. roots]);
        if (_loadedHash is not null && hash.AsSpan().SequenceEqual(_loadedHash))
        {
            return;
        }

        WorkloadCertificate loaded;
        try
        {
            using var privateKey = ReadKey(System.Text.Encoding.ASCII.GetString(key));
            loaded = WorkloadCertificate.FromPem([System.Text.Encoding.ASCII.GetString(cert)], privateKey, System.Text.Encoding.ASCII.GetString(roots), Description);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            Fail(ex.Message);
            return;
        }

        var previous = Current;
        _loadedHash = hash;
        _lastError = null;
        Publish(loaded);
        if (previous is null)
        {
            Log.Loaded(_logger, loaded.Identity?.ToString() ?? "(none)", Description, loaded.NotAfter);
        }
        else
        {
            Log.Reloaded(_logger, loaded.Identity?.ToString() ?? "(none)", Description, previous.NotAfter, loaded.NotAfter);
        }

        if (loaded.NotAfter <= _time.GetUtcNow())
        {
            Log.Expired(_logger, Description, loaded.NotAfter);
        }
    }

    private static AsymmetricAlgorithm ReadKey(string pem)
    {
        // The PEM label says which algorithm: EC (SEC1), RSA (PKCS#1) or PRIVATE KEY (PKCS#8, either).
        if (pem.Contains("BEGIN RSA PRIVATE KEY", StringComparison.Ordinal))
        {
            var rsa = RSA.Create();
            rsa.ImportFromPem(pem);
            return rsa;
        }

        var ec = ECDsa.Create();
        try
        {
            ec.ImportFromPem(pem);
            return ec;
        }
        catch (CryptographicException)
        {
            ec.Dispose();
            var rsa = RSA.Create();
            rsa.ImportFromPem(pem);
            return rsa;
        }
    }

    private void Fail(string reason)
    {
        if (reason == _lastError)
        {
            return;
        }

        _lastError = reason;
        if (Current is { } current)
        {
            Log.ReloadFailed(_logger, Description, reason, current.NotAfter);
        }
        else
        {
            Log.LoadFailed(_logger, Description, reason, _refresh);
        }
    }

    private void Watch()
    {
        foreach (var directory in new HashSet<string>([Path.GetDirectoryName(_certFile)!, Path.GetDirectoryName(_keyFile)!, Path.GetDirectoryName(_rootFile)!], StringComparer.Ordinal))
        {
            if (!Directory.Exists(directory))
            {
                continue;
            }

            try
            {
                var watcher = new FileSystemWatcher(directory) { IncludeSubdirectories = false, NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.DirectoryName };
                watcher.Changed += OnFileEvent;
                watcher.Created += OnFileEvent;
                watcher.Renamed += OnFileEvent;
                watcher.Deleted += OnFileEvent;
                watcher.EnableRaisingEvents = true;
                _watchers.Add(watcher);
            }
            catch (Exception ex) when (ex is IOException or ArgumentException or PlatformNotSupportedException)
            {
                // The refresh interval still catches changes.
                Log.NoWatcher(_logger, directory, ex.Message);
            }
        }
    }

    private void OnFileEvent(object sender, FileSystemEventArgs e) => Volatile.Read(ref _changed).TrySetResult();

    protected override ValueTask DisposeCoreAsync()
    {
        foreach (var watcher in _watchers)
        {
            watcher.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    private static partial class Log
    {
        [LoggerMessage(8010, LogLevel.Information, "Workload certificate for '{Identity}' loaded from {Files}: valid until {NotAfter:o}.")]
        public static partial void Loaded(ILogger logger, string identity, string files, DateTimeOffset notAfter);

        [LoggerMessage(8011, LogLevel.Information, "Workload certificate for '{Identity}' rotated: {Files} changed; the one valid until {OldNotAfter:o} is replaced by one valid until {NotAfter:o}.")]
        public static partial void Reloaded(ILogger logger, string identity, string files, DateTimeOffset oldNotAfter, DateTimeOffset notAfter);

        [LoggerMessage(8012, LogLevel.Warning, "No workload certificate yet: {Files} cannot be loaded: {Reason}. Trying again when they change (at least every {Refresh}).")]
        public static partial void LoadFailed(ILogger logger, string files, string reason, TimeSpan refresh);

        [LoggerMessage(8013, LogLevel.Warning, "{Files} changed but cannot be loaded: {Reason}. The current certificate stays in force until {NotAfter:o}.")]
        public static partial void ReloadFailed(ILogger logger, string files, string reason, DateTimeOffset notAfter);

        [LoggerMessage(8014, LogLevel.Error, "The workload certificate in {Files} expired at {NotAfter:o}: whoever writes these files is not renewing it.")]
        public static partial void Expired(ILogger logger, string files, DateTimeOffset notAfter);

        [LoggerMessage(8015, LogLevel.Debug, "Folder '{Directory}' cannot be watched ({Reason}); certificate files there are checked every refresh interval only.")]
        public static partial void NoWatcher(ILogger logger, string directory, string reason);
    }
}

using System.Globalization;
using System.Text.Json;
using Mesh.Sdk.Xds;
using Mesh.Xds.Security;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.Security;

/// <summary>Chooses the workload's certificate source from the options and the bootstrap.</summary>
internal static class WorkloadCertificates
{
    /// <summary>The bootstrap's certificate provider instance Istio names (<c>default</c>).</summary>
    public const string DefaultProviderInstance = "default";

    /// <summary>
    /// The source: <see cref="MeshSecurityOptions.CertificateDirectory"/>'s files; else the bootstrap's
    /// <c>file_watcher</c> provider (<c>default</c>, or the only one); else the CA at
    /// <see cref="MeshSecurityOptions.CaAddress"/> or the bootstrap's first xDS server.
    /// </summary>
    /// <param name="options">The mesh options.</param>
    /// <param name="bootstrap">The bootstrap in force.</param>
    /// <param name="namespace">The workload's namespace.</param>
    /// <param name="time">The clock.</param>
    /// <param name="loggerFactory">Where logs go.</param>
    /// <returns>The source, not started.</returns>
    /// <exception cref="XdsBootstrapException">The bootstrap's file_watcher provider lacks a file name.</exception>
    public static WorkloadCertificateSource Create(MeshOptions options, XdsBootstrap bootstrap, string @namespace, TimeProvider time, ILoggerFactory loggerFactory)
    {
        var security = options.Security;
        if (security.CertificateDirectory is { } directory)
        {
            return new FileCertificateSource(
                Path.Combine(directory, FileCertificateSource.CertChainFileName),
                Path.Combine(directory, FileCertificateSource.KeyFileName),
                Path.Combine(directory, FileCertificateSource.RootCertFileName),
                security.FileRefreshInterval, time, loggerFactory.CreateLogger<FileCertificateSource>());
        }

        if (FileWatcherProvider(bootstrap) is { } provider)
        {
            return new FileCertificateSource(provider.Cert, provider.Key, provider.Roots, provider.Refresh ?? security.FileRefreshInterval, time,
                loggerFactory.CreateLogger<FileCertificateSource>());
        }

        var identity = SpiffeId.Create(security.TrustDomain, @namespace, options.ServiceAccount ?? DefaultServiceAccount);
        var address = security.CaAddress ?? bootstrap.Servers[0].ServerUri;
        var clusterId = bootstrap.Node.Metadata.ValueKind == JsonValueKind.Object && bootstrap.Node.Metadata.TryGetProperty("CLUSTER_ID", out var c)
            && c.ValueKind == JsonValueKind.String ? c.GetString() : null;
        var client = new GrpcCertificateAuthorityClient(address, security.TokenFile, clusterId, ReadRoots(security.CaRootCertFile), time, loggerFactory);
        return new CaCertificateSource(client, identity, security.CertificateLifetime, security.RotationPoint, time, loggerFactory.CreateLogger<CaCertificateSource>());
    }

    /// <summary>The roots of <see cref="MeshSecurityOptions.CaRootCertFile"/>, or <see langword="null"/> when it is not set.</summary>
    /// <exception cref="InvalidOperationException">The file cannot be read or holds no PEM certificate; the message names it.</exception>
    private static System.Security.Cryptography.X509Certificates.X509Certificate2Collection? ReadRoots(string? file)
    {
        if (file is null)
        {
            return null;
        }

        var roots = new System.Security.Cryptography.X509Certificates.X509Certificate2Collection();
        try
        {
            roots.ImportFromPem(File.ReadAllText(file));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            throw new InvalidOperationException($"Mesh:Security:CaRootCertFile '{file}' cannot be read as PEM certificates: {ex.Message}", ex);
        }

        return roots.Count > 0 ? roots : throw new InvalidOperationException($"Mesh:Security:CaRootCertFile '{file}' holds no PEM certificate.");
    }

    /// <summary>The service account of a workload that names none: Kubernetes runs such a pod as <c>default</c>.</summary>
    public const string DefaultServiceAccount = "default";

    /// <summary>The bootstrap's <c>file_watcher</c> provider's files, or <see langword="null"/> when it has none.</summary>
    internal static (string Cert, string Key, string Roots, TimeSpan? Refresh)? FileWatcherProvider(XdsBootstrap bootstrap)
    {
        XdsCertificateProviderConfig? chosen = null;
        string? name = null;
        if (bootstrap.CertificateProviders.TryGetValue(DefaultProviderInstance, out var preferred) && preferred.PluginName == "file_watcher")
        {
            (chosen, name) = (preferred, DefaultProviderInstance);
        }
        else
        {
            foreach (var (instance, config) in bootstrap.CertificateProviders)
            {
                if (config.PluginName == "file_watcher")
                {
                    if (chosen is not null)
                    {
                        return null; // several, none named 'default': which one is for whom is up to xDS, not guessed here
                    }

                    (chosen, name) = (config, instance);
                }
            }
        }

        if (chosen is null)
        {
            return null;
        }

        string Required(string key)
            => chosen.Config.ValueKind == JsonValueKind.Object && chosen.Config.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String && v.GetString() is { Length: > 0 } s
                ? s
                : throw new XdsBootstrapException($"{bootstrap.Source}: certificate_providers.{name}.config.{key} is required by the file_watcher plugin.");

        TimeSpan? refresh = null;
        if (chosen.Config.ValueKind == JsonValueKind.Object && chosen.Config.TryGetProperty("refresh_interval", out var r) && r.ValueKind == JsonValueKind.String)
        {
            var text = r.GetString()!;
            if (!text.EndsWith('s') || !double.TryParse(text.AsSpan(0, text.Length - 1), NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || seconds <= 0)
            {
                throw new XdsBootstrapException($"{bootstrap.Source}: certificate_providers.{name}.config.refresh_interval '{text}' must be a duration such as \"600s\".");
            }

            refresh = TimeSpan.FromSeconds(seconds);
        }

        return (Required("certificate_file"), Required("private_key_file"), Required("ca_certificate_file"), refresh);
    }
}

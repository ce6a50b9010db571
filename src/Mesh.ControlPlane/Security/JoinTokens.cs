using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;

namespace Mesh.ControlPlane.Security;

/// <summary>
/// Join tokens: a workload outside the control plane's host proves its service account with a token the control
/// plane issued for exactly that account. A token is <c>mesh1.&lt;namespace&gt;.&lt;account&gt;.&lt;mac&gt;</c> (base64url
/// parts), the MAC an HMAC-SHA256 under a key kept in the CA folder (<c>join-token.key</c>): nothing per token is
/// stored, every token stays valid until the key is replaced, and replacing it (delete the file, restart) revokes all.
/// </summary>
internal sealed class JoinTokens
{
    /// <summary>The key's file name inside the CA folder.</summary>
    public const string KeyFileName = "join-token.key";

    private const string Prefix = "mesh1";
    private readonly byte[] _key;

    private JoinTokens(byte[] key) => _key = key;

    /// <summary>Whether the key lives in a folder (tokens survive a restart) or only in memory.</summary>
    public bool Persistent { get; private init; }

    /// <summary>Reads the key from <paramref name="directory"/>, creating it there when missing; a fresh in-memory key when no folder is given.</summary>
    /// <exception cref="InvalidOperationException">The key file cannot be read or written, or is not a key.</exception>
    public static JoinTokens Open(string? directory)
    {
        if (directory is null)
        {
            return new JoinTokens(RandomNumberGenerator.GetBytes(32));
        }

        var path = Path.Combine(directory, KeyFileName);
        try
        {
            if (File.Exists(path))
            {
                var key = Convert.FromBase64String(File.ReadAllText(path).Trim());
                if (key.Length < 32)
                {
                    throw new InvalidOperationException($"Join token key '{path}' is shorter than 32 bytes: delete it to have a new one made (tokens issued under it stop working).");
                }

                return new JoinTokens(key) { Persistent = true };
            }

            Directory.CreateDirectory(directory);
            var created = RandomNumberGenerator.GetBytes(32);
            CertificateAuthority.WriteAtomically(path, Convert.ToBase64String(created) + "\n", secret: true);
            return new JoinTokens(created) { Persistent = true };
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException)
        {
            throw new InvalidOperationException($"Join token key '{path}' cannot be used: {ex.Message}", ex);
        }
    }

    /// <summary>Issues the token of one service account.</summary>
    /// <param name="namespace">The account's namespace.</param>
    /// <param name="serviceAccount">The account.</param>
    /// <returns>The token, presented as <c>authorization: Bearer &lt;token&gt;</c>.</returns>
    public string Issue(string @namespace, string serviceAccount)
    {
        var ns = Base64Url(Encoding.UTF8.GetBytes(@namespace));
        var sa = Base64Url(Encoding.UTF8.GetBytes(serviceAccount));
        return $"{Prefix}.{ns}.{sa}.{Base64Url(Mac(@namespace, serviceAccount))}";
    }

    /// <summary>Checks a token; on success names the one account it stands for.</summary>
    /// <param name="token">The token.</param>
    /// <param name="namespace">Its namespace.</param>
    /// <param name="serviceAccount">Its service account.</param>
    /// <returns>Whether this control plane issued the token under its current key.</returns>
    public bool TryValidate(string token, [NotNullWhen(true)] out string? @namespace, [NotNullWhen(true)] out string? serviceAccount)
    {
        @namespace = null;
        serviceAccount = null;
        var parts = token.Split('.');
        if (parts.Length != 4 || parts[0] != Prefix)
        {
            return false;
        }

        try
        {
            var ns = Encoding.UTF8.GetString(FromBase64Url(parts[1]));
            var sa = Encoding.UTF8.GetString(FromBase64Url(parts[2]));
            if (!CryptographicOperations.FixedTimeEquals(FromBase64Url(parts[3]), Mac(ns, sa)))
            {
                return false;
            }

            @namespace = ns;
            serviceAccount = sa;
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private byte[] Mac(string @namespace, string serviceAccount)
        => HMACSHA256.HashData(_key, Encoding.UTF8.GetBytes($"mesh join token\n{@namespace}\n{serviceAccount}"));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static byte[] FromBase64Url(string text)
    {
        var s = text.Replace('-', '+').Replace('_', '/');
        return Convert.FromBase64String(s.PadRight(s.Length + ((4 - (s.Length % 4)) % 4), '='));
    }
}

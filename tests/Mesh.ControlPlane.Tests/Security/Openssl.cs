using System.Diagnostics;

namespace Mesh.ControlPlane.Tests.Security;

/// <summary>Debian's openssl, an implementation independent of .NET's, run in a folder.</summary>
internal static class Openssl
{
    public static string Run(string directory, params string[] args)
    {
        var info = new ProcessStartInfo("openssl")
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        Process process;
        try
        {
            process = Process.Start(info)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException("These tests need the openssl command (Debian: apt-get install openssl).", ex);
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEnd();
            process.WaitForExit();
            var output = stdout.Result;
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"openssl {string.Join(' ', args)} exited {process.ExitCode}:\n{output}\n{stderr}");
            }

            return output + stderr;
        }
    }

    /// <summary>A P-256 key and a CSR for it, made by openssl; <paramref name="san"/> like <c>URI:spiffe://...</c> or <c>DNS:x</c>.</summary>
    public static string NewCsr(string directory, string name, string? san)
    {
        var args = new List<string> { "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", name + "-key.pem", "-out", name + "-csr.pem", "-subj", "/O=workload" };
        if (san is not null)
        {
            args.Add("-addext");
            args.Add("subjectAltName=" + san);
        }

        Run(directory, [.. args]);
        return File.ReadAllText(Path.Combine(directory, name + "-csr.pem"));
    }

    /// <summary>A self-signed CA (P-256) written as <paramref name="name"/>.pem and <paramref name="name"/>-key.pem.</summary>
    public static void NewRoot(string directory, string name, string subject)
        => Run(directory, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", name + "-key.pem", "-out", name + ".pem",
            "-days", "30", "-subj", subject, "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign");

    /// <summary>An intermediate CA signed by <paramref name="issuer"/>, written as <paramref name="name"/>.pem and <paramref name="name"/>-key.pem.</summary>
    public static void NewIntermediate(string directory, string name, string subject, string issuer)
    {
        Run(directory, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", name + "-key.pem", "-out", name + ".csr", "-subj", subject);
        File.WriteAllText(Path.Combine(directory, name + ".ext"), "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n");
        Run(directory, "x509", "-req", "-in", name + ".csr", "-CA", issuer + ".pem", "-CAkey", issuer + "-key.pem", "-CAcreateserial", "-days", "20", "-out", name + ".pem", "-extfile", name + ".ext");
    }
}

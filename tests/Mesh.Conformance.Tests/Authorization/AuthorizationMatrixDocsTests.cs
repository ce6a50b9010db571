using System.Text;

namespace Mesh.Conformance.Tests.Authorization;

/// <summary>
/// Keeps <c>docs/authorization-matrix.md</c> equal to <see cref="AuthorizationMatrix"/>: the page is generated from the
/// sets (their YAML and every request with its expected answer). When it differs the test fails; run it with
/// <c>MESH_UPDATE_DOCS=1</c> to write the page.
/// </summary>
public sealed class AuthorizationMatrixDocsTests
{
    [Fact]
    public void MatrixDoc_ListsEverySetAndRequest()
    {
        var path = Path.Combine(RepositoryRoot(), "docs", "authorization-matrix.md");
        var expected = Page();
        var current = File.Exists(path) ? File.ReadAllText(path).ReplaceLineEndings("\n") : string.Empty;
        if (current == expected)
        {
            return;
        }

        if (Environment.GetEnvironmentVariable("MESH_UPDATE_DOCS") == "1")
        {
            File.WriteAllText(path, expected);
            return;
        }

        Assert.Fail("docs/authorization-matrix.md is stale: run AuthorizationMatrixDocsTests with MESH_UPDATE_DOCS=1 to regenerate it.");
    }

    internal static string Page()
    {
        var text = new StringBuilder();
        text.Append("""
            <!-- Generated from tests/Mesh.Conformance.Tests/Authorization/AuthorizationMatrix.cs by AuthorizationMatrixDocsTests; do not edit by hand. -->
            # The AuthorizationPolicy matrix

            Each set of AuthorizationPolicies below is applied to the control plane. The set's inbound listener for the
            workload `app: reviews` in namespace `default` is compiled by the SDK's `InboundAuthorization`, and each request
            must get the answer shown: `200`, or `403` with `RBAC: access denied`. When the table names a policy, that policy
            must be the one that decided (`<namespace>-<name>-<rule index>`). `AuthorizationMatrixTests.Decision_IsIstios`
            checks every row. Callers are mTLS peers `spiffe://cluster.local/ns/<namespace>/sa/<account>`, or `plaintext`.
            Unless a row says otherwise, a request comes from 127.0.0.1 to 127.0.0.1, on port 9080 with authority
            `reviews:9080`. See [security.md](security.md#authorization-in-the-sdk-meshsdk) for the semantics.

            """).Append('\n');
        foreach (var set in AuthorizationMatrix.Sets)
        {
            text.Append("## ").Append(set.Name).Append("\n\n");
            if (set.Yaml.Length == 0)
            {
                text.Append("No policy.\n\n");
            }
            else
            {
                text.Append("```yaml\n").Append(set.Yaml.TrimEnd('\n', '-').TrimEnd('\n')).Append("\n```\n\n");
            }

            text.Append("| case | caller | request | answer | decided by |\n|---|---|---|---|---|\n");
            foreach (var row in set.Cases)
            {
                text.Append("| ").Append(row.Id)
                    .Append(" | ").Append(row.Caller ?? "plaintext")
                    .Append(" | ").Append(Cell(Describe(row)))
                    .Append(" | ").Append(row.Expected)
                    .Append(" | ").Append(row.Policy is null ? string.Empty : "`" + row.Policy + "`")
                    .Append(" |\n");
            }

            text.Append('\n');
        }

        return text.ToString().TrimEnd('\n') + "\n";
    }

    private static string Describe(AuthzCase row)
    {
        var text = new StringBuilder().Append('`').Append(row.Method).Append(' ').Append(row.Path).Append('`');
        if (row.Port != 9080)
        {
            text.Append(", port ").Append(row.Port);
        }

        if (row.Host != "reviews:9080" && row.Host != $"reviews:{row.Port}")
        {
            text.Append(", authority `").Append(row.Host).Append('`');
        }

        foreach (var (name, value) in row.Headers)
        {
            text.Append(", `").Append(name).Append(": ").Append(value).Append('`');
        }

        if (row.RemoteIp != "127.0.0.1")
        {
            text.Append(", from ").Append(row.RemoteIp);
        }

        if (row.Sni is not null)
        {
            text.Append(", SNI `").Append(row.Sni).Append('`');
        }

        return text.ToString();
    }

    private static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal);

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Mesh.Sdk.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"No Mesh.Sdk.sln above '{AppContext.BaseDirectory}'.");
    }
}

using System.IO.Hashing;
using System.Text;
using Mesh.Sdk.Routing;

namespace Mesh.Sdk.Tests.Routing;

public sealed class HashPolicyTests
{
    private static HashPolicy Header(string name, bool terminal = false) => new() { Kind = HashPolicyKind.Header, Name = name, Terminal = terminal };

    private static ulong Xx(string key) => XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(key));

    [Fact]
    public void HashKey_IsXxHash64OfUtf8()
    {
        Assert.Equal(Xx("alice"), HashPolicy.HashKey("alice"));
        Assert.Equal(Xx("ünïcødé"), HashPolicy.HashKey("ünïcødé"));
        var big = new string('x', 2000);
        Assert.Equal(Xx(big), HashPolicy.HashKey(big));
    }

    [Fact]
    public void TryComputeHash_CombinesLikeEnvoy()
    {
        var request = TestRequest.Get("/", ("x-a", "1"), ("x-b", "2"));
        Assert.True(HashPolicy.TryComputeHash([Header("x-a"), Header("x-b")], in request, out var hash));
        var a = Xx("1");
        Assert.Equal(((a << 1) | (a >> 63)) ^ Xx("2"), hash);
    }

    [Fact]
    public void TryComputeHash_TerminalStopsOnlyAfterAKey()
    {
        var request = TestRequest.Get("/", ("x-b", "2"), ("x-c", "3"));
        Assert.True(HashPolicy.TryComputeHash([Header("x-a", terminal: true), Header("x-b", terminal: true), Header("x-c")], in request, out var hash));
        Assert.Equal(Xx("2"), hash);
    }

    [Fact]
    public void TryComputeHash_FalseWhenNoKey()
    {
        Assert.False(HashPolicy.TryComputeHash([Header("x-missing")], TestRequest.Get("/"), out _));
        Assert.False(HashPolicy.TryComputeHash([], TestRequest.Get("/"), out _));
    }

    [Fact]
    public void TryComputeHash_SameKeySameHashDifferentKeyDifferentHash()
    {
        HashPolicy[] policies = [Header("x-user")];
        HashPolicy.TryComputeHash(policies, TestRequest.Get("/a", ("x-user", "alice")), out var first);
        HashPolicy.TryComputeHash(policies, TestRequest.Get("/b", ("x-user", "alice")), out var second);
        HashPolicy.TryComputeHash(policies, TestRequest.Get("/a", ("x-user", "bob")), out var third);
        Assert.Equal(first, second);
        Assert.NotEqual(first, third);
    }
}

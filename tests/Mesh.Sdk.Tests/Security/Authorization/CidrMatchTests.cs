using System.Net;
using Envoy.Config.Core.V3;
using Mesh.Sdk.Security.Authorization;

namespace Mesh.Sdk.Tests.Security.Authorization;

public sealed class CidrMatchTests
{
    private static CidrMatch Compile(string address, uint? length)
    {
        Assert.True(CidrMatch.TryCompile(new CidrRange { AddressPrefix = address, PrefixLen = length }, out var match, out var error), error);
        return match!;
    }

    [Theory]
    [InlineData("10.1.0.0", 16u, "10.1.255.7", true)]
    [InlineData("10.1.0.0", 16u, "10.2.0.1", false)]
    [InlineData("10.1.2.3", 32u, "10.1.2.3", true)]
    [InlineData("10.1.2.3", 32u, "10.1.2.4", false)]
    [InlineData("10.1.2.3", 20u, "10.1.15.255", true)]
    [InlineData("10.1.2.3", 20u, "10.1.16.0", false)]
    [InlineData("0.0.0.0", 0u, "203.0.113.9", true)]
    [InlineData("0.0.0.0", 0u, "::1", false)]
    [InlineData("2001:db8::", 32u, "2001:db8:1::1", true)]
    [InlineData("2001:db8::", 32u, "2001:db9::1", false)]
    [InlineData("10.1.0.0", 16u, "::ffff:10.1.0.9", true)]
    [InlineData("::1", 128u, "::1", true)]
    public void Matches_MaskedPrefixOfTheSameFamily(string prefix, uint length, string address, bool expected)
        => Assert.Equal(expected, Compile(prefix, length).Matches(IPAddress.Parse(address)));

    [Fact]
    public void UnsetLength_IsZero_AndUnknownAddressMatchesNothing()
    {
        Assert.True(Compile("10.0.0.0", null).Matches(IPAddress.Parse("192.0.2.1")));
        Assert.False(Compile("10.0.0.0", 8).Matches(null));
        Assert.Equal("10.0.0.0/8", Compile("10.9.9.9", 8).ToString());
    }

    [Fact]
    public void TooLongPrefix_IsRejected()
    {
        Assert.False(CidrMatch.TryCompile(new CidrRange { AddressPrefix = "::", PrefixLen = 129 }, out _, out var error));
        Assert.Equal("prefix length 129 of '::' is longer than 128", error);
    }
}

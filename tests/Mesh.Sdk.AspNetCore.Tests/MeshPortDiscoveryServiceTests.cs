using System.Net;

namespace Mesh.Sdk.AspNetCore.Tests;

/// <summary>How bound server addresses map to the registered service ports and instance address.</summary>
public sealed class MeshPortDiscoveryServiceTests
{
    [Fact]
    public void Discover_OneEphemeralPort_MapsServicePortToIt_OnTheBoundAddress()
    {
        var discovered = MeshPortDiscoveryService.Discover(["http://127.0.0.1:41234"], servicePort: 9080);

        Assert.Equal(new Dictionary<int, int> { [9080] = 41234 }, discovered.Ports);
        Assert.Equal(IPAddress.Loopback, discovered.Address);
        Assert.Empty(discovered.Skipped);
    }

    [Fact]
    public void Discover_WithoutServicePort_UsesEachPortsOwnNumber_AndNoAddressForWildcards()
    {
        var discovered = MeshPortDiscoveryService.Discover(["http://[::]:5000", "https://0.0.0.0:5001"], servicePort: null);

        Assert.Equal(new Dictionary<int, int> { [5000] = 5000, [5001] = 5001 }, discovered.Ports);
        Assert.Null(discovered.Address);
    }

    [Fact]
    public void Discover_LocalhostOnBothFamilies_IsOnePort_OnLoopback()
    {
        var discovered = MeshPortDiscoveryService.Discover(["http://localhost:5000", "http://localhost:5000"], servicePort: 9080);

        Assert.Equal(new Dictionary<int, int> { [9080] = 5000 }, discovered.Ports);
        Assert.Equal(IPAddress.Loopback, discovered.Address);
    }

    [Fact]
    public void Discover_SecondPortCollidingWithServicePort_IsSkipped()
    {
        var discovered = MeshPortDiscoveryService.Discover(["http://127.0.0.1:5000", "http://127.0.0.1:9080", "http://127.0.0.1:7000"], servicePort: 9080);

        Assert.Equal(new Dictionary<int, int> { [9080] = 5000, [7000] = 7000 }, discovered.Ports);
        Assert.Equal([(9080, "http://127.0.0.1:9080")], discovered.Skipped);
    }

    [Fact]
    public void Discover_DifferentAddresses_GiveNoInstanceAddress_AndPipesAreIgnored()
    {
        var discovered = MeshPortDiscoveryService.Discover(["http://unix:/tmp/app.sock", "http://10.1.2.3:8080", "http://127.0.0.1:8081"], servicePort: 9080);

        Assert.Equal(new Dictionary<int, int> { [9080] = 8080, [8081] = 8081 }, discovered.Ports);
        Assert.Null(discovered.Address);
    }
}

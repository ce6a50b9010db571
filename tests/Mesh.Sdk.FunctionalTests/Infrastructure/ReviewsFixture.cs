namespace Mesh.Sdk.FunctionalTests.Infrastructure;

/// <summary>
/// One mesh per test class: <c>reviews</c> with two v1 workloads, one v2 and one v3. Tests of a class run one
/// after another and each applies its own configuration first; classes run in parallel on their own meshes.
/// </summary>
public sealed class ReviewsFixture : IAsyncLifetime
{
    internal MeshHarness Mesh { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Mesh = await MeshHarness.StartAsync(("reviews-v1-a", "v1"), ("reviews-v1-b", "v1"), ("reviews-v2-a", "v2"), ("reviews-v3-a", "v3"));

    public async Task DisposeAsync()
    {
        if (Mesh is not null)
        {
            await Mesh.DisposeAsync();
        }
    }
}

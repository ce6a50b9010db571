using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.AspNetCore.Tests.Infrastructure;

/// <summary>A plain (non-web) meshed caller: <c>services.AddMesh()</c> and an <c>IHttpClientFactory</c> client.</summary>
internal static class MeshClient
{
    public static ServiceProvider Create(ControlPlaneFixture mesh, Action<MeshOptions>? configure = null)
    {
        var services = new ServiceCollection();
        services.AddLogging(b => b.SetMinimumLevel(LogLevel.Debug).AddProvider(mesh.Logs));
        services.AddMesh(o =>
        {
            o.BootstrapConfig = mesh.Bootstrap;
            o.ResolveTimeout = TimeSpan.FromSeconds(5);
            configure?.Invoke(o);
        });
        services.AddHttpClient("caller", c => c.Timeout = TimeSpan.FromSeconds(20));
        return services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });
    }

    public static HttpClient Http(this ServiceProvider services) => services.GetRequiredService<IHttpClientFactory>().CreateClient("caller");

    /// <summary>
    /// Sends GET <paramref name="url"/> until it answers 200 (a workload's registration reaches the control plane and
    /// the caller a moment after it started; until then the host is not in the mesh). Bounded: 15 s.
    /// </summary>
    public static async Task<string> GetWhenReachableAsync(this HttpClient http, string url, Func<string> dump)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        string last = "no attempt";
        for (var attempt = 0; attempt < 300; attempt++)
        {
            try
            {
                using var response = await http.GetAsync(url);
                var body = await response.Content.ReadAsStringAsync();
                if (response.IsSuccessStatusCode)
                {
                    return body;
                }

                last = $"{(int)response.StatusCode} {body}";
            }
            catch (HttpRequestException error)
            {
                last = error.Message;
            }

            if (DateTime.UtcNow > deadline)
            {
                break;
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"GET {url} never answered 200; last: {last}\n{dump()}");
    }
}

using System.Diagnostics;
using System.Net;

namespace Mesh.Bookinfo.Tests.Infrastructure;

/// <summary>
/// One running bookinfo for the whole collection: the launcher on an empty temporary config folder (so reviews
/// start round robin over v1/v2/v3, as the sample's config folder does), productpage and xDS on free ports.
/// Rules are applied as the walkthrough does, by copying files from samples/bookinfo-dotnet/networking into the
/// config folder, and undone by deleting them.
/// </summary>
public sealed class BookinfoFixture : IAsyncLifetime
{
    public static readonly TimeSpan ReadyTimeout = TimeSpan.FromSeconds(120);
    public static readonly TimeSpan ApplyTimeout = TimeSpan.FromSeconds(20);

    private readonly HttpClient _http = new(new SocketsHttpHandler { UseCookies = false, AllowAutoRedirect = false }) { Timeout = TimeSpan.FromSeconds(30) };
    private string _configDirectory = null!;
    private string _prometheusDirectory = null!;

    public LauncherProcess Launcher { get; private set; } = null!;

    public HttpClient Http => _http;

    public async Task InitializeAsync()
    {
        _configDirectory = Directory.CreateTempSubdirectory("bookinfo-config-").FullName;
        // Outside the watched config folder, as the launcher's default (samples/bookinfo-dotnet/prometheus) is.
        _prometheusDirectory = Directory.CreateTempSubdirectory("bookinfo-targets-").FullName;
        Launcher = await LauncherProcess.StartAsync(_configDirectory, _prometheusDirectory, ReadyTimeout);
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        if (Launcher is not null)
        {
            await Launcher.DisposeAsync();
        }

        foreach (var directory in new[] { _configDirectory, _prometheusDirectory })
        {
            try
            {
                Directory.Delete(directory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    /// <summary>GET /productpage, signed in as <paramref name="user"/> when given (the sign-in cookie).</summary>
    public async Task<ProductPageView> GetPageAsync(string? user = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, Launcher.ProductPage);
        if (user is not null)
        {
            request.Headers.Add("Cookie", "user=" + user);
        }

        using var response = await _http.SendAsync(request);
        return ProductPageView.Parse((int)response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary><paramref name="count"/> page loads in a row.</summary>
    public async Task<IReadOnlyList<ProductPageView>> GetPagesAsync(int count, string? user = null)
    {
        var pages = new List<ProductPageView>(count);
        for (var i = 0; i < count; i++)
        {
            pages.Add(await GetPageAsync(user));
        }

        return pages;
    }

    /// <summary>Copies rule files (networking/, telemetry/ or security/) into the config folder one by one, each after the previous one loaded.</summary>
    public async Task ApplyAsync(params string[] files)
    {
        foreach (var file in files)
        {
            await ApplyTextAsync(file, await File.ReadAllTextAsync(Paths.RuleFile(file)));
        }
    }

    /// <summary>Writes <paramref name="yaml"/> into the config folder as <paramref name="file"/> and waits until the control plane loaded it.</summary>
    public async Task ApplyTextAsync(string file, string yaml)
    {
        var mark = Launcher.LineCount;
        var target = Path.Combine(_configDirectory, file);
        // Written next to the target under a name the control plane ignores, then renamed: never read half-written.
        var temp = target + ".tmp";
        await File.WriteAllTextAsync(temp, yaml);
        // Stamped now, as `cp` stamps its copy (File.Copy may keep the sample file's time): between two files
        // defining one resource the control plane takes the more recently modified, so the file applied last wins.
        File.SetLastWriteTimeUtc(temp, DateTime.UtcNow);
        File.Move(temp, target, overwrite: true);
        var line = await Launcher.WaitForLineAsync(
            l => l.Contains(file, StringComparison.Ordinal) && (l.Contains("Loaded '", StringComparison.Ordinal) || l.Contains("rejected", StringComparison.Ordinal)),
            mark, ApplyTimeout);
        Assert.True(line.Contains("Loaded '", StringComparison.Ordinal), $"The control plane rejected '{file}': {line}");
    }

    /// <summary>
    /// Deletes rule files from the config folder, each after the previous one was dropped. Between two files defining
    /// the same resource the control plane takes the more recently modified one, which copies made a moment apart do
    /// not decide reliably (the delay file won over a later-copied abort file once), so a rule is replaced by removing
    /// it first.
    /// </summary>
    public async Task RemoveAsync(params string[] files)
    {
        foreach (var file in files)
        {
            var mark = Launcher.LineCount;
            File.Delete(Path.Combine(_configDirectory, file));
            await Launcher.WaitForLineAsync(l => l.Contains("Removed '", StringComparison.Ordinal) && l.Contains(file, StringComparison.Ordinal), mark, ApplyTimeout);
        }
    }

    /// <summary>Deletes every rule from the config folder and waits until the control plane dropped them.</summary>
    public async Task ResetAsync()
    {
        foreach (var path in Directory.GetFiles(_configDirectory))
        {
            var file = Path.GetFileName(path);
            var mark = Launcher.LineCount;
            File.Delete(path);
            if (file.EndsWith(".yaml", StringComparison.Ordinal) || file.EndsWith(".yml", StringComparison.Ordinal))
            {
                await Launcher.WaitForLineAsync(l => l.Contains("Removed '", StringComparison.Ordinal) && l.Contains(file, StringComparison.Ordinal), mark, ApplyTimeout);
            }
        }
    }

    /// <summary>Deletes every rule and waits until reviews answer round robin over v1, v2 and v3 again (the default).</summary>
    public async Task ResetToDefaultAsync()
    {
        await ResetAsync();
        var clock = Stopwatch.StartNew();
        var recent = new Queue<string?>();
        while (clock.Elapsed < ApplyTimeout)
        {
            recent.Enqueue((await GetPageAsync()).Version);
            if (recent.Count > 3)
            {
                recent.Dequeue();
            }

            if (recent.Distinct().Count() == 3 && !recent.Contains(null))
            {
                return;
            }
        }

        Assert.Fail($"Reviews did not answer from v1, v2 and v3 within {ApplyTimeout.TotalSeconds} s after every rule was removed.{Environment.NewLine}{Launcher.Tail()}");
    }

    /// <summary>
    /// Loads the page until <paramref name="condition"/> holds for <paramref name="consecutive"/> loads in a row
    /// (a rule change reaches productpage's and reviews' mesh within a moment after the control plane loaded it).
    /// </summary>
    public async Task WaitForPagesAsync(Func<ProductPageView, bool> condition, string? user = null, int consecutive = 3, string what = "condition")
    {
        var clock = Stopwatch.StartNew();
        var inARow = 0;
        ProductPageView? last = null;
        while (clock.Elapsed < ApplyTimeout)
        {
            last = await GetPageAsync(user);
            inARow = condition(last) ? inARow + 1 : 0;
            if (inARow >= consecutive)
            {
                return;
            }

            await Task.Delay(100);
        }

        Assert.Fail($"The page did not show {what} {consecutive} times in a row within {ApplyTimeout.TotalSeconds} s; last: {last}.{Environment.NewLine}Launcher output:{Environment.NewLine}{Launcher.Tail()}");
    }

    /// <summary>POST /login as the sign-in form does; returns the response (a redirect with the cookie).</summary>
    public async Task<HttpResponseMessage> SignInAsync(string user)
    {
        using var form = new FormUrlEncodedContent([new("username", user), new("passwd", "password")]);
        var response = await _http.PostAsync(new Uri(Launcher.ProductPage, "/login"), form);
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        return response;
    }
}

[CollectionDefinition(Name)]
public sealed class BookinfoCollection : ICollectionFixture<BookinfoFixture>
{
    public const string Name = "bookinfo";
}

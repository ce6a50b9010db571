namespace Bookinfo.ProductPage;

/// <summary>The signed-in user: a cookie set by the sign-in form, no password check (as in the original).</summary>
internal static class SignIn
{
    public const string CookieName = "user";

    /// <summary>The user name, or <see langword="null"/> when nobody is signed in.</summary>
    public static string? UserOf(HttpRequest request) =>
        request.Cookies.TryGetValue(CookieName, out var user) && !string.IsNullOrWhiteSpace(user) ? user : null;

    /// <summary>Where sign-in and sign-out return to: the page they were sent from when it is on this site, else the product page.</summary>
    public static string BackTo(HttpRequest request)
    {
        if (Uri.TryCreate(request.Headers.Referer.ToString(), UriKind.Absolute, out var referer)
            && string.Equals(referer.Authority, request.Host.Value, StringComparison.OrdinalIgnoreCase)
            && !referer.AbsolutePath.StartsWith("/login", StringComparison.Ordinal)
            && !referer.AbsolutePath.StartsWith("/logout", StringComparison.Ordinal))
        {
            return referer.PathAndQuery;
        }

        return "/productpage";
    }
}

using Mesh.Sdk.AspNetCore.Security;

namespace Bookinfo.Shared;

/// <summary>
/// Tells every caller who it was seen as: each answer carries <c>x-bookinfo-caller</c>, the caller's verified SPIFFE
/// id when the request came over mesh mutual TLS (<see cref="IMeshPeerIdentityFeature"/>), else
/// <c>none (plaintext)</c>. Productpage shows what details and reviews saw, and reviews passes on what ratings saw,
/// so the page shows each hop's identity (samples/bookinfo-dotnet/README.md, "Security").
/// </summary>
internal static class CallerIdentity
{
    public const string HeaderName = "x-bookinfo-caller";

    public const string Plaintext = "none (plaintext)";

    /// <summary>The caller as this request's connection proved it.</summary>
    public static string Of(HttpContext context) =>
        context.Features.Get<IMeshPeerIdentityFeature>()?.SpiffeId ?? Plaintext;

    /// <summary>Adds <c>x-bookinfo-caller</c> to every answer of the app.</summary>
    public static IApplicationBuilder UseCallerIdentityHeader(this IApplicationBuilder app) =>
        app.Use(static (context, next) =>
        {
            context.Response.Headers[HeaderName] = Of(context);
            return next(context);
        });
}

namespace Mesh.Sdk.Http;

/// <summary>
/// The length a wrapping <see cref="HttpContent"/> reports: the wrapped content's <c>Content-Length</c> when it has
/// one (read from its headers, which asks it to compute the length once), else unknown, so the body goes chunked.
/// </summary>
internal static class WrappedContentLength
{
    public static bool TryGet(HttpContent inner, out long length)
    {
        if (inner.Headers.ContentLength is { } known)
        {
            length = known;
            return true;
        }

        length = 0;
        return false;
    }
}

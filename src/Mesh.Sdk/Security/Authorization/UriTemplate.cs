using System.Text;
using Envoy.Config.Core.V3;
using Envoy.Type.Matcher.V3;
using Google.Protobuf;

namespace Mesh.Sdk.Security.Authorization;

/// <summary>
/// The <c>uri_template</c> permission istiod writes for AuthorizationPolicy paths holding <c>{*}</c> or <c>{**}</c>:
/// an <c>envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig</c> whose <c>path_template</c> (field 1) uses
/// Envoy's operators <c>*</c> (exactly one path segment) and <c>**</c> (any rest of the path, last only) between literal
/// segments. It is matched against the path without query, as a full-match regex built from the template.
/// </summary>
internal static class UriTemplate
{
    /// <summary>The type URL of the extension's config.</summary>
    public const string TypeUrl = "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig";

    // Envoy's pattern-template rules: RFC 3986 pchar without '/' for one segment; with '/' for the rest of the path.
    private const string OneSegment = @"[a-zA-Z0-9\-._~%!$&'()+,;:@=]+";
    private const string AnySegments = @"[a-zA-Z0-9\-._~%!$&'()+,;:@=/]*";

    /// <summary>The full-match regex equivalent of the extension config; false with a reason when it is not a supported template.</summary>
    public static bool TryToStringMatcher(TypedExtensionConfig config, out StringMatcher? matcher, out string? error)
    {
        matcher = null;
        if (config.TypedConfig?.TypeUrl != TypeUrl)
        {
            error = $"'{config.TypedConfig?.TypeUrl ?? "(none)"}' is not a URI template config ('{TypeUrl}')";
            return false;
        }

        string template;
        try
        {
            template = ReadPathTemplate(config.TypedConfig.Value);
        }
        catch (InvalidProtocolBufferException ex)
        {
            error = "the URI template config does not decode: " + ex.Message;
            return false;
        }

        if (!TryTranslate(template, out var regex, out error))
        {
            return false;
        }

        matcher = new StringMatcher { SafeRegex = new RegexMatcher { Regex = regex } };
        return true;
    }

    /// <summary>Translates a path template (<c>/api/*/items/**</c>) into an RE2 full-match pattern.</summary>
    public static bool TryTranslate(string template, out string regex, out string? error)
    {
        regex = string.Empty;
        if (!template.StartsWith('/'))
        {
            error = $"path template '{template}' does not start with '/'";
            return false;
        }

        var result = new StringBuilder();
        var segments = template[1..].Split('/');
        for (var i = 0; i < segments.Length; i++)
        {
            var segment = segments[i];
            result.Append('/');
            switch (segment)
            {
                case "*" or "{*}":
                    result.Append(OneSegment);
                    break;
                case "**" or "{**}":
                    if (i != segments.Length - 1)
                    {
                        error = $"path template '{template}': '**' must be the last operator";
                        return false;
                    }

                    result.Append(AnySegments);
                    break;
                default:
                    foreach (var c in segment)
                    {
                        if (!IsLiteral(c))
                        {
                            error = $"path template '{template}': segment '{segment}' is neither '*', '**' nor a literal (variables are not supported)";
                            return false;
                        }

                        if (c is '.' or '$' or '(' or ')' or '+')
                        {
                            result.Append('\\');
                        }

                        result.Append(c);
                    }

                    break;
            }
        }

        regex = result.ToString();
        error = null;
        return true;
    }

    private static bool IsLiteral(char c) => char.IsAsciiLetterOrDigit(c) || "-._~%!$&'()+,;:@=".Contains(c, StringComparison.Ordinal);

    private static string ReadPathTemplate(ByteString value)
    {
        var input = new CodedInputStream(value.ToByteArray());
        var template = string.Empty;
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (tag == 10)
            {
                template = input.ReadString();
            }
            else
            {
                input.SkipLastField();
            }
        }

        return template;
    }
}

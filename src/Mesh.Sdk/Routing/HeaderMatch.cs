using Envoy.Config.Route.V3;
using Mesh.Xds;

namespace Mesh.Sdk.Routing;

/// <summary>How a <see cref="HeaderMatch"/> tests its header.</summary>
internal enum HeaderMatchKind
{
    /// <summary>The (joined) value satisfies a <see cref="StringMatch"/>.</summary>
    String,

    /// <summary>The header is present (or absent, when the configured flag is false).</summary>
    Present,

    /// <summary>The value parses as a 64-bit integer within [start, end).</summary>
    Range,
}

/// <summary>
/// A compiled <c>HeaderMatcher</c>. Semantics follow Envoy: a missing header matches nothing except
/// <c>present_match: false</c> (or, inverted, <c>present_match: true</c>), unless
/// <c>treat_missing_header_as_empty</c> makes it the empty string; <c>invert_match</c> flips the result for
/// headers that are present. Pseudo-headers <c>:authority</c>, <c>:path</c>, <c>:method</c> and <c>:scheme</c>
/// read the request line.
/// </summary>
internal sealed class HeaderMatch
{
    private readonly StringMatch? _string;
    private readonly long _start;
    private readonly long _end;
    private readonly bool _present;

    private HeaderMatch(string name, HeaderMatchKind kind, StringMatch? stringMatch, bool present, long start, long end, bool invert, bool missingAsEmpty)
    {
        Name = name;
        Kind = kind;
        _string = stringMatch;
        _present = present;
        _start = start;
        _end = end;
        Invert = invert;
        TreatMissingAsEmpty = missingAsEmpty;
    }

    /// <summary>The lower-case header name.</summary>
    public string Name { get; }

    /// <summary>How the header is tested.</summary>
    public HeaderMatchKind Kind { get; }

    /// <summary>Whether the result is inverted for present headers.</summary>
    public bool Invert { get; }

    /// <summary>Whether a missing header is tested as the empty string.</summary>
    public bool TreatMissingAsEmpty { get; }

    /// <summary>Compiles a wire header matcher; on failure <paramref name="error"/> says why.</summary>
    public static bool TryCompile(HeaderMatcher matcher, out HeaderMatch? match, out string? error)
    {
        match = null;
        error = null;
        if (string.IsNullOrEmpty(matcher.Name))
        {
            error = "header matcher has an empty name";
            return false;
        }

        var name = matcher.Name.ToLowerInvariant();
        switch (matcher.HeaderMatchSpecifierCase)
        {
            case HeaderMatcher.HeaderMatchSpecifierOneofCase.StringMatch:
            case HeaderMatcher.HeaderMatchSpecifierOneofCase.ExactMatch:
            case HeaderMatcher.HeaderMatchSpecifierOneofCase.PrefixMatch:
            case HeaderMatcher.HeaderMatchSpecifierOneofCase.SuffixMatch:
            case HeaderMatcher.HeaderMatchSpecifierOneofCase.ContainsMatch:
            case HeaderMatcher.HeaderMatchSpecifierOneofCase.SafeRegexMatch:
                // Control planes send the single-purpose fields to stay readable by older gRPC clients.
                HeaderMatchers.TryGetStringMatcher(matcher, out var wireMatcher);
                if (matcher.HeaderMatchSpecifierCase == HeaderMatcher.HeaderMatchSpecifierOneofCase.ExactMatch && matcher.ExactMatch.Length == 0)
                {
                    // Envoy: an empty exact_match (the old field, unlike string_match.exact) matches any value.
                    wireMatcher = new Envoy.Type.Matcher.V3.StringMatcher { Prefix = string.Empty };
                }

                if (!StringMatch.TryCompile(wireMatcher, out var stringMatch, out error))
                {
                    error = $"header '{name}': {error}";
                    return false;
                }

                match = new HeaderMatch(name, HeaderMatchKind.String, stringMatch, false, 0, 0, matcher.InvertMatch, matcher.TreatMissingHeaderAsEmpty);
                return true;
            case HeaderMatcher.HeaderMatchSpecifierOneofCase.PresentMatch:
                match = new HeaderMatch(name, HeaderMatchKind.Present, null, matcher.PresentMatch, 0, 0, matcher.InvertMatch, matcher.TreatMissingHeaderAsEmpty);
                return true;
            case HeaderMatcher.HeaderMatchSpecifierOneofCase.RangeMatch:
                // Envoy puts no constraint on the range: an empty one matches no value (every value, inverted).
                match = new HeaderMatch(name, HeaderMatchKind.Range, null, false, matcher.RangeMatch.Start, matcher.RangeMatch.End, matcher.InvertMatch, matcher.TreatMissingHeaderAsEmpty);
                return true;
            default:
                // Envoy reads a matcher with no specifier as present_match: true.
                match = new HeaderMatch(name, HeaderMatchKind.Present, null, true, 0, 0, matcher.InvertMatch, matcher.TreatMissingHeaderAsEmpty);
                return true;
        }
    }

    /// <summary>The string matcher, for <see cref="HeaderMatchKind.String"/>.</summary>
    public StringMatch? StringMatch => _string;

    /// <summary>The configured <c>present_match</c> flag, for <see cref="HeaderMatchKind.Present"/>.</summary>
    public bool PresentMatch => _present;

    /// <summary>The range's inclusive start, for <see cref="HeaderMatchKind.Range"/>.</summary>
    public long RangeStart => _start;

    /// <summary>The range's exclusive end, for <see cref="HeaderMatchKind.Range"/>.</summary>
    public long RangeEnd => _end;

    /// <summary>Evaluates the matcher against a request.</summary>
    public bool Matches<TRequest>(in TRequest request)
        where TRequest : IRouteRequest
        => Matches(ValueOf(in request));

    /// <summary>
    /// The value the matcher tests: the request line for pseudo-headers, else the header's (joined) value;
    /// <see langword="null"/> when absent.
    /// </summary>
    public string? ValueOf<TRequest>(in TRequest request)
        where TRequest : IRouteRequest
    {
        if (Name[0] == ':')
        {
            return Name switch
            {
                ":authority" => request.Authority,
                ":path" => request.PathAndQuery,
                ":method" => request.Method,
                ":scheme" => request.Scheme,
                _ => null,
            };
        }

        return request.TryGetHeader(Name, out var value) ? value : null;
    }

    /// <summary>Evaluates the matcher against a header value (<see langword="null"/> when the header is absent).</summary>
    public bool Matches(string? value)
    {
        if (value is null)
        {
            if (!TreatMissingAsEmpty)
            {
                return Kind == HeaderMatchKind.Present && _present == Invert;
            }

            value = string.Empty;
        }

        bool result;
        switch (Kind)
        {
            case HeaderMatchKind.Present:
                result = _present;
                break;
            case HeaderMatchKind.Range:
                // absl::SimpleAtoi: optional ASCII white space around an optional sign and decimal digits.
                result = long.TryParse(value, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var number)
                    && number >= _start && number < _end;
                break;
            default:
                result = _string!.Matches(value);
                break;
        }

        return result != Invert;
    }

    /// <summary>Whether every matcher in <paramref name="matches"/> accepts the request.</summary>
    public static bool All<TRequest>(HeaderMatch[] matches, in TRequest request)
        where TRequest : IRouteRequest
    {
        for (var i = 0; i < matches.Length; i++)
        {
            if (!matches[i].Matches(in request))
            {
                return false;
            }
        }

        return true;
    }
}

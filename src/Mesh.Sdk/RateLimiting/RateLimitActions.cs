using System.Diagnostics.CodeAnalysis;
using System.Text;
using Envoy.Config.Route.V3;
using Mesh.Sdk.Routing;

namespace Mesh.Sdk.RateLimiting;

/// <summary>
/// One compiled route <c>rate_limits</c> entry: the descriptor its actions produce for a request, as Envoy's
/// <c>RateLimitPolicyEntry</c> does. Every action adds one entry; an action that cannot (a header that is absent
/// without <c>skip_if_absent</c>, an unknown remote address, a header_value_match that does not match as expected)
/// means the request produces no descriptor from this entry.
/// </summary>
internal sealed class RateLimitActions
{
    private readonly Action[] _actions;

    private RateLimitActions(uint stage, Action[] actions)
    {
        Stage = stage;
        _actions = actions;
    }

    /// <summary>The entry's <c>stage</c> (0 when unset); only filters of the same stage read it.</summary>
    public uint Stage { get; }

    /// <summary>Compiles an entry; false with a reason when an action is not supported.</summary>
    public static bool TryCompile(RateLimit rateLimit, [NotNullWhen(true)] out RateLimitActions? compiled, [NotNullWhen(false)] out string? error)
    {
        compiled = null;
        error = null;
        if (rateLimit.Actions.Count == 0)
        {
            error = "rate_limits entry has no actions";
            return false;
        }

        var actions = new Action[rateLimit.Actions.Count];
        for (var i = 0; i < actions.Length; i++)
        {
            var a = rateLimit.Actions[i];
            switch (a.ActionSpecifierCase)
            {
                case RateLimit.Types.Action.ActionSpecifierOneofCase.RequestHeaders when a.RequestHeaders.HeaderName.Length > 0 && a.RequestHeaders.DescriptorKey.Length > 0:
                    actions[i] = new Action(ActionKind.RequestHeader, a.RequestHeaders.DescriptorKey, a.RequestHeaders.HeaderName.ToLowerInvariant(), a.RequestHeaders.SkipIfAbsent, null, true);
                    break;
                case RateLimit.Types.Action.ActionSpecifierOneofCase.GenericKey when a.GenericKey.DescriptorValue.Length > 0:
                    actions[i] = new Action(ActionKind.Generic, a.GenericKey.DescriptorKey.Length > 0 ? a.GenericKey.DescriptorKey : "generic_key", a.GenericKey.DescriptorValue, false, null, true);
                    break;
                case RateLimit.Types.Action.ActionSpecifierOneofCase.RemoteAddress:
                    actions[i] = new Action(ActionKind.RemoteAddress, "remote_address", string.Empty, false, null, true);
                    break;
                case RateLimit.Types.Action.ActionSpecifierOneofCase.HeaderValueMatch when a.HeaderValueMatch.DescriptorValue.Length > 0 && a.HeaderValueMatch.Headers.Count > 0:
                    var matches = new HeaderMatch[a.HeaderValueMatch.Headers.Count];
                    for (var h = 0; h < matches.Length; h++)
                    {
                        if (!HeaderMatch.TryCompile(a.HeaderValueMatch.Headers[h], out var match, out var matchError))
                        {
                            error = $"actions[{i}].header_value_match.headers[{h}]: {matchError}";
                            return false;
                        }

                        matches[h] = match!;
                    }

                    var key = a.HeaderValueMatch.DescriptorKey.Length > 0 ? a.HeaderValueMatch.DescriptorKey : "header_match";
                    actions[i] = new Action(ActionKind.HeaderValueMatch, key, a.HeaderValueMatch.DescriptorValue, false, matches, a.HeaderValueMatch.ExpectMatch ?? true);
                    break;
                default:
                    error = $"actions[{i}] ({a.ActionSpecifierCase}) is not supported by the local rate limiter (request_headers, generic_key, remote_address and header_value_match are)";
                    return false;
            }
        }

        compiled = new RateLimitActions(rateLimit.Stage ?? 0, actions);
        return true;
    }

    /// <summary>The descriptor of a request as a key (<see cref="Key"/>); false when the entry produces none for it.</summary>
    public bool TryPopulate<TRequest>(in TRequest request, [NotNullWhen(true)] out string? descriptor)
        where TRequest : IRouteRequest
    {
        descriptor = null;
        var builder = new StringBuilder();
        var entries = 0;
        foreach (var action in _actions)
        {
            string? value;
            switch (action.Kind)
            {
                case ActionKind.RequestHeader:
                    value = HeaderValue(in request, action.Value);
                    if (value is null)
                    {
                        if (action.SkipIfAbsent)
                        {
                            continue;
                        }

                        return false;
                    }

                    break;
                case ActionKind.Generic:
                    value = action.Value;
                    break;
                case ActionKind.RemoteAddress:
                    value = request.SourceAddress?.ToString();
                    if (value is null)
                    {
                        return false;
                    }

                    break;
                default:
                    if (HeaderMatch.All(action.Matches!, in request) != action.ExpectMatch)
                    {
                        return false;
                    }

                    value = action.Value;
                    break;
            }

            AppendEntry(builder, action.Key, value);
            entries++;
        }

        if (entries == 0)
        {
            return false;
        }

        descriptor = builder.ToString();
        return true;
    }

    /// <summary>The key a descriptor's entries (in order) are compared by.</summary>
    public static string Key(IEnumerable<(string Key, string Value)> entries)
    {
        var builder = new StringBuilder();
        foreach (var (key, value) in entries)
        {
            AppendEntry(builder, key, value);
        }

        return builder.ToString();
    }

    private static void AppendEntry(StringBuilder builder, string key, string value)
        => builder.Append(key).Append('\0').Append(value).Append('\u0001');

    private static string? HeaderValue<TRequest>(in TRequest request, string name)
        where TRequest : IRouteRequest
        => name switch
        {
            ":authority" => request.Authority,
            ":path" => request.PathAndQuery,
            ":method" => request.Method,
            ":scheme" => request.Scheme,
            _ => request.TryGetHeader(name, out var value) ? value : null,
        };

    private enum ActionKind { RequestHeader, Generic, RemoteAddress, HeaderValueMatch }

    private sealed record Action(ActionKind Kind, string Key, string Value, bool SkipIfAbsent, HeaderMatch[]? Matches, bool ExpectMatch);
}

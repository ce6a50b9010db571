using System.Net.Http.Headers;
using Envoy.Config.Core.V3;

namespace Mesh.Sdk.Routing;

/// <summary>What a <see cref="HeaderMutation"/> does.</summary>
internal enum HeaderMutationKind
{
    /// <summary>Removes every value of the header.</summary>
    Remove,

    /// <summary>Adds a value, keeping existing ones (<c>APPEND_IF_EXISTS_OR_ADD</c>, the default).</summary>
    Append,

    /// <summary>Adds the header only when absent (<c>ADD_IF_ABSENT</c>).</summary>
    AddIfAbsent,

    /// <summary>Replaces existing values or adds (<c>OVERWRITE_IF_EXISTS_OR_ADD</c>).</summary>
    OverwriteOrAdd,

    /// <summary>Replaces existing values, does nothing when absent (<c>OVERWRITE_IF_EXISTS</c>).</summary>
    OverwriteIfExists,
}

/// <summary>One header operation.</summary>
/// <param name="Kind">What to do.</param>
/// <param name="Name">The lower-case header name.</param>
/// <param name="Value">The value to add; empty for removals.</param>
internal sealed record HeaderMutation(HeaderMutationKind Kind, string Name, string Value);

/// <summary>Where header mutations are applied: a request's or response's header collection.</summary>
internal interface IHeaderMutationTarget
{
    /// <summary>Whether the header has at least one value.</summary>
    bool Contains(string name);

    /// <summary>Removes every value of the header.</summary>
    void Remove(string name);

    /// <summary>Adds one value, keeping existing ones.</summary>
    void Append(string name, string value);
}

/// <summary>
/// An ordered list of header operations, flattened at compile time from the route configuration, virtual host,
/// route and weighted-cluster levels in Envoy's order of application.
/// </summary>
internal sealed class HeaderMutations
{
    /// <summary>No operations.</summary>
    public static HeaderMutations Empty { get; } = new([]);

    /// <summary>Creates the list.</summary>
    public HeaderMutations(HeaderMutation[] operations) => Operations = operations;

    /// <summary>The operations in order.</summary>
    public HeaderMutation[] Operations { get; }

    /// <summary>Whether there is nothing to do.</summary>
    public bool IsEmpty => Operations.Length == 0;

    /// <summary>Applies every operation in order.</summary>
    public void ApplyTo<TTarget>(TTarget target)
        where TTarget : IHeaderMutationTarget
    {
        foreach (var operation in Operations)
        {
            switch (operation.Kind)
            {
                case HeaderMutationKind.Remove:
                    target.Remove(operation.Name);
                    break;
                case HeaderMutationKind.Append:
                    target.Append(operation.Name, operation.Value);
                    break;
                case HeaderMutationKind.AddIfAbsent:
                    if (!target.Contains(operation.Name))
                    {
                        target.Append(operation.Name, operation.Value);
                    }

                    break;
                case HeaderMutationKind.OverwriteOrAdd:
                    target.Remove(operation.Name);
                    target.Append(operation.Name, operation.Value);
                    break;
                case HeaderMutationKind.OverwriteIfExists:
                    if (target.Contains(operation.Name))
                    {
                        target.Remove(operation.Name);
                        target.Append(operation.Name, operation.Value);
                    }

                    break;
            }
        }
    }

    /// <summary>Applies the operations to a request (content headers such as <c>content-type</c> included).</summary>
    public void ApplyTo(HttpRequestMessage request)
    {
        if (!IsEmpty)
        {
            ApplyTo(new HttpHeadersTarget(request.Headers, request.Content?.Headers));
        }
    }

    /// <summary>Applies the operations to a response (content headers included).</summary>
    public void ApplyTo(HttpResponseMessage response)
    {
        if (!IsEmpty)
        {
            ApplyTo(new HttpHeadersTarget(response.Headers, response.Content?.Headers));
        }
    }

    /// <summary>Compiles one level's <c>*_headers_to_remove</c> and <c>*_headers_to_add</c> (removals first, as Envoy).</summary>
    public static bool TryCompileLevel(
        IEnumerable<string> remove,
        IEnumerable<HeaderValueOption> add,
        bool request,
        List<HeaderMutation> into,
        out string? error)
    {
        error = null;
        var field = request ? "request" : "response";
        foreach (var name in remove)
        {
            if (!IsModifiable(name, request))
            {
                error = $"{field}_headers_to_remove names '{name}': pseudo-headers and host cannot be removed";
                return false;
            }

            into.Add(new HeaderMutation(HeaderMutationKind.Remove, name.ToLowerInvariant(), string.Empty));
        }

        foreach (var option in add)
        {
            var header = option.Header;
            if (header is null || string.IsNullOrEmpty(header.Key))
            {
                error = $"{field}_headers_to_add has an entry without a header key";
                return false;
            }

            if (!IsModifiable(header.Key, request))
            {
                error = $"{field}_headers_to_add names '{header.Key}': pseudo-headers and host cannot be modified";
                return false;
            }

            var value = header.RawValue.IsEmpty ? header.Value : header.RawValue.ToStringUtf8();
            if (!TryUnescapeFormatter(value, out value))
            {
                error = $"{field}_headers_to_add '{header.Key}' value '{header.Value}' uses a '%' substitution command, which is not supported (write '%%' for a literal '%')";
                return false;
            }

            if (value.Length == 0 && !option.KeepEmptyValue)
            {
                // Envoy drops empty values unless keep_empty_value is set.
                continue;
            }

            var kind = option.AppendAction switch
            {
                HeaderValueOption.Types.HeaderAppendAction.AddIfAbsent => HeaderMutationKind.AddIfAbsent,
                HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExistsOrAdd => HeaderMutationKind.OverwriteOrAdd,
                HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExists => HeaderMutationKind.OverwriteIfExists,
                _ => HeaderMutationKind.Append,
            };
            into.Add(new HeaderMutation(kind, header.Key.ToLowerInvariant(), value));
        }

        return true;
    }

    private static bool IsModifiable(string name, bool request)
        => name.Length > 0 && name[0] != ':' && !(request && name.Equals("host", StringComparison.OrdinalIgnoreCase));

    private static bool TryUnescapeFormatter(string value, out string result)
    {
        if (!value.Contains('%', StringComparison.Ordinal))
        {
            result = value;
            return true;
        }

        var builder = new System.Text.StringBuilder(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] != '%')
            {
                builder.Append(value[i]);
            }
            else if (i + 1 < value.Length && value[i + 1] == '%')
            {
                builder.Append('%');
                i++;
            }
            else
            {
                result = value;
                return false;
            }
        }

        result = builder.ToString();
        return true;
    }

    private readonly struct HttpHeadersTarget(HttpHeaders headers, HttpContentHeaders? content) : IHeaderMutationTarget
    {
        public bool Contains(string name)
            => headers.NonValidated.Contains(name) || (content is not null && content.NonValidated.Contains(name));

        public void Remove(string name)
        {
            // Remove throws for a name that belongs to the other collection; Contains on the non-validated view does not.
            if (headers.NonValidated.Contains(name))
            {
                headers.Remove(name);
            }

            if (content is not null && content.NonValidated.Contains(name))
            {
                content.Remove(name);
            }
        }

        public void Append(string name, string value)
        {
            if (!headers.TryAddWithoutValidation(name, value))
            {
                // Content headers (content-type, content-length, ...) are refused by request/response header collections.
                content?.TryAddWithoutValidation(name, value);
            }
        }
    }
}

using System.Text;
using Envoy.Config.Route.V3;
using Google.Protobuf;
using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Registry;
using Mesh.ControlPlane.Translation;
using Mesh.Sdk.Routing;
using Mesh.Sdk.Xds.Internal;
using Mesh.Xds.Re2;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Fuzz;

/// <summary>
/// The fuzz targets. Each takes raw bytes and drives them through the code under test as real input would arrive;
/// the documented refusal of each (a config error with file and line, an xDS NACK reason, a regex error, a route
/// compile error) returns normally, anything else escapes and is a crash.
/// </summary>
internal static class FuzzTargets
{
    public const string ConfigPath = "/fuzz/config/input.yaml";

    public static readonly IReadOnlyList<string> Names = ["yaml", "xds", "re2", "route"];

    /// <summary>What one input did: accepted, or refused with the documented error text.</summary>
    /// <param name="Accepted">The input was taken (for route: compiled).</param>
    /// <param name="Error">The refusal text; for a compiled route table, the match status when nothing matched.</param>
    internal readonly record struct Outcome(bool Accepted, string? Error);

    public static Outcome Run(string target, ReadOnlySpan<byte> data) => target switch
    {
        "yaml" => Yaml(data),
        "xds" => Xds(data),
        "re2" => Re2(data),
        "route" => Route(data),
        _ => throw new ArgumentException($"unknown fuzz target '{target}' (known: {string.Join(", ", Names)})", nameof(target)),
    };

    /// <summary>Bytes as a file in the config folder: ConfigStore, then translation to xDS as a folder change goes.</summary>
    public static Outcome Yaml(ReadOnlySpan<byte> data)
    {
        var text = Encoding.UTF8.GetString(data);
        var store = new ConfigStore("default", NullLogger.Instance);
        store.Apply(ConfigPath, text);
        if (store.LastErrors.Count > 0)
        {
            var error = store.LastErrors[0];
            Check(error.File == ConfigPath && error.Line >= 1 && error.Reason.Length > 0,
                $"a refusal must name the file and a line: '{error}'");
            return new Outcome(false, error.ToString());
        }

        using var registry = new ServiceRegistry(TimeProvider.System, TimeSpan.FromSeconds(10), "cluster.local", NullLogger.Instance);
        registry.UpdateConfig(store.Current);
        var snapshot = new XdsTranslator("cluster.local").Translate(store.Current, registry.Current, 1);
        foreach (var type in ResourceTypes.All)
        {
            _ = snapshot.All(type).Count;
        }

        return new Outcome(true, null);
    }

    /// <summary>First byte picks the type (Listener, RouteConfiguration, Cluster, ClusterLoadAssignment); the rest is the resource as it comes off the wire.</summary>
    public static Outcome Xds(ReadOnlySpan<byte> data)
    {
        if (data.Length == 0)
        {
            return new Outcome(false, "empty");
        }

        // As the xDS client takes a resource out of a response: decode, then validate; routes are compiled as well.
        var type = XdsResourceType.All[data[0] % 4];
        try
        {
            var message = type.Decode(ByteString.CopyFrom(data[1..]));
            type.Validate(message);
            if (message is RouteConfiguration routes && !RouteTableCompiler.TryCompile(routes, null, new Random(1), out _, out var errors))
            {
                Check(errors.Count > 0 && errors.All(e => e.Reason.Length > 0), "a route compile refusal must give reasons");
                return new Outcome(false, string.Join("; ", errors));
            }
        }
        catch (InvalidProtocolBufferException ex)
        {
            return new Outcome(false, "undecodable: " + ex.Message);
        }
        catch (XdsValidationException ex)
        {
            Check(ex.Message.Length > 0, "a NACK must give a reason");
            return new Outcome(false, ex.Message);
        }

        return new Outcome(true, null);
    }

    /// <summary>Bytes as an RE2 pattern: translated, compiled, and run on a few subjects.</summary>
    public static Outcome Re2(ReadOnlySpan<byte> data)
    {
        var pattern = Encoding.UTF8.GetString(data);
        if (!Re2Regex.TryCompileFullMatch(pattern, out var regex, out var error))
        {
            Check(!string.IsNullOrEmpty(error), "a refused pattern must say why");
            return new Outcome(false, error);
        }

        Check(regex is not null, "a compiled pattern must give a regex");
        foreach (var subject in Subjects(pattern))
        {
            _ = regex!.IsMatch(subject);
        }

        return new Outcome(true, null);
    }

    /// <summary>
    /// A little-endian 16-bit length, that many bytes of RouteConfiguration, then the request: lines of authority,
    /// path, method, then <c>name:value</c> headers.
    /// </summary>
    public static Outcome Route(ReadOnlySpan<byte> data)
    {
        if (data.Length < 2)
        {
            return new Outcome(false, "short");
        }

        var length = Math.Min(data[0] | (data[1] << 8), data.Length - 2);
        RouteConfiguration config;
        try
        {
            config = RouteConfiguration.Parser.ParseFrom(data.Slice(2, length).ToArray());
        }
        catch (InvalidProtocolBufferException ex)
        {
            return new Outcome(false, "undecodable: " + ex.Message);
        }

        if (!RouteTableCompiler.TryCompile(config, null, new Random(1), out var table, out var errors))
        {
            Check(errors.Count > 0 && errors.All(e => e.Reason.Length > 0), "a route compile refusal must give reasons");
            return new Outcome(false, string.Join("; ", errors));
        }

        var request = FuzzRequest.Parse(Encoding.UTF8.GetString(data[(2 + length)..]));
        var first = table.Match(in request);
        var again = table.Match(in request);
        Check(first.Status == again.Status && first.Route == again.Route, "matching the same request twice must pick the same route");
        return new Outcome(true, first.IsMatch ? null : first.Status.ToString());
    }

    private static IEnumerable<string> Subjects(string pattern)
    {
        yield return string.Empty;
        yield return pattern;
        yield return "/api/v1/products?x=1";
        yield return new string('a', 64);
        yield return "\u00e9\U0001F600\n\r";
    }

    private static void Check(bool condition, string what)
    {
        if (!condition)
        {
            throw new FuzzContractException(what);
        }
    }
}

/// <summary>A target's documented contract was broken (not one of the refusals it may give).</summary>
internal sealed class FuzzContractException(string message) : Exception(message);

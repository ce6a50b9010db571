using System.Text;
using System.Text.RegularExpressions;
using CsCheck;
using Envoy.Config.Route.V3;
using Envoy.Type.Matcher.V3;
using Mesh.Sdk.Routing;
using Mesh.Xds.Re2;

namespace Mesh.Fuzz.Tests;

/// <summary>Bounded property tests over generated inputs; each asserts how many cases it ran and what they did.</summary>
public sealed class PropertyTests
{
    private const string Seed = "0N0XIzNsQ0O2";

    private static readonly string[] RegexAtoms =
        ["a", "b", "c", ".", "\\d", "\\w", "\\s", "\\b", "\\B", "^", "$", "\\A", "\\z", "[", "]", "[a-c]", "[^a]", "(", ")", "(?:", "(?i)", "(?s)", "(?m)",
         "(?P<n>", "(?<n>", "|", "*", "+", "?", "*?", "{2}", "{1,3}", "{2,}", "{1001}", "\\", "\\Q", "\\E", "\\p{L}", "\\pN", "\\x{263a}", "\\1", "[[:alpha:]]",
         "\u00e9", "\U0001F600", "-", "{", "}", ","];

    // A subset on which RE2 and .NET's own regex read the pattern alike, so .NET is the oracle for the translation.
    private static readonly string[] CommonAtoms = ["a", "b", "c", "ab", "[ab]", "[^a]", "[a-c]", "\\d", "."];

    [Fact]
    public void Re2Translation_OnGeneratedPatterns_OnlyEverRefusesWithItsError()
    {
        var accepted = 0;
        var refused = 0;
        Gen.Int[0, RegexAtoms.Length - 1].Array[0, 12]
            .Select(ix => string.Concat(ix.Select(i => RegexAtoms[i])))
            .Sample(pattern =>
            {
                var outcome = FuzzTargets.Re2(Encoding.UTF8.GetBytes(pattern));
                if (outcome.Accepted)
                {
                    Interlocked.Increment(ref accepted);
                }
                else
                {
                    Assert.StartsWith($"regex '{pattern}' ", outcome.Error);
                    Interlocked.Increment(ref refused);
                }
            }, seed: Seed, iter: 3000, threads: 1);

        Assert.Equal(3000, accepted + refused);
        Assert.True(accepted > 300 && refused > 300, $"accepted {accepted}, refused {refused}: the generator should reach both sides");
    }

    [Fact]
    public void Re2Translation_AgreesWithDotNet_WhereBothReadThePatternAlike()
    {
        var cases = 0;
        var matches = 0;
        var gen = Gen.Select(
            RegexGen(),
            Gen.Int[0, 3].Array[0, 6].Select(ix => string.Concat(ix.Select(i => "abc1"[i]))));
        gen.Sample((pattern, subject) =>
        {
            Assert.True(Re2Regex.TryCompileFullMatch(pattern, out var translated, out var error), $"'{pattern}': {error}");
            var expected = Regex.IsMatch(subject, $"\\A(?:{pattern})\\z", RegexOptions.CultureInvariant);
            Assert.True(expected == translated!.IsMatch(subject), $"'{pattern}' on '{subject}': .NET says {expected}");
            Interlocked.Increment(ref cases);
            if (expected)
            {
                Interlocked.Increment(ref matches);
            }
        }, seed: Seed, iter: 3000, threads: 1);

        Assert.Equal(3000, cases);
        Assert.True(matches > 100, $"only {matches} of {cases} subjects matched: the generator should reach both sides");
    }

    private static Gen<string> RegexGen()
    {
        var atom = Gen.Int[0, CommonAtoms.Length - 1].Select(i => CommonAtoms[i]);
        var quantifier = Gen.Int[0, 5].Select(i => new[] { "", "", "*", "+", "?", "{1,2}" }[i]);
        var piece = Gen.Select(atom, quantifier, Gen.Int[0, 5], (a, q, group) => group == 0 ? $"(?:{a}){q}" : group == 1 ? $"({a}){q}" : a + q);
        var branch = piece.Array[1, 4].Select(string.Concat);
        return branch.Array[1, 3].Select(b => string.Join("|", b));
    }

    [Fact]
    public void RouteMatching_IsDeterministic_AndTheFirstMatchingRouteWins()
    {
        string[] prefixes = ["/", "/a", "/ab", "/b", "/a/b"];
        string[] headerNames = ["x-a", "x-b"];
        string[] values = ["1", "2"];
        var routeGen = Gen.Select(Gen.Int[0, prefixes.Length - 1], Gen.Int[-1, headerNames.Length - 1], Gen.Int[0, values.Length - 1]);
        var requestGen = Gen.Select(Gen.Int[0, 3].Array[0, 4], Gen.Int[0, 2], Gen.Int[0, 2]);
        var matched = 0;
        var unmatched = 0;
        Gen.Select(routeGen.Array[1, 6], requestGen).Sample((routes, request) =>
        {
            var host = new VirtualHost { Name = "vh" };
            host.Domains.Add("svc");
            for (var i = 0; i < routes.Length; i++)
            {
                var (prefix, header, value) = routes[i];
                var match = new RouteMatch { Prefix = prefixes[prefix] };
                if (header >= 0)
                {
                    match.Headers.Add(new HeaderMatcher { Name = headerNames[header], StringMatch = new StringMatcher { Exact = values[value] } });
                }

                host.Routes.Add(new Route { Match = match, Route_ = new RouteAction { Cluster = $"c{i}" } });
            }

            var config = new RouteConfiguration { Name = "rc" };
            config.VirtualHosts.Add(host);
            var table = RouteTableCompiler.Compile(config, null, new Random(1));

            var (pathChars, xa, xb) = request;
            var path = "/" + string.Concat(pathChars.Select(c => "ab/1"[c]));
            var headers = new List<KeyValuePair<string, string>>();
            if (xa > 0) { headers.Add(new("x-a", values[xa - 1])); }
            if (xb > 0) { headers.Add(new("x-b", values[xb - 1])); }
            var fuzzRequest = new FuzzRequest("svc", path, "GET", headers);

            // The reference: the first route, in order, whose prefix and header hold.
            string? expected = null;
            for (var i = 0; i < routes.Length && expected is null; i++)
            {
                var (prefix, header, value) = routes[i];
                var headerHolds = header < 0 || fuzzRequest.TryGetHeader(headerNames[header], out var v) && v == values[value];
                if (path.StartsWith(prefixes[prefix], StringComparison.Ordinal) && headerHolds)
                {
                    expected = $"c{i}";
                }
            }

            var first = table.Match(in fuzzRequest);
            var second = table.Match(in fuzzRequest);
            Assert.Equal(expected, first.IsMatch ? first.Cluster : null);
            Assert.Equal(first.Cluster, second.Cluster);
            Assert.Same(first.Route, second.Route);
            Interlocked.Increment(ref expected is null ? ref unmatched : ref matched);
        }, seed: Seed, iter: 3000, threads: 1);

        Assert.Equal(3000, matched + unmatched);
        Assert.True(matched > 300 && unmatched > 300, $"matched {matched}, unmatched {unmatched}");
    }

    [Fact]
    public void YamlLoader_OnMutationsOfRealFiles_NeverThrows_AndAlwaysNamesFileLineWhenItRefuses()
    {
        var files = FuzzInputs.Corpus("yaml").Select(File.ReadAllText).ToArray();
        var accepted = 0;
        var refused = 0;
        var gen = Gen.Select(Gen.Int[0, files.Length - 1], Gen.Select(Gen.Int[0, 7], Gen.Int[0, 100_000], Gen.Int[0, 100_000]).Array[1, 4]);
        gen.Sample((file, mutations) =>
        {
            var text = files[file];
            foreach (var (kind, a, b) in mutations)
            {
                text = Mutations.Apply(text, kind, a, b);
            }

            var outcome = FuzzTargets.Yaml(Encoding.UTF8.GetBytes(text));
            if (outcome.Accepted)
            {
                Interlocked.Increment(ref accepted);
                return;
            }

            var m = Regex.Match(outcome.Error!, "^/fuzz/config/input\\.yaml:([0-9]+):([0-9]+): .");
            Assert.True(m.Success, outcome.Error);
            var lines = text.Split('\n').Length;
            Assert.InRange(int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), 1, lines + 1);
            Interlocked.Increment(ref refused);
        }, seed: Seed, iter: 1500, threads: 1);

        Assert.Equal(1500, accepted + refused);
        Assert.True(accepted > 100 && refused > 100, $"accepted {accepted}, refused {refused}");
    }

    [Fact]
    public void XdsValidation_IsTotalOverMutatedValidResources()
    {
        var seeds = FuzzInputs.Corpus("xds").Select(File.ReadAllBytes).ToArray();
        var accepted = 0;
        var refused = 0;
        var gen = Gen.Select(Gen.Int[0, seeds.Length - 1], Gen.Select(Gen.Int[0, 3], Gen.Int[0, 100_000], Gen.Int[0, 255]).Array[1, 4]);
        gen.Sample((seed, mutations) =>
        {
            var bytes = seeds[seed].ToList();
            foreach (var (kind, at, value) in mutations)
            {
                // Byte 0 picks the resource type; mutate only the resource.
                var i = 1 + (at % Math.Max(1, bytes.Count - 1));
                switch (kind)
                {
                    case 0 when i < bytes.Count: bytes[i] = (byte)value; break;
                    case 1 when i < bytes.Count: bytes.RemoveAt(i); break;
                    case 2: bytes.Insert(Math.Min(i, bytes.Count), (byte)value); break;
                    default: bytes.RemoveRange(Math.Min(i, bytes.Count), bytes.Count - Math.Min(i, bytes.Count)); break;
                }
            }

            var outcome = FuzzTargets.Xds(bytes.ToArray());
            if (outcome.Accepted)
            {
                Interlocked.Increment(ref accepted);
            }
            else
            {
                Assert.False(string.IsNullOrEmpty(outcome.Error));
                Interlocked.Increment(ref refused);
            }
        }, seed: Seed, iter: 5000, threads: 1);

        Assert.Equal(5000, accepted + refused);
        Assert.True(accepted > 100 && refused > 100, $"accepted {accepted}, refused {refused}");
    }
}

/// <summary>Text mutations users make by hand: lines lost, doubled, swapped, re-indented, tokens mistyped.</summary>
internal static class Mutations
{
    private static readonly string[] Tokens = ["subset", "subst", "weight", "- ", ":", "[", "{", "\"", "'", "-1", "100", "1e9", "~", "&a", "*a", "!!int", "?", "\t", "\u00e9", "kind: VirtualSevice", "---"];

    public static string Apply(string text, int kind, int a, int b)
    {
        var lines = text.Split('\n').ToList();
        var i = a % lines.Count;
        var j = b % lines.Count;
        switch (kind)
        {
            case 0: lines.RemoveAt(i); break;
            case 1: lines.Insert(i, lines[j]); break;
            case 2: (lines[i], lines[j]) = (lines[j], lines[i]); break;
            case 3: lines[i] = b % 2 == 0 ? " " + lines[i] : lines[i].StartsWith(' ') ? lines[i][1..] : lines[i]; break;
            case 4:
                {
                    var at = b % (lines[i].Length + 1);
                    lines[i] = lines[i][..at] + Tokens[b % Tokens.Length] + lines[i][at..];
                    break;
                }

            case 5:
                {
                    var words = Regex.Matches(lines[i], "[A-Za-z0-9.]+");
                    if (words.Count > 0)
                    {
                        var w = words[b % words.Count];
                        lines[i] = lines[i][..w.Index] + Tokens[b % Tokens.Length] + lines[i][(w.Index + w.Length)..];
                    }

                    break;
                }

            case 6: return text[..(a % (text.Length + 1))];
            default: lines[i] = lines[i].Replace(": ", ":", StringComparison.Ordinal); break;
        }

        return string.Join('\n', lines);
    }
}

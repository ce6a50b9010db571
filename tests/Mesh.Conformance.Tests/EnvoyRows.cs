using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Envoy.Type.Matcher.V3;
using Envoy.Type.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.Routing;

namespace Mesh.Conformance.Tests;

/// <summary>
/// Envoy route rows: fields istiod does not write (or writes in one way only), as a hand-built xDS <c>Route</c>, run
/// through the SDK alone. Sources quote Envoy's API reference (<c>route_components.proto</c> and friends in
/// envoyproxy/data-plane-api).
/// </summary>
internal static class EnvoyRows
{
    private const string Rc = "Envoy route_components.proto";

    private static Route To(string cluster, RouteMatch match, string name = "r")
        => new() { Name = name, Match = match, Route_ = new RouteAction { Cluster = cluster } };

    private static RouteMatch Prefix(string prefix = "/") => new() { Prefix = prefix };

    private static RouteMatch WithHeader(HeaderMatcher header)
    {
        var match = Prefix();
        match.Headers.Add(header);
        return match;
    }

    private static RouteMatch WithQuery(QueryParameterMatcher query)
    {
        var match = Prefix();
        match.QueryParameters.Add(query);
        return match;
    }

    private static Route Fallback() => To("fallback", Prefix(), "fallback");

    private static RuntimeFractionalPercent Percent(uint numerator) => new() { DefaultValue = new FractionalPercent { Numerator = numerator } };

    private const string InvertSource = $"\"If specified, the match result will be inverted before checking.\" ({Rc}, HeaderMatcher.invert_match)";
    private const string MissingSource = $"\"If specified, for any header match rule, if the header match rule specified header does not exist, this header value will be treated as empty.\" ({Rc}, HeaderMatcher.treat_missing_header_as_empty)";
    private const string PresentSource = $"\"If specified as false, header match will be performed based on whether the header is absent.\" ({Rc}, HeaderMatcher.present_match)";
    private const string QuerySource = $"\"Specifies whether a query parameter should be present.\" ({Rc}, QueryParameterMatcher.present_match)";

    public static readonly EnvoyRow[] All =
    [
        new("prefix-includes-query", "RouteMatch.prefix", "prefix is tested on :path with its query",
            $"\"If specified, the route is a prefix rule meaning that the prefix must match the beginning of the :path header.\" ({Rc}, RouteMatch.prefix)",
            () => [To("c", Prefix("/a?x"))],
            new Req("/a?x=1"), new Expect { Route = "r", Cluster = "c" }),
        new("path-without-query", "RouteMatch.path", "exact path once the query is removed",
            $"\"If specified, the route is an exact path rule meaning that the path must exactly match the :path header once the query string is removed.\" ({Rc}, RouteMatch.path)",
            () => [To("c", new RouteMatch { Path = "/a" })],
            new Req("/a?x=1"), new Expect { Route = "r", Cluster = "c" }),
        new("path-separated-prefix", "RouteMatch.path_separated_prefix", "/api/dev does not match /api/developer",
            $"\"For example, /api/dev would match /api/dev, /api/dev/, /api/dev/v1, and /api/dev?param=true but would not match /api/developer\" ({Rc}, RouteMatch.path_separated_prefix)",
            () => [To("c", new RouteMatch { PathSeparatedPrefix = "/api/dev" })],
            new Req("/api/developer"), Expect.NoRoute("path separated prefix '/api/dev': path is '/api/developer'")),
        new("case-insensitive-path", "RouteMatch.case_sensitive", "false makes prefix/path case-insensitive",
            $"\"Indicates that prefix/path matching should be case sensitive. The default is true.\" ({Rc}, RouteMatch.case_sensitive)",
            () => [To("c", new RouteMatch { Path = "/Reviews", CaseSensitive = false })],
            new Req("/REVIEWS"), new Expect { Route = "r", Cluster = "c" }),
        new("case-sensitive-regex", "RouteMatch.case_sensitive", "ignored for safe_regex",
            $"\"Ignored for safe_regex matching.\" ({Rc}, RouteMatch.case_sensitive)",
            () => [To("c", new RouteMatch { SafeRegex = new RegexMatcher { Regex = "/Reviews" }, CaseSensitive = false })],
            new Req("/reviews"), Expect.NoRoute("path regex '/Reviews': path is '/reviews'")),
        new("re2-posix-class", "RegexMatcher.regex (RE2 syntax)", "POSIX class [[:digit:]]",
            "\"[[:digit:]] digit (== [0-9])\" (RE2 syntax, github.com/google/re2/wiki/Syntax)",
            () => [To("c", new RouteMatch { SafeRegex = new RegexMatcher { Regex = "/v[[:digit:]]+" } })],
            new Req("/v12"), new Expect { Route = "r", Cluster = "c" }),
        new("re2-quoted-literal", "RegexMatcher.regex (RE2 syntax)", "\\Q...\\E literal text",
            "\"\\Q...\\E literal text ... even if ... has punctuation\" (RE2 syntax, github.com/google/re2/wiki/Syntax)",
            () => [To("c", new RouteMatch { SafeRegex = new RegexMatcher { Regex = @"/\Q.+\E" } })],
            new Req("/.+"), new Expect { Route = "r", Cluster = "c" }),
        new("header-invert-missing", "HeaderMatcher.invert_match", "an inverted matcher does not match a missing header",
            MissingSource,
            () => [To("c", WithHeader(new HeaderMatcher { Name = "x-tier", StringMatch = new StringMatcher { Exact = "gold" }, InvertMatch = true })), Fallback()],
            new Req("/"), new Expect { Route = "fallback", FirstReason = "header 'x-tier' not exact \"gold\": header missing" }),
        new("header-invert-present", "HeaderMatcher.invert_match", "inverted exact matches another value",
            InvertSource,
            () => [To("c", WithHeader(new HeaderMatcher { Name = "x-tier", StringMatch = new StringMatcher { Exact = "gold" }, InvertMatch = true }))],
            new Req("/", ("x-tier", "silver")), new Expect { Route = "r", Cluster = "c" }),
        new("header-missing-as-empty", "HeaderMatcher.treat_missing_header_as_empty", "a missing header is the empty value",
            MissingSource,
            () => [To("c", WithHeader(new HeaderMatcher { Name = "x-tier", StringMatch = new StringMatcher { SafeRegex = new RegexMatcher { Regex = "^$" } }, TreatMissingHeaderAsEmpty = true }))],
            new Req("/"), new Expect { Route = "r", Cluster = "c" }),
        new("header-present-false", "HeaderMatcher.present_match", "present_match false matches an absent header",
            PresentSource,
            () => [To("c", WithHeader(new HeaderMatcher { Name = "x-debug", PresentMatch = false }))],
            new Req("/"), new Expect { Route = "r", Cluster = "c" }),
        new("header-present-false-hit", "HeaderMatcher.present_match", "present_match false does not match a present header",
            PresentSource,
            () => [To("c", WithHeader(new HeaderMatcher { Name = "x-debug", PresentMatch = false }))],
            new Req("/", ("x-debug", "1")), Expect.NoRoute("header 'x-debug' absent: value is \"1\"")),
        new("header-ignore-case", "StringMatcher.ignore_case", "exact ignoring case",
            $"\"If true, indicates the exact/prefix/suffix/contains matching should be case insensitive.\" (Envoy string.proto, StringMatcher.ignore_case)",
            () => [To("c", WithHeader(new HeaderMatcher { Name = "x-tier", StringMatch = new StringMatcher { Exact = "gold", IgnoreCase = true } }))],
            new Req("/", ("x-tier", "GOLD")), new Expect { Route = "r", Cluster = "c" }),
        new("header-suffix", "StringMatcher.suffix", "value ends with",
            $"\"The input string must have the suffix specified here.\" (Envoy string.proto, StringMatcher.suffix)",
            () => [To("c", WithHeader(new HeaderMatcher { Name = "x-host", StringMatch = new StringMatcher { Suffix = ".internal" } }))],
            new Req("/", ("x-host", "a.internal")), new Expect { Route = "r", Cluster = "c" }),
        new("header-contains", "StringMatcher.contains", "value contains",
            $"\"The input string must have the substring specified here.\" (Envoy string.proto, StringMatcher.contains)",
            () => [To("c", WithHeader(new HeaderMatcher { Name = "user-agent", StringMatch = new StringMatcher { Contains = "bot" } }))],
            new Req("/", ("user-agent", "a-bot/1")), new Expect { Route = "r", Cluster = "c" }),
        new("header-range", "HeaderMatcher.range_match", "[-10,0) matches -1, not 0",
            $"\"For range [-10,0), route will match for header value -1, but not for 0, somestring, 10.9, -1somestring\" ({Rc}, HeaderMatcher.range_match)",
            () => [To("c", WithHeader(new HeaderMatcher { Name = "x-n", RangeMatch = new Int64Range { Start = -10, End = 0 } }))],
            new Req("/", ("x-n", "0")), Expect.NoRoute("header 'x-n' in range [-10, 0): value is \"0\"")),
        new("header-no-specifier", "HeaderMatcher (name only)", "no specifier means present_match",
            $"\"In the absence of any header match specifier, match will default to present_match.\" ({Rc}, HeaderMatcher)",
            () => [To("c", WithHeader(new HeaderMatcher { Name = "x-canary" }))],
            new Req("/", ("x-canary", "1")), new Expect { Route = "r", Cluster = "c" }),
        new("query-present", "QueryParameterMatcher.present_match", "present_match true: key present",
            QuerySource,
            () => [To("c", WithQuery(new QueryParameterMatcher { Name = "debug", PresentMatch = true }))],
            new Req("/?debug"), new Expect { Route = "r", Cluster = "c" }),
        new("query-present-false", "QueryParameterMatcher.present_match", "present_match false matches when the key is absent",
            $"\"Specifies whether a query parameter should be present.\" ({Rc}, QueryParameterMatcher.present_match)",
            () => [To("c", WithQuery(new QueryParameterMatcher { Name = "debug", PresentMatch = false }))],
            new Req("/?other=1"), new Expect { Route = "r", Cluster = "c" }),
        new("query-present-false-hit", "QueryParameterMatcher.present_match", "present_match false: a present key is no match",
            $"\"Specifies whether a query parameter should be present.\" ({Rc}, QueryParameterMatcher.present_match)",
            () => [To("c", WithQuery(new QueryParameterMatcher { Name = "debug", PresentMatch = false }))],
            new Req("/?debug=1"), Expect.NoRoute("query parameter 'debug' absent: value is \"1\"")),
        new("runtime-fraction-zero", "RouteMatch.runtime_fraction", "0 % never matches",
            $"\"Every time the route is considered for a match, it must also fall under the percentage of matches indicated by this field.\" ({Rc}, RouteMatch.runtime_fraction)",
            () => [new Route { Name = "r", Match = new RouteMatch { Prefix = "/", RuntimeFraction = Percent(0) }, Route_ = new RouteAction { Cluster = "c" } }, Fallback()],
            new Req("/"), new Expect { Route = "fallback", FirstReason = "runtime_fraction 0 %: this request was not sampled" }),
        new("grpc-match", "RouteMatch.grpc", "only gRPC requests match",
            $"\"If specified, only gRPC requests will be matched.\" ({Rc}, RouteMatch.grpc)",
            () => [new Route { Name = "r", Match = new RouteMatch { Prefix = "/", Grpc = new RouteMatch.Types.GrpcRouteMatchOptions() }, Route_ = new RouteAction { Cluster = "c" } }],
            new Req("/", ("content-type", "application/json")), Expect.NoRoute("grpc: content-type is \"application/json\"")),
        new("weighted-header", "WeightedCluster.header_name", "the header's value picks the cluster",
            $"\"Specifies the header name that is used to look up the random value passed in the request header.\" ({Rc}, WeightedCluster.header_name)",
            () =>
            [
                new Route
                {
                    Name = "r",
                    Match = Prefix(),
                    Route_ = new RouteAction
                    {
                        WeightedClusters = new WeightedCluster
                        {
                            HeaderName = "x-pick",
                            Clusters = { new WeightedCluster.Types.ClusterWeight { Name = "a", Weight = 1 }, new WeightedCluster.Types.ClusterWeight { Name = "b", Weight = 3 } },
                        },
                    },
                },
            ],
            new Req("/", ("x-pick", "2")), new Expect { Route = "r", Cluster = "b", Weights = "a 25 %, b 75 %" }),
        new("timeout-default", "RouteAction.timeout (unset)", "15 s",
            $"\"Specifies the upstream timeout for the route. If not specified, the default is 15s.\" ({Rc}, RouteAction.timeout)",
            () => [To("c", Prefix())],
            new Req("/"), new Expect { Route = "r", Timeout = "15s" }),
        new("timeout-zero", "RouteAction.timeout", "0 disables the timeout",
            $"\"A value of 0 will disable the route's timeout.\" ({Rc}, RouteAction.timeout)",
            () => [new Route { Name = "r", Match = Prefix(), Route_ = new RouteAction { Cluster = "c", Timeout = Duration.FromTimeSpan(TimeSpan.Zero) } }],
            new Req("/"), new Expect { Route = "r", Timeout = "none" }),
        new("retry-default-count", "RetryPolicy.num_retries (unset)", "one retry",
            $"\"Specifies the allowed number of retries. This parameter is optional and defaults to 1.\" ({Rc}, RetryPolicy.num_retries)",
            () => [new Route { Name = "r", Match = Prefix(), Route_ = new RouteAction { Cluster = "c", RetryPolicy = new Envoy.Config.Route.V3.RetryPolicy { RetryOn = "gateway-error" } } }],
            new Req("/"), new Expect { Route = "r", Retry = "1 retries on gateway-error, per-try timeout none, back-off 25ms..250ms" }),
        new("regex-rewrite-global", "RouteAction.regex_rewrite", "every match in the path replaced",
            $"\"The pattern one paired with a substitution string of two would transform /xxx/one/yyy/one/zzz into /xxx/two/yyy/two/zzz.\" ({Rc}, RouteAction.regex_rewrite)",
            () =>
            [
                new Route
                {
                    Name = "r",
                    Match = Prefix(),
                    Route_ = new RouteAction { Cluster = "c", RegexRewrite = new RegexMatchAndSubstitute { Pattern = new RegexMatcher { Regex = "one" }, Substitution = "two" } },
                },
            ],
            new Req("/xxx/one/yyy/one/zzz?one=1"), new Expect { Route = "r", UpstreamPath = "/xxx/two/yyy/two/zzz?one=1" }),
        new("redirect-https", "RedirectAction.https_redirect", "scheme swapped to https, port 80 dropped",
            $"\"The scheme portion of the URL will be swapped with 'https'.\" ({Rc}, RedirectAction.https_redirect)",
            () => [new Route { Name = "r", Match = Prefix(), Redirect = new RedirectAction { HttpsRedirect = true } }],
            new Req("/x", ("host", "reviews:80")), new Expect { Outcome = RouteExplanationOutcome.Redirect, Status = 301, Location = "https://reviews/x" }),
        new("redirect-strip-query", "RedirectAction.strip_query", "query removed",
            $"\"Indicates that during redirection, the query portion of the URL will be removed.\" ({Rc}, RedirectAction.strip_query)",
            () => [new Route { Name = "r", Match = Prefix(), Redirect = new RedirectAction { PathRedirect = "/new", StripQuery = true } }],
            new Req("/old?a=1"), new Expect { Outcome = RouteExplanationOutcome.Redirect, Status = 301, Location = "http://reviews:9080/new" }),
        new("direct-response-body", "DirectResponseAction.body", "status and inline body",
            $"\"Specifies the content of the response body.\" ({Rc}, DirectResponseAction.body)",
            () => [new Route { Name = "r", Match = Prefix(), DirectResponse = new DirectResponseAction { Status = 418, Body = new DataSource { InlineString = "teapot" } } }],
            new Req("/"), new Expect { Outcome = RouteExplanationOutcome.DirectResponse, Status = 418, Body = "teapot" }),
        new("hash-terminal", "RouteAction.HashPolicy.terminal", "terminal policy listed as such",
            $"\"The flag that short-circuits the hash computing.\" ({Rc}, RouteAction.HashPolicy.terminal)",
            () =>
            [
                new Route
                {
                    Name = "r",
                    Match = Prefix(),
                    Route_ = new RouteAction
                    {
                        Cluster = "c",
                        HashPolicy =
                        {
                            new RouteAction.Types.HashPolicy { Header = new RouteAction.Types.HashPolicy.Types.Header { HeaderName = "x-user" }, Terminal = true },
                            new RouteAction.Types.HashPolicy { ConnectionProperties = new RouteAction.Types.HashPolicy.Types.ConnectionProperties { SourceIp = true } },
                        },
                    },
                },
            ],
            new Req("/"), new Expect { Route = "r", Hash = "header 'x-user' (terminal), source ip" }),
        new("mirror-fraction", "RouteAction.RequestMirrorPolicy.runtime_fraction", "share mirrored",
            $"\"If not specified, all requests to the target cluster will be mirrored.\" ({Rc}, RouteAction.RequestMirrorPolicy.runtime_fraction)",
            () =>
            [
                new Route
                {
                    Name = "r",
                    Match = Prefix(),
                    Route_ = new RouteAction
                    {
                        Cluster = "c",
                        RequestMirrorPolicies = { new RouteAction.Types.RequestMirrorPolicy { Cluster = "shadow", RuntimeFraction = Percent(20) }, new RouteAction.Types.RequestMirrorPolicy { Cluster = "all" } },
                    },
                },
            ],
            new Req("/"), new Expect { Route = "r", Mirror = "shadow (20 %), all (100 %)" }),
        new("header-append-action", "HeaderValueOption.append_action", "ADD_IF_ABSENT and OVERWRITE_IF_EXISTS_OR_ADD",
            $"\"Describes the supported actions types for header append action.\" (Envoy base.proto, HeaderValueOption.HeaderAppendAction)",
            () =>
            [
                new Route
                {
                    Name = "r",
                    Match = Prefix(),
                    Route_ = new RouteAction { Cluster = "c" },
                    RequestHeadersToAdd =
                    {
                        new HeaderValueOption { Header = new HeaderValue { Key = "x-a", Value = "1" }, AppendAction = HeaderValueOption.Types.HeaderAppendAction.AddIfAbsent },
                        new HeaderValueOption { Header = new HeaderValue { Key = "x-b", Value = "2" }, AppendAction = HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExistsOrAdd },
                    },
                    ResponseHeadersToRemove = { "server" },
                },
            ],
            new Req("/"), new Expect { Route = "r", RequestHeaders = "add-if-absent x-a: 1; set x-b: 2", ResponseHeaders = "remove server" }),
    ];
}

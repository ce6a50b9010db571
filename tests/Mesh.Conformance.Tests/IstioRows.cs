namespace Mesh.Conformance.Tests;

/// <summary>
/// Istio VirtualService / DestinationRule rows: each field's documented behaviour, run through the control plane's
/// translation and the SDK. Sources quote the Istio reference (istio.io/latest/docs/reference/config/networking/),
/// whose text is the comments of istio/api's <c>virtual_service.proto</c> and <c>destination_rule.proto</c>.
/// </summary>
internal static class IstioRows
{
    private const string VS = "Istio VirtualService";
    private const string DR = "Istio DestinationRule";

    private const string UriSource = $"\"Case-insensitive matching could be enabled via the `ignoreUriCase` flag.\" ({VS}, HTTPMatchRequest.uri)";
    private const string HeaderSource = $"\"Header values are case-sensitive and formatted as follows\" ({VS}, HTTPMatchRequest.headers)";
    private const string PresenceSource = $"\"If the value is empty and only the name of header is specified, presence of the header is checked.\" ({VS}, HTTPMatchRequest.headers)";
    private const string WithoutSource = $"\"If a header is matched with a matching rule among withoutHeader, the traffic becomes not matched one.\" ({VS}, HTTPMatchRequest.withoutHeaders)";
    private const string WeightSource = $"\"A destination will receive `weight/(sum of all weights)` requests.\" ({VS}, HTTPRouteDestination.weight)";
    private const string DelaySource = $"\"If left unspecified, no request will be delayed.\" ({VS}, HTTPFaultInjection.Delay.percentage)";
    private const string AbortSource = $"\"If not specified, no request will be aborted.\" ({VS}, HTTPFaultInjection.Abort.percentage)";
    private const string RetryDefaultSource = $"\"Note: the default cluster-wide retry policy, if not specified, is: attempts: 2, retryOn: connect-failure,refused-stream,unavailable,cancelled\" ({VS}, HTTPRoute.retries)";
    private const string HeadersOpSource = $"\"Header manipulation rules to apply before forwarding a request to the destination service\" ({VS}, Headers.request)";
    private const string HashSource = $"\"Hash based on a specific HTTP header.\" ({DR}, LoadBalancerSettings.ConsistentHashLB.httpHeaderName)";

    public static readonly IstioRow[] All =
    [
        // ---- match: uri ----
        new("uri-exact", "HTTPMatchRequest.uri.exact", "exact path, query ignored",
            $"\"exact: 'value' for exact string match\" ({VS}, StringMatch)",
            """
            - name: exact
              match: [{uri: {exact: /reviews/0}}]
              route: [{destination: {host: reviews, subset: v2}}]
            """,
            new Req("/reviews/0?x=1"), new Expect { Route = "exact", Cluster = "v2" }),
        new("uri-exact-other", "HTTPMatchRequest.uri.exact", "another path is no match (404, no catch-all added)",
            $"\"The first rule matching an incoming request is used.\" ({VS}, VirtualService.http)",
            """
            - name: exact
              match: [{uri: {exact: /reviews/0}}]
              route: [{destination: {host: reviews, subset: v2}}]
            """,
            new Req("/reviews/1"), Expect.NoRoute("path exact '/reviews/0': path is '/reviews/1'")),
        new("uri-prefix", "HTTPMatchRequest.uri.prefix", "path starts with the prefix",
            $"\"prefix: 'value' for prefix-based match\" ({VS}, StringMatch)",
            """
            - name: api
              match: [{uri: {prefix: /api}}]
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/api/v1"), new Expect { Route = "api", Cluster = "v1" }),
        new("uri-prefix-miss", "HTTPMatchRequest.uri.prefix", "first failing condition named",
            $"\"prefix: 'value' for prefix-based match\" ({VS}, StringMatch)",
            """
            - name: api
              match: [{uri: {prefix: /api}}]
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/v1"), Expect.NoRoute("path prefix '/api': path is '/v1'")),
        new("uri-regex", "HTTPMatchRequest.uri.regex", "RE2 full match of the path",
            $"\"regex: 'value' for RE2 style regex-based match\" ({VS}, StringMatch)",
            """
            - name: numbered
              match: [{uri: {regex: "/reviews/[0-9]+"}}]
              route: [{destination: {host: reviews, subset: v3}}]
            """,
            new Req("/reviews/42"), new Expect { Route = "numbered", Cluster = "v3" }),
        new("uri-regex-partial", "HTTPMatchRequest.uri.regex", "a partial match is no match",
            $"\"regex: 'value' for RE2 style regex-based match\" ({VS}, StringMatch)",
            """
            - name: numbered
              match: [{uri: {regex: "/reviews/[0-9]+"}}]
              route: [{destination: {host: reviews, subset: v3}}]
            """,
            new Req("/reviews/42/x"), Expect.NoRoute("path regex '/reviews/[0-9]+': path is '/reviews/42/x'")),
        new("ignore-uri-case", "HTTPMatchRequest.ignoreUriCase", "prefix compared ignoring case",
            UriSource,
            """
            - name: api
              match: [{uri: {prefix: /API}, ignoreUriCase: true}]
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/api/x"), new Expect { Route = "api", Cluster = "v1" }),
        new("uri-case-sensitive", "HTTPMatchRequest.uri", "case-sensitive by default",
            $"\"URI to match values are case-sensitive\" ({VS}, HTTPMatchRequest.uri)",
            """
            - name: api
              match: [{uri: {prefix: /API}}]
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/api/x"), Expect.NoRoute("path prefix '/API': path is '/api/x'")),
        new("ignore-uri-case-regex", "HTTPMatchRequest.ignoreUriCase", "not applied to regex",
            $"\"The case will be ignored only in the case of `exact` and `prefix` URI matches.\" ({VS}, HTTPMatchRequest.ignoreUriCase)",
            """
            - name: api
              match: [{uri: {regex: "/API/.*"}, ignoreUriCase: true}]
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/api/x"), Expect.NoRoute("path regex '/API/.*': path is '/api/x'")),

        // ---- match: headers ----
        new("header-exact", "HTTPMatchRequest.headers.exact", "value equal",
            HeaderSource,
            """
            - name: gold
              match: [{headers: {x-tier: {exact: gold}}}]
              route: [{destination: {host: reviews, subset: v2}}]
            """,
            new Req("/", ("x-tier", "gold")), new Expect { Route = "gold", Cluster = "v2" }),
        new("header-exact-case", "HTTPMatchRequest.headers.exact", "values are case-sensitive",
            HeaderSource,
            """
            - name: gold
              match: [{headers: {x-tier: {exact: gold}}}]
              route: [{destination: {host: reviews, subset: v2}}]
            """,
            new Req("/", ("x-tier", "GOLD")), Expect.NoRoute("header 'x-tier' exact \"gold\": value is \"GOLD\"")),
        new("header-exact-missing", "HTTPMatchRequest.headers.exact", "missing header is no match",
            HeaderSource,
            """
            - name: gold
              match: [{headers: {x-tier: {exact: gold}}}]
              route: [{destination: {host: reviews, subset: v2}}]
            - name: rest
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/"), new Expect { Route = "rest", Cluster = "v1", FirstReason = "header 'x-tier' exact \"gold\": header missing" }),
        new("header-prefix", "HTTPMatchRequest.headers.prefix", "value starts with",
            HeaderSource,
            """
            - name: mobile
              match: [{headers: {user-agent: {prefix: Mobile}}}]
              route: [{destination: {host: reviews, subset: v3}}]
            """,
            new Req("/", ("user-agent", "Mobile Safari")), new Expect { Route = "mobile", Cluster = "v3" }),
        new("header-regex", "HTTPMatchRequest.headers.regex", "RE2 full match of the value",
            HeaderSource,
            """
            - name: cookie
              match: [{headers: {cookie: {regex: "^(.*?;)?(user=jason)(;.*)?$"}}}]
              route: [{destination: {host: reviews, subset: v2}}]
            """,
            new Req("/", ("cookie", "a=1;user=jason")), new Expect { Route = "cookie", Cluster = "v2" }),
        new("header-regex-ignore-case", "HTTPMatchRequest.headers.regex", "(?i) makes a regex case-insensitive",
            $"\"`regex` matching supports case-insensitive matches.\" ({VS}, StringMatch)",
            """
            - name: gold
              match: [{headers: {x-tier: {regex: "(?i)gold"}}}]
              route: [{destination: {host: reviews, subset: v2}}]
            """,
            new Req("/", ("x-tier", "GoLd")), new Expect { Route = "gold", Cluster = "v2" }),
        new("header-presence", "HTTPMatchRequest.headers: {}", "empty match checks presence",
            PresenceSource,
            """
            - name: canary
              match: [{headers: {x-canary: {}}}]
              route: [{destination: {host: reviews, subset: v3}}]
            """,
            new Req("/", ("x-canary", "anything")), new Expect { Route = "canary", Cluster = "v3" }),
        new("header-presence-missing", "HTTPMatchRequest.headers: {}", "absent header is no match",
            PresenceSource,
            """
            - name: canary
              match: [{headers: {x-canary: {}}}]
              route: [{destination: {host: reviews, subset: v3}}]
            """,
            new Req("/"), Expect.NoRoute("header 'x-canary' present: header missing")),
        new("without-headers-star", "HTTPMatchRequest.withoutHeaders regex \"*\"", "`*` is presence there: matches when the header is absent",
            $"\"withoutHeader has the same syntax with the header, but has opposite meaning.\" ({VS}, HTTPMatchRequest.withoutHeaders; Istio validates and translates regex '*' there as presence)",
            """
            - name: no-canary
              match: [{withoutHeaders: {x-canary: {regex: "*"}}}]
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/"), new Expect { Route = "no-canary", Cluster = "v1" }),
        new("without-headers-null", "HTTPMatchRequest.withoutHeaders (null)", "a null match is presence: a present header is no match",
            $"\"withoutHeader has the same syntax with the header, but has opposite meaning.\" ({VS}, HTTPMatchRequest.withoutHeaders; istiod translates a null match as presence)",
            """
            - name: no-canary
              match: [{withoutHeaders: {x-canary: null}}]
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/", ("x-canary", "1")), Expect.NoRoute("header 'x-canary' not present: value is \"1\"")),
        new("without-headers", "HTTPMatchRequest.withoutHeaders", "missing header matches (treated as empty)",
            WithoutSource,
            """
            - name: not-gold
              match: [{withoutHeaders: {x-tier: {exact: gold}}}]
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/"), new Expect { Route = "not-gold", Cluster = "v1" }),
        new("without-headers-other", "HTTPMatchRequest.withoutHeaders", "another value matches",
            WithoutSource,
            """
            - name: not-gold
              match: [{withoutHeaders: {x-tier: {exact: gold}}}]
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/", ("x-tier", "silver")), new Expect { Route = "not-gold", Cluster = "v1" }),
        new("without-headers-hit", "HTTPMatchRequest.withoutHeaders", "the excluded value is no match",
            WithoutSource,
            """
            - name: not-gold
              match: [{withoutHeaders: {x-tier: {exact: gold}}}]
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/", ("x-tier", "gold")), Expect.NoRoute("header 'x-tier' not exact \"gold\" (missing as empty): value is \"gold\"")),

        // ---- match: query, method, authority, port, OR of match blocks ----
        new("query-exact", "HTTPMatchRequest.queryParams.exact", "parameter value equal",
            $"\"For a query parameter like '?key=true', the map key would be 'key' and the string match could be defined as `exact: 'true'`.\" ({VS}, HTTPMatchRequest.queryParams)",
            """
            - name: debug
              match: [{queryParams: {key: {exact: "true"}}}]
              route: [{destination: {host: reviews, subset: v3}}]
            """,
            new Req("/?a=1&key=true"), new Expect { Route = "debug", Cluster = "v3" }),
        new("query-empty", "HTTPMatchRequest.queryParams.exact \"\"", "a key without value matches exact \"\"",
            $"\"For a query parameter like '?key', the map key would be 'key' and the string match could be defined as `exact: ''`.\" ({VS}, HTTPMatchRequest.queryParams)",
            """
            - name: debug
              match: [{queryParams: {key: {exact: ""}}}]
              route: [{destination: {host: reviews, subset: v3}}]
            """,
            new Req("/?key"), new Expect { Route = "debug", Cluster = "v3" }),
        new("query-regex", "HTTPMatchRequest.queryParams.regex", "regex matches the whole value",
            $"\"Note that this configuration will only match values like '123' but not 'a123' or '123a'.\" ({VS}, HTTPMatchRequest.queryParams)",
            """
            - name: numeric
              match: [{queryParams: {key: {regex: "\\d+$"}}}]
              route: [{destination: {host: reviews, subset: v3}}]
            """,
            new Req("/?key=a123"), Expect.NoRoute("query parameter 'key' regex \"\\d+$\": value is \"a123\"")),
        new("query-missing", "HTTPMatchRequest.queryParams", "missing parameter is no match",
            $"\"Query parameters for matching.\" ({VS}, HTTPMatchRequest.queryParams)",
            """
            - name: debug
              match: [{queryParams: {key: {exact: "true"}}}]
              route: [{destination: {host: reviews, subset: v3}}]
            """,
            new Req("/?other=true"), Expect.NoRoute("query parameter 'key' exact \"true\": parameter missing")),
        new("method", "HTTPMatchRequest.method", "method compared as :method",
            $"\"HTTP Method values are case-sensitive\" ({VS}, HTTPMatchRequest.method)",
            """
            - name: writes
              match: [{method: {exact: POST}}]
              route: [{destination: {host: reviews, subset: v2}}]
            """,
            new Req("/"), Expect.NoRoute("header ':method' exact \"POST\": value is \"GET\"")),
        new("method-post", "HTTPMatchRequest.method", "POST matches",
            $"\"HTTP Method values are case-sensitive\" ({VS}, HTTPMatchRequest.method)",
            """
            - name: writes
              match: [{method: {exact: POST}}]
              route: [{destination: {host: reviews, subset: v2}}]
            """,
            new Req("/") { Method = "POST" }, new Expect { Route = "writes", Cluster = "v2" }),
        new("authority", "HTTPMatchRequest.authority", "authority compared as :authority",
            $"\"HTTP Authority values are case-sensitive\" ({VS}, HTTPMatchRequest.authority)",
            """
            - name: short-name
              match: [{authority: {prefix: "reviews:"}}]
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/") { Authority = "reviews.default:9080" }, Expect.NoRoute("header ':authority' prefix \"reviews:\": value is \"reviews.default:9080\"")),
        new("port", "HTTPMatchRequest.port", "a rule for another port does not apply",
            $"\"Specifies the ports on the host that is being addressed.\" ({VS}, HTTPMatchRequest.port)",
            """
            - name: other-port
              match: [{port: 9081}]
              route: [{destination: {host: reviews, subset: v3}}]
            - name: this-port
              match: [{port: 9080}]
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/"), new Expect { Route = "this-port", Cluster = "v1", FirstReason = null }),
        new("match-or", "HTTPRoute.match", "match blocks are ORed, conditions in a block ANDed",
            $"\"All conditions inside a single match block have AND semantics, while the list of match blocks have OR semantics.\" ({VS}, HTTPRoute.match)",
            """
            - name: either
              match:
              - name: gold
                headers: {x-tier: {exact: gold}}
                uri: {prefix: /gold}
              - name: admin
                uri: {prefix: /admin}
              route: [{destination: {host: reviews, subset: v2}}]
            """,
            new Req("/admin/x", ("x-tier", "gold")), new Expect { Route = "either.admin", Cluster = "v2", FirstReason = "path prefix '/gold': path is '/admin/x'" }),
        new("first-rule-wins", "VirtualService.http", "rules are tried in order",
            $"\"The first rule matching an incoming request is used.\" ({VS}, VirtualService.http)",
            """
            - name: first
              match: [{uri: {prefix: /}}]
              route: [{destination: {host: reviews, subset: v1}}]
            - name: second
              match: [{uri: {prefix: /reviews}}]
              route: [{destination: {host: reviews, subset: v2}}]
            """,
            new Req("/reviews/1"), new Expect { Route = "first", Cluster = "v1" }),

        // ---- destinations and weights ----
        new("destination-host", "HTTPRouteDestination (single)", "one destination takes all traffic",
            $"\"If there is only one destination in a rule, it will receive all traffic.\" ({VS}, HTTPRouteDestination.weight)",
            """
            - name: all
              route: [{destination: {host: reviews}}]
            """,
            new Req("/"), new Expect { Route = "all", Cluster = "default", Weights = "" }),
        new("weights", "HTTPRouteDestination.weight", "25/75 split",
            WeightSource,
            """
            - name: split
              route:
              - {destination: {host: reviews, subset: v1}, weight: 25}
              - {destination: {host: reviews, subset: v2}, weight: 75}
            """,
            new Req("/"), new Expect { Route = "split", Weights = "v1 25 %, v2 75 %" }),
        new("weights-relative", "HTTPRouteDestination.weight", "relative weights 1 and 3 are 25/75",
            WeightSource,
            """
            - name: split
              route:
              - {destination: {host: reviews, subset: v1}, weight: 1}
              - {destination: {host: reviews, subset: v2}, weight: 3}
            """,
            new Req("/"), new Expect { Route = "split", Weights = "v1 25 %, v2 75 %" }),
        new("weights-zero", "HTTPRouteDestination.weight", "weight 0 gets no traffic",
            $"\"Otherwise, if weight is `0`, the destination will not receive any traffic.\" ({VS}, HTTPRouteDestination.weight)",
            """
            - name: split
              route:
              - {destination: {host: reviews, subset: v1}, weight: 100}
              - {destination: {host: reviews, subset: v2}, weight: 0}
            """,
            new Req("/"), new Expect { Route = "split", Cluster = "v1", Weights = "" }),

        // ---- fault ----
        new("fault-delay", "HTTPFaultInjection.delay", "fixed delay for a percentage",
            $"\"The _fixedDelay_ field is used to indicate the amount of delay in seconds.\" ({VS}, HTTPFaultInjection.Delay)",
            """
            - name: slow
              fault: {delay: {fixedDelay: 5s, percentage: {value: 10}}}
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/"), new Expect { Route = "slow", Fault = "delay 5s for 10 % of requests" }),
        new("fault-delay-no-percentage", "HTTPFaultInjection.delay.percentage", "unset percentage delays nothing",
            DelaySource,
            """
            - name: slow
              fault: {delay: {fixedDelay: 5s}}
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/"), new Expect { Route = "slow", Fault = "delay 5s for 0 % of requests" }),
        new("fault-abort", "HTTPFaultInjection.abort", "HTTP status for a percentage",
            $"\"The _httpStatus_ field is used to indicate the HTTP status code to return to the caller.\" ({VS}, HTTPFaultInjection.Abort)",
            """
            - name: broken
              fault: {abort: {httpStatus: 503, percentage: {value: 50}}}
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/"), new Expect { Route = "broken", Fault = "abort with HTTP 503 for 50 % of requests" }),
        new("fault-abort-no-percentage", "HTTPFaultInjection.abort.percentage", "unset percentage aborts nothing",
            AbortSource,
            """
            - name: broken
              fault: {abort: {httpStatus: 503}}
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/"), new Expect { Route = "broken", Fault = "abort with HTTP 503 for 0 % of requests" }),
        new("fault-abort-grpc", "HTTPFaultInjection.abort.grpcStatus", "gRPC status by name",
            $"\"If you want to return the status 'Unavailable', then you should specify the code as `UNAVAILABLE`(all caps), but not `14`.\" ({VS}, HTTPFaultInjection.Abort.grpcStatus)",
            """
            - name: broken
              fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}}
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/"), new Expect { Route = "broken", Fault = "abort with gRPC status 14 for 100 % of requests" }),

        // ---- retries, timeout ----
        new("retries-default", "HTTPRoute.retries (unset)", "istiod's default policy",
            RetryDefaultSource,
            """
            - name: plain
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/"), new Expect { Route = "plain", Retry = "2 retries on connect-failure,refused-stream,retriable-status-codes,cancelled,unavailable, per-try timeout none, back-off 25ms..250ms, other hosts first" }),
        new("retries-off", "HTTPRetry.attempts", "0 disables retries",
            $"\"If `0`, retries will be disabled.\" ({VS}, HTTPRetry.attempts)",
            """
            - name: once
              retries: {attempts: 0}
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/"), new Expect { Route = "once", Retry = "none" }),
        new("retries-custom", "HTTPRetry.attempts/perTryTimeout/retryOn", "status codes in retryOn become retriable statuses",
            $"\"In addition to the policies specified above, a list of HTTP status codes can be passed, such as `retryOn: '503,reset'`.\" ({VS}, HTTPRetry.retryOn)",
            """
            - name: retried
              retries: {attempts: 3, perTryTimeout: 2s, retryOn: "503,reset"}
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/"), new Expect { Route = "retried", Retry = "3 retries on reset,retriable-status-codes (statuses 503), per-try timeout 2s, back-off 25ms..250ms, other hosts first" }),
        new("retries-backoff", "HTTPRetry.backoff", "base interval of the back-off",
            $"\"Specifies the minimum duration between retry attempts.\" ({VS}, HTTPRetry.backoff)",
            """
            - name: retried
              retries: {attempts: 2, retryOn: 5xx, backoff: 100ms}
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/"), new Expect { Route = "retried", Retry = "2 retries on 5xx, per-try timeout none, back-off 100ms..1s, other hosts first" }),
        new("retries-previous-hosts", "HTTPRetry.retryIgnorePreviousHosts", "false lets a retry reuse a host",
            $"\"Flag to specify whether the retries should ignore previously tried hosts during retry.\" ({VS}, HTTPRetry.retryIgnorePreviousHosts)",
            """
            - name: retried
              retries: {attempts: 2, retryOn: 5xx, retryIgnorePreviousHosts: false}
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/"), new Expect { Route = "retried", Retry = "2 retries on 5xx, per-try timeout none, back-off 25ms..250ms" }),
        new("timeout-default", "HTTPRoute.timeout (unset)", "no timeout",
            $"\"Timeout for HTTP requests, default is disabled.\" ({VS}, HTTPRoute.timeout)",
            """
            - name: plain
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/"), new Expect { Route = "plain", Timeout = "none" }),
        new("timeout", "HTTPRoute.timeout", "route timeout",
            $"\"Timeout for HTTP requests, default is disabled.\" ({VS}, HTTPRoute.timeout)",
            """
            - name: timed
              timeout: 2s
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/"), new Expect { Route = "timed", Timeout = "2s" }),

        // ---- rewrite, redirect, direct response ----
        new("rewrite-uri", "HTTPRewrite.uri", "matched prefix replaced",
            $"\"If the original URI was matched based on prefix, the value provided in this field will replace the corresponding matched prefix.\" ({VS}, HTTPRewrite.uri)",
            """
            - name: moved
              match: [{uri: {prefix: /old}}]
              rewrite: {uri: /new}
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/old/x?y=1"), new Expect { Route = "moved", UpstreamPath = "/new/x?y=1" }),
        new("rewrite-authority", "HTTPRewrite.authority", "Host rewritten",
            $"\"rewrite the Authority/Host header with this value.\" ({VS}, HTTPRewrite.authority)",
            """
            - name: renamed
              rewrite: {authority: ratings.example}
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/"), new Expect { Route = "renamed", UpstreamAuthority = "ratings.example" }),
        new("rewrite-regex", "HTTPRewrite.uriRegexRewrite", "RE2 capture groups in the rewrite (istiod writes regex_rewrite)",
            "\"The path pattern ^/service/([^/]+)(/.*)$ paired with a substitution string of \\2/instance/\\1 would transform /service/foo/v1/api into /v1/api/instance/foo.\" (Envoy route_components.proto, RouteAction.regex_rewrite)",
            """
            - name: regex
              rewrite: {uriRegexRewrite: {match: "^/service/([^/]+)(/.*)$", rewrite: "\\2/instance/\\1"}}
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/service/foo/v1/api"), new Expect { Route = "regex", UpstreamPath = "/v1/api/instance/foo" }),
        new("redirect", "HTTPRedirect.uri/authority", "301 to the new path and host",
            $"\"The default response code is MOVED_PERMANENTLY (301).\" ({VS}, HTTPRedirect.redirectCode)",
            """
            - name: moved
              match: [{uri: {exact: /v1/getProductRatings}}]
              redirect: {uri: /v1/bookRatings, authority: newratings.default.svc.cluster.local}
            """,
            new Req("/v1/getProductRatings"),
            new Expect { Outcome = Sdk.Routing.RouteExplanationOutcome.Redirect, Route = "moved", Status = 301, Location = "http://newratings.default.svc.cluster.local/v1/bookRatings" }),
        new("redirect-code", "HTTPRedirect.redirectCode", "302 as configured",
            $"\"On a redirect, Specifies the HTTP status code to use in the redirect response.\" ({VS}, HTTPRedirect.redirectCode)",
            """
            - name: found
              redirect: {uri: /elsewhere, redirectCode: 302}
            """,
            new Req("/x?q=1"), new Expect { Outcome = Sdk.Routing.RouteExplanationOutcome.Redirect, Route = "found", Status = 302, Location = "http://reviews:9080/elsewhere?q=1" }),
        new("redirect-scheme-port", "HTTPRedirect.scheme/port", "scheme and port overwritten",
            $"\"On a redirect, overwrite the scheme portion of the URL with this value.\" ({VS}, HTTPRedirect.scheme)",
            """
            - name: secure
              redirect: {scheme: https, port: 8443}
            """,
            new Req("/x"), new Expect { Outcome = Sdk.Routing.RouteExplanationOutcome.Redirect, Route = "secure", Status = 301, Location = "https://reviews:8443/x" }),
        new("redirect-unknown-code", "HTTPRedirect.redirectCode (unsupported)", "the rest of the VirtualService still applies",
            $"\"On a redirect, Specifies the HTTP status code to use in the redirect response.\" ({VS}, HTTPRedirect.redirectCode; istiod warns and drops the redirect's action)",
            """
            - name: odd
              match: [{uri: {prefix: /odd}}]
              redirect: {uri: /elsewhere, redirectCode: 399}
            - name: rest
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/reviews"), new Expect { Route = "rest", Cluster = "v1" }),
        new("direct-response", "HTTPDirectResponse", "fixed status and body",
            $"\"Direct Response is used to specify a fixed response that should be sent to clients.\" ({VS}, HTTPRoute.directResponse)",
            """
            - name: down
              directResponse: {status: 503, body: {string: "unavailable"}}
            """,
            new Req("/"), new Expect { Outcome = Sdk.Routing.RouteExplanationOutcome.DirectResponse, Route = "down", Status = 503, Body = "unavailable" }),

        // ---- mirror ----
        new("mirror-percentage", "HTTPRoute.mirror/mirrorPercentage", "a share mirrored",
            $"\"Percentage of the traffic to be mirrored by the `mirror` field.\" ({VS}, HTTPRoute.mirrorPercentage)",
            """
            - name: mirrored
              route: [{destination: {host: reviews, subset: v1}}]
              mirror: {host: reviews, subset: v2}
              mirrorPercentage: {value: 50}
            """,
            new Req("/"), new Expect { Route = "mirrored", Cluster = "v1", Mirror = "v2 (50 %)" }),
        new("mirror-default", "HTTPRoute.mirrorPercentage (unset)", "all traffic mirrored",
            $"\"If this field is absent, all the traffic (100%) will be mirrored.\" ({VS}, HTTPRoute.mirrorPercentage)",
            """
            - name: mirrored
              route: [{destination: {host: reviews, subset: v1}}]
              mirror: {host: reviews, subset: v2}
            """,
            new Req("/"), new Expect { Route = "mirrored", Mirror = "v2 (100 %)" }),
        new("mirrors", "HTTPRoute.mirrors", "several mirrors, each with its share",
            $"\"Specifies the destinations to mirror HTTP traffic in addition to the original destination.\" ({VS}, HTTPRoute.mirrors)",
            """
            - name: mirrored
              route: [{destination: {host: reviews, subset: v1}}]
              mirrors:
              - {destination: {host: reviews, subset: v2}, percentage: {value: 25}}
              - {destination: {host: reviews, subset: v3}}
            """,
            new Req("/"), new Expect { Route = "mirrored", Mirror = "v2 (25 %), v3 (100 %)" }),

        // ---- header operations ----
        new("headers-request", "Headers.request.set/add/remove", "request headers set, appended, removed",
            HeadersOpSource,
            """
            - name: decorated
              headers:
                request:
                  set: {x-set: "1"}
                  add: {x-added: "2"}
                  remove: [x-secret]
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/"), new Expect { Route = "decorated", RequestHeaders = "remove x-secret; set x-set: 1; append x-added: 2" }),
        new("headers-response", "Headers.response.set/remove", "response headers set and removed",
            $"\"Header manipulation rules to apply before returning a response to the caller\" ({VS}, Headers.response)",
            """
            - name: decorated
              headers:
                response:
                  set: {x-served-by: mesh}
                  remove: [server]
              route: [{destination: {host: reviews, subset: v1}}]
            """,
            new Req("/"), new Expect { Route = "decorated", ResponseHeaders = "remove server; set x-served-by: mesh" }),
        new("headers-destination", "HTTPRouteDestination.headers", "per-destination operations",
            $"\"Header manipulation rules\" ({VS}, HTTPRouteDestination.headers)",
            """
            - name: decorated
              route:
              - destination: {host: reviews, subset: v2}
                headers: {request: {set: {x-version: v2}}}
            """,
            new Req("/"), new Expect { Route = "decorated", Cluster = "v2", RequestHeaders = "set x-version: v2" }),

        // ---- DestinationRule consistent hash → route hash policy ----
        new("hash-header", "ConsistentHashLB.httpHeaderName", "hash on a header; retries stay on the hashed host",
            HashSource,
            """
            - name: sticky
              route: [{destination: {host: reviews}}]
            """,
            new Req("/"), new Expect { Route = "sticky", Hash = "header 'x-user'", Retry = "2 retries on connect-failure,refused-stream,retriable-status-codes,cancelled,unavailable, per-try timeout none, back-off 25ms..250ms" })
        {
            TrafficPolicy = "loadBalancer: {consistentHash: {httpHeaderName: x-user}}",
        },
        new("hash-source-ip", "ConsistentHashLB.useSourceIp", "hash on the source address",
            $"\"Hash based on the source IP address.\" ({DR}, LoadBalancerSettings.ConsistentHashLB.useSourceIp)",
            """
            - name: sticky
              route: [{destination: {host: reviews}}]
            """,
            new Req("/"), new Expect { Route = "sticky", Hash = "source ip" })
        {
            TrafficPolicy = "loadBalancer: {consistentHash: {useSourceIp: true}}",
        },
        new("hash-query", "ConsistentHashLB.httpQueryParameterName", "hash on a query parameter",
            $"\"Hash based on a specific HTTP query parameter.\" ({DR}, LoadBalancerSettings.ConsistentHashLB.httpQueryParameterName)",
            """
            - name: sticky
              route: [{destination: {host: reviews}}]
            """,
            new Req("/"), new Expect { Route = "sticky", Hash = "query parameter 'user'" })
        {
            TrafficPolicy = "loadBalancer: {consistentHash: {httpQueryParameterName: user}}",
        },
        new("hash-cookie", "ConsistentHashLB.httpCookie", "hash on a cookie with a TTL",
            $"\"Hash based on HTTP cookie.\" ({DR}, LoadBalancerSettings.ConsistentHashLB.httpCookie)",
            """
            - name: sticky
              route: [{destination: {host: reviews}}]
            """,
            new Req("/"), new Expect { Route = "sticky", Hash = "cookie 'session' (ttl 60s)" })
        {
            TrafficPolicy = "loadBalancer: {consistentHash: {httpCookie: {name: session, ttl: 60s}}}",
        },
    ];
}

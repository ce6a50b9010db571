using Mesh.Sdk.FunctionalTests.Infrastructure;

namespace Mesh.Conformance.Tests;

/// <summary>What a real request observed: status, the backend version that answered, attempts, headers.</summary>
internal sealed record Observed
{
    /// <summary>The status the client got.</summary>
    public required int Status { get; init; }

    /// <summary>The version of the backend that answered (null: none did, or not checked).</summary>
    public string? Version { get; init; }

    /// <summary>Requests the backends received in all (attempts).</summary>
    public int? Attempts { get; init; }

    /// <summary>Request headers as the backend saw them, <c>name=value</c> or <c>name=(absent)</c>, joined with <c>; </c>.</summary>
    public string? BackendHeaders { get; init; }

    /// <summary>Response headers as the client saw them, same form.</summary>
    public string? ResponseHeaders { get; init; }

    /// <summary>The path and query the backend saw.</summary>
    public string? BackendPath { get; init; }

    /// <summary>The <c>location</c> header the client got.</summary>
    public string? Location { get; init; }

    /// <summary>The body the client got.</summary>
    public string? Body { get; init; }
}

/// <summary>
/// A row whose outcome needs a real request (attempts, a fault's status, headers the backend sees): the YAML is
/// served by the real control plane to a client with <c>AddMesh()</c>, and the request goes to real Kestrel
/// backends on loopback (the functional tests' harness: <c>reviews</c> with workloads v1 ×2, v2, v3).
/// </summary>
/// <param name="Http">The VirtualService's <c>http:</c> list (YAML at column 0) for host <c>reviews.default.svc.cluster.local</c>.</param>
/// <param name="Outcome">What the request must observe.</param>
/// <param name="Arrange">Sets the backends up after the YAML is in force (for example v2 fails its next two requests).</param>
internal sealed record RequestRow(string Id, string Field, string Behaviour, string Source, string Http, Req Request, Observed Outcome, Action<MeshHarness>? Arrange = null)
    : ConformanceRow(Id, Field, Behaviour, Source, Request, new Expect())
{
    public override string TestName => $"Request({Id})";
}

/// <summary>Rows checked through the real request path.</summary>
internal static class RequestRows
{
    private const string VS = "Istio VirtualService";

    public static readonly RequestRow[] All =
    [
        new("fault-abort-status", "HTTPFaultInjection.abort", "the caller gets the status, no backend is called",
            $"\"The _httpStatus_ field is used to indicate the HTTP status code to return to the caller.\" ({VS}, HTTPFaultInjection.Abort)",
            """
            - name: broken
              fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
              route: [{destination: {host: reviews.default.svc.cluster.local, subset: v2}}]
            """,
            new Req("/"), new Observed { Status = 418, Attempts = 0 }),
        new("fault-abort-no-percentage", "HTTPFaultInjection.abort.percentage", "unset percentage aborts nothing",
            $"\"If not specified, no request will be aborted.\" ({VS}, HTTPFaultInjection.Abort.percentage)",
            """
            - name: broken
              fault: {abort: {httpStatus: 418}}
              route: [{destination: {host: reviews.default.svc.cluster.local, subset: v2}}]
            """,
            new Req("/"), new Observed { Status = 200, Version = "v2", Attempts = 1 }),
        new("retries-attempts", "HTTPRetry.attempts", "at most 1 + attempts requests",
            $"\"The maximum possible number of requests made will be 1 + `attempts`.\" ({VS}, HTTPRetry.attempts)",
            """
            - name: retried
              retries: {attempts: 2, retryOn: 5xx}
              route: [{destination: {host: reviews.default.svc.cluster.local, subset: v2}}]
            """,
            new Req("/"), new Observed { Status = 200, Version = "v2", Attempts = 3 },
            static mesh => mesh.Backend("reviews-v2-a").FailNext(2)),
        new("retries-exhausted", "HTTPRetry.attempts", "the last failure is returned after 1 + attempts",
            $"\"The maximum possible number of requests made will be 1 + `attempts`.\" ({VS}, HTTPRetry.attempts)",
            """
            - name: retried
              retries: {attempts: 1, retryOn: 5xx}
              route: [{destination: {host: reviews.default.svc.cluster.local, subset: v2}}]
            """,
            new Req("/"), new Observed { Status = 503, Attempts = 2 },
            static mesh => mesh.Backend("reviews-v2-a").FailNext(5)),
        new("retries-off", "HTTPRetry.attempts", "0: one request only",
            $"\"If `0`, retries will be disabled.\" ({VS}, HTTPRetry.attempts)",
            """
            - name: once
              retries: {attempts: 0}
              route: [{destination: {host: reviews.default.svc.cluster.local, subset: v2}}]
            """,
            new Req("/"), new Observed { Status = 503, Attempts = 1 },
            static mesh => mesh.Backend("reviews-v2-a").FailNext(1)),
        new("retries-default-503", "HTTPRoute.retries (unset)", "the default policy does not retry a 503 response",
            $"\"If not specified, this defaults to `connect-failure,refused-stream,unavailable,cancelled`.\" ({VS}, HTTPRetry.retryOn)",
            """
            - name: plain
              route: [{destination: {host: reviews.default.svc.cluster.local, subset: v2}}]
            """,
            new Req("/"), new Observed { Status = 503, Attempts = 1 },
            static mesh => mesh.Backend("reviews-v2-a").FailNext(1)),
        new("retries-status-code", "HTTPRetry.retryOn (status code)", "a listed status is retried",
            $"\"In addition to the policies specified above, a list of HTTP status codes can be passed, such as `retryOn: '503,reset'`.\" ({VS}, HTTPRetry.retryOn)",
            """
            - name: retried
              retries: {attempts: 2, retryOn: "503"}
              route: [{destination: {host: reviews.default.svc.cluster.local, subset: v2}}]
            """,
            new Req("/"), new Observed { Status = 200, Version = "v2", Attempts = 2 },
            static mesh => mesh.Backend("reviews-v2-a").FailNext(1)),
        new("retries-gateway-error", "HTTPRetry.retryOn gateway-error", "a 502 is retried",
            "\"This policy is similar to the 5xx policy but will only retry requests that result in a 502, 503, or 504.\" (Envoy router filter, x-envoy-retry-on: gateway-error)",
            """
            - name: retried
              retries: {attempts: 2, retryOn: gateway-error}
              route: [{destination: {host: reviews.default.svc.cluster.local, subset: v2}}]
            """,
            new Req("/"), new Observed { Status = 200, Version = "v2", Attempts = 2 },
            static mesh => mesh.Backend("reviews-v2-a").FailNext(1, 502)),
        new("retries-gateway-error-500", "HTTPRetry.retryOn gateway-error", "a 500 is not retried",
            "\"This policy is similar to the 5xx policy but will only retry requests that result in a 502, 503, or 504.\" (Envoy router filter, x-envoy-retry-on: gateway-error)",
            """
            - name: retried
              retries: {attempts: 2, retryOn: gateway-error}
              route: [{destination: {host: reviews.default.svc.cluster.local, subset: v2}}]
            """,
            new Req("/"), new Observed { Status = 500, Attempts = 1 },
            static mesh => mesh.Backend("reviews-v2-a").FailNext(1, 500)),
        new("retries-retriable-4xx", "HTTPRetry.retryOn retriable-4xx", "a 409 is retried",
            "\"Currently, the only response code in this category is 409.\" (Envoy router filter, x-envoy-retry-on: retriable-4xx)",
            """
            - name: retried
              retries: {attempts: 2, retryOn: retriable-4xx}
              route: [{destination: {host: reviews.default.svc.cluster.local, subset: v2}}]
            """,
            new Req("/"), new Observed { Status = 200, Version = "v2", Attempts = 2 },
            static mesh => mesh.Backend("reviews-v2-a").FailNext(1, 409)),
        new("headers-request-seen", "Headers.request.set/add/remove", "the backend sees the headers set, added and removed",
            $"\"Header manipulation rules to apply before forwarding a request to the destination service\" ({VS}, Headers.request)",
            """
            - name: decorated
              headers:
                request:
                  set: {x-set: "1"}
                  add: {x-added: "2"}
                  remove: [x-secret]
              route: [{destination: {host: reviews.default.svc.cluster.local, subset: v2}}]
            """,
            new Req("/", ("x-secret", "s"), ("x-set", "0")), new Observed { Status = 200, Version = "v2", BackendHeaders = "x-set=1; x-added=2; x-secret=(absent)" }),
        new("headers-response-seen", "Headers.response.set/remove", "the caller sees the response headers set and removed",
            $"\"Header manipulation rules to apply before returning a response to the caller\" ({VS}, Headers.response)",
            """
            - name: decorated
              headers:
                response:
                  set: {x-served-by: mesh}
                  remove: [x-backend-workload]
              route: [{destination: {host: reviews.default.svc.cluster.local, subset: v2}}]
            """,
            new Req("/"), new Observed { Status = 200, Version = "v2", ResponseHeaders = "x-served-by=mesh; x-backend-workload=(absent)" }),
        new("rewrite-uri-seen", "HTTPRewrite.uri", "the backend sees the rewritten path",
            $"\"Rewrite will be performed before forwarding.\" ({VS}, HTTPRoute.rewrite)",
            """
            - name: moved
              match: [{uri: {prefix: /old}}]
              rewrite: {uri: /new}
              route: [{destination: {host: reviews.default.svc.cluster.local, subset: v3}}]
            """,
            new Req("/old/x?y=1"), new Observed { Status = 200, Version = "v3", BackendPath = "/new/x?y=1" }),
        new("redirect-seen", "HTTPRedirect", "the caller gets 301 and the location",
            $"\"The default response code is MOVED_PERMANENTLY (301).\" ({VS}, HTTPRedirect.redirectCode)",
            """
            - name: moved
              redirect: {uri: /elsewhere, authority: ratings:9080}
            """,
            new Req("/x"), new Observed { Status = 301, Location = "http://ratings:9080/elsewhere", Attempts = 0 }),
        new("direct-response-seen", "HTTPDirectResponse", "the caller gets the status and body",
            $"\"Direct Response is used to specify a fixed response that should be sent to clients.\" ({VS}, HTTPRoute.directResponse)",
            """
            - name: down
              directResponse: {status: 503, body: {string: "maintenance"}}
            """,
            new Req("/"), new Observed { Status = 503, Body = "maintenance", Attempts = 0 }),
    ];
}

namespace Mesh.Sdk.FunctionalTests.Grpc.Infrastructure;

/// <summary>
/// The test services of the gRPC suite and their Istio routing, one per test so tests never share routes. YAML
/// fragments are indented for their place: traffic policies under the DestinationRule's <c>spec</c>, routes under
/// the VirtualService's <c>http</c>.
/// </summary>
internal static class GrpcTestServices
{
    public const string Split = "grpc-split";
    public const string Method = "grpc-method";
    public const string Header = "grpc-header";
    public const string Abort = "grpc-abort";
    public const string Delay = "grpc-delay";
    public const string Retry = "grpc-retry";
    public const string Deadline = "grpc-deadline";
    public const string Outlier = "grpc-outlier";
    public const string OutlierReturn = "grpc-outlier-return";
    public const string Ring = "grpc-ring";
    public const string RetryHost = "grpc-retry-host";
    public const string Shift = "grpc-shift";
    public const string Factory = "grpc-factory";
    public const string Breaker = "grpc-breaker";
    public const string Headers = "grpc-headers";
    public const string Rewrite = "grpc-rewrite";
    public const string Redirect = "grpc-redirect";
    public const string Mirror = "grpc-mirror";
    public const string Shadow = "grpc-shadow";
    public const string StreamBreaker = "grpc-stream-breaker";
    public const string Pending = "grpc-pending";
    public const string Blackhole = "grpc-blackhole";
    public const string ClientStream = "grpc-client-stream";

    public const string SayHelloPath = "/mesh.functional.Greeter/SayHello";
    public const string SayGoodbyePath = "/mesh.functional.Greeter/SayGoodbye";
    public const string LegacyPrefix = "/mesh.functional.LegacyGreeter/";
    public const string RewrittenAuthority = "greeter.internal:7000";

    public static IEnumerable<(string Name, string App, string? TrafficPolicy, string? Http)> All =>
    [
        (Split, "greeter", null, WeightedRoute(Split, 80, 20)),
        (Method, "greeter", null, MethodRoute(Method)),
        (Factory, "greeter", null, MethodRoute(Factory)),
        (Header, "greeter", null, $"""
          - name: canary
            match:
            - headers:
                x-canary:
                  exact: "yes"
            route:
            - destination: {Destination(Header, "v2")}
          - name: default
            route:
            - destination: {Destination(Header, "v1")}
        """),
        (Abort, "greeter", null, $"""
          - name: abort-http
            match:
            - headers:
                x-abort:
                  exact: http
            fault:
              abort:
                httpStatus: 404
                percentage:
                  value: 100
            route:
            - destination: {Destination(Abort, "v1")}
          - name: abort-grpc
            fault:
              abort:
                grpcStatus: RESOURCE_EXHAUSTED
                percentage:
                  value: 100
            route:
            - destination: {Destination(Abort, "v1")}
        """),
        (Delay, "greeter", null, $"""
          - name: delayed
            fault:
              delay:
                fixedDelay: 400ms
                percentage:
                  value: 100
            route:
            - destination: {Destination(Delay, "v1")}
        """),
        (Retry, "greeter", null, $"""
          - name: retried
            retries:
              attempts: 3
              retryOn: unavailable
            route:
            - destination: {Destination(Retry, "v2")}
        """),
        (Deadline, "greeter", null, $"""
          - name: bounded
            timeout: 300ms
            route:
            - destination: {Destination(Deadline, "v1")}
        """),
        (Outlier, "outlier", EjectAfterThree5xx(interval: "1s", baseEjectionTime: "60s"), NoRetriesRoute(Outlier)),
        (OutlierReturn, "recovering", EjectAfterThree5xx(interval: "100ms", baseEjectionTime: "1s"), NoRetriesRoute(OutlierReturn)),
        (Ring, "ring", """
          trafficPolicy:
            loadBalancer:
              consistentHash:
                httpHeaderName: x-user
                minimumRingSize: 1024
        """, SingleRoute(Ring, "v1")),
        (RetryHost, "outlier", null, $"""
          - name: retried-elsewhere
            retries:
              attempts: 2
              retryOn: unavailable
            route:
            - destination: {ServiceDestination(RetryHost)}
        """),
        (Shift, "greeter", null, SingleRoute(Shift, "v1")),
        (ClientStream, "greeter", null, $"""
          - name: collected
            retries:
              attempts: 2
              retryOn: unavailable
            route:
            - destination: {Destination(ClientStream, "v2")}
        """),
        (Breaker, "greeter", """
          trafficPolicy:
            connectionPool:
              http:
                http2MaxRequests: 2
        """, SingleRoute(Breaker, "v1")),
        (StreamBreaker, "greeter", """
          trafficPolicy:
            connectionPool:
              http:
                http2MaxRequests: 1
        """, SingleRoute(StreamBreaker, "v1")),
        (Headers, "greeter", null, $"""
          - name: decorated
            headers:
              request:
                set:
                  x-route-set: route
                add:
                  x-route-added: added
                remove:
                - x-client-secret
              response:
                set:
                  x-route-response: "yes"
                remove:
                - x-backend-secret
                - x-trailer
            route:
            - destination: {Destination(Headers, "v1")}
              weight: 50
              headers:
                request:
                  set:
                    x-subset: v1
            - destination: {Destination(Headers, "v2")}
              weight: 50
              headers:
                request:
                  set:
                    x-subset: v2
                response:
                  add:
                    x-served-by-subset: v2
        """),
        (Rewrite, "greeter", null, $"""
          - name: legacy
            match:
            - uri:
                prefix: {LegacyPrefix}
            rewrite:
              uri: /mesh.functional.Greeter/
              authority: {RewrittenAuthority}
            route:
            - destination: {Destination(Rewrite, "v1")}
          - name: goodbye-is-hello
            match:
            - uri:
                exact: {SayGoodbyePath}
            rewrite:
              uriRegexRewrite:
                match: Goodbye$
                rewrite: Hello
            route:
            - destination: {Destination(Rewrite, "v1")}
          - name: default
            route:
            - destination: {Destination(Rewrite, "v1")}
        """),
        (Redirect, "greeter", null, $"""
          - name: moved
            match:
            - uri:
                exact: {SayGoodbyePath}
            redirect:
              uri: {SayHelloPath}
          - name: default
            route:
            - destination: {Destination(Redirect, "v1")}
        """),
        (Mirror, "greeter", null, $"""
          - name: mirrored
            route:
            - destination: {Destination(Mirror, "v1")}
            mirror: {ServiceDestination(Shadow)}
            mirrorPercentage:
              value: 50
        """),
        (Shadow, "shadow", null, null),
        (Pending, "greeter", null, $"""
          - name: goodbye-to-blackhole
            match:
            - uri:
                exact: {SayGoodbyePath}
            route:
            - destination: {ServiceDestination(Blackhole)}
          - name: default
            route:
            - destination: {Destination(Pending, "v1")}
        """),
        (Blackhole, "blackhole", """
          trafficPolicy:
            connectionPool:
              http:
                http1MaxPendingRequests: 2
        """, null),
    ];

    public static string Destination(string service, string subset) => $$"""{ host: {{GrpcMeshFixture.Host(service)}}, subset: {{subset}}, port: { number: {{GrpcMeshFixture.ServicePort}} } }""";

    public static string ServiceDestination(string service) => $$"""{ host: {{GrpcMeshFixture.Host(service)}}, port: { number: {{GrpcMeshFixture.ServicePort}} } }""";

    /// <summary>Outlier detection ejecting a host at its third consecutive 5xx (gRPC: UNAVAILABLE and the like), up to all hosts.</summary>
    public static string EjectAfterThree5xx(string interval, string baseEjectionTime) => $"""
          trafficPolicy:
            outlierDetection:
              consecutive5xxErrors: 3
              interval: {interval}
              baseEjectionTime: {baseEjectionTime}
              maxEjectionPercent: 100
        """;

    /// <summary>One route to the whole service with retries off, so every failure the host returns reaches the caller.</summary>
    public static string NoRetriesRoute(string service) => $"""
          - name: no-retries
            retries:
              attempts: 0
            route:
            - destination: {ServiceDestination(service)}
        """;

    public static string SingleRoute(string service, string subset) => $"""
          - name: all-{subset}
            route:
            - destination: {Destination(service, subset)}
        """;

    public static string WeightedRoute(string service, int v1, int v2) => $"""
          - name: split
            route:
            - destination: {Destination(service, "v1")}
              weight: {v1}
            - destination: {Destination(service, "v2")}
              weight: {v2}
        """;

    public static string MethodRoute(string service) => $"""
          - name: goodbye-to-v2
            match:
            - uri:
                exact: {SayGoodbyePath}
            route:
            - destination: {Destination(service, "v2")}
          - name: default
            route:
            - destination: {Destination(service, "v1")}
        """;
}

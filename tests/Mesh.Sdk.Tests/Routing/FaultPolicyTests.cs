using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Common.Fault.V3;
using Envoy.Extensions.Filters.Http.Fault.V3;
using Envoy.Type.Matcher.V3;
using Envoy.Type.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.Routing;

namespace Mesh.Sdk.Tests.Routing;

public sealed class FaultPolicyTests
{
    private static FaultPolicy Compile(HTTPFault fault)
    {
        Assert.True(FaultPolicy.TryCompile(fault, out var policy, out var error), error);
        return policy!;
    }

    private static FractionalPercent Percent(uint numerator) => new() { Numerator = numerator };

    [Fact]
    public void FixedDelayAndHttpAbort_AtTheirPercentages()
    {
        var policy = Compile(new HTTPFault
        {
            Delay = new FaultDelay { FixedDelay = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(700)), Percentage = Percent(30) },
            Abort = new FaultAbort { HttpStatus = 503, Percentage = Percent(10) },
        });
        var random = new Random(11);
        int delays = 0, aborts = 0;
        for (var i = 0; i < 10_000; i++)
        {
            var decision = policy.Evaluate(TestRequest.Get("/"), "c", random);
            if (decision.Delay is { } d)
            {
                Assert.Equal(TimeSpan.FromMilliseconds(700), d);
                delays++;
            }

            if (decision.IsAbort)
            {
                Assert.Equal(503, decision.HttpStatus);
                aborts++;
            }
        }

        Assert.InRange(delays, 2800, 3200);
        Assert.InRange(aborts, 800, 1200);
    }

    [Fact]
    public void UnsetPercentageMeansNever()
    {
        var policy = Compile(new HTTPFault { Abort = new FaultAbort { HttpStatus = 500 } });
        Assert.Equal(Fraction.Never, policy.AbortPercentage);
        Assert.False(policy.Evaluate(TestRequest.Get("/"), "c", new Random(1)).IsAbort);
    }

    [Fact]
    public void UnsetPercentage_InjectsNoFaultOfAnyKind()
    {
        // Envoy's FractionalPercent defaults to 0: a delay or abort without a percentage applies to no request,
        // also when the request asks for a header-controlled fault.
        var policy = Compile(new HTTPFault
        {
            Delay = new FaultDelay { FixedDelay = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)) },
            Abort = new FaultAbort { GrpcStatus = 14 },
        });
        var headerPolicy = Compile(new HTTPFault
        {
            Delay = new FaultDelay { HeaderDelay = new FaultDelay.Types.HeaderDelay() },
            Abort = new FaultAbort { HeaderAbort = new FaultAbort.Types.HeaderAbort() },
        });
        Assert.Equal(Fraction.Never, policy.DelayPercentage);
        Assert.Equal(Fraction.Never, headerPolicy.AbortPercentage);
        var random = new Random(7);
        for (var i = 0; i < 1000; i++)
        {
            Assert.Equal(default, policy.Evaluate(TestRequest.Get("/"), "c", random));
            var request = TestRequest.Get("/", (FaultPolicy.DelayHeader, "250"), (FaultPolicy.AbortHeader, "503"), (FaultPolicy.AbortPercentageHeader, "100"));
            Assert.Equal(default, headerPolicy.Evaluate(request, "c", random));
        }
    }

    [Fact]
    public void GrpcAbort()
    {
        var policy = Compile(new HTTPFault { Abort = new FaultAbort { GrpcStatus = 14, Percentage = Percent(100) } });
        var decision = policy.Evaluate(TestRequest.Get("/"), "c", new Random(1));
        Assert.Equal(14, decision.GrpcStatus);
        Assert.Null(decision.HttpStatus);
    }

    [Fact]
    public void HeaderControlledFaults_ReadRequestHeadersAndCapPercentage()
    {
        var policy = Compile(new HTTPFault
        {
            Delay = new FaultDelay { HeaderDelay = new FaultDelay.Types.HeaderDelay(), Percentage = Percent(100) },
            Abort = new FaultAbort { HeaderAbort = new FaultAbort.Types.HeaderAbort(), Percentage = Percent(50) },
        });
        var random = new Random(2);
        var decision = policy.Evaluate(TestRequest.Get("/", (FaultPolicy.DelayHeader, "250"), (FaultPolicy.AbortHeader, "429"), (FaultPolicy.AbortPercentageHeader, "100")), "c", random);
        Assert.Equal(TimeSpan.FromMilliseconds(250), decision.Delay);

        var aborts = 0;
        for (var i = 0; i < 4000; i++)
        {
            // The header asks for 100 % but may only lower the configured 50 %.
            var d = policy.Evaluate(TestRequest.Get("/", (FaultPolicy.AbortHeader, "429"), (FaultPolicy.AbortPercentageHeader, "100")), "c", random);
            aborts += d.HttpStatus == 429 ? 1 : 0;
        }

        Assert.InRange(aborts, 1800, 2200);
        var none = policy.Evaluate(TestRequest.Get("/", (FaultPolicy.AbortPercentageHeader, "0"), (FaultPolicy.AbortHeader, "429")), "c", random);
        Assert.False(none.IsAbort);
        Assert.Null(policy.Evaluate(TestRequest.Get("/"), "c", random).Delay);

        var always = Compile(new HTTPFault { Abort = new FaultAbort { HeaderAbort = new FaultAbort.Types.HeaderAbort(), Percentage = Percent(100) } });
        var grpc = always.Evaluate(TestRequest.Get("/", (FaultPolicy.AbortGrpcHeader, "14")), "c", random);
        Assert.Equal(14, grpc.GrpcStatus);
        Assert.Null(grpc.HttpStatus);
        Assert.False(always.Evaluate(TestRequest.Get("/", (FaultPolicy.AbortHeader, "700")), "c", random).IsAbort);
    }

    [Fact]
    public void HeadersAndUpstreamCluster_GateTheFault()
    {
        var fault = new HTTPFault { Abort = new FaultAbort { HttpStatus = 500, Percentage = Percent(100) }, UpstreamCluster = "ratings", MaxActiveFaults = 3 };
        fault.Headers.Add(new HeaderMatcher { Name = "end-user", StringMatch = new StringMatcher { Exact = "jason" } });
        var policy = Compile(fault);
        Assert.Equal(3u, policy.MaxActiveFaults);
        var random = new Random(1);
        Assert.True(policy.Evaluate(TestRequest.Get("/", ("end-user", "jason")), "ratings", random).IsAbort);
        Assert.False(policy.Evaluate(TestRequest.Get("/", ("end-user", "bob")), "ratings", random).IsAbort);
        Assert.False(policy.Evaluate(TestRequest.Get("/", ("end-user", "jason")), "reviews", random).IsAbort);
    }

    [Theory]
    [InlineData("nodes", "fault downstream_nodes is not supported")]
    [InlineData("rate", "fault response_rate_limit is not supported")]
    [InlineData("grpc", "fault abort grpc_status 17 is not a gRPC status code (0-16)")]
    [InlineData("empty-abort", "fault abort has no http_status, grpc_status or header_abort")]
    [InlineData("empty-delay", "fault delay has neither fixed_delay nor header_delay")]
    public void TryCompile_Rejects(string kind, string reason)
    {
        var fault = new HTTPFault();
        switch (kind)
        {
            case "nodes": fault.DownstreamNodes.Add("n"); break;
            case "rate": fault.ResponseRateLimit = new FaultRateLimit(); break;
            case "grpc": fault.Abort = new FaultAbort { GrpcStatus = 17 }; break;
            case "empty-abort": fault.Abort = new FaultAbort(); break;
            default: fault.Delay = new FaultDelay(); break;
        }

        Assert.False(FaultPolicy.TryCompile(fault, out _, out var error));
        Assert.Equal(reason, error);
    }
}

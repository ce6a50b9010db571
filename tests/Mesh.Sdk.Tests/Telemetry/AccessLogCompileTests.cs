using Envoy.Config.Core.V3;
using Envoy.Extensions.AccessLoggers.File.V3;
using Google.Protobuf.WellKnownTypes;
using Mesh.Sdk.Telemetry.AccessLog;
using Mesh.Xds;
using EnvoyAccessLog = Envoy.Config.Accesslog.V3.AccessLog;

namespace Mesh.Sdk.Tests.Telemetry;

public sealed class AccessLogCompileTests
{
    private static readonly AccessLogEntry Entry = new()
    {
        StartTime = new DateTimeOffset(2026, 12, 2, 15, 4, 5, 678, TimeSpan.Zero),
        Method = "GET",
        Path = "/reviews/1",
        Authority = "reviews:9080",
        Protocol = "HTTP/1.1",
        ResponseCode = 503,
        ResponseFlags = "UH",
        BytesSent = 19,
        DurationMilliseconds = 7,
        UpstreamCluster = "outbound|9080|v1|reviews.default.svc.cluster.local",
        DownstreamRemoteAddress = "10.0.0.7:51234",
        RequestHeader = static name => name.Equals("x-request-id", StringComparison.OrdinalIgnoreCase) ? "abc" : null,
    };

    [Fact]
    public void Compile_IstiosFileAccessLog_TextWithDefaultFormat_AndJson()
    {
        var logs = new[]
        {
            new EnvoyAccessLog { Name = XdsExtensionNames.FileAccessLog, TypedConfig = Any.Pack(new FileAccessLog { Path = "/dev/stdout" }) },
            new EnvoyAccessLog
            {
                Name = XdsExtensionNames.FileAccessLog,
                TypedConfig = Any.Pack(new FileAccessLog
                {
                    Path = "/var/log/mesh.json",
                    LogFormat = new SubstitutionFormatString
                    {
                        JsonFormat = new Struct { Fields = { ["code"] = Value.ForString("%RESPONSE_CODE%"), ["flags"] = Value.ForString("%RESPONSE_FLAGS%"), ["id"] = Value.ForString("%REQ(X-REQUEST-ID)%"), ["host"] = Value.ForString("%UPSTREAM_HOST%") } },
                        OmitEmptyValues = true,
                    },
                }),
            },
        };

        var sinks = MeshAccessLog.Compile(logs, "inbound listener 'x'");

        Assert.Equal(["/dev/stdout", "/var/log/mesh.json"], sinks.Select(s => s.Path));
        Assert.Equal(
            "[2026-12-02T15:04:05.678Z] \"GET /reviews/1 HTTP/1.1\" 503 UH - - \"-\" 0 19 7 - \"-\" \"-\" \"abc\" \"reviews:9080\" \"-\" outbound|9080|v1|reviews.default.svc.cluster.local - - 10.0.0.7:51234 - -\n",
            sinks[0].Format.Format(Entry));
        Assert.Equal("{\"code\":503,\"flags\":\"UH\",\"id\":\"abc\"}\n", sinks[1].Format.Format(Entry));
    }

    [Fact]
    public void Compile_FileLoggerWithoutPath_IsAnErrorNamingWhere()
    {
        var ex = Assert.Throws<AccessLogConfigException>(() => MeshAccessLog.Compile(
            [new EnvoyAccessLog { Name = "envoy.access_loggers.file", TypedConfig = Any.Pack(new FileAccessLog()) }], "inbound listener 'x'"));
        Assert.Equal("inbound listener 'x' access_log[0] 'envoy.access_loggers.file': FileAccessLog has no path", ex.Message);
    }

    [Fact]
    public void Format_StartTimeWithStrftime_MaxLength_AlternateHeader_AndEscapedPercent()
    {
        var format = AccessLogFormat.Text("%START_TIME(%Y/%m/%d)% %REQ(X-NONE?:AUTHORITY):7% 100%% %DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%");
        Assert.Empty(format.Unknown);
        Assert.Equal("2026/12/02 reviews 100% 10.0.0.7\n", format.Format(Entry));
    }
}

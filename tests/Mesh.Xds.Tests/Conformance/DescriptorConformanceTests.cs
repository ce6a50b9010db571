using Google.Protobuf.Reflection;
using Xunit.Abstractions;

namespace Mesh.Xds.Tests.Conformance;

public sealed class DescriptorConformanceTests(ITestOutputHelper output)
{
    [Fact]
    public async Task WireModel_MatchesUpstreamEnvoyDescriptors()
    {
        var ours = OurFiles();
        var upstream = await UpstreamProtoSet.CompileAsync(ours.Select(f => f.Name), CancellationToken.None);

        var report = DescriptorConformance.Compare(ours, upstream);
        output.WriteLine("Checked against upstream: " + report);

        Assert.True(
            report.Mismatches.Count == 0,
            $"{report.Mismatches.Count} difference(s) from upstream:\n  " + string.Join("\n  ", report.Mismatches));

        // The checker visited everything the assembly declares.
        var (messages, fields) = CountDeclared();
        Assert.Equal(EnvoyFiles().Count(), report.Files);
        Assert.Equal(messages, report.Messages);
        Assert.Equal(fields, report.Fields);
        Assert.Equal(2, report.Methods);
    }

    [Fact]
    public void Compare_IdenticalDescriptors_ReportsNothing()
    {
        var ours = OurFiles();
        var report = DescriptorConformance.Compare(ours, ours);
        Assert.Empty(report.Mismatches);
        Assert.True(report.Fields > 0);
    }

    public static TheoryData<string, string> Alterations() => new()
    {
        { "number", "envoy.config.route.v3.RouteAction.timeout: number 8 upstream, 9 here" },
        { "type", "envoy.config.core.v3.SocketAddress.port_value: type Uint32 upstream, Int32 here" },
        { "type_name", "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.rds: type_name '.envoy.extensions.filters.network.http_connection_manager.v3.Rds' upstream, '.envoy.config.core.v3.ConfigSource' here" },
        { "label", "envoy.config.route.v3.RouteConfiguration.virtual_hosts: label Repeated upstream, Optional here" },
        { "oneof", "envoy.config.route.v3.Route.route: oneof action upstream, (none) here" },
        { "unknown_field", "envoy.config.cluster.v3.Cluster.bogus: field does not exist upstream" },
        { "renamed_field", "envoy.config.endpoint.v3.LbEndpoint.weight: field does not exist upstream (number 4 is 'load_balancing_weight' upstream)" },
        { "enum_value", "envoy.config.cluster.v3.Cluster.LbPolicy.RING_HASH: number 2 upstream, 3 here" },
        { "nested_message", "envoy.config.route.v3.RouteAction.HashPolicy.Headers: message does not exist upstream" },
        { "streaming", "envoy.service.discovery.v3.AggregatedDiscoveryService.StreamAggregatedResources: client streaming True upstream, False here" },
    };

    [Theory]
    [MemberData(nameof(Alterations))]
    public void Compare_AlteredDescriptor_ReportsTheAlteredElement(string alteration, string expected)
    {
        var upstream = OurFiles();
        var altered = OurFiles();
        Alter(altered, alteration);

        var report = DescriptorConformance.Compare(altered, upstream);

        Assert.Equal([expected], report.Mismatches);
    }

    [Fact]
    public void Compare_MessageDeclaredInAnotherFile_IsReported()
    {
        var upstream = OurFiles();
        var altered = OurFiles();
        var route = altered.Single(f => f.Name == "envoy/config/route/v3/route.proto");
        var components = altered.Single(f => f.Name == "envoy/config/route/v3/route_components.proto");
        var decorator = components.MessageType.Single(m => m.Name == "Decorator");
        components.MessageType.Remove(decorator);
        route.MessageType.Add(decorator);

        var report = DescriptorConformance.Compare(altered, upstream);

        Assert.Equal(
            ["envoy.config.route.v3.Decorator: declared in envoy/config/route/v3/route_components.proto upstream, envoy/config/route/v3/route.proto here"],
            report.Mismatches);
    }

    private static void Alter(List<FileDescriptorProto> files, string alteration)
    {
        switch (alteration)
        {
            case "number":
                Field(files, "envoy.config.route.v3", "RouteAction", "timeout").Number = 9;
                break;
            case "type":
                Field(files, "envoy.config.core.v3", "SocketAddress", "port_value").Type = FieldDescriptorProto.Types.Type.Int32;
                break;
            case "type_name":
                Field(files, "envoy.extensions.filters.network.http_connection_manager.v3", "HttpConnectionManager", "rds")
                    .TypeName = ".envoy.config.core.v3.ConfigSource";
                break;
            case "label":
                Field(files, "envoy.config.route.v3", "RouteConfiguration", "virtual_hosts").Label =
                    FieldDescriptorProto.Types.Label.Optional;
                break;
            case "oneof":
                Field(files, "envoy.config.route.v3", "Route", "route").ClearOneofIndex();
                break;
            case "unknown_field":
                Message(files, "envoy.config.cluster.v3", "Cluster").Field.Add(new FieldDescriptorProto
                {
                    Name = "bogus", Number = 999, Type = FieldDescriptorProto.Types.Type.Bool,
                    Label = FieldDescriptorProto.Types.Label.Optional,
                });
                break;
            case "renamed_field":
                Field(files, "envoy.config.endpoint.v3", "LbEndpoint", "load_balancing_weight").Name = "weight";
                break;
            case "enum_value":
                Message(files, "envoy.config.cluster.v3", "Cluster").EnumType.Single(e => e.Name == "LbPolicy")
                    .Value.Single(v => v.Name == "RING_HASH").Number = 3;
                break;
            case "nested_message":
                // Nested message renamed; the field referring to it keeps the old type name, so only the
                // message itself differs.
                Message(files, "envoy.config.route.v3", "RouteAction").NestedType.Single(m => m.Name == "HashPolicy")
                    .NestedType.Single(m => m.Name == "Header").Name = "Headers";
                break;
            case "streaming":
                files.Single(f => f.Name == "envoy/service/discovery/v3/ads.proto").Service.Single().Method
                    .Single(m => m.Name == "StreamAggregatedResources").ClientStreaming = false;
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(alteration), alteration, null);
        }
    }

    private static DescriptorProto Message(List<FileDescriptorProto> files, string package, string name)
        => files.Where(f => f.Package == package).SelectMany(f => f.MessageType).Single(m => m.Name == name);

    private static FieldDescriptorProto Field(List<FileDescriptorProto> files, string package, string message, string field)
        => Message(files, package, message).Field.Single(f => f.Name == field);

    private static List<FileDescriptorProto> OurFiles()
        => EnvoyFiles().Select(f => FileDescriptorProto.Parser.ParseFrom(f.SerializedData)).ToList();

    // Istio's CA API (istio.v1.auth) has no upstream file in the npm package: IstioCaProtoTests checks it.
    private static IEnumerable<FileDescriptor> EnvoyFiles()
        => XdsWireModel.Files.Where(static f => !f.Package.StartsWith("istio.", StringComparison.Ordinal));

    private static (int Messages, int Fields) CountDeclared()
    {
        var messages = 0;
        var fields = 0;
        void Visit(MessageDescriptor m)
        {
            messages++;
            fields += m.Fields.InDeclarationOrder().Count;
            foreach (var nested in m.NestedTypes)
            {
                Visit(nested);
            }
        }

        foreach (var file in EnvoyFiles())
        {
            foreach (var m in file.MessageTypes)
            {
                Visit(m);
            }
        }

        return (messages, fields);
    }
}

using Envoy.Config.Cluster.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Google.Protobuf;
using Mesh.Sdk.Resources;
using Mesh.Xds;

namespace Mesh.Sdk.Xds.Internal;

/// <summary>
/// One xDS resource type: its type URL, how to decode and name a resource, and how to validate it into the
/// value watchers receive.
/// </summary>
internal abstract class XdsResourceType
{
    public static readonly string ResourceWrapperTypeUrl = XdsTypeUrls.For<Envoy.Service.Discovery.V3.Resource>();

    public static readonly XdsResourceType Listener = new ListenerType();
    public static readonly XdsResourceType RouteConfiguration = new RouteConfigurationType();
    public static readonly XdsResourceType Cluster = new ClusterType();
    public static readonly XdsResourceType Endpoints = new EndpointsType();

    /// <summary>The types in the order their requests go out on a new stream.</summary>
    public static readonly IReadOnlyList<XdsResourceType> All = [Listener, RouteConfiguration, Cluster, Endpoints];

    public abstract string TypeUrl { get; }

    /// <summary>Short name for logs: LDS, RDS, CDS, EDS.</summary>
    public abstract string ShortName { get; }

    /// <summary>
    /// Whether a State-of-the-World response carries every resource of the type, so that a missing one is deleted
    /// (true for Listener and Cluster).
    /// </summary>
    public abstract bool AllResourcesRequiredInSotw { get; }

    public abstract IMessage Decode(ByteString bytes);

    /// <summary>
    /// Parses a resource's bytes. Google.Protobuf reports some truncated inputs (one ending inside a wrapper such as
    /// <c>UInt32Value</c>) with <see cref="InvalidOperationException"/> instead of <see cref="InvalidProtocolBufferException"/>;
    /// both are a resource that cannot be decoded, NACKed like any invalid resource rather than failing the stream.
    /// </summary>
    public static T Parse<T>(MessageParser<T> parser, ByteString bytes)
        where T : IMessage<T>
    {
        try
        {
            return parser.ParseFrom(bytes);
        }
        catch (InvalidOperationException ex)
        {
            throw new XdsValidationException($"cannot be decoded: {ex.Message}");
        }
    }

    public abstract string NameOf(IMessage message);

    /// <summary>Validates a decoded resource; returns the value for watchers or throws <see cref="XdsValidationException"/>.</summary>
    public abstract object Validate(IMessage message);

    public static XdsResourceType? FromTypeUrl(string typeUrl)
    {
        foreach (var type in All)
        {
            if (type.TypeUrl == typeUrl)
            {
                return type;
            }
        }

        return null;
    }

    private sealed class ListenerType : XdsResourceType
    {
        public override string TypeUrl => XdsTypeUrls.Listener;

        public override string ShortName => "LDS";

        public override bool AllResourcesRequiredInSotw => true;

        public override IMessage Decode(ByteString bytes) => Parse(Envoy.Config.Listener.V3.Listener.Parser, bytes);

        public override string NameOf(IMessage message) => ((Listener)message).Name;

        public override object Validate(IMessage message) => XdsResourceValidator.ValidateListener((Listener)message);
    }

    private sealed class RouteConfigurationType : XdsResourceType
    {
        public override string TypeUrl => XdsTypeUrls.RouteConfiguration;

        public override string ShortName => "RDS";

        public override bool AllResourcesRequiredInSotw => false;

        public override IMessage Decode(ByteString bytes) => Parse(Envoy.Config.Route.V3.RouteConfiguration.Parser, bytes);

        public override string NameOf(IMessage message) => ((RouteConfiguration)message).Name;

        public override object Validate(IMessage message) => XdsResourceValidator.ValidateRouteConfiguration((RouteConfiguration)message);
    }

    private sealed class ClusterType : XdsResourceType
    {
        public override string TypeUrl => XdsTypeUrls.Cluster;

        public override string ShortName => "CDS";

        public override bool AllResourcesRequiredInSotw => true;

        public override IMessage Decode(ByteString bytes) => Parse(Envoy.Config.Cluster.V3.Cluster.Parser, bytes);

        public override string NameOf(IMessage message) => ((Cluster)message).Name;

        public override object Validate(IMessage message) => XdsResourceValidator.ValidateCluster((Cluster)message);
    }

    private sealed class EndpointsType : XdsResourceType
    {
        public override string TypeUrl => XdsTypeUrls.ClusterLoadAssignment;

        public override string ShortName => "EDS";

        public override bool AllResourcesRequiredInSotw => false;

        public override IMessage Decode(ByteString bytes) => Parse(ClusterLoadAssignment.Parser, bytes);

        public override string NameOf(IMessage message) => ((ClusterLoadAssignment)message).ClusterName;

        public override object Validate(IMessage message) => XdsResourceValidator.ValidateEndpoints((ClusterLoadAssignment)message);
    }
}

/// <summary>A resource failed validation; the message says what and where inside the resource.</summary>
internal sealed class XdsValidationException(string message) : Exception(message);

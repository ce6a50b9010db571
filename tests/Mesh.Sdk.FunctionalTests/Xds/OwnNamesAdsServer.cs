using System.Collections.Concurrent;
using System.Net;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Mesh.Sdk.FunctionalTests.Xds;

/// <summary>
/// A minimal State-of-the-World ADS server on Kestrel (127.0.0.1, ephemeral port, h2c) that is not Mesh.ControlPlane:
/// it knows one service under its own names (listener as given, route <c>own-routes</c>, cluster <c>own-cluster</c>,
/// load assignment <c>own-endpoints</c> at 127.0.0.1:<c>backendPort</c>) and answers only those exact names, as an
/// independent xDS server would. It records every name a client subscribed to.
/// </summary>
internal sealed class OwnNamesAdsServer : IAsyncDisposable
{
    public const string Lds = "type.googleapis.com/envoy.config.listener.v3.Listener";
    public const string Rds = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
    public const string Cds = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
    public const string Eds = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";

    private readonly WebApplication _app;

    private OwnNamesAdsServer(WebApplication app, State state)
    {
        _app = app;
        Resources = state;
    }

    public int Port { get; private set; }

    private State Resources { get; }

    /// <summary>Every listener name a client asked for.</summary>
    public IReadOnlyCollection<string> RequestedListeners => [.. Resources.Requested.Keys];

    public static async Task<OwnNamesAdsServer> StartAsync(string listenerName, int backendPort)
    {
        var state = new State(listenerName, backendPort);
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, o => o.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(state);
        var app = builder.Build();
        app.MapGrpcService<Service>();
        await app.StartAsync();
        var server = new OwnNamesAdsServer(app, state);
        server.Port = new Uri(app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single()).Port;
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    internal sealed class State
    {
        public State(string listenerName, int backendPort)
        {
            var hcm = new HttpConnectionManager
            {
                Rds = new Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.Rds
                {
                    RouteConfigName = "own-routes",
                    ConfigSource = new ConfigSource { Ads = new AggregatedConfigSource(), ResourceApiVersion = ApiVersion.V3 },
                },
            };
            hcm.HttpFilters.Add(new HttpFilter
            {
                Name = "envoy.filters.http.router",
                TypedConfig = new Any { TypeUrl = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
            });
            Add(Lds, listenerName, new Listener { Name = listenerName, ApiListener = new ApiListener { ApiListener_ = Any.Pack(hcm) } });
            var host = new VirtualHost { Name = "own", Domains = { "*" } };
            host.Routes.Add(new Route { Match = new RouteMatch { Prefix = "/" }, Route_ = new RouteAction { Cluster = "own-cluster" } });
            Add(Rds, "own-routes", new RouteConfiguration { Name = "own-routes", VirtualHosts = { host } });
            Add(Cds, "own-cluster", new Cluster
            {
                Name = "own-cluster",
                Type = Cluster.Types.DiscoveryType.Eds,
                EdsClusterConfig = new Cluster.Types.EdsClusterConfig { EdsConfig = new ConfigSource { Ads = new AggregatedConfigSource() }, ServiceName = "own-endpoints" },
                LbPolicy = Cluster.Types.LbPolicy.RoundRobin,
            });
            var endpoints = new LocalityLbEndpoints { Locality = new Locality(), LoadBalancingWeight = 1 };
            endpoints.LbEndpoints.Add(new LbEndpoint
            {
                Endpoint = new Endpoint { Address = new Address { SocketAddress = new Envoy.Config.Core.V3.SocketAddress { Address = "127.0.0.1", PortValue = (uint)backendPort } } },
                HealthStatus = HealthStatus.Healthy,
            });
            Add(Eds, "own-endpoints", new ClusterLoadAssignment { ClusterName = "own-endpoints", Endpoints = { endpoints } });
        }

        public Dictionary<string, Dictionary<string, Any>> ByType { get; } = [];

        public ConcurrentDictionary<string, byte> Requested { get; } = new(StringComparer.Ordinal);

        private void Add(string type, string name, IMessage resource)
        {
            if (!ByType.TryGetValue(type, out var byName))
            {
                ByType[type] = byName = new Dictionary<string, Any>(StringComparer.Ordinal);
            }

            byName[name] = Any.Pack(resource);
        }
    }

    private sealed class Service(State state) : AggregatedDiscoveryService.AggregatedDiscoveryServiceBase
    {
        public override async Task StreamAggregatedResources(IAsyncStreamReader<DiscoveryRequest> requestStream, IServerStreamWriter<DiscoveryResponse> responseStream,
            ServerCallContext context)
        {
            var answered = new Dictionary<string, string>(StringComparer.Ordinal);
            var nonce = 0;
            try
            {
                await foreach (var request in requestStream.ReadAllAsync(context.CancellationToken))
                {
                    var names = request.ResourceNames.Order(StringComparer.Ordinal).ToList();
                    if (request.TypeUrl == Lds)
                    {
                        foreach (var name in names)
                        {
                            state.Requested.TryAdd(name, 0);
                        }
                    }

                    // SotW: answer a new subscription set; an ACK or NACK of the set already answered gets nothing.
                    var key = string.Join("\n", names);
                    if (answered.TryGetValue(request.TypeUrl, out var last) && last == key)
                    {
                        continue;
                    }

                    answered[request.TypeUrl] = key;
                    var response = new DiscoveryResponse { TypeUrl = request.TypeUrl, VersionInfo = "1", Nonce = (++nonce).ToString(System.Globalization.CultureInfo.InvariantCulture) };
                    if (state.ByType.TryGetValue(request.TypeUrl, out var known))
                    {
                        foreach (var name in names)
                        {
                            if (known.TryGetValue(name, out var resource))
                            {
                                response.Resources.Add(resource);
                            }
                        }
                    }

                    await responseStream.WriteAsync(response, context.CancellationToken);
                }
            }
            catch (Exception) when (context.CancellationToken.IsCancellationRequested)
            {
            }
        }
    }
}

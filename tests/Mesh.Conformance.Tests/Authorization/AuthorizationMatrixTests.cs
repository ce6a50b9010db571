using System.Globalization;
using System.Net;
using Envoy.Config.Listener.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Mesh.ControlPlane.Config;
using Mesh.ControlPlane.Registry;
using Mesh.ControlPlane.Translation;
using Mesh.Sdk.Security.Authorization;
using Microsoft.Extensions.Logging.Abstractions;

namespace Mesh.Conformance.Tests.Authorization;

/// <summary>
/// Both halves of authorization, as in production but in memory: Istio YAML → <c>ConfigStore</c> →
/// <c>XdsTranslator</c>'s inbound listener (<c>xds.istio.io/grpc/lds/inbound/0.0.0.0:&lt;port&gt;</c>, its RBAC HTTP
/// filters) → the SDK's <see cref="InboundAuthorization"/> → the decision for each request of
/// <see cref="AuthorizationMatrix"/>.
/// </summary>
public sealed class AuthorizationMatrixTests
{
    private static readonly ClientScope Reviews = new("default", new Dictionary<string, string> { ["app"] = "reviews", ["version"] = "v1" });

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var set in AuthorizationMatrix.Sets)
        {
            foreach (var row in set.Cases)
            {
                data.Add(set.Name, row.Id);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Decision_IsIstios(string set, string id)
    {
        var policySet = AuthorizationMatrix.Sets.Single(s => s.Name == set);
        var row = policySet.Cases.Single(c => c.Id == id);
        var authorization = Compile(policySet.Yaml, (uint)row.Port);

        var decision = authorization.Evaluate(Request(row));

        var code = decision.Allowed ? 200 : 403;
        Assert.True(row.Expected == code, $"{set}/{id}: expected {row.Expected}, got {code} ({decision})");
        if (row.Policy is not null)
        {
            Assert.Equal(row.Policy, decision.PolicyName);
        }
    }

    [Fact]
    public void Matrix_IdsAreUnique_AndBothAnswersOccur()
    {
        foreach (var set in AuthorizationMatrix.Sets)
        {
            Assert.Equal(set.Cases.Length, set.Cases.Select(c => c.Id).Distinct(StringComparer.Ordinal).Count());
            Assert.All(set.Cases, c => Assert.True(c.Expected is 200 or 403, $"{set.Name}/{c.Id}: expected must be 200 or 403"));
        }

        var all = AuthorizationMatrix.Sets.SelectMany(s => s.Cases).ToList();
        Assert.True(all.Count(c => c.Expected == 403) >= 20);
        Assert.True(all.Count(c => c.Expected == 200) >= 20);
    }

    [Fact]
    public void DenyFilterPrecedesAllowFilter_OnTheWire()
    {
        var set = AuthorizationMatrix.Sets.Single(s => s.Name == "deny-beats-allow");
        var hcm = Hcm(Translate(set.Yaml), 9080);
        Assert.Equal(["envoy.filters.http.rbac.DENY", "envoy.filters.http.rbac", "envoy.filters.http.router"], hcm.HttpFilters.Select(f => f.Name));
        Assert.True(InboundAuthorization.TryCompile(hcm.HttpFilters, out var authorization, out _));
        Assert.Equal(["envoy.filters.http.rbac.DENY", "envoy.filters.http.rbac"], authorization!.FilterNames);
    }

    public static TheoryData<string, string> GrpcCases()
    {
        var data = new TheoryData<string, string>();
        foreach (var row in Mesh.Testing.GrpcAuthorizationCases.Cases)
        {
            data.Add("policies", row.Id);
        }

        foreach (var row in Mesh.Testing.GrpcAuthorizationCases.RequestAuthenticationCases)
        {
            data.Add("request-authentication", row.Id);
        }

        return data;
    }

    /// <summary>The tables gRPC C-core is held to in InboundPolicyInteropTests: the SDK decides every call the same way.</summary>
    [Theory]
    [MemberData(nameof(GrpcCases))]
    public void GrpcCrossCheck_SdkDecidesAsCCore(string table, string id)
    {
        var (yaml, cases) = table == "policies"
            ? (Mesh.Testing.GrpcAuthorizationCases.Yaml, Mesh.Testing.GrpcAuthorizationCases.Cases)
            : (Mesh.Testing.GrpcAuthorizationCases.RequestAuthenticationYaml, Mesh.Testing.GrpcAuthorizationCases.RequestAuthenticationCases);
        var row = cases.Single(c => c.Id == id);
        var echo = new ClientScope("default", new Dictionary<string, string> { ["app"] = "echo-server" });
        var hcm = Hcm(Translate(yaml), 50051, echo, "127.0.0.1");
        Assert.True(InboundAuthorization.TryCompile(hcm.HttpFilters, out var authorization, out var errors), string.Join("; ", errors));
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase) { ["content-type"] = "application/grpc", ["te"] = "trailers" };
        foreach (var (name, value) in row.Headers)
        {
            headers[name] = value;
        }

        var request = new AuthorizationRequest("POST", "/mesh.test.Echo/" + row.Method, "127.0.0.1:50051")
        {
            Headers = headers,
            DestinationAddress = IPAddress.Loopback,
            DestinationPort = 50051,
            DirectRemoteAddress = IPAddress.Loopback,
        };

        var decision = authorization!.Evaluate(in request);
        Assert.True(row.Allowed == decision.Allowed, $"{id}: expected {(row.Allowed ? "allowed" : "denied")}, got {decision}");
    }

    private static AuthorizationRequest Request(AuthzCase row)
    {
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (name, value) in row.Headers)
        {
            headers[name] = value;
        }

        return new AuthorizationRequest(row.Method, row.Path, row.Host)
        {
            Scheme = row.Caller is null ? "http" : "https",
            Headers = headers,
            DestinationAddress = IPAddress.Loopback,
            DestinationPort = row.Port,
            DirectRemoteAddress = IPAddress.Parse(row.RemoteIp),
            Peer = row.Caller is null ? null : AuthenticatedPeer.FromSpiffeId(Spiffe(row.Caller)),
            RequestedServerName = row.Sni,
        };
    }

    private static string Spiffe(string caller)
    {
        var slash = caller.IndexOf('/', StringComparison.Ordinal);
        return $"spiffe://cluster.local/ns/{caller[..slash]}/sa/{caller[(slash + 1)..]}";
    }

    private static InboundAuthorization Compile(string yaml, uint port)
    {
        var hcm = Hcm(Translate(yaml), port);
        if (!InboundAuthorization.TryCompile(hcm.HttpFilters, out var authorization, out var errors))
        {
            throw new ConformanceException($"The SDK rejected the inbound listener's RBAC filters: {string.Join("; ", errors)}");
        }

        return authorization!;
    }

    private static XdsSnapshot Translate(string yaml)
    {
        var store = new ConfigStore("default", NullLogger.Instance);
        store.Apply("/conformance/authorization.yaml", yaml);
        if (store.LastErrors.Count > 0)
        {
            throw new ConformanceException($"The control plane rejected the set's YAML: {string.Join("; ", store.LastErrors)}");
        }

        using var registry = new ServiceRegistry(TimeProvider.System, TimeSpan.FromSeconds(10), "cluster.local", NullLogger.Instance);
        registry.UpdateConfig(store.Current);
        return new XdsTranslator("cluster.local").Translate(store.Current, registry.Current, 1);
    }

    private static HttpConnectionManager Hcm(XdsSnapshot snapshot, uint port, ClientScope? workload = null, string host = "0.0.0.0")
    {
        var name = $"xds.istio.io/grpc/lds/inbound/{host}:{port.ToString(CultureInfo.InvariantCulture)}";
        var listener = snapshot.Find(ResourceTypes.Listener, name, workload ?? Reviews)?.Resource.Unpack<Listener>()
            ?? throw new ConformanceException($"The control plane sent no listener '{name}'.");
        return listener.FilterChains.Single().Filters.Single().TypedConfig.Unpack<HttpConnectionManager>();
    }
}

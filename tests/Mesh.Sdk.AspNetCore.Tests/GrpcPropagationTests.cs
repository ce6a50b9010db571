using System.Text;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.ClientFactory;
using Mesh.Sdk.Propagation;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Mesh.Sdk.AspNetCore.Tests;

/// <summary>
/// gRPC clients of <c>AddGrpcClient</c> get the propagated values as call metadata, through the interceptor
/// <c>AddMesh()</c> registers (it must act before grpc-dotnet's picker routes the call, so before any HTTP handler).
/// The call is recorded by an in-memory <see cref="CallInvoker"/>: no network.
/// </summary>
public sealed class GrpcPropagationTests
{
    private static readonly Method<string, string> Echo = new(
        MethodType.Unary, "test.Echo", "Say",
        Marshallers.Create(s => Encoding.UTF8.GetBytes(s), b => Encoding.UTF8.GetString(b)),
        Marshallers.Create(s => Encoding.UTF8.GetBytes(s), b => Encoding.UTF8.GetString(b)));

    private static Interceptor[] MeshInterceptors(ServiceProvider services, string clientName)
    {
        var options = services.GetRequiredService<IOptionsMonitor<GrpcClientFactoryOptions>>().Get(clientName);
        return [.. options.InterceptorRegistrations.Select(r => r.Creator(services)).OfType<Interceptor>()];
    }

    private static ServiceProvider Services()
    {
        var services = new ServiceCollection();
        services.AddMesh(o => o.BootstrapConfig = "{\"xds_servers\":[{\"server_uri\":\"127.0.0.1:1\",\"channel_creds\":[{\"type\":\"insecure\"}]}],\"node\":{\"locality\":{}}}");
        services.AddGrpcClient<EchoClient>(o => o.Address = new Uri("xds:///backend:9080"));
        return services.BuildServiceProvider();
    }

    [Fact]
    public async Task AddGrpcClient_GetsOneInterceptor_ThatAddsPropagatedMetadata_KeepingTheCallsOwn()
    {
        using var services = Services();
        var interceptors = MeshInterceptors(services, nameof(EchoClient));
        var recorder = new RecordingInvoker();
        var invoker = recorder.Intercept(interceptors);
        var own = new Metadata { { "end-user", "set-by-code" } };
        var traceBin = Convert.ToBase64String([0, 1, 2, 3, 250]).TrimEnd('=');

        using (MeshPropagation.BeginScope(MeshPropagationContext.Empty
            .With("end-user", "jason").With("x-request-id", "r-7").With("user-agent", "browser/1")
            .With("grpc-trace-bin", traceBin).With("X-B3-TraceId", "80f198ee56343ba864fe8b2a57d3eff7")))
        {
            await invoker.AsyncUnaryCall(Echo, null, new CallOptions(own), "hi");
            await invoker.AsyncUnaryCall(Echo, null, new CallOptions(), "hi");
        }

        await invoker.AsyncUnaryCall(Echo, null, new CallOptions(), "hi");

        Assert.Single(interceptors);
        Assert.Equal(["set-by-code"], recorder.Calls[0].GetAll("end-user").Select(e => e.Value));
        Assert.Equal("r-7", recorder.Calls[0].GetValue("x-request-id"));
        Assert.Equal("jason", recorder.Calls[1].GetValue("end-user"));
        Assert.Equal("80f198ee56343ba864fe8b2a57d3eff7", recorder.Calls[1].GetValue("x-b3-traceid"));
        Assert.Equal(new byte[] { 0, 1, 2, 3, 250 }, recorder.Calls[1].GetValueBytes("grpc-trace-bin"));
        Assert.Null(recorder.Calls[1].Get("user-agent"));
        Assert.Empty(recorder.Calls[2]);
    }

    private sealed class EchoClient : ClientBase<EchoClient>
    {
        public EchoClient(CallInvoker invoker)
            : base(invoker)
        {
        }

        private EchoClient(ClientBaseConfiguration configuration)
            : base(configuration)
        {
        }

        protected override EchoClient NewInstance(ClientBaseConfiguration configuration) => new(configuration);
    }

    private sealed class RecordingInvoker : CallInvoker
    {
        public List<Metadata> Calls { get; } = [];

        public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) => throw new NotSupportedException();

        public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
        {
            Calls.Add(options.Headers ?? []);
            return new AsyncUnaryCall<TResponse>(Task.FromResult((TResponse)(object)"ok"), Task.FromResult(new Metadata()), () => Status.DefaultSuccess, () => [], () => { });
        }

        public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) => throw new NotSupportedException();

        public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) => throw new NotSupportedException();

        public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) => throw new NotSupportedException();
    }
}

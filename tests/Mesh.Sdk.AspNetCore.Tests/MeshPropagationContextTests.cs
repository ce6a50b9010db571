using Mesh.Sdk.Propagation;

namespace Mesh.Sdk.AspNetCore.Tests;

/// <summary>The transport-neutral half of propagation: the value set, the AsyncLocal and the handler (in memory).</summary>
public sealed class MeshPropagationContextTests
{
    [Fact]
    public void With_ReplacesCaseInsensitively_AndKeepsOrder()
    {
        var context = MeshPropagationContext.Empty.With("End-User", "a").With("traceparent", "t").With("end-user", "b");

        Assert.Equal(2, context.Count);
        Assert.Equal("b", context["END-USER"]);
        Assert.Equal(["end-user", "traceparent"], context.Select(h => h.Key));
        Assert.Empty(MeshPropagationContext.Empty);
    }

    [Fact]
    public void Without_RemovesOnlyThatHeader()
    {
        var context = MeshPropagationContext.Create([new("a", "1"), new("b", "2"), new("c", "3")]);

        var without = context.Without("B");

        Assert.Equal(["a", "c"], without.Select(h => h.Key));
        Assert.Same(context, context.Without("missing"));
        Assert.False(without.TryGetValue("b", out _));
        Assert.True(context.TryGetValue("b", out var value));
        Assert.Equal("2", value);
    }

    [Theory]
    [InlineData("", "v", "not a valid HTTP header name")]
    [InlineData("bad name", "v", "not a valid HTTP header name")]
    [InlineData("end-user", "a\r\nx-injected: 1", "must not contain line breaks")]
    public void With_RejectsBadNamesAndValues(string name, string value, string expected)
    {
        var error = Assert.Throws<ArgumentException>(() => MeshPropagationContext.Empty.With(name, value));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Current_FlowsIntoChildTasks_ButNotBackToTheCaller()
    {
        Assert.Null(MeshPropagation.Current);
        string? seenInChild = null;
        await SetInsideAsync();
        Assert.Null(MeshPropagation.Current);

        using (MeshPropagation.BeginScope(MeshPropagationContext.Empty.With("end-user", "outer")))
        {
            await Task.Run(() => seenInChild = MeshPropagation.Current?["end-user"]);
            using (MeshPropagation.BeginScope(null))
            {
                Assert.Null(MeshPropagation.Current);
            }

            Assert.Equal("outer", MeshPropagation.Current?["end-user"]);
        }

        Assert.Equal("outer", seenInChild);
        Assert.Null(MeshPropagation.Current);

        static async Task SetInsideAsync()
        {
            MeshPropagation.Current = MeshPropagationContext.Empty.With("end-user", "inner");
            await Task.Yield();
            Assert.Equal("inner", MeshPropagation.Current?["end-user"]);
        }
    }

    [Fact]
    public async Task Handler_AddsMissingHeaders_KeepsHeadersTheRequestSets()
    {
        var terminal = new RecordingHandler();
        using var client = new HttpClient(new MeshPropagationHandler(terminal));
        client.DefaultRequestHeaders.Add("user-agent", "client-default/1");
        using var request = new HttpRequestMessage(HttpMethod.Get, "http://backend:9080/");
        request.Headers.Add("end-user", "explicit");

        using (MeshPropagation.BeginScope(MeshPropagationContext.Create(
            [new("end-user", "propagated"), new("user-agent", "incoming/2"), new("x-request-id", "r-1"), new("tracestate", "a=1,b=2")])))
        {
            (await client.SendAsync(request)).Dispose();
        }

        using var plain = new HttpRequestMessage(HttpMethod.Get, "http://backend:9080/");
        (await client.SendAsync(plain)).Dispose();

        Assert.Equal("explicit", terminal.Seen[0]["end-user"]);
        Assert.Equal("client-default/1", terminal.Seen[0]["user-agent"]);
        Assert.Equal("r-1", terminal.Seen[0]["x-request-id"]);
        Assert.Equal("a=1,b=2", terminal.Seen[0]["tracestate"]);
        Assert.False(terminal.Seen[1].ContainsKey("x-request-id"));
        Assert.False(terminal.Seen[1].ContainsKey("end-user"));
    }

    [Fact]
    public async Task Handler_LeavesTraceContextToTheCurrentActivity_CopiesItWithoutOne()
    {
        var terminal = new RecordingHandler();
        using var invoker = new HttpMessageInvoker(new MeshPropagationHandler(terminal));
        var captured = MeshPropagationContext.Empty
            .With("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
            .With("tracestate", "congo=t61rcWkgMzE")
            .With("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1");

        using (MeshPropagation.BeginScope(captured))
        {
            using (var activity = new System.Diagnostics.Activity("request").SetIdFormat(System.Diagnostics.ActivityIdFormat.W3C).Start())
            {
                (await invoker.SendAsync(new HttpRequestMessage(HttpMethod.Get, "http://backend:9080/"), CancellationToken.None)).Dispose();
            }

            (await invoker.SendAsync(new HttpRequestMessage(HttpMethod.Get, "http://backend:9080/"), CancellationToken.None)).Dispose();
        }

        Assert.False(terminal.Seen[0].ContainsKey("traceparent"));
        Assert.False(terminal.Seen[0].ContainsKey("tracestate"));
        Assert.Equal("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1", terminal.Seen[0]["b3"]);
        Assert.Equal("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", terminal.Seen[1]["traceparent"]);
        Assert.Equal("congo=t61rcWkgMzE", terminal.Seen[1]["tracestate"]);
    }

    private sealed class RecordingHandler : HttpMessageHandler
    {
        public List<Dictionary<string, string>> Seen { get; } = [];

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Seen.Add(request.Headers.ToDictionary(h => h.Key.ToLowerInvariant(), h => string.Join(",", h.Value), StringComparer.Ordinal));
            return Task.FromResult(new HttpResponseMessage(System.Net.HttpStatusCode.OK));
        }
    }
}

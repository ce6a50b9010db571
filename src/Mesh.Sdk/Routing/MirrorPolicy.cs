namespace Mesh.Sdk.Routing;

/// <summary>
/// A compiled <c>request_mirror_policies</c> entry: a copy of the request is sent, fire-and-forget, to
/// <see cref="Cluster"/> for the sampled share of requests. The response is ignored.
/// </summary>
/// <param name="Cluster">The shadow cluster.</param>
/// <param name="Fraction">The share mirrored; all requests when <c>runtime_fraction</c> is unset.</param>
/// <param name="DisableShadowHostSuffixAppend">When false the mirrored request's authority gets <c>-shadow</c> appended to its host, as Envoy does.</param>
internal sealed record MirrorPolicy(string Cluster, Fraction Fraction, bool DisableShadowHostSuffixAppend)
{
    /// <summary>Whether to mirror this request.</summary>
    public bool ShouldMirror(Random random) => Fraction.Sample(random);

    /// <summary>The authority of the mirrored request: <c>host-shadow[:port]</c> unless disabled.</summary>
    public string ShadowAuthority(string authority)
    {
        if (DisableShadowHostSuffixAppend)
        {
            return authority;
        }

        var port = RouteHost.PortIndex(authority);
        return port < 0 ? authority + "-shadow" : string.Concat(authority.AsSpan(0, port), "-shadow", authority.AsSpan(port));
    }
}

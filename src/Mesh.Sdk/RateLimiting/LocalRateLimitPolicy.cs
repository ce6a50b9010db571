using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using Envoy.Config.Core.V3;
using Envoy.Extensions.Filters.Http.LocalRatelimit.V3;
using Mesh.Sdk.Routing;

namespace Mesh.Sdk.RateLimiting;

/// <summary>
/// One compiled <c>LocalRateLimit</c> (listener-wide or per route) with its token bucket state: Envoy's
/// <c>envoy.filters.http.local_ratelimit</c> decision for a request, independent of any HTTP server.
/// </summary>
internal sealed class LocalRateLimitPolicy
{
    /// <summary>Envoy refuses a token bucket refilled more often than this.</summary>
    public static readonly TimeSpan MinFillInterval = TimeSpan.FromMilliseconds(50);

    private readonly TimeProvider _time;
    private readonly Random _random;
    private readonly Buckets? _shared;
    private readonly ConditionalWeakTable<object, Buckets>? _perConnection;
    private readonly (string Key, Envoy.Type.V3.TokenBucket Bucket)[] _descriptors;
    private readonly RateLimitDecision _limited;
    private readonly RateLimitDecision _limitedNotEnforced;

    private LocalRateLimitPolicy(LocalRateLimit config, TimeProvider time, Random random, RateLimitDecision limited, RateLimitDecision notEnforced)
    {
        Config = config;
        _time = time;
        _random = random;
        Enabled = Fraction.From(config.FilterEnabled?.DefaultValue);
        Enforced = Fraction.From(config.FilterEnforced?.DefaultValue);
        _limited = limited;
        _limitedNotEnforced = notEnforced;
        _descriptors = config.Descriptors.Select(static d => (RateLimitActions.Key(d.Entries.Select(static e => (e.Key, e.Value))), d.TokenBucket)).ToArray();
        if (config.TokenBucket is not null)
        {
            if (config.LocalRateLimitPerDownstreamConnection)
            {
                _perConnection = new ConditionalWeakTable<object, Buckets>();
            }

            _shared = NewBuckets();
        }
    }

    /// <summary>Whether the configuration has <c>descriptors</c>, so requests' descriptors are worth computing.</summary>
    public bool HasDescriptors => _descriptors.Length > 0;

    /// <summary>The <c>stage</c> whose route <c>rate_limits</c> entries this configuration reads.</summary>
    public uint Stage => Config.Stage;

    /// <summary>The configuration this was compiled from.</summary>
    public LocalRateLimit Config { get; }

    /// <summary>The share of requests checked against the bucket (<c>filter_enabled</c>; none when unset, as Envoy).</summary>
    public Fraction Enabled { get; }

    /// <summary>The share of over-limit requests answered locally (<c>filter_enforced</c>; none when unset, as Envoy).</summary>
    public Fraction Enforced { get; }

    /// <summary>Whether each downstream connection has its own bucket (<c>local_rate_limit_per_downstream_connection</c>).</summary>
    public bool PerConnection => _perConnection is not null;

    /// <summary>The bucket shared by all requests; null without a <c>token_bucket</c> (then nothing is limited).</summary>
    public TokenBucket? SharedBucket => _perConnection is null ? _shared?.Default : null;

    /// <summary>Compiles a configuration; <paramref name="perRoute"/> configurations need a token bucket, as Envoy requires.</summary>
    public static bool TryCompile(
        LocalRateLimit config,
        bool perRoute,
        TimeProvider time,
        Random random,
        [NotNullWhen(true)] out LocalRateLimitPolicy? policy,
        [NotNullWhen(false)] out string? error)
    {
        policy = null;
        error = Validate(config, perRoute);
        if (error is not null)
        {
            return false;
        }

        var response = new List<HeaderMutation>();
        var request = new List<HeaderMutation>();
        if (!HeaderMutations.TryCompileLevel([], WithAppendAction(config.ResponseHeadersToAdd), request: false, response, out var headerError)
            || !HeaderMutations.TryCompileLevel([], WithAppendAction(config.RequestHeadersToAddWhenNotEnforced), request: true, request, out headerError))
        {
            error = headerError ?? "invalid headers to add";
            return false;
        }

        var status = config.Status is { } s && (int)s.Code >= 400 ? (int)s.Code : 429;
        var grpc = config.RateLimitedAsResourceExhausted ? 8 : GrpcStatusOf(status);
        var limited = new RateLimitDecision(RateLimitOutcome.Limited, status, grpc, new HeaderMutations([.. response]), HeaderMutations.Empty);
        var notEnforced = new RateLimitDecision(RateLimitOutcome.LimitedNotEnforced, 200, 0, HeaderMutations.Empty, new HeaderMutations([.. request]));
        policy = new LocalRateLimitPolicy(config, time, random, limited, notEnforced);
        return true;
    }

    /// <summary>
    /// Decides for one request, in Envoy's order: not enabled for it → allowed; a token taken → allowed; not enforced
    /// for it → <see cref="RateLimitOutcome.LimitedNotEnforced"/>; else <see cref="RateLimitOutcome.Limited"/>.
    /// </summary>
    /// <param name="connection">The downstream connection (any object that lives as long as it), for per-connection buckets.</param>
    /// <param name="descriptors">The request's descriptors (<see cref="RateLimitActions.Key"/> form), from the route's <c>rate_limits</c>.</param>
    public RateLimitDecision Check(object? connection = null, IReadOnlyList<string>? descriptors = null)
    {
        if (!Enabled.Sample(_random))
        {
            return RateLimitDecision.Allowed;
        }

        var buckets = _perConnection is not null && connection is not null
            ? _perConnection.GetValue(connection, _ => NewBuckets())
            : _shared;
        if (buckets is null || buckets.TryConsume(descriptors, Config.AlwaysConsumeDefaultTokenBucket ?? true))
        {
            return RateLimitDecision.Allowed;
        }

        return Enforced.Sample(_random) ? _limited : _limitedNotEnforced;
    }

    private Buckets NewBuckets()
    {
        var byDescriptor = new Dictionary<string, TokenBucket>(StringComparer.Ordinal);
        foreach (var (key, bucket) in _descriptors)
        {
            byDescriptor[key] = NewBucket(bucket, _time);
        }

        return new Buckets(NewBucket(Config.TokenBucket, _time), byDescriptor);
    }

    /// <summary>One set of buckets: the default one and one per descriptor (shared, or one set per connection).</summary>
    private sealed class Buckets(TokenBucket @default, Dictionary<string, TokenBucket> byDescriptor)
    {
        public TokenBucket Default { get; } = @default;

        /// <summary>
        /// Envoy's order: the matched descriptors' buckets, slowest refill first, each must yield a token; then the
        /// default bucket, when no descriptor matched or <c>always_consume_default_token_bucket</c> (default true).
        /// </summary>
        public bool TryConsume(IReadOnlyList<string>? descriptors, bool alwaysConsumeDefault)
        {
            List<TokenBucket>? matched = null;
            if (descriptors is { Count: > 0 } && byDescriptor.Count > 0)
            {
                foreach (var descriptor in descriptors)
                {
                    if (byDescriptor.TryGetValue(descriptor, out var bucket))
                    {
                        (matched ??= []).Add(bucket);
                    }
                }

                if (matched is { Count: > 1 })
                {
                    matched.Sort(static (a, b) => FillRate(a).CompareTo(FillRate(b)));
                }

                foreach (var bucket in matched ?? [])
                {
                    if (!bucket.TryConsume())
                    {
                        return false;
                    }
                }
            }

            return matched is not null && !alwaysConsumeDefault || Default.TryConsume();
        }

        private static double FillRate(TokenBucket bucket) => bucket.TokensPerFill / bucket.FillInterval.TotalSeconds;
    }

    /// <summary>Envoy's validation of a LocalRateLimit (the proto's rules and the filter's own); null when valid.</summary>
    public static string? Validate(LocalRateLimit config, bool perRoute)
    {
        if (string.IsNullOrEmpty(config.StatPrefix))
        {
            return "stat_prefix is required";
        }

        if (config.TokenBucket is not { } tb)
        {
            if (config.Descriptors.Count > 0)
            {
                return "descriptors need a token_bucket (their fill intervals are multiples of its own)";
            }

            return perRoute ? "token_bucket is required in a per-route local rate limit configuration" : null;
        }

        if (tb.MaxTokens == 0)
        {
            return "token_bucket.max_tokens must be greater than 0";
        }

        if (tb.TokensPerFill is 0)
        {
            return "token_bucket.tokens_per_fill must be greater than 0";
        }

        if (tb.FillInterval is null || tb.FillInterval.ToTimeSpan() < MinFillInterval)
        {
            return "token_bucket.fill_interval must be at least 50ms";
        }

        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < config.Descriptors.Count; i++)
        {
            var d = config.Descriptors[i];
            if (d.Entries.Count == 0 || d.Entries.Any(static e => e.Key.Length == 0 || e.Value.Length == 0))
            {
                return $"descriptors[{i}] needs at least one entry, each with a key and a value";
            }

            if (d.TokenBucket is not { MaxTokens: > 0, FillInterval: not null } dtb || dtb.TokensPerFill is 0)
            {
                return $"descriptors[{i}].token_bucket needs max_tokens and tokens_per_fill above 0 and a fill_interval";
            }

            var ms = (long)dtb.FillInterval.ToTimeSpan().TotalMilliseconds;
            var baseMs = (long)tb.FillInterval.ToTimeSpan().TotalMilliseconds;
            if (ms == 0 || ms % baseMs != 0)
            {
                return $"descriptors[{i}].token_bucket.fill_interval must be a multiple of token_bucket.fill_interval ({baseMs}ms), as Envoy refills descriptors on the same timer";
            }

            if (!seen.Add(RateLimitActions.Key(d.Entries.Select(static e => (e.Key, e.Value)))))
            {
                return $"descriptors[{i}] repeats the entries of an earlier descriptor";
            }
        }

        if (config.Stage > 10)
        {
            return "stage must be from 0 to 10";
        }

        return config.ResponseHeadersToAdd.Count > 10 || config.RequestHeadersToAddWhenNotEnforced.Count > 10
            ? "at most 10 headers may be added"
            : null;
    }

    private static TokenBucket NewBucket(Envoy.Type.V3.TokenBucket tb, TimeProvider time)
        => new(tb.MaxTokens, tb.TokensPerFill ?? 1, tb.FillInterval.ToTimeSpan(), time);

    /// <summary>The deprecated <c>append</c> wins when set, as in Envoy: true appends, false overwrites.</summary>
    private static IEnumerable<HeaderValueOption> WithAppendAction(IEnumerable<HeaderValueOption> options)
    {
        foreach (var option in options)
        {
            if (option.Append is not { } append)
            {
                yield return option;
                continue;
            }

            var copy = option.Clone();
            copy.Append = null;
            copy.AppendAction = append ? HeaderValueOption.Types.HeaderAppendAction.AppendIfExistsOrAdd : HeaderValueOption.Types.HeaderAppendAction.OverwriteIfExistsOrAdd;
            yield return copy;
        }
    }

    /// <summary>Envoy's mapping of a local reply's HTTP status to a gRPC status (<c>Grpc::Utility::httpToGrpcStatus</c>).</summary>
    private static int GrpcStatusOf(int status) => status switch
    {
        400 => 13,
        401 => 16,
        403 => 7,
        404 => 12,
        429 or 502 or 503 or 504 => 14,
        _ => 2,
    };
}

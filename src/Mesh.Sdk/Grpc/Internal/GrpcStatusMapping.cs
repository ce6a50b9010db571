using Grpc.Core;

namespace Mesh.Sdk.Grpc.Internal;

/// <summary>Conversions between HTTP and gRPC status codes, as gRPC and Envoy define them.</summary>
internal static class GrpcStatusMapping
{
    /// <summary>
    /// The gRPC status for an HTTP status that is not 200 (gRPC's <c>http-grpc-status-mapping.md</c>): 400 → INTERNAL,
    /// 401 → UNAUTHENTICATED, 403 → PERMISSION_DENIED, 404 → UNIMPLEMENTED, 429/502/503/504 → UNAVAILABLE, others → UNKNOWN.
    /// </summary>
    public static StatusCode FromHttp(int httpStatus) => httpStatus switch
    {
        200 => StatusCode.OK,
        400 => StatusCode.Internal,
        401 => StatusCode.Unauthenticated,
        403 => StatusCode.PermissionDenied,
        404 => StatusCode.Unimplemented,
        429 or 502 or 503 or 504 => StatusCode.Unavailable,
        _ => StatusCode.Unknown,
    };

    /// <summary>
    /// The HTTP status Envoy feeds to outlier detection for a gRPC status (Envoy's <c>grpcToHttpStatus</c>):
    /// OK → 200, UNAVAILABLE → 503, DEADLINE_EXCEEDED → 504, INTERNAL/UNKNOWN/DATA_LOSS → 500, and so on.
    /// </summary>
    public static int ToHttp(StatusCode code) => code switch
    {
        StatusCode.OK => 200,
        StatusCode.Cancelled => 499,
        StatusCode.Unknown => 500,
        StatusCode.InvalidArgument => 400,
        StatusCode.DeadlineExceeded => 504,
        StatusCode.NotFound => 404,
        StatusCode.AlreadyExists => 409,
        StatusCode.PermissionDenied => 403,
        StatusCode.ResourceExhausted => 429,
        StatusCode.FailedPrecondition => 400,
        StatusCode.Aborted => 409,
        StatusCode.OutOfRange => 400,
        StatusCode.Unimplemented => 501,
        StatusCode.Internal => 500,
        StatusCode.Unavailable => 503,
        StatusCode.DataLoss => 500,
        StatusCode.Unauthenticated => 401,
        _ => 500,
    };
}

using Google.Protobuf.Reflection;
using Istio.V1.Auth;

namespace Mesh.Xds.Tests;

/// <summary>
/// Istio's certificate API as istiod serves it (istio/api security/v1alpha1/ca.proto): the upstream file is not
/// among the npm package's protos, so its wire facts are written down here.
/// </summary>
public sealed class IstioCaProtoTests
{
    [Fact]
    public void Request_HasIstiodsFieldNumbersAndTypes()
    {
        var d = IstioCertificateRequest.Descriptor;
        Assert.Equal("istio.v1.auth.IstioCertificateRequest", d.FullName);
        Assert.Equal(
            [("csr", 1, FieldType.String), ("validity_duration", 3, FieldType.Int64), ("metadata", 4, FieldType.Message)],
            d.Fields.InDeclarationOrder().Select(f => (f.Name, f.FieldNumber, f.FieldType)).ToList());
        Assert.Equal("google.protobuf.Struct", d.FindFieldByName("metadata").MessageType.FullName);
    }

    [Fact]
    public void Response_CertChainIsRepeatedStringOne()
    {
        var field = Assert.Single(IstioCertificateResponse.Descriptor.Fields.InDeclarationOrder());
        Assert.Equal(("cert_chain", 1, FieldType.String, true), (field.Name, field.FieldNumber, field.FieldType, field.IsRepeated));
    }

    [Fact]
    public void Service_IsIstioCertificateServiceCreateCertificate()
    {
        var method = Assert.Single(IstioCertificateService.Descriptor.Methods);
        Assert.Equal("istio.v1.auth.IstioCertificateService", IstioCertificateService.Descriptor.FullName);
        Assert.Equal(("CreateCertificate", false, false), (method.Name, method.IsClientStreaming, method.IsServerStreaming));
        Assert.Equal("/istio.v1.auth.IstioCertificateService/CreateCertificate", "/" + IstioCertificateService.Descriptor.FullName + "/" + method.Name);
    }
}

using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Mesh.Xds.Security;

/// <summary>
/// Reads the URI entries of a subjectAltName extension (.NET reads DNS names and IP addresses only): the
/// GeneralNames sequence of RFC 5280, where a URI is the implicit <c>[6] IA5String</c>.
/// </summary>
public static class UriSubjectAlternativeNames
{
    /// <summary>The OID of the subjectAltName extension.</summary>
    public const string Oid = "2.5.29.17";

    /// <summary>The URI SANs of a certificate, in order; empty when it has no subjectAltName.</summary>
    /// <param name="certificate">The certificate.</param>
    /// <returns>The URIs as written.</returns>
    /// <exception cref="CryptographicException">The extension is not valid DER.</exception>
    public static IReadOnlyList<string> Read(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        foreach (var extension in certificate.Extensions)
        {
            if (extension.Oid?.Value == Oid)
            {
                return Read(extension.RawData);
            }
        }

        return [];
    }

    /// <summary>The URI SANs of an extension collection (for example a CSR's); empty when it has no subjectAltName.</summary>
    /// <param name="extensions">The extensions.</param>
    /// <returns>The URIs as written.</returns>
    /// <exception cref="CryptographicException">The extension is not valid DER.</exception>
    public static IReadOnlyList<string> Read(IEnumerable<X509Extension> extensions)
    {
        ArgumentNullException.ThrowIfNull(extensions);
        foreach (var extension in extensions)
        {
            if (extension.Oid?.Value == Oid)
            {
                return Read(extension.RawData);
            }
        }

        return [];
    }

    /// <summary>The URIs of a DER-encoded GeneralNames value (the subjectAltName extension's value).</summary>
    /// <param name="der">The extension value.</param>
    /// <returns>The URIs as written.</returns>
    /// <exception cref="CryptographicException">The value is not valid DER.</exception>
    public static IReadOnlyList<string> Read(ReadOnlyMemory<byte> der)
    {
        var uris = new List<string>();
        try
        {
            var reader = new AsnReader(der, AsnEncodingRules.DER);
            var names = reader.ReadSequence();
            reader.ThrowIfNotEmpty();
            var uriTag = new Asn1Tag(TagClass.ContextSpecific, 6);
            while (names.HasData)
            {
                var tag = names.PeekTag();
                if (tag.HasSameClassAndValue(uriTag))
                {
                    uris.Add(names.ReadCharacterString(UniversalTagNumber.IA5String, uriTag));
                }
                else
                {
                    names.ReadEncodedValue();
                }
            }
        }
        catch (AsnContentException ex)
        {
            throw new CryptographicException("The subjectAltName extension is not valid DER: " + ex.Message, ex);
        }

        return uris;
    }
}

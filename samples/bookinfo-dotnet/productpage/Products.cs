namespace Bookinfo.ProductPage;

/// <summary>A book on sale.</summary>
internal sealed record Product(int Id, string Title, string DescriptionHtml);

/// <summary>The catalogue: one book, as in the original.</summary>
internal static class Products
{
    public static readonly IReadOnlyList<Product> All =
    [
        new Product(
            0,
            "The Comedy of Errors",
            "<a href=\"https://en.wikipedia.org/wiki/The_Comedy_of_Errors\">Wikipedia Summary</a>: The Comedy of Errors is one of "
            + "<b>William Shakespeare's</b> early plays. It is his shortest and one of his most farcical comedies, with a major part "
            + "of the humour coming from slapstick and mistaken identity, in addition to puns and word play."),
    ];
}

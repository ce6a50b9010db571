using System.Text.RegularExpressions;

namespace Mesh.Fuzz.Tests;

/// <summary>Every corpus file and every saved crash, replayed in-process through its target: only documented refusals.</summary>
public sealed class CorpusReplayTests
{
    [Theory]
    [InlineData("yaml", 25)]
    [InlineData("xds", 20)]
    [InlineData("re2", 10)]
    [InlineData("route", 3)]
    public void EveryCorpusFileAndSavedCrash_GivesOnlyTheDocumentedOutcome(string target, int minimumCorpus)
    {
        var corpus = FuzzInputs.Corpus(target);
        var crashes = FuzzInputs.Crashes(target);
        Assert.True(corpus.Length >= minimumCorpus, $"fuzz/corpus/{target} holds {corpus.Length} files, expected at least {minimumCorpus}");
        var accepted = 0;
        foreach (var file in corpus.Concat(crashes))
        {
            var outcome = FuzzTargets.Run(target, File.ReadAllBytes(file));
            accepted += outcome.Accepted ? 1 : 0;
        }

        // The seeds are real, valid inputs (the error-*.yaml ones and one RE2 pattern aside): most must be accepted.
        Assert.True(accepted >= corpus.Length - 3, $"{target}: {accepted} of {corpus.Length} corpus files accepted");
    }

    [Fact]
    public void BookinfoSamples_AreAllAccepted_AndTheErrorSeedsAreRefusedWithFileLineAndColumn()
    {
        var files = FuzzInputs.Corpus("yaml");
        var samples = files.Where(f => !Path.GetFileName(f).StartsWith("error-", StringComparison.Ordinal)).ToArray();
        var errors = files.Except(samples).ToArray();
        Assert.Equal(25, samples.Length);
        Assert.All(samples, f => Assert.True(FuzzTargets.Yaml(File.ReadAllBytes(f)).Accepted, f));
        Assert.Equal(2, errors.Length);
        Assert.All(errors, f =>
        {
            var outcome = FuzzTargets.Yaml(File.ReadAllBytes(f));
            Assert.False(outcome.Accepted);
            Assert.Matches(new Regex("^/fuzz/config/input\\.yaml:[0-9]+:[0-9]+: "), outcome.Error);
        });
    }

    [Fact]
    public void XdsSeeds_TranslatedFromBookinfo_AreAllAcceptedByTheSdkValidator()
    {
        var files = FuzzInputs.Corpus("xds");
        Assert.Equal(22, files.Length);
        Assert.All(files, f => Assert.True(FuzzTargets.Xds(File.ReadAllBytes(f)).Accepted, f));
    }

    [Fact]
    public void RouteSeeds_CompileAndMatchTheirRequest()
    {
        var files = FuzzInputs.Corpus("route");
        Assert.Equal(3, files.Length);
        Assert.All(files, f => Assert.Equal(new FuzzTargets.Outcome(true, null), FuzzTargets.Route(File.ReadAllBytes(f))));
    }
}

using Xunit.Abstractions;
using Xunit.Sdk;

namespace Mesh.Bookinfo.Tests.Infrastructure;

/// <summary>Runs a class's tests in the order of their <see cref="StepAttribute"/> (the walkthrough's order; stopping a workload last).</summary>
public sealed class StepOrderer : ITestCaseOrderer
{
    public const string TypeName = "Mesh.Bookinfo.Tests.Infrastructure.StepOrderer";
    public const string AssemblyName = "Mesh.Bookinfo.Tests";

    public IEnumerable<TTestCase> OrderTestCases<TTestCase>(IEnumerable<TTestCase> testCases)
        where TTestCase : ITestCase =>
        testCases.OrderBy(static c => c.TestMethod.Method.GetCustomAttributes(typeof(StepAttribute).AssemblyQualifiedName!).FirstOrDefault()
            ?.GetConstructorArguments().OfType<int>().FirstOrDefault() ?? int.MaxValue);
}

/// <summary>The position of a test in its class.</summary>
[AttributeUsage(AttributeTargets.Method)]
public sealed class StepAttribute(int order) : Attribute
{
    public int Order { get; } = order;
}

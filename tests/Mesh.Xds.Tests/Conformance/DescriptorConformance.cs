using Google.Protobuf.Reflection;

namespace Mesh.Xds.Tests.Conformance;

/// <summary>
/// Compares our proto subset with upstream descriptors: every message, field, enum value and service method
/// we declare must exist upstream with the same wire facts (number, type, type name, label, oneof, streaming).
/// </summary>
internal static class DescriptorConformance
{
    internal sealed class Report
    {
        public List<string> Mismatches { get; } = [];

        public int Files { get; set; }

        public int Messages { get; set; }

        public int Fields { get; set; }

        public int Enums { get; set; }

        public int EnumValues { get; set; }

        public int Methods { get; set; }

        public override string ToString()
            => $"{Files} files, {Messages} messages, {Fields} fields, {Enums} enums, {EnumValues} enum values, {Methods} methods";
    }

    public static Report Compare(IEnumerable<FileDescriptorProto> ours, IEnumerable<FileDescriptorProto> upstream)
    {
        var index = new UpstreamIndex(upstream);
        var report = new Report();
        foreach (var file in ours)
        {
            report.Files++;
            var prefix = file.Package.Length == 0 ? string.Empty : file.Package + ".";
            foreach (var message in file.MessageType)
            {
                CheckDeclaredIn(file, prefix + message.Name, index, report);
                CheckMessage(prefix + message.Name, message, index, report);
            }

            foreach (var e in file.EnumType)
            {
                CheckDeclaredIn(file, prefix + e.Name, index, report);
                CheckEnum(prefix + e.Name, e, index, report);
            }

            foreach (var service in file.Service)
            {
                CheckDeclaredIn(file, prefix + service.Name, index, report);
                CheckService(prefix + service.Name, service, index, report);
            }
        }

        return report;
    }

    private static void CheckDeclaredIn(FileDescriptorProto file, string fullName, UpstreamIndex index, Report report)
    {
        if (index.FileOf.TryGetValue(fullName, out var upstreamFile) && upstreamFile != file.Name)
        {
            report.Mismatches.Add($"{fullName}: declared in {upstreamFile} upstream, {file.Name} here");
        }
    }

    private static void CheckMessage(string fullName, DescriptorProto ours, UpstreamIndex index, Report report)
    {
        report.Messages++;
        if (!index.Messages.TryGetValue(fullName, out var up))
        {
            report.Mismatches.Add($"{fullName}: message does not exist upstream");
            return;
        }

        var upFields = up.Field.ToDictionary(f => f.Name);
        foreach (var field in ours.Field)
        {
            report.Fields++;
            var name = fullName + "." + field.Name;
            if (!upFields.TryGetValue(field.Name, out var u))
            {
                var sameNumber = up.Field.FirstOrDefault(f => f.Number == field.Number);
                report.Mismatches.Add(sameNumber is null
                    ? $"{name}: field does not exist upstream"
                    : $"{name}: field does not exist upstream (number {field.Number} is '{sameNumber.Name}' upstream)");
                continue;
            }

            if (u.Number != field.Number)
            {
                report.Mismatches.Add($"{name}: number {u.Number} upstream, {field.Number} here");
            }

            if (u.Type != field.Type)
            {
                report.Mismatches.Add($"{name}: type {u.Type} upstream, {field.Type} here");
            }

            if (u.TypeName != field.TypeName)
            {
                report.Mismatches.Add($"{name}: type_name '{u.TypeName}' upstream, '{field.TypeName}' here");
            }

            if (u.Label != field.Label)
            {
                report.Mismatches.Add($"{name}: label {u.Label} upstream, {field.Label} here");
            }

            if (u.Proto3Optional != field.Proto3Optional)
            {
                report.Mismatches.Add($"{name}: proto3 optional {u.Proto3Optional} upstream, {field.Proto3Optional} here");
            }

            var upOneof = OneofName(up, u);
            var ourOneof = OneofName(ours, field);
            if (upOneof != ourOneof)
            {
                report.Mismatches.Add($"{name}: oneof {upOneof ?? "(none)"} upstream, {ourOneof ?? "(none)"} here");
            }
        }

        foreach (var nested in ours.NestedType)
        {
            CheckMessage(fullName + "." + nested.Name, nested, index, report);
        }

        foreach (var e in ours.EnumType)
        {
            CheckEnum(fullName + "." + e.Name, e, index, report);
        }
    }

    private static string? OneofName(DescriptorProto message, FieldDescriptorProto field)
        => field.HasOneofIndex && !field.Proto3Optional ? message.OneofDecl[field.OneofIndex].Name : null;

    private static void CheckEnum(string fullName, EnumDescriptorProto ours, UpstreamIndex index, Report report)
    {
        report.Enums++;
        if (!index.Enums.TryGetValue(fullName, out var up))
        {
            report.Mismatches.Add($"{fullName}: enum does not exist upstream");
            return;
        }

        var upValues = up.Value.ToDictionary(v => v.Name);
        foreach (var value in ours.Value)
        {
            report.EnumValues++;
            if (!upValues.TryGetValue(value.Name, out var u))
            {
                report.Mismatches.Add($"{fullName}.{value.Name}: enum value does not exist upstream");
            }
            else if (u.Number != value.Number)
            {
                report.Mismatches.Add($"{fullName}.{value.Name}: number {u.Number} upstream, {value.Number} here");
            }
        }
    }

    private static void CheckService(string fullName, ServiceDescriptorProto ours, UpstreamIndex index, Report report)
    {
        if (!index.Services.TryGetValue(fullName, out var up))
        {
            report.Mismatches.Add($"{fullName}: service does not exist upstream");
            return;
        }

        var upMethods = up.Method.ToDictionary(m => m.Name);
        foreach (var method in ours.Method)
        {
            report.Methods++;
            var name = fullName + "." + method.Name;
            if (!upMethods.TryGetValue(method.Name, out var u))
            {
                report.Mismatches.Add($"{name}: method does not exist upstream");
                continue;
            }

            if (u.InputType != method.InputType)
            {
                report.Mismatches.Add($"{name}: input '{u.InputType}' upstream, '{method.InputType}' here");
            }

            if (u.OutputType != method.OutputType)
            {
                report.Mismatches.Add($"{name}: output '{u.OutputType}' upstream, '{method.OutputType}' here");
            }

            if (u.ClientStreaming != method.ClientStreaming)
            {
                report.Mismatches.Add($"{name}: client streaming {u.ClientStreaming} upstream, {method.ClientStreaming} here");
            }

            if (u.ServerStreaming != method.ServerStreaming)
            {
                report.Mismatches.Add($"{name}: server streaming {u.ServerStreaming} upstream, {method.ServerStreaming} here");
            }
        }
    }

    private sealed class UpstreamIndex
    {
        public UpstreamIndex(IEnumerable<FileDescriptorProto> files)
        {
            foreach (var file in files)
            {
                var prefix = file.Package.Length == 0 ? string.Empty : file.Package + ".";
                foreach (var message in file.MessageType)
                {
                    FileOf[prefix + message.Name] = file.Name;
                    AddMessage(prefix + message.Name, message);
                }

                foreach (var e in file.EnumType)
                {
                    FileOf[prefix + e.Name] = file.Name;
                    Enums[prefix + e.Name] = e;
                }

                foreach (var service in file.Service)
                {
                    FileOf[prefix + service.Name] = file.Name;
                    Services[prefix + service.Name] = service;
                }
            }
        }

        public Dictionary<string, DescriptorProto> Messages { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, EnumDescriptorProto> Enums { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, ServiceDescriptorProto> Services { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, string> FileOf { get; } = new(StringComparer.Ordinal);

        private void AddMessage(string fullName, DescriptorProto message)
        {
            Messages[fullName] = message;
            foreach (var nested in message.NestedType)
            {
                AddMessage(fullName + "." + nested.Name, nested);
            }

            foreach (var e in message.EnumType)
            {
                Enums[fullName + "." + e.Name] = e;
            }
        }
    }
}

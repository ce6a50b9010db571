var builder = WebApplication.CreateBuilder(args);
builder.AddMesh();
var app = builder.Build();

// Every path answers with the path and the protocol, so a test sees which request arrived and how.
app.MapGet("/{**path}", (HttpContext context) => $"{Environment.GetEnvironmentVariable("Mesh__ServiceAccount")} {context.Request.Path} {context.Request.Protocol}");
app.Run();

using System.Net;
using System.Net.Sockets;

namespace Mesh.Sdk.FunctionalTests.Infrastructure;

/// <summary>
/// A TCP forwarder on 127.0.0.1 with an ephemeral port in front of <c>127.0.0.1:target</c>. While open, each
/// accepted connection is piped to the target; while closed, accepted connections are closed at once (the peer
/// sees its connection attempt fail and backs off). Closing also drops the connections being piped.
/// </summary>
internal sealed class TcpGate : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<TcpClient> _open = [];
    private readonly Task _accepting;
    private readonly int _target;
    private volatile bool _isOpen = true;

    public TcpGate(int target)
    {
        _target = target;
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _accepting = AcceptAsync();
    }

    public int Port { get; }

    public void Open() => _isOpen = true;

    public void Close()
    {
        _isOpen = false;
        lock (_open)
        {
            foreach (var client in _open)
            {
                client.Dispose();
            }

            _open.Clear();
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient inbound;
            try
            {
                inbound = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }

            _ = PipeAsync(inbound);
        }
    }

    private async Task PipeAsync(TcpClient inbound)
    {
        if (!_isOpen)
        {
            inbound.Dispose();
            return;
        }

        var outbound = new TcpClient();
        try
        {
            await outbound.ConnectAsync(IPAddress.Loopback, _target, _stop.Token);
        }
        catch (Exception)
        {
            inbound.Dispose();
            outbound.Dispose();
            return;
        }

        lock (_open)
        {
            _open.Add(inbound);
            _open.Add(outbound);
        }

        try
        {
            var a = inbound.GetStream().CopyToAsync(outbound.GetStream(), _stop.Token);
            var b = outbound.GetStream().CopyToAsync(inbound.GetStream(), _stop.Token);
            await Task.WhenAny(a, b);
        }
        catch (Exception)
        {
        }
        finally
        {
            inbound.Dispose();
            outbound.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        Close();
        await _accepting;
        _stop.Dispose();
    }
}
